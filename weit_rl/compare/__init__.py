"""`weit-rl compare`: sample-efficiency studies over sizes x arms x seeds.

The files follow the data: sweep (define and validate; arms: --set, --arm, the
comparisons; sources: the bank and expert the arms need), runners (train the missing runs
in scratch folders, record finished ones in the study folder), results (read the
recorded runs, compute the numbers), report (Markdown, JSON, figures). The study folder,
reports/<study>/, holds the raw data (study.py) and is all a report needs."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from weit_rl import stats
from weit_rl.compare import study
from weit_rl.compare.report import write_report
from weit_rl.compare.runners import (
    available_cores,
    run_local,
    run_ray,
    run_sweep,
    train_one,
)
from weit_rl.compare.sweep import PROFILES, Sweep, add_arguments, resolve

__all__ = ["PROFILES", "Sweep", "add_arguments", "available_cores", "resolve", "run_compare", "run_local",
           "run_ray", "run_sweep", "train_one", "write_report"]


def run_compare(args: argparse.Namespace, command: str) -> Path:
    """`weit-rl compare`: validate, train the runs the study lacks, write the report."""
    start = time.time()
    sweep = resolve(args)
    trained: list[str] = []
    if not args.report_only:
        trained = run_sweep(sweep, command, args.backend, args.workers, args.address)
        sweep.adopt(study.read_study(sweep.runs_root))  # the report covers every sweep of the study
    workers: int | str = min(args.workers or available_cores(), max(len(trained), 1)) if trained else 0
    if trained and args.backend == "ray" and args.address:
        workers = "as many as the Ray cluster has CPUs"
    meta = {"command": command, "backend": args.backend, "workers": workers, "trained_now": len(trained),
            "wall_s": time.time() - start,  # validation and training; the report adds seconds
            "created": time.strftime("%Y-%m-%d %H:%M:%S %z")}
    path = write_report(sweep, meta, args.reps or stats.REPS, args.stats_seed)
    print(f"report written: {path}")
    return path
