"""`weit-rl` command line: expert, templates, train, eval, enjoy, list, info, compare, study."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import sys
import types
import typing
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any

import yaml

# Only what builds the parser and answers `list` and `info`: no torch, SB3 or matplotlib
# (tests/test_startup.py). Each command imports what it runs.
from weit_rl import UserError
from weit_rl.agents.config import GROUPS, LOST, RunConfig, default_run_dir
from weit_rl.artifacts.bank_file import is_safetensors, verify_bank
from weit_rl.artifacts.experts import (
    bank_path,
    describe_pretraining,
    describe_return,
    home,
    read_expert_manifest,
    shipped,
)
from weit_rl.compare.options import add_arguments
from weit_rl.config import ALGOS, canonical_size, check_algo, check_seed, parse_overrides, parse_size
from weit_rl.envs import TASKS, quiet_mujoco, resolve_task, short_name
from weit_rl.numerics import pin_kernels
from weit_rl.studies.definition import add_study_arguments

# Commands that answer from files alone: main loads neither torch nor MuJoCo for them
LIGHT_COMMANDS = ("list", "info")


def _command() -> str:
    return "weit-rl " + shlex.join(sys.argv[1:])


def cmd_expert(a: argparse.Namespace) -> None:
    from weit_rl.agents.expert import train_expert

    env_id, algo = resolve_task(a.env), check_algo(a.algo)
    if a.seed is not None:
        check_seed(a.seed)
    manifest = train_expert(
        env_id,
        algo,
        None if a.seed is None else [a.seed],
        a.steps,
        a.device,
        Path(a.out) if a.out else None,
        _command(),
        progress_bar=not a.no_progress,
        pretrain=a.pretrain,
        replace=a.replace,
    )
    if manifest is None:
        print(f"candidate seed {a.seed} done; the expert ships once every recipe seed is trained")
        return
    ev = manifest["evaluation"]
    print(
        f"expert {short_name(env_id)}/{algo}: seed {manifest['seed']} kept, return {ev['mean']:.1f} "
        f"(median {ev['median']:.1f}, min {ev['min']:.1f}) over {ev['episodes']} episodes"
    )


def cmd_templates(a: argparse.Namespace) -> None:
    from weit_rl.artifacts.build_bank import build_bank
    from weit_rl.artifacts.shared_templates import build_shared_banks

    check_seed(a.seed)
    if a.shared or a.hidden_from:
        if a.shared and a.env:
            raise UserError("pass the tasks either as --shared TASKS or as --env TASK, not both")
        if not a.out_dir or a.out:
            raise UserError("--shared and --hidden-from write one bank per task: pass --out-dir DIR (not --out)")
        tasks = a.shared.split(",") if a.shared else [a.env] if a.env else []
        if not tasks:
            raise UserError("--hidden-from needs the held-out task: pass --env TASK")
        paths = build_shared_banks(
            tasks,
            a.algo,
            a.out_dir,
            a.expert.split(",") if a.expert else None,
            samples=a.samples,
            calib=a.calib,
            steps=a.steps,
            n_templates=a.templates,
            block=a.block,
            seed=a.seed,
            command=_command(),
            hidden_from=a.hidden_from,
            replace=a.replace,
        )
        print("\n".join(f"bank written: {p}" for p in paths))
        return
    if not a.env or a.out_dir:
        raise UserError("pass --env TASK (and --out PATH), or --shared TASKS --out-dir DIR")
    path = build_bank(
        a.expert,
        a.env,
        a.algo,
        a.out,
        samples=a.samples,
        calib=a.calib,
        steps=a.steps,
        n_templates=a.templates,
        block=a.block,
        seed=a.seed,
        command=_command(),
        replace=a.replace,
    )
    print(f"bank written: {path}")


def cmd_train(a: argparse.Namespace) -> None:
    from weit_rl.agents import train

    cfg = RunConfig(
        **{f.name: getattr(a, f.name) for f in fields(RunConfig) if f.name in vars(a)},
        hyperparam_overrides=parse_overrides(a.overrides),
    )
    cfg.run_dir = cfg.run_dir or default_run_dir(cfg)  # agents.train resolves the rest (agents/config.py resolve)
    check_run_dir(cfg.run_dir)
    cfg.size = saved_size(canonical_size(cfg.size), Path(cfg.run_dir))
    out = train(cfg, _command())
    print(f"run written: {out}")


def check_run_dir(run_dir: str) -> None:
    """train creates and locks the run folder: a file in its way, or a folder it cannot write
    in, must end as one clear line before anything starts."""
    path = Path(run_dir)
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not existing.is_dir():
        raise UserError(
            f"--run-dir {run_dir}: {existing} is a file, not a folder: pass a folder path, such as "
            "runs/<Env>/<name> (RUN_DIR= with make)"
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"--run-dir {run_dir}: {existing} is not writable: pass a folder you can write in")


def saved_size(size: str, run_dir: Path) -> str:
    """`size` as the run's config.yaml spells it, where that names the same network: a run
    started under another spelling (before sizes were made canonical) resumes, not refused."""
    saved_file = run_dir / "config.yaml"
    saved = (yaml.safe_load(saved_file.read_text()) or {}).get("size") if saved_file.is_file() else None
    try:
        return saved if isinstance(saved, str) and parse_size(saved) == parse_size(size) else size
    except UserError:  # a spelling this version no longer reads: train reports the difference
        return size


def cmd_eval(a: argparse.Namespace) -> None:
    from weit_rl.agents.evaluation import evaluate_saved, saved_task

    env_id, algo = saved_task(a.path, a.env, a.algo)
    returns = evaluate_saved(a.path, env_id, algo, a.episodes, a.seed)
    mean = sum(returns) / len(returns)
    if a.json:
        print(json.dumps({"env": env_id, "algo": algo, "mean_return": mean, "returns": returns}))
        return
    spread = (sum((r - mean) ** 2 for r in returns) / len(returns)) ** 0.5
    print(
        f"{a.path}: {short_name(env_id)} {algo.upper()}, mean return {mean:,.1f} ± {spread:,.1f} over "
        f"{len(returns)} deterministic episodes (min {min(returns):,.1f}, max {max(returns):,.1f})"
    )


def cmd_diagnose(a: argparse.Namespace) -> None:
    from weit_rl.agents.diagnostics import EVERY, plot, table
    from weit_rl.agents.tb_logs import has_logs, log_table

    runs = [Path(r) for r in a.runs]
    recorded = [r for r in runs if (r / "diagnostics.csv").is_file()]
    missing = [str(r) for r in runs if r not in recorded and not has_logs(r)]
    if missing:
        raise UserError(
            f"no diagnostics.csv nor TensorBoard logs (tb/) in {', '.join(missing)}: pass run folders "
            "(runs/<Env>/<run>, or a study's reports/<study>/runs/<Env>/<run>)"
        )
    if a.every < EVERY or a.every % EVERY:
        raise UserError(f"--every must be a multiple of {EVERY:,} (the rows' spacing), got {a.every}")
    for run in runs:
        if run in recorded:
            print(table(run, a.every))
        if has_logs(run):  # what SB3 logged: SAC's entropy and Q drift, PPO's update sizes
            print(log_table(run, a.every))
    if recorded:  # the plot draws diagnostics.csv
        Path(a.plot).parent.mkdir(parents=True, exist_ok=True)
        print(f"plot written: {plot(recorded, Path(a.plot))}")


def cmd_enjoy(a: argparse.Namespace) -> None:
    from weit_rl.agents.enjoy import play
    from weit_rl.agents.evaluation import saved_task

    env_id, algo = saved_task(a.path, a.env, a.algo)
    for i, ep in enumerate(play(a.path, env_id, algo, a.episodes, a.seed, a.video, a.max_steps), 1):
        print(f"episode {i}: return {ep.ret:.1f} over {ep.steps} steps")
    if a.video:
        print(f"video written: {a.video}")


def cmd_list(a: argparse.Namespace) -> None:
    rows = shipped()
    if not rows:
        print(
            f"no banks or experts under {home().resolve()} (banks/, experts/): make them with `make expert` "
            "and `make templates`, or set WEIT_RL_HOME"
        )
        return
    header = ("kind", "task", "algo", "network", "made by", "MB", "return", "path")
    table = [
        (
            r["kind"],
            str(r["task"]),
            str(r["algo"]),
            r["network"],
            r["scheme"],
            "-" if r["mb"] is None else f"{r['mb']:.1f}",
            r["return"],
            str(r["path"]),
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in [header, *table]) for i in range(len(header) - 1)]
    for row in [header, *table]:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)) + "  " + row[-1])


def cmd_info(a: argparse.Namespace) -> None:
    path = Path(a.path)
    if path.suffix == ".json":  # a manifest file stands for what it describes: an expert folder, or its bank
        path = path.parent if path.name == "manifest.json" else path.with_suffix(".safetensors")
    if path.is_file() and not is_safetensors(path):
        raise UserError(
            f"{path} is neither a template bank (.safetensors) nor an expert folder: pass one of them "
            "(`weit-rl list` shows the shipped ones)"
        )
    # What is shown must be what `train` accepts: the bank's checksums are verified (a second or so)
    manifest = read_expert_manifest(path) if path.is_dir() else verify_bank(path)
    if not manifest:
        raise UserError(f"{path} has no manifest.json: pass a bank (.safetensors) or a shipped expert folder")
    if not a.json:
        print("\n".join(_summary(path, manifest)) + "\n")
    print(json.dumps(manifest, indent=2))


def _summary(path: Path, m: dict) -> list[str]:
    """A few human lines about a bank or an expert manifest."""
    if path.is_dir():
        return [
            f"expert {path}: {m.get('task')} {m.get('algo')}, {'x'.join(map(str, m.get('net_arch', [])))}, "
            f"seed {m.get('seed')}, {m.get('steps')} steps, {describe_pretraining(m)}",
            f"  return {describe_return(m, returns=True)}",
            f"  made by: {m.get('command')}",
        ]
    expert = m.get("expert") or {}
    return [
        f"bank {path} ({path.stat().st_size / 1e6:.1f} MB): {m.get('task')} {m.get('algo')}, observation/action "
        f"{m.get('obs_dim')}/{m.get('act_dim')}, {m.get('activation')}",
        f"  {describe_pretraining(m)}: {m.get('n_templates')} templates of {m.get('block')}x{m.get('block')} per "
        f"role, {m.get('n_critics')} critic(s), calibration {m.get('calib')} of {m.get('samples')} transitions",
        f"  expert {'x'.join(map(str, expert.get('net_arch') or []))} ({expert.get('path')}), "
        f"return {describe_return(expert, returns=True)}",
        f"  made by: {m.get('command')} (code {m.get('code_version')}, {m.get('created')})",
        f"  checksum verified (sha256 {m['tensor_sha256'][:16]}...): complete and unedited",  # cmd_info's verify_bank
    ]


def cmd_compare(a: argparse.Namespace) -> None:
    from weit_rl.compare import run_compare
    from weit_rl.compare.summary import terminal_summary

    for report in run_compare(a, _command()):
        print("\n" + terminal_summary(report), flush=True)  # the results here, not only in the report


def cmd_study(a: argparse.Namespace) -> None:
    from weit_rl.studies import run_study

    run_study(a.name, a.call, a.env, a.workers, a.summary_only)


def _scalar(hint: Any) -> type | None:
    """str/int/float/bool for a field typed with one of them (or `X | None`), else None."""
    args = [t for t in typing.get_args(hint) if t is not type(None)] if isinstance(hint, types.UnionType) else [hint]
    if len(args) == 1 and args[0] in (str, int, float, bool):
        return None if args[0] is bool and len(typing.get_args(hint)) > 1 else args[0]
    return None


def add_run_options(p: argparse.ArgumentParser, helps: dict[str, str] | None = None) -> None:
    """One option per RunConfig field, with the dataclass's default and metadata help (or
    `helps`' text for it): the command line and the library cannot drift apart. Fields with
    metadata {"cli": False} or types other than str/int/float/bool (lists, dicts) are left out."""
    hints = typing.get_type_hints(RunConfig)
    titled = {title: p if title == LOST else p.add_argument_group(title) for title in GROUPS}
    groups = {name: titled[title] for title, names in GROUPS.items() for name in names}
    hidden = set(GROUPS[LOST])
    for f in fields(RunConfig):
        kind = _scalar(hints[f.name])
        if f.metadata.get("cli") is False or kind is None:
            continue
        g = groups[f.name]
        required = f.default is MISSING and f.default_factory is MISSING
        default = None if required else f.default
        text = (helps or {}).get(f.name) or f.metadata.get("help", f"RunConfig.{f.name}")
        if f.name in hidden:  # accepted, not listed (LOST)
            text = argparse.SUPPRESS
        if kind is bool:  # a switch that flips the default
            flag = f.metadata.get("flag", f"--{'no-' if default else ''}{f.name.replace('_', '-')}")
            g.add_argument(flag, dest=f.name, action="store_false" if default else "store_true", help=text)
            continue
        flag = f.metadata.get("flag", "--" + f.name.replace("_", "-"))
        shown = "" if default is None or text == argparse.SUPPRESS else f" (default: {default})"
        g.add_argument(flag, dest=f.name, type=kind, default=default, required=required, help=text + shown)


def _task_help() -> str:
    """--env's help: the tasks, and which have a bank here (a default run needs one)."""
    ready = [t for t, env_id in TASKS.items() if any(bank_path(env_id, algo).exists() for algo in ALGOS)]
    rest = [t for t in TASKS if t not in ready]
    text = f"task: {', '.join(TASKS)} (or their -v5 ids)"
    if not ready:
        return f"{text}; no banks here yet: make them with `make expert` and `make templates` (or set WEIT_RL_HOME)"
    if rest:
        text += (
            f"; banks here (`weit-rl list`) for {', '.join(ready)}; for {', '.join(rest)}, run `make expert` "
            "and `make templates` first"
        )
    return text


def _add_saved_run_options(p: argparse.ArgumentParser, episodes: int, what: str) -> None:
    p.add_argument("path", help="run folder, expert folder or model.zip (vecnormalize.pkl beside it is used)")
    p.add_argument("--env", default=None, help="task, where the run has no config.yaml")
    p.add_argument("--algo", default=None, help="ppo or sac, where the run has no config.yaml")
    p.add_argument("--episodes", type=int, default=episodes, help=f"{what} (default: {episodes})")
    p.add_argument("--seed", type=int, default=0, help="seed of the first episode (default: 0)")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="weit-rl", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)

    e = sub.add_parser("expert", help="train a large expert from configs/experts.yaml (resumes if interrupted)")
    e.add_argument("--env", required=True, help=f"task: {', '.join(TASKS)} (or their -v5 ids)")
    e.add_argument("--algo", default="ppo", help="ppo or sac (default: ppo)")
    e.add_argument("--steps", type=int, default=None, help="override the recipe's step budget")
    e.add_argument(
        "--seed", type=int, default=None, help="train this candidate seed only (default: the recipe's seeds)"
    )
    e.add_argument("--device", default="auto", help="auto, cpu or cuda[:N] (default: auto)")
    e.add_argument("--out", default=None, help="folder (default experts/<Env>-<algo>[-<pretrain>])")
    e.add_argument(
        "--pretrain",
        default="none",
        help="constraint-based pre-training: none, hard or soft "
        "(configs/experts.yaml pretraining; the expert goes to experts/<Env>-<algo>-<pretrain>)",
    )
    e.add_argument(
        "--replace",
        action="store_true",
        help="ship the new best candidate over an expert the folder already ships (default: keep the shipped one)",
    )
    e.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    e.set_defaults(fn=cmd_expert)

    t = sub.add_parser("templates", help="learn a template bank from an expert")
    t.add_argument("--env", default=None, help="task (required unless --shared)")
    t.add_argument("--algo", default="ppo", help="the expert's algorithm: ppo or sac (default: ppo)")
    t.add_argument(
        "--expert",
        default=None,
        help="expert folder or model.zip (default: the shipped expert); "
        "with --shared, one per task, comma-separated in the same order",
    )
    t.add_argument(
        "--out",
        default=None,
        help="bank file (default banks/<Env>-<algo>.safetensors, or "
        "banks/<Env>-<algo>-<scheme>.safetensors for a constrained expert)",
    )
    t.add_argument(
        "--shared",
        default=None,
        metavar="TASKS",
        help="learn templates across these tasks "
        "(comma-separated, e.g. HalfCheetah,Hopper,Walker2d,Ant) with the hidden templates shared; "
        "one bank per task in --out-dir",
    )
    t.add_argument(
        "--hidden-from",
        default=None,
        metavar="BANK",
        help="held-out task: keep BANK's hidden "
        "templates frozen and learn only the input/output templates and scalers of --env, on its "
        "calibration data alone (--calib transitions)",
    )
    t.add_argument(
        "--out-dir",
        default=None,
        help="folder for the banks of --shared or --hidden-from (<Env>-<algo>.safetensors each)",
    )
    t.add_argument("--replace", action="store_true", help="replace an existing bank file (default: refuse)")
    t.add_argument("--samples", type=int, default=50_000, help="expert transitions to distill from")
    t.add_argument("--calib", type=int, default=5_000, help="transitions stored in the bank for scaler fitting")
    t.add_argument("--steps", type=int, default=3_000, help="template-learning optimizer steps")
    t.add_argument(
        "--templates", type=int, default=None, help="templates per role (default from configs/templates.yaml)"
    )
    t.add_argument("--block", type=int, default=None, help="template block size (default from configs/templates.yaml)")
    t.add_argument("--seed", type=int, default=0, help="seed of the expert's episodes and of learning (default: 0)")
    t.set_defaults(fn=cmd_templates)

    r = sub.add_parser(
        "train",
        help="train a policy of any size, initialized from a bank",
        description="Train (or resume) one run; every option but --hyperparams is a field of "
        "weit_rl.agents.RunConfig, with its default.",
    )
    add_run_options(r, helps={"env": _task_help()})
    r.add_argument(
        "--hyperparams",
        dest="overrides",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="override configs/<algo>.yaml, as rl-zoo3 does: n_steps=1024 learning_rate=1e-4 "
        "policy_kwargs.log_std_init=-1 (values are YAML; recorded in config.yaml)",
    )
    r.set_defaults(fn=cmd_train)

    v = sub.add_parser("eval", help="evaluate a saved run or expert (task and algorithm from its config.yaml)")
    _add_saved_run_options(v, episodes=10, what="deterministic episodes")
    v.add_argument("--json", action="store_true", help="print the task, algorithm and every return as JSON")
    v.set_defaults(fn=cmd_eval)

    d = sub.add_parser(
        "diagnose",
        help="what runs' learners did (diagnostics.csv; SAC's entropy and Q drift, PPO's update sizes from tb/ "
        "where the run kept it) beside their evaluations",
    )
    d.add_argument(
        "runs", nargs="+", metavar="RUN", help="run folders holding evaluations.csv and diagnostics.csv or tb/"
    )
    d.add_argument("--every", type=int, default=10_000, help="table rows every this many steps (default 10000)")
    d.add_argument(
        "--plot",
        default="runs/diagnose.png",
        help="the plot to write (default runs/diagnose.png: beside the runs, never among tracked files)",
    )
    d.set_defaults(fn=cmd_diagnose)

    y = sub.add_parser("enjoy", help="play a saved run or expert in a window, or record it with --video")
    _add_saved_run_options(y, episodes=1, what="episodes to play")
    y.add_argument(
        "--video",
        default=None,
        metavar="FILE.mp4",
        help="record to this file headlessly (MuJoCo offscreen rendering, MUJOCO_GL=egl by default)",
    )
    y.add_argument("--max-steps", type=int, default=None, help="stop each episode after this many steps")
    y.set_defaults(fn=cmd_enjoy)

    ls = sub.add_parser("list", help="the shipped banks and experts, with their tasks, returns and sizes")
    ls.set_defaults(fn=cmd_list)

    i = sub.add_parser("info", help="a bank's (or an expert folder's) manifest, after a short summary")
    i.add_argument("path", help="bank .safetensors file or expert folder")
    i.add_argument("--json", action="store_true", help="print the JSON manifest alone")
    i.set_defaults(fn=cmd_info)

    c = sub.add_parser("compare", help="sample-efficiency sweep over sizes x initializers x seeds")
    add_arguments(c)
    c.set_defaults(fn=cmd_compare)
    s = sub.add_parser("study", help="run a study defined in configs/studies/ (resumable), or rebuild its reports")
    add_study_arguments(s)
    s.set_defaults(fn=cmd_study)
    return p


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.cmd not in LIGHT_COMMANDS:
        # before torch chooses its kernels: same command, same run on any machine (by engine, when training)
        pin_kernels(args.engine if args.cmd == "train" else "stock")
        import torch

        # Small MLPs gain nothing from intra-op threads, and extra threads thrash when several
        # runs share the cores; WEIT_RL_THREADS overrides.
        torch.set_num_threads(int(os.environ.get("WEIT_RL_THREADS", "1")))
        if args.cmd != "enjoy":  # enjoy picks MuJoCo's OpenGL backend first, then quiets it
            quiet_mujoco()
    # A stop (SIGTERM, or SIGINT in a background job, where the shell ignores it) ends like
    # Ctrl-C: the training loop writes a checkpoint and the same command resumes there.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _interrupt)
    try:
        args.fn(args)
        sys.stdout.flush()  # inside the try: a reader that left shows here, not at exit
    except UserError as err:
        print(f"weit-rl: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("weit-rl: interrupted; run the same command again to resume from the last checkpoint", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader left (`weit-rl list | head -1`): stop quietly, as cat does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
