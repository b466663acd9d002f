"""`weit-rl compare`'s options and profiles: plain argparse, so that `weit-rl compare --help`
(and the command line's parser) loads nothing of torch or SB3. sweep.resolve reads them."""

from __future__ import annotations

import argparse
from typing import Any

from weit_rl.arms import ARMS, default_sweep

# docs/protocol.md's evaluation for headline studies: at least 10 deterministic episodes,
# every 10k steps (PPO) or 5k (SAC).
PROTOCOL_EPISODES = 10
PROTOCOL_EVAL_FREQ = {"ppo": 10_000, "sac": 5_000}

# Profiles fill every option not given on the command line. "quick" (make compare) is a
# demonstration that finishes in well under 20 minutes for HalfCheetah PPO on 2 CPU cores;
# "full" is the headline protocol (docs/protocol.md), checked by resolve.
PROFILES: dict[str, dict[str, Any]] = {
    "quick": dict(
        sizes="tiny,small",
        inits=",".join(default_sweep()),
        seeds=5,
        steps=20_480,
        evals=5,
        eval_episodes=5,
        checkpoint_freq=8_192,
        primary_size="small",
    ),
    "full": dict(
        sizes="tiny,small,medium,128x3",
        inits=",".join(default_sweep()),
        seeds=10,
        steps=300_000,
        eval_freq=PROTOCOL_EVAL_FREQ,
        eval_episodes=PROTOCOL_EPISODES,
        checkpoint_freq=50_000,
        primary_size="small",
    ),
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of `weit-rl compare`; those left unset come from --profile."""
    p.add_argument("--env", default=None, help="task (required unless --report-only names an existing --study)")
    p.add_argument(
        "--algo",
        default=None,
        help="ppo (default) or sac; with --report-only and no --env: rebuild "
        "the reports of this algorithm's parts only",
    )
    p.add_argument(
        "--profile",
        choices=sorted(PROFILES),
        default="quick",
        help="preset for every option below left unset (default quick; full: the headline protocol)",
    )
    p.add_argument(
        "--study",
        default=None,
        help="the study's folder under --report-dir (default: the profile's name), holding every task "
        "and algorithm side by side: its runs/<Env>/ decide which runs are done, so a sweep resumes "
        "there and a profile never overwrites another",
    )
    p.add_argument("--sizes", default=None, help="comma-separated sizes, e.g. tiny,small,128x3")
    p.add_argument(
        "--arms",
        dest="inits",
        default=None,
        help="comma-separated arms to run: registered arms (weit_rl/arms.py: " + ",".join(ARMS) + ") or --arm names",
    )
    p.add_argument(
        "--arm",
        action="append",
        default=None,
        metavar="NAME:KEY=VALUE,...",
        help="define an arm as RunConfig overrides on top of --set, e.g. weit_ft:init=weit,"
        "finetune_steps=300 (init= required unless NAME is an initializer; bank=PATH gives the arm a bank of its "
        "own, whose statistics then start it); repeatable",
    )
    p.add_argument(
        "--set",
        dest="settings",
        nargs="+",
        action="extend",
        default=None,
        metavar="KEY=VALUE",
        help="RunConfig overrides applied to every arm alike, e.g. obs_count=10000 retention=0.5 "
        "(values read as YAML); fixed when the study starts",
    )
    p.add_argument(
        "--primary",
        default=None,
        metavar="METHOD:BASELINE",
        help="the primary comparison on AUC at --primary-size (default weit:scratch); fixed when the study starts",
    )
    p.add_argument(
        "--candidates",
        default=None,
        help="comma-separated arms compared with every other arm at every size (secondary, Holm); "
        "default: the study's, else METHOD of --primary",
    )
    p.add_argument("--seeds", type=int, default=None, help="number of seeds per cell (seeds 0..N-1)")
    p.add_argument(
        "--first-seed",
        type=int,
        default=0,
        help="seeds FIRST..FIRST+N-1 instead of 0..N-1: a pilot or development runs on seeds no study uses",
    )
    p.add_argument("--steps", type=int, default=None, help="environment steps per run")
    p.add_argument("--eval-freq", type=int, default=None, help="steps between evaluations")
    p.add_argument("--eval-episodes", type=int, default=None, help="deterministic episodes per evaluation")
    p.add_argument(
        "--checkpoint-freq", type=int, default=None, help="steps between checkpoints of each run (default 50,000)"
    )
    p.add_argument(
        "--primary-size",
        default=None,
        help="size of the primary comparison (weit vs scratch, AUC); default the profile's (small) if "
        "in --sizes, else the first size. Fixed when the study starts",
    )
    p.add_argument("--bank", default=None, help="template bank for weit/distill (default: the shipped bank)")
    p.add_argument("--expert", default=None, help="expert for select (default: the shipped expert)")
    p.add_argument("--device", default="cpu", help="cpu (default: small MLPs train fastest there), cuda or auto")
    p.add_argument(
        "--engine",
        choices=("fast", "stock"),
        default=None,
        help="training code of every run of the part (weit_rl/policies/fast.py): default the part's own (stock for a "
        "part recorded before engines existed), else fast; fixed when the part starts",
    )
    p.add_argument(
        "--backend",
        choices=("local", "ray"),
        default="local",
        help="local: parallel processes on this machine; ray: tasks on a Ray cluster",
    )
    p.add_argument(
        "--address",
        default=None,
        help="Ray cluster address (e.g. auto or ray://host:10001; default: start Ray here). "
        "Workers must see --out-dir, the bank and the expert at the same paths",
    )
    p.add_argument("--workers", type=int, default=None, help="parallel runs (default: the available CPU cores)")
    p.add_argument("--out-dir", default="runs", help="scratch root: runs train in OUT_DIR/<study>/<Env>/<run>/")
    # A user's sweep records under runs/ like their training runs; the project's studies (weit-rl
    # study, configs/studies/) record into reports/, which ships: nothing writes there unasked.
    p.add_argument(
        "--report-dir",
        default="runs",
        help="the study folder is REPORT_DIR/<study>/ (default runs; the shipped studies are reports/<study>/)",
    )
    p.add_argument(
        "--report-only",
        action="store_true",
        help="rebuild the reports from the study folder alone (its runs/): of every part found, or only "
        "of --env (and --algo); train nothing. Grid options are ignored: the study defines the grid",
    )
    p.add_argument("--reps", type=int, default=None, help="bootstrap replications and permutations (default 10000)")
    p.add_argument("--stats-seed", type=int, default=0, help="seed of every bootstrap and permutation")
