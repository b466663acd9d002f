"""`weit-rl` command line: expert, templates, train, eval, info, compare."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

import torch

from weit_rl import UserError
from weit_rl.agents import RunConfig, evaluate_saved, train
from weit_rl.bank import read_manifest
from weit_rl.build_bank import build_bank
from weit_rl.compare import add_arguments, run_compare
from weit_rl.config import check_algo, size_name
from weit_rl.envs import resolve_task, short_name
from weit_rl.experts import default_bank, default_expert, train_expert
from weit_rl.init import INITIALIZERS, check_init


def _command() -> str:
    return "weit-rl " + shlex.join(sys.argv[1:])


def cmd_expert(a: argparse.Namespace) -> None:
    env_id, algo = resolve_task(a.env), check_algo(a.algo)
    manifest = train_expert(env_id, algo, None if a.seed is None else [a.seed], a.steps, a.device,
                            Path(a.out) if a.out else None, _command(), progress_bar=not a.no_progress)
    if manifest is None:
        print(f"candidate seed {a.seed} done; the expert ships once every recipe seed is trained")
        return
    ev = manifest["evaluation"]
    print(f"expert {short_name(env_id)}/{algo}: seed {manifest['seed']} kept, return {ev['mean']:.1f} "
          f"(median {ev['median']:.1f}, min {ev['min']:.1f}) over {ev['episodes']} episodes")


def cmd_templates(a: argparse.Namespace) -> None:
    path = build_bank(a.expert, a.env, a.algo, a.out, samples=a.samples, calib=a.calib, steps=a.steps,
                      n_templates=a.templates, block=a.block, seed=a.seed, command=_command())
    print(f"bank written: {path}")


def cmd_train(a: argparse.Namespace) -> None:
    env_id, algo, init = resolve_task(a.env), check_algo(a.algo), check_init(a.init)
    entry = INITIALIZERS[init]
    bank = a.bank or (default_bank(env_id, algo) if entry.needs_bank else None)
    expert = a.expert or (default_expert(env_id, algo) if entry.needs_expert else None)
    run_dir = a.run_dir or f"runs/{short_name(env_id)}/{algo}-{size_name(a.size)}-{init}-s{a.seed}"
    cfg = RunConfig(env=env_id, algo=algo, size=a.size, init=init, steps=a.steps, seed=a.seed, device=a.device,
                    bank=bank, expert=expert, run_dir=run_dir, eval_freq=a.eval_freq,
                    eval_episodes=a.eval_episodes, checkpoint_freq=a.checkpoint_freq, progress_bar=not a.no_progress)
    out = train(cfg, _command())
    print(f"run written: {out}")


def cmd_eval(a: argparse.Namespace) -> None:
    returns = evaluate_saved(a.path, a.env, a.algo, a.episodes, a.seed)
    print(json.dumps({"mean_return": sum(returns) / len(returns), "returns": returns}))


def cmd_info(a: argparse.Namespace) -> None:
    print(json.dumps(read_manifest(a.bank), indent=2))


def cmd_compare(a: argparse.Namespace) -> None:
    run_compare(a, _command())


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="weit-rl", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)

    e = sub.add_parser("expert", help="train a large expert from configs/experts.yaml (resumes if interrupted)")
    e.add_argument("--env", required=True)
    e.add_argument("--algo", default="ppo")
    e.add_argument("--steps", type=int, default=None, help="override the recipe's step budget")
    e.add_argument("--seed", type=int, default=None, help="train this candidate seed only (default: the recipe's seeds)")
    e.add_argument("--device", default="auto")
    e.add_argument("--out", default=None, help="folder (default experts/<Env>-<algo>)")
    e.add_argument("--no-progress", action="store_true")
    e.set_defaults(fn=cmd_expert)

    t = sub.add_parser("templates", help="learn a template bank from an expert")
    t.add_argument("--env", required=True)
    t.add_argument("--algo", default="ppo")
    t.add_argument("--expert", default=None, help="expert folder or model.zip (default: the shipped expert)")
    t.add_argument("--out", default=None, help="bank file (default banks/<Env>-<algo>.safetensors)")
    t.add_argument("--samples", type=int, default=50_000, help="expert transitions to distill from")
    t.add_argument("--calib", type=int, default=5_000, help="transitions stored in the bank for scaler fitting")
    t.add_argument("--steps", type=int, default=3_000, help="template-learning optimizer steps")
    t.add_argument("--templates", type=int, default=None, help="templates per role (default from configs/templates.yaml)")
    t.add_argument("--block", type=int, default=None, help="template block size (default from configs/templates.yaml)")
    t.add_argument("--seed", type=int, default=0)
    t.set_defaults(fn=cmd_templates)

    r = sub.add_parser("train", help="train a policy of any size, initialized from a bank")
    r.add_argument("--env", required=True)
    r.add_argument("--size", default="small")
    r.add_argument("--algo", default="ppo")
    r.add_argument("--init", default="weit")
    r.add_argument("--steps", type=int, default=100_000)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--device", default="auto")
    r.add_argument("--bank", default=None)
    r.add_argument("--expert", default=None)
    r.add_argument("--run-dir", default=None)
    r.add_argument("--eval-freq", type=int, default=10_000)
    r.add_argument("--eval-episodes", type=int, default=5)
    r.add_argument("--checkpoint-freq", type=int, default=25_000)
    r.add_argument("--no-progress", action="store_true")
    r.set_defaults(fn=cmd_train)

    v = sub.add_parser("eval", help="evaluate a saved model.zip (with its vecnormalize.pkl)")
    v.add_argument("path")
    v.add_argument("--env", required=True)
    v.add_argument("--algo", default="ppo")
    v.add_argument("--episodes", type=int, default=10)
    v.add_argument("--seed", type=int, default=0)
    v.set_defaults(fn=cmd_eval)

    i = sub.add_parser("info", help="print a bank's manifest")
    i.add_argument("bank")
    i.set_defaults(fn=cmd_info)

    c = sub.add_parser("compare", help="sample-efficiency sweep over sizes x initializers x seeds")
    add_arguments(c)
    c.set_defaults(fn=cmd_compare)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    # Small MLPs gain nothing from intra-op threads, and extra threads thrash when several
    # runs share the cores; WEIT_RL_THREADS overrides.
    torch.set_num_threads(int(os.environ.get("WEIT_RL_THREADS", "1")))
    try:
        args.fn(args)
    except UserError as err:
        print(f"weit-rl: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("weit-rl: interrupted; run the same command again to resume from the last checkpoint", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
