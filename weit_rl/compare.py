"""Sample-efficiency sweeps: sizes x initializers x seeds, run in parallel processes (or
on Ray), then aggregated with rliable into a Markdown report with plots and JSON.

Every run is an ordinary `weit_rl.agents.train` run in its own folder
(<out-dir>/<Env>/<algo>-<size>-<init>-s<seed>/), so a finished run (model.zip) is never
repeated and a killed sweep resumes where its runs stopped.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import multiprocessing
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from weit_rl import UserError, __version__

# Profiles fill every option not given on the command line. "quick" finishes in under
# 20 minutes for HalfCheetah PPO on 2 CPU cores; "full" is the real experiment.
PROFILES: dict[str, dict[str, Any]] = {
    "quick": dict(sizes="tiny,small", inits="scratch,weit,distill,select", seeds=3, steps=32_768, evals=8,
                  eval_episodes=5, checkpoint_freq=8_192),
    "full": dict(sizes="tiny,small,medium,128x3", inits="scratch,weit,distill,select", seeds=5, steps=300_000,
                 evals=30, eval_episodes=10, checkpoint_freq=50_000),
}
BUDGETS = (0.25, 0.5, 1.0)  # fractions of the step budget at which scores are reported
THRESHOLDS = (0.5, 0.8, 1.0)  # fractions of scratch's final return for steps-to-threshold
METHOD = "weit"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of `weit-rl compare`; those left unset come from --profile."""
    p.add_argument("--env", required=True)
    p.add_argument("--algo", default="ppo")
    p.add_argument("--profile", choices=sorted(PROFILES), default="quick",
                   help="preset for every option below left unset (default quick)")
    p.add_argument("--sizes", default=None, help="comma-separated sizes, e.g. tiny,small,128x3")
    p.add_argument("--inits", default=None, help="comma-separated initializers: scratch,weit,distill,select")
    p.add_argument("--seeds", type=int, default=None, help="number of seeds per cell (seeds 0..N-1)")
    p.add_argument("--steps", type=int, default=None, help="environment steps per run")
    p.add_argument("--eval-freq", type=int, default=None,
                   help="steps between evaluations (default: the profile's number of evaluations over --steps, "
                        "rounded up to whole PPO rollouts)")
    p.add_argument("--eval-episodes", type=int, default=None, help="deterministic episodes per evaluation")
    p.add_argument("--checkpoint-freq", type=int, default=None)
    p.add_argument("--bank", default=None, help="template bank for weit/distill (default: the shipped bank)")
    p.add_argument("--expert", default=None, help="expert for select (default: the shipped expert)")
    p.add_argument("--device", default="cpu", help="cpu (default: small MLPs train fastest there), cuda or auto")
    p.add_argument("--backend", choices=("local", "ray"), default="local",
                   help="local: parallel processes on this machine; ray: tasks on a Ray cluster")
    p.add_argument("--address", default=None,
                   help="Ray cluster address (e.g. auto or ray://host:10001; default: start Ray here). "
                        "Workers must see --out-dir, the bank and the expert at the same paths")
    p.add_argument("--workers", type=int, default=None, help="parallel runs (default: the available CPU cores)")
    p.add_argument("--out-dir", default="runs/compare", help="root of the run folders")
    p.add_argument("--report-dir", default="reports", help="the report goes to REPORT_DIR/<Env>-<algo>/")
    p.add_argument("--report-only", action="store_true", help="regenerate the report from existing runs; train nothing")
    p.add_argument("--reps", type=int, default=2000, help="bootstrap replications for the confidence intervals")
    p.add_argument("--stats-seed", type=int, default=0, help="seed of the bootstrap (fixes every interval)")


# --- The sweep: validated options and its run folders --------------------------------

@dataclass
class Sweep:
    env_id: str
    algo: str
    sizes: list[str]
    inits: list[str]
    seeds: list[int]
    steps: int
    eval_freq: int
    eval_episodes: int
    checkpoint_freq: int
    device: str
    out_dir: Path
    report_dir: Path
    profile: str
    bank: str | None = None
    expert: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def env_dir(self) -> Path:
        from weit_rl.envs import short_name

        return self.out_dir / short_name(self.env_id)

    def run_name(self, size: str, init: str, seed: int) -> str:
        from weit_rl.config import size_name

        return f"{self.algo}-{size_name(size)}-{init}-s{seed}"

    def run_dir(self, size: str, init: str, seed: int) -> Path:
        return self.env_dir / self.run_name(size, init, seed)

    def configs(self) -> list[Any]:
        """One RunConfig per cell of the grid, in a fixed order (size, init, seed)."""
        from weit_rl.agents import RunConfig

        return [
            RunConfig(env=self.env_id, algo=self.algo, size=size, init=init, steps=self.steps, seed=seed,
                      device=self.device, bank=self.bank if init in ("weit", "distill") else None,
                      expert=self.expert if init == "select" else None,
                      run_dir=str(self.run_dir(size, init, seed)), eval_freq=self.eval_freq,
                      eval_episodes=self.eval_episodes, checkpoint_freq=self.checkpoint_freq, progress_bar=False)
            for size in self.sizes for init in self.inits for seed in self.seeds
        ]

    @property
    def report_path(self) -> Path:
        from weit_rl.envs import short_name

        return self.report_dir / f"{short_name(self.env_id)}-{self.algo}"


def _split(text: str) -> list[str]:
    items = [s.strip() for s in text.split(",") if s.strip()]
    return list(dict.fromkeys(items))  # drop repeats, keep order


def _rollout(algo: str, env_id: str) -> int:
    """Steps per PPO rollout (evaluations land on whole rollouts); 1 for SAC."""
    from weit_rl.config import hyperparams

    params = hyperparams(algo, env_id)
    return int(params.get("n_steps", 1)) * int(params.get("n_envs", 1)) if algo == "ppo" else 1


def resolve(args: argparse.Namespace) -> Sweep:
    """Validate every option (and the banks and experts the inits need) before any run
    starts, filling unset options from the profile."""
    from weit_rl.config import check_algo, parse_size
    from weit_rl.envs import resolve_task
    from weit_rl.init import check_init

    prof = PROFILES[args.profile]
    pick = lambda name: prof[name] if getattr(args, name) is None else getattr(args, name)  # noqa: E731
    env_id, algo = resolve_task(args.env), check_algo(args.algo)
    sizes, inits = _split(pick("sizes")), [check_init(i) for i in _split(pick("inits"))]
    if not sizes or not inits:
        raise UserError("--sizes and --inits need at least one entry each, "
                        "e.g. --sizes tiny,small --inits scratch,weit")
    for size in sizes:
        parse_size(size)
    seeds, steps, episodes = pick("seeds"), pick("steps"), pick("eval_episodes")
    for name, value in (("--seeds", seeds), ("--steps", steps), ("--eval-episodes", episodes)):
        if value < 1:
            raise UserError(f"{name} must be >= 1, got {value}")
    rollout = _rollout(algo, env_id)
    eval_freq = args.eval_freq or math.ceil(steps / prof["evals"] / rollout) * rollout
    notes = []
    if eval_freq < 1:
        raise UserError(f"--eval-freq must be >= 1, got {eval_freq}")
    if eval_freq % rollout:
        notes.append(f"--eval-freq {eval_freq} is not a multiple of the PPO rollout ({rollout} steps): evaluations "
                     f"land on the next whole rollout and are read as the last one at or before each step")
    checkpoint_freq = args.checkpoint_freq or prof["checkpoint_freq"]
    if args.workers is not None and args.workers < 1:
        raise UserError(f"--workers must be >= 1, got {args.workers}")
    if args.reps < 1:
        raise UserError(f"--reps must be >= 1, got {args.reps}")
    from weit_rl.agents import resolve_device

    resolve_device(args.device)
    sweep = Sweep(env_id=env_id, algo=algo, sizes=sizes, inits=inits, seeds=list(range(seeds)), steps=steps,
                  eval_freq=eval_freq, eval_episodes=episodes, checkpoint_freq=checkpoint_freq, device=args.device,
                  out_dir=Path(args.out_dir).resolve(), report_dir=Path(args.report_dir), profile=args.profile,
                  notes=notes)
    _resolve_sources(sweep, args.bank, args.expert, required=not args.report_only)
    _check_existing_runs(sweep)
    return sweep


def _resolve_sources(sweep: Sweep, bank: str | None, expert: str | None, required: bool) -> None:
    """Find (and check) the bank and expert the requested inits need. Paths become
    absolute: worker processes and Ray tasks may start in another folder."""
    from weit_rl.experts import default_bank, default_expert

    need_bank = any(i in ("weit", "distill") for i in sweep.inits)
    need_expert = "select" in sweep.inits
    steps = [("bank", need_bank, bank, default_bank, _check_bank),
             ("expert", need_expert, expert, default_expert, _check_expert)]
    for name, needed, given, default, check in steps:
        if not (needed or given):
            continue
        try:
            setattr(sweep, name, str(Path(given or default(sweep.env_id, sweep.algo)).resolve()))
            if needed:
                check(sweep)
        except UserError:
            if required:
                raise  # a report from existing runs needs neither: they only give the expert's return


def _env_dims(env_id: str) -> tuple[int, int]:
    import gymnasium as gym

    env = gym.make(env_id)
    try:
        return int(env.observation_space.shape[0]), int(env.action_space.shape[0])
    finally:
        env.close()


def _check_bank(sweep: Sweep) -> None:
    from weit_rl.bank import check_compatible, load_bank
    from weit_rl.config import hyperparams

    bank = load_bank(sweep.bank)
    activation = hyperparams(sweep.algo, sweep.env_id).get("policy_kwargs", {}).get("activation_fn", "relu")
    check_compatible(bank, sweep.bank, sweep.algo, *_env_dims(sweep.env_id), activation, sweep.env_id)


def _check_expert(sweep: Sweep) -> None:
    """The expert loads, fits the task, and is at least as wide and deep as every size:
    weight selection copies a subset of its neurons (the same rule as weit_rl.init.select,
    checked here so the sweep fails before its first run, not in the middle)."""
    from weit_rl.config import parse_size
    from weit_rl.init import select_fits
    from weit_rl.sb3 import hidden_widths, load_expert

    model, _ = load_expert(sweep.expert, sweep.algo)
    obs_dim, _ = _env_dims(sweep.env_id)
    if model.observation_space.shape[0] != obs_dim:
        raise UserError(f"expert {sweep.expert} takes {model.observation_space.shape[0]}-dim observations but "
                        f"{sweep.env_id} gives {obs_dim}: pass the expert trained on this task with --expert")
    expert_widths = hidden_widths(model.policy)["actor"]
    for size in sweep.sizes:
        widths = parse_size(size)
        if not select_fits(widths, expert_widths):
            raise UserError(f"init select cannot make size {size} {widths}: it copies a subset of the expert "
                            f"{expert_widths}, so no layer may be wider and the net no deeper; drop select from "
                            f"--inits or that size from --sizes")


def _check_existing_runs(sweep: Sweep) -> None:
    """A run folder left by an earlier sweep must match this one, or results would mix."""
    import yaml

    from weit_rl.config import parse_size

    for cfg in sweep.configs():
        path = Path(cfg.run_dir) / "config.yaml"
        if not path.exists():
            continue
        old = yaml.safe_load(path.read_text()) or {}
        want = {"steps": cfg.steps, "eval_freq": cfg.eval_freq, "eval_episodes": cfg.eval_episodes,
                "net_arch": parse_size(cfg.size), "init": cfg.init, "seed": cfg.seed}
        diff = [f"{k} {old.get(k)!r} (now {v!r})" for k, v in want.items() if old.get(k) != v]
        if diff:
            raise UserError(f"{cfg.run_dir} was made by a different sweep: {', '.join(diff)}; pass that sweep's "
                            "options, another --out-dir, or delete that folder")


# --- Running the grid -----------------------------------------------------------------

def _log_dir(run_dir: Path) -> Path:
    return run_dir.parent / "logs"


def train_one(cfg: dict[str, Any], command: str) -> tuple[str, float]:
    """Train (or resume) one run in this worker process, one torch thread, its output
    going to <env-dir>/logs/<run>.log; returns (run folder, seconds). Top-level so
    spawned processes and Ray can import it."""
    os.environ["WEIT_RL_THREADS"] = "1"  # one run per core: threads would only fight
    import torch

    from weit_rl.agents import RunConfig, train

    torch.set_num_threads(1)
    run_dir = Path(cfg["run_dir"])
    logs = _log_dir(run_dir)
    logs.mkdir(parents=True, exist_ok=True)
    start = time.time()
    with (logs / f"{run_dir.name}.log").open("a") as log:
        saved = os.dup(1), os.dup(2)
        sys.stdout.flush(), sys.stderr.flush()
        os.dup2(log.fileno(), 1), os.dup2(log.fileno(), 2)  # MuJoCo's C warnings too
        try:
            train(RunConfig(**cfg), command)
        finally:
            sys.stdout.flush(), sys.stderr.flush()
            os.dup2(saved[0], 1), os.dup2(saved[1], 2)
            os.close(saved[0]), os.close(saved[1])
    seconds = time.time() - start
    timing = logs / f"{run_dir.name}.json"
    before = json.loads(timing.read_text())["seconds"] if timing.exists() else 0.0  # earlier part of a resumed run
    timing.write_text(json.dumps({"seconds": before + seconds}) + "\n")
    return str(run_dir), seconds


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


Done = Callable[[str, BaseException | None], None]


# One thread per run for every library that might start a pool: runs are the parallelism.
# Set before a worker starts, since numpy's BLAS reads them when it is first imported.
ONE_THREAD = {"WEIT_RL_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


def run_local(cfgs: list[dict[str, Any]], command: str, workers: int, done: Done) -> None:
    """Runs in `workers` spawned processes (spawn: no forked torch or MuJoCo state)."""
    ctx = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx)
    try:
        saved = dict(os.environ)
        os.environ.update({k: os.environ.get(k, v) for k, v in ONE_THREAD.items()})
        try:  # workers are spawned by the submits and inherit this environment; ours is put back
            futures = {pool.submit(train_one, cfg, command): cfg["run_dir"] for cfg in cfgs}
        finally:
            os.environ.clear()
            os.environ.update(saved)
        for fut in as_completed(futures):
            done(futures[fut], fut.exception())
    except KeyboardInterrupt:
        # Ctrl-C reaches the workers too: they checkpoint and stop; wait for that.
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def run_ray(cfgs: list[dict[str, Any]], command: str, workers: int, address: str | None, done: Done) -> None:
    """The same runs as Ray tasks of one CPU each, on the cluster at `address` (or a
    local Ray started with `workers` CPUs)."""
    try:
        import ray
    except ImportError:
        raise UserError("--backend ray needs Ray: pip install '.[ray]' (or pip install 'ray[default]==2.60.0'), "
                        "or use --backend local") from None
    started = not ray.is_initialized()
    if started:
        try:
            runtime_env = {"env_vars": ONE_THREAD}
            if address:
                ray.init(address=address, log_to_driver=False, runtime_env=runtime_env)
            else:
                ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, runtime_env=runtime_env)
        except (ConnectionError, RuntimeError, ValueError) as err:
            raise UserError(f"could not start or reach Ray{f' at {address}' if address else ''}: {err}; "
                            "check --address, or use --backend local") from None
    pending: dict[Any, str] = {}
    try:
        task = ray.remote(num_cpus=1, max_retries=0)(train_one)
        pending = {task.remote(cfg, command): cfg["run_dir"] for cfg in cfgs}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            run_dir = pending.pop(ready[0])
            try:
                ray.get(ready[0])
                done(run_dir, None)
            except Exception as err:  # noqa: BLE001 - RayTaskError wraps whatever the run raised
                done(run_dir, getattr(err, "cause", None) or err)
    except KeyboardInterrupt:
        for ref in pending:
            ray.cancel(ref)
        raise
    finally:
        if started:
            ray.shutdown()


def run_sweep(sweep: Sweep, command: str, backend: str = "local", workers: int | None = None,
              address: str | None = None) -> list[str]:
    """Train every unfinished run of the grid; returns the run folders trained now.
    Failed runs do not stop the others; they are listed in one error at the end."""
    from tqdm import tqdm

    todo = [asdict(c) for c in sweep.configs() if not (Path(c.run_dir) / "model.zip").exists()]
    total = len(sweep.configs())
    if not todo:
        print(f"all {total} runs are finished; writing the report", file=sys.stderr)
        return []
    workers = min(workers or available_cores(), len(todo))
    print(f"{len(todo)} of {total} runs to train in {sweep.env_dir} ({backend}, {workers} workers)", file=sys.stderr)
    failed: list[str] = []
    bar = tqdm(total=len(todo), desc="runs", unit="run", file=sys.stderr)

    def done(run_dir: str, err: BaseException | None) -> None:
        if err is not None:
            failed.append(f"{Path(run_dir).name}: {type(err).__name__}: {err} "
                          f"(log: {_log_dir(Path(run_dir)) / Path(run_dir).name}.log)")
        bar.set_postfix_str(f"{Path(run_dir).name} {'failed' if err else 'done'}")
        bar.update()

    try:
        if backend == "ray":
            run_ray(todo, command, workers, address, done)
        else:
            run_local(todo, command, workers, done)
    finally:
        bar.close()
    if failed:
        raise UserError(f"{len(failed)} of {len(todo)} runs failed:\n  " + "\n  ".join(failed)
                        + "\nfix the cause and run the same command again: finished runs are kept")
    return [c["run_dir"] for c in todo]


# --- Reading the runs ---------------------------------------------------------------

def read_evaluations(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(timesteps, mean returns) of one run's evaluations.csv."""
    with path.open() as f:
        rows = list(csv.DictReader(f))
    return (np.array([int(r["timesteps"]) for r in rows]), np.array([float(r["mean_return"]) for r in rows]))


def eval_grid(steps: int, eval_freq: int) -> np.ndarray:
    """The fixed evaluation schedule: step 0, every eval_freq steps, and the budget."""
    return np.unique(np.r_[np.arange(0, steps, eval_freq), steps])


def load_curves(sweep: Sweep) -> tuple[np.ndarray, dict[str, dict[str, np.ndarray]], list[str]]:
    """Raw learning curves `curves[size][init]` of shape (finished seeds x grid points),
    and the names of runs that are missing or unfinished."""
    from weit_rl.stats import curve_at

    grid = eval_grid(sweep.steps, sweep.eval_freq)
    curves: dict[str, dict[str, np.ndarray]] = {}
    missing = []
    for size in sweep.sizes:
        for init in sweep.inits:
            rows = []
            for seed in sweep.seeds:
                run = sweep.run_dir(size, init, seed)
                if not (run / "model.zip").exists() or not (run / "evaluations.csv").exists():
                    missing.append(run.name)
                    continue
                t, r = read_evaluations(run / "evaluations.csv")
                if not t.size:
                    missing.append(run.name)
                    continue
                # The last PPO rollout may overshoot the budget; its evaluation is the end of the run.
                rows.append(curve_at(np.minimum(t, sweep.steps), r, grid))
            if rows:
                curves.setdefault(size, {})[init] = np.vstack(rows)
    return grid, curves, missing


def expert_return(sweep: Sweep) -> tuple[float | None, str]:
    """The expert's evaluated return (for normalization) and where it came from."""
    from weit_rl.bank import read_manifest

    if sweep.bank and Path(sweep.bank).exists():
        try:
            value = (read_manifest(sweep.bank).get("expert") or {}).get("eval_return_mean")
        except UserError:
            value = None
        if value is not None:
            return float(value), f"the manifest of bank {sweep.bank}"
    if sweep.expert:
        from weit_rl.experts import read_expert_manifest

        value = read_expert_manifest(sweep.expert).get("eval_return_mean")
        if value is not None:
            return float(value), f"the expert manifest beside {sweep.expert}"
    return None, "no expert return is recorded (bank and expert manifests lack eval_return_mean)"


# --- Statistics ----------------------------------------------------------------------

def analyse(sweep: Sweep, grid: np.ndarray, curves: dict[str, dict[str, np.ndarray]], expert: float | None,
            rng: np.random.Generator, reps: int) -> dict[str, Any]:
    """All numbers of the report, per size, computed with one generator in a fixed order."""
    from weit_rl import stats

    out: dict[str, Any] = {}
    for size, by_init in curves.items():
        norm = {i: stats.normalize(c, expert) for i, c in by_init.items()}
        bands = stats.iqm_curve_with_ci(norm, rng, reps)
        budgets = {}
        for frac in BUDGETS:
            idx = int(np.searchsorted(grid, frac * sweep.steps, side="right") - 1)
            est = stats.iqm_with_ci({i: c[:, idx:idx + 1] for i, c in norm.items()}, rng, reps)
            budgets[frac] = {"step": int(grid[idx]), "scores": {i: c[:, idx:idx + 1] for i, c in norm.items()},
                             "iqm": est}
        auc_scores = {i: stats.area_under_curve(grid, c)[:, None] for i, c in norm.items()}
        auc = stats.iqm_with_ci(auc_scores, rng, reps)
        entry: dict[str, Any] = {
            "runs": {i: int(c.shape[0]) for i, c in by_init.items()},
            "curve": {i: [b.tolist() for b in band] for i, band in bands.items()},
            "budgets": {str(f): {"step": b["step"], "iqm": {i: _ci(v) for i, v in b["iqm"].items()}}
                        for f, b in budgets.items()},
            "auc": {i: _ci(v) for i, v in auc.items()},
            "thresholds": _thresholds(grid, by_init),
            "versus": {},
        }
        final = budgets[1.0]
        if METHOD in norm:
            for base in (i for i in norm if i != METHOD):
                vs = {}
                for metric, scores, est in (("auc", auc_scores, auc), ("final", final["scores"], final["iqm"])):
                    poi = stats.probability_of_improvement_with_ci(scores[METHOD], scores[base], rng, reps)
                    vs[metric] = {"poi": _ci(poi), "verdict": stats.verdict(est[METHOD], est[base], poi)}
                entry["versus"][base] = vs
        entry["_final_scores"] = final["scores"]  # for the performance profile; not written to JSON
        entry["_bands"] = bands
        out[size] = entry
    return out


def _ci(v: tuple[float, float, float]) -> dict[str, float]:
    return {"estimate": float(v[0]), "low": float(v[1]), "high": float(v[2])}


def _thresholds(grid: np.ndarray, by_init: dict[str, np.ndarray]) -> dict[str, Any]:
    """Steps for each init's IQM curve (raw returns) to reach 50/80/100% of scratch's
    progress from its step-0 return to its final return, and the ratio to scratch's."""
    from weit_rl import stats

    if "scratch" not in by_init:
        return {"note": "no scratch runs: thresholds are defined by scratch"}
    ref = stats.iqm_curve(by_init["scratch"])
    start, final = float(ref[0]), float(ref[-1])
    if final <= start:
        return {"note": f"scratch did not improve (IQM return {start:.1f} at step 0, {final:.1f} at the end): "
                        "thresholds are undefined", "scratch_start": start, "scratch_final": final}
    levels = {f: stats.threshold(start, final, f) for f in THRESHOLDS}
    steps = {i: {f: stats.steps_to_reach(grid, stats.iqm_curve(c), lv) for f, lv in levels.items()}
             for i, c in by_init.items()}
    ratio = {i: {f: s[f] / steps["scratch"][f] if steps["scratch"][f] > 0 else float("nan") for f in THRESHOLDS}
             for i, s in steps.items()}
    return {"scratch_start": start, "scratch_final": final, "levels": {str(f): v for f, v in levels.items()},
            "steps": {i: {str(f): v for f, v in s.items()} for i, s in steps.items()},
            "ratio": {i: {str(f): v for f, v in r.items()} for i, r in ratio.items()}}


# --- The report ----------------------------------------------------------------------

def code_version() -> str:
    """weit_rl's version plus the git commit of its checkout, when there is one."""
    here = Path(__file__).resolve().parent
    env = dict(os.environ, GIT_OPTIONAL_LOCKS="0")  # read-only: never refresh the index
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=here, env=env, capture_output=True,
                              text=True, timeout=10)
        if head.returncode != 0:
            return __version__
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here, env=env,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return __version__
    return f"{__version__} (git {head.stdout.strip()}{', with uncommitted changes' if dirty else ''})"


def hardware(device: str) -> str:
    return f"{platform.platform()}, {platform.machine()}, {os.cpu_count()} CPUs, device {device}"


def _fmt(v: dict[str, float] | None, digits: int = 3) -> str:
    if v is None:
        return "-"
    return f"{v['estimate']:.{digits}g} [{v['low']:.{digits}g}, {v['high']:.{digits}g}]"


def _steps(v: float) -> str:
    return "not reached" if v is None or math.isnan(v) else f"{v:,.0f}"


def _ratio(v: float) -> str:
    return "-" if v is None or math.isnan(v) else f"{v:.2f}"


def _wall(meta: dict[str, Any]) -> str:
    if not meta["trained_now"]:
        return "no training by this command (report from finished runs)"
    return (f"{meta['wall_s'] / 60:.1f} min for this command, {meta['trained_now']} runs trained with "
            f"{meta['workers']} in parallel (backend {meta['backend']})")


def _sentence(size: str, versus: dict[str, Any]) -> str:
    if not versus:
        return f"- **{size}**: no {METHOD} runs, or no baseline to compare with."
    words = {"wins": "wins against", "ties": "ties with", "loses": "loses to"}
    parts = []
    for base, vs in versus.items():
        a, f = vs["auc"]["verdict"], vs["final"]["verdict"]
        parts.append(f"**{words[a]}** {base}" + ("" if a == f else f" (final return: {words[f]})"))
    return f"- **{size}**: {METHOD} " + ", ".join(parts) + "."


def render(sweep: Sweep, meta: dict[str, Any], results: dict[str, Any]) -> str:
    """The Markdown report."""
    from weit_rl.config import parse_size

    unit = "expert-normalized return" if meta["expert_return"] is not None else "return"
    lines = [
        f"# Sample efficiency: {sweep.env_id}, {sweep.algo.upper()}",
        "",
        f"- Command: `{meta['command']}`",
        f"- Code: weit_rl {meta['code_version']}",
        f"- Hardware: {meta['hardware']}",
        f"- Wall time: {_wall(meta)}; {meta['run_seconds'] / 3600:.2f} h of training summed over the runs' "
        "recorded times (each run on one CPU thread)",
        f"- Grid: sizes {', '.join(f'{s} {parse_size(s)}' for s in sweep.sizes)}; inits {', '.join(sweep.inits)}; "
        f"seeds {', '.join(map(str, sweep.seeds))}; {sweep.steps:,} steps per run (profile {sweep.profile})",
        f"- Evaluation: at step 0, every {sweep.eval_freq:,} steps and at the end, {sweep.eval_episodes} "
        f"deterministic episode{'s' if sweep.eval_episodes > 1 else ''} each; a curve at step t is the last "
        "evaluation at or before t",
    ]
    if meta["expert_return"] is not None:
        lines.append(f"- Scores: return / expert's return ({meta['expert_return']:.1f}, from {meta['expert_source']}); "
                     "1.0 is the expert")
    else:
        lines.append(f"- Scores: **unnormalized** returns: {meta['expert_source']}")
    lines += [
        f"- Statistics: interquartile mean (IQM) over seeds with 95% stratified-bootstrap confidence intervals "
        f"(rliable, {meta['reps']} replications, seed {meta['stats_seed']}); AUC is the area under the learning "
        "curve divided by the steps: the mean score over training",
        f"- Verdict: {METHOD} wins (loses) when its 95% CI lies wholly above (below) the baseline's, or when the "
        f"95% CI of P({METHOD} > baseline) lies wholly above (below) 0.5; otherwise it ties. Primary metric: AUC",
    ]
    if meta["missing"]:
        lines.append(f"- **Missing runs** (not finished, left out): {', '.join(meta['missing'])}")
    lines += [f"- Note: {n}" for n in sweep.notes]
    lines += ["", "## Verdict per size", ""]
    lines += [_sentence(size, r["versus"]) for size, r in results.items()]
    lines += ["", "## Results", ""]
    for size, r in results.items():
        lines += [f"### {size} {parse_size(size)}", ""]
        b = r["budgets"]
        head = " | ".join(f"{unit} at {float(f):.0%} (step {v['step']:,})" for f, v in b.items())
        lines += [f"| init | runs | {head} | AUC |", "|---" * (3 + len(b)) + "|"]
        for init in r["runs"]:
            cells = " | ".join(_fmt(v["iqm"].get(init)) for v in b.values())
            lines.append(f"| {init} | {r['runs'][init]} | {cells} | {_fmt(r['auc'].get(init))} |")
        th = r["thresholds"]
        lines.append("")
        if "steps" in th:
            fr = list(th["levels"])
            lines += [f"Steps for the IQM curve to reach a fraction of scratch's progress from its step-0 return "
                      f"({th['scratch_start']:.1f}) to its final return ({th['scratch_final']:.1f}), raw returns; "
                      "ratio < 1 is faster than scratch:", "",
                      "| init | " + " | ".join(f"{float(f):.0%} ({th['levels'][f]:.1f})" for f in fr) + " | "
                      + " | ".join(f"ratio {float(f):.0%}" for f in fr) + " |",
                      "|---" * (1 + 2 * len(fr)) + "|"]
            for init, s in th["steps"].items():
                lines.append(f"| {init} | " + " | ".join(_steps(s[f]) for f in fr) + " | "
                             + " | ".join(_ratio(th["ratio"][init][f]) for f in fr) + " |")
        else:
            lines.append(f"Steps to threshold: {th['note']}.")
        if r["versus"]:
            lines += ["", f"| {METHOD} vs | P({METHOD} > it), AUC | verdict (AUC) | P({METHOD} > it), final | "
                          "verdict (final) |", "|---|---|---|---|---|"]
            for base, vs in r["versus"].items():
                lines.append(f"| {base} | {_fmt(vs['auc']['poi'], 2)} | {vs['auc']['verdict']} | "
                             f"{_fmt(vs['final']['poi'], 2)} | {vs['final']['verdict']} |")
        lines.append("")
    lines += ["## Figures", "",
              f"Learning curves (IQM {unit}, shaded 95% CI):", "", "![learning curves](learning_curves.png)", "",
              "Steps to reach 50/80/100% of scratch's final return (IQM curves; hatched: not reached):", "",
              "![steps to threshold](steps_to_threshold.png)", "",
              f"Performance profiles of the final {unit} (fraction of runs above τ, 95% CI):", "",
              "![performance profile](performance_profile.png)", ""]
    return "\n".join(lines)


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)  # never a half-written report


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items() if not str(k).startswith("_")}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (float, np.floating)):
        return None if math.isnan(obj) else float(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def write_report(sweep: Sweep, meta: dict[str, Any], reps: int = 2000, stats_seed: int = 0) -> Path:
    """Aggregate the finished runs into compare.md, compare.json and three PNGs under
    sweep.report_path; returns the Markdown file."""
    from weit_rl import plots, stats

    grid, curves, missing = load_curves(sweep)
    if not curves:
        raise UserError(f"no finished runs of this grid under {sweep.env_dir}: run the sweep first "
                        "(the same command without --report-only)")
    expert, source = expert_return(sweep)
    rng = np.random.default_rng(stats_seed)  # the one generator behind every interval
    results = analyse(sweep, grid, curves, expert, rng, reps)
    unit = "expert-normalized return" if expert is not None else "return"

    out = sweep.report_path
    out.mkdir(parents=True, exist_ok=True)
    plots.learning_curves(out / "learning_curves.png", grid, {s: r["_bands"] for s, r in results.items()},
                          f"IQM {unit}")
    steps = {s: {i: {float(f): v for f, v in by_f.items()} for i, by_f in r["thresholds"].get("steps", {}).items()}
             for s, r in results.items()}
    plots.threshold_bars(out / "steps_to_threshold.png", steps, sweep.steps)
    finals = np.concatenate([np.ravel(v) for r in results.values() for v in r["_final_scores"].values()])
    taus = np.linspace(min(0.0, finals.min()), max(finals.max(), 1e-9), 101)
    profiles = {s: stats.performance_profile(r["_final_scores"], taus, rng, reps) for s, r in results.items()}
    plots.performance_profiles(out / "performance_profile.png", taus, profiles, f"final {unit} (τ)")

    run_seconds = 0.0
    for cfg in sweep.configs():
        timing = _log_dir(Path(cfg.run_dir)) / f"{Path(cfg.run_dir).name}.json"
        if timing.exists():
            run_seconds += json.loads(timing.read_text())["seconds"]
    meta = dict(meta, expert_return=expert, expert_source=source, missing=missing, reps=reps,
                stats_seed=stats_seed, run_seconds=run_seconds, code_version=code_version(),
                hardware=hardware(sweep.device))
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(sweep).items()}
    document = {"meta": meta, "sweep": config, "grid": grid.tolist(), "budgets": list(BUDGETS),
                "thresholds": list(THRESHOLDS), "unit": unit, "results": results}
    _write_text(out / "compare.json", json.dumps(_jsonable(document), indent=1) + "\n")
    _write_text(out / "compare.md", render(sweep, meta, results))
    return out / "compare.md"


def run_compare(args: argparse.Namespace, command: str) -> Path:
    """`weit-rl compare`: validate, train the unfinished runs, write the report."""
    start = time.time()
    sweep = resolve(args)
    trained: list[str] = []
    if not args.report_only:
        trained = run_sweep(sweep, command, args.backend, args.workers, args.address)
    workers: int | str = min(args.workers or available_cores(), max(len(trained), 1))
    if args.backend == "ray" and args.address:
        workers = "as many as the Ray cluster has CPUs"
    meta = {"command": command, "backend": args.backend, "workers": workers if trained else 0,
            "trained_now": len(trained),
            "wall_s": time.time() - start,  # validation and training; the report adds seconds
            "created": time.strftime("%Y-%m-%d %H:%M:%S %z")}
    path = write_report(sweep, meta, args.reps, args.stats_seed)
    print(f"report written: {path}")
    return path
