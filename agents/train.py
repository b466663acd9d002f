"""The training loop around SB3's `learn()`: a run folder (locked while a process trains
in it), periodic evaluation and checkpoints, and resume from the last checkpoint."""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from types import ModuleType

import numpy as np
import yaml
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import TrainFreq, TrainFrequencyUnit
from stable_baselines3.common.vec_env import VecNormalize

from weit_rl import UserError
from weit_rl.agents.aids import CriticWarmup, Retention
from weit_rl.agents.callbacks import CheckpointCallback, EvalCSVCallback, Progress, ProgressBar, truncate_evals
from weit_rl.agents.checkpoint import load_checkpoint, load_frozen, recover_checkpoint, save_checkpoint
from weit_rl.agents.config import RunConfig, changed_fields, resolve
from weit_rl.agents.diagnostics import Diagnostics
from weit_rl.agents.evaluation import make_eval_env
from weit_rl.agents.model import new_model
from weit_rl.agents.normalization import PreservingObsNormalization
from weit_rl.agents.run_state import restore_run_state
from weit_rl.artifacts.bank import check_compatible, load_bank, read_manifest
from weit_rl.artifacts.provenance import code_version
from weit_rl.numerics import kernels
from weit_rl.policies.sb3 import activation_name, as_policy, load_model, norm_obs_rms, space_size
from weit_rl.policies.teacher import teacher_obs_stats, teacher_policy

fcntl: ModuleType | None
try:
    import fcntl
except ImportError:  # Windows: no flock, run folders go unguarded
    fcntl = None


def train(cfg: RunConfig, command: str | None = None, callbacks: list[BaseCallback] | None = None) -> Path:
    """Train (or resume) one run in cfg.run_dir; returns the folder. `callbacks` are added
    to the run's own (evaluation, checkpoints, training aids).

    The model is built (and initialized, which validates banks and experts) before
    anything is written in the folder, so bad input leaves nothing behind."""
    cfg = resolve(cfg)  # from Python as from the command line
    assert cfg.run_dir is not None  # set above
    run_dir = Path(cfg.run_dir)
    with run_lock(run_dir):
        return _train(cfg, run_dir, command, callbacks)


def _train(cfg: RunConfig, run_dir: Path, command: str | None, callbacks: list[BaseCallback] | None) -> Path:
    ckpt_dir = run_dir / "checkpoint"
    check_same_run(cfg, run_dir)
    if (run_dir / "model.zip").exists():
        print(f"{run_dir} is complete (model.zip exists); nothing to do", file=sys.stderr)
        return run_dir
    started = time.perf_counter()  # the run's wall clock (evaluations.csv) counts initialization too
    recover_checkpoint(ckpt_dir)
    resumed = ckpt_dir.exists()
    if resumed:
        model = load_checkpoint(cfg, ckpt_dir)
        truncate_evals(run_dir / "evaluations.csv", model.num_timesteps)
        print(f"resuming {run_dir} from step {model.num_timesteps}", file=sys.stderr)
    else:
        model = new_model(cfg)
    aids = training_aids(cfg, run_dir, model.policy)  # before anything is written: a bad expert fails here
    chunk, total = planned_steps(model, cfg.steps)
    uninterrupted = -(-cfg.steps // chunk) * chunk
    if total != cfg.steps or total != uninterrupted:
        line = f"{cfg.algo.upper()} trains whole rollouts of {chunk:,} steps: {total:,} steps (asked for {cfg.steps:,})"
        if total != uninterrupted:  # docs/protocol.md, Resume: its rollouts now end at other steps
            line += f"; {uninterrupted:,} before Ctrl-C stopped it within a rollout, at step {model.num_timesteps:,}"
        print(line, flush=True)
    progress = Progress(total, reference_returns(cfg.bank))
    if not ckpt_dir.exists():
        if (run_dir / "config.yaml").exists():
            print(
                f"restarting {run_dir} from step 0: it was stopped before its first checkpoint (every "
                f"{cfg.checkpoint_freq} steps); its earlier evaluations and TensorBoard logs are dropped",
                file=sys.stderr,
            )
        # A run killed before its first checkpoint restarts from step 0: drop its old logs.
        (run_dir / "evaluations.csv").unlink(missing_ok=True)
        shutil.rmtree(run_dir / "tb", ignore_errors=True)
        run_dir.mkdir(parents=True, exist_ok=True)
        # the commit that trained it, and the kernels it computed with (weit_rl.numerics)
        saved = asdict(cfg) | {"code_version": code_version(), "kernels": kernels()}
        (run_dir / "config.yaml").write_text(yaml.safe_dump(saved, sort_keys=False))
        (run_dir / "command.txt").write_text((command or " ".join(sys.argv)) + "\n")
    model.tensorboard_log = str(run_dir / "tb")
    train_env = model.get_env()
    assert train_env is not None  # the model's own, made or loaded with it
    eval_env = make_eval_env(cfg, train_env)
    streams = restore_run_state(ckpt_dir, model, eval_env) if resumed else None
    if resumed and streams is None:
        print(
            f"{ckpt_dir} holds no run state (saved by Ctrl-C within a rollout, or by an older weit_rl): "
            "the run goes on with new episodes, not as the uninterrupted run would",
            file=sys.stderr,
        )
    initial = run_dir / "initial_policy.pt" if cfg.pretrain == "none" else None  # constrained: no stock copy
    diagnostics = Diagnostics(run_dir / "diagnostics.csv", initial)
    frozen: dict[str, Diagnostics | Retention] = {"initial": diagnostics}
    retention = next((aid for aid in aids if isinstance(aid, Retention)), None)
    if retention is not None:
        frozen["teacher"] = retention
    if resumed:
        kept = load_frozen(ckpt_dir)
        for name, callback in frozen.items():
            callback.resumed = kept.get(name)
    all_callbacks = CallbackList(
        [
            # first: it reads the last update's logged losses, which an evaluation's log dump clears
            diagnostics,
            EvalCSVCallback(
                eval_env,
                run_dir / "evaluations.csv",
                cfg.eval_freq,
                cfg.eval_episodes,
                best_dir=run_dir / "best" if cfg.keep_best else None,
                stop_return=cfg.stop_return,
                started=started,
                progress=progress,
            ),
            *aids,
            *(callbacks or []),
            *([ProgressBar(total)] if cfg.progress_bar else []),
            CheckpointCallback(ckpt_dir, cfg.checkpoint_freq, eval_env, streams, frozen),  # last: see its docstring
        ]
    )
    remaining = max(cfg.steps - model.num_timesteps, 0)
    try:
        model.learn(
            remaining,
            callback=all_callbacks,
            tb_log_name="run",
            reset_num_timesteps=False,
        )
    except KeyboardInterrupt:
        save_checkpoint(model, ckpt_dir)  # Ctrl-C loses nothing: the same command resumes here
        raise
    _save_final(model, run_dir)
    shutil.rmtree(ckpt_dir, ignore_errors=True)
    progress.summary(run_dir, cfg.keep_best)
    return run_dir


@contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on the run folder (created if need be) while a process trains in
    it: a second process would write the same checkpoints and evaluation rows. flock on the
    folder itself leaves no lock file behind, and the kernel releases it when the process
    dies, so a killed run resumes. Folders it created are removed if they are still empty
    when the run fails (bad input leaves nothing behind)."""
    created = [p for p in (run_dir, *run_dir.parents) if not p.exists()]
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(
            f"cannot create the run folder {run_dir} ({err.strerror}): pass a --run-dir you can write in"
        ) from None
    fd = os.open(run_dir, os.O_RDONLY)
    try:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise UserError(
                    f"{run_dir} is in use: another process is training in it; wait for it to end, "
                    "or train into another --run-dir"
                ) from None
            except OSError as err:  # a file system without flock (some NFS mounts)
                print(f"note: cannot lock {run_dir} ({err.strerror}): do not start a second run in it", file=sys.stderr)
        try:
            yield
        except BaseException:
            for folder in created:
                try:
                    folder.rmdir()
                except OSError:  # not empty: the run wrote something
                    break
            raise
    finally:
        os.close(fd)


def planned_steps(model: BaseAlgorithm, steps: int) -> tuple[int, int]:
    """(chunk, total): SB3 trains whole chunks (PPO's rollouts of n_steps x n_envs, SAC's
    train_freq x n_envs), so the run ends at the first chunk boundary at or past `steps`."""
    if isinstance(model, OnPolicyAlgorithm):
        chunk = model.n_steps
    else:
        assert isinstance(model, OffPolicyAlgorithm) and isinstance(model.train_freq, TrainFreq)  # made by _setup_model
        chunk = model.train_freq.frequency if model.train_freq.unit == TrainFrequencyUnit.STEP else 1
    chunk *= model.n_envs
    start = model.num_timesteps
    return chunk, start + -(-max(steps - start, 0) // chunk) * chunk


def reference_returns(bank: str | None) -> tuple[float, float] | None:
    """(random, expert) returns from the bank's manifest, for normalized scores; None without them."""
    if not bank or not Path(bank).exists():
        return None
    manifest = read_manifest(bank)
    random, expert = manifest.get("random_return"), (manifest.get("expert") or {}).get("eval_return_mean")
    if random is None or expert is None or expert == random:
        return None
    return float(random), float(expert)


def check_same_run(cfg: RunConfig, run_dir: Path) -> None:
    """A finished or checkpointed run continues only under the arguments it was started with
    (FREE_FIELDS aside; keep_best keeps the value the run started with)."""
    saved_file = run_dir / "config.yaml"
    if not saved_file.exists():
        return
    saved = yaml.safe_load(saved_file.read_text()) or {}
    diff = changed_fields(cfg, saved)
    cfg.keep_best = bool(saved.get("keep_best", False))
    if diff:
        state = "finished" if (run_dir / "model.zip").exists() else "started"
        raise UserError(
            f"{run_dir} holds a run {state} with other arguments ({'; '.join(diff)}): rerun with the "
            f"arguments in {saved_file}, or start a fresh run with a new --run-dir (or delete {run_dir})"
        )


def training_aids(cfg: RunConfig, run_dir: Path, policy: BasePolicy) -> list[BaseCallback]:
    """The run's training-time aids (agents/aids.py); the retention teacher is saved in the
    run folder so that a resumed run keeps it."""
    aids: list[BaseCallback] = []
    if cfg.obs_update == "preserve":
        aids.append(PreservingObsNormalization())
    if cfg.warmup_steps:
        aids.append(CriticWarmup(cfg.warmup_steps))
    if cfg.retention:
        expert, stats = None, None
        if cfg.retention_teacher == "expert":
            if not cfg.expert:
                raise UserError("retention_teacher 'expert' needs the expert: pass --expert PATH (EXPERT=PATH)")
            model, norm = load_model(cfg.expert, cfg.algo)
            expert = model.policy
            if norm is not None:
                rms = norm_obs_rms(norm)
                stats = (rms.mean.copy(), np.sqrt(rms.var + norm.epsilon))
        elif cfg.retention_teacher == "bank":
            if not cfg.bank:
                raise UserError("retention_teacher 'bank' needs a template bank: pass --bank PATH (BANK=PATH)")
            bank = load_bank(cfg.bank)
            check_compatible(
                bank,
                cfg.bank,
                cfg.algo,
                space_size(policy.observation_space),
                space_size(policy.action_space),
                activation_name(as_policy(policy)),
                cfg.env,
            )
            expert, stats = teacher_policy(bank, policy), teacher_obs_stats(bank)
        held = run_dir / "evaluations.csv" if cfg.retention_schedule == "progress" else None
        teacher = run_dir / "teacher.pt"
        aids.append(
            Retention(cfg.retention, cfg.retention_steps, teacher, expert, stats, cfg.retention_means_only, held)
        )
    return aids


def _save_final(model: BaseAlgorithm, run_dir: Path) -> None:
    """model.zip is written last and atomically: its presence marks a finished run."""
    env = model.get_env()
    if isinstance(env, VecNormalize):
        env.save(str(run_dir / "vecnormalize.pkl"))
    model.save(run_dir / "model.tmp.zip")
    os.replace(run_dir / "model.tmp.zip", run_dir / "model.zip")
