"""`weit-rl compare`: sample-efficiency studies over sizes x arms x seeds.

The files follow the data: sweep (define and validate; arms: --set, --arm, the
comparisons; sources: the bank and expert the arms need), runners (train the missing runs
in scratch folders, record finished ones in the study folder), results (read the
recorded runs, compute the numbers), report (Markdown, JSON, figures). The study folder,
reports/<study>/, holds the raw data (study.py) of every task and algorithm it studies, one
part per <Env>/<algo> side by side, each with its report; it is all a report needs."""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from weit_rl.lazy import lazy_exports

if TYPE_CHECKING:
    from weit_rl.compare.options import PROFILES, add_arguments
    from weit_rl.compare.report import write_report
    from weit_rl.compare.runners import available_cores, run_local, run_ray, run_sweep, train_one
    from weit_rl.compare.sweep import Sweep, resolve, resolve_parts

# name -> the submodule that defines it, imported on first use (PEP 562): the command line
# reads the options without loading torch, SB3 or matplotlib
_SOURCES = {
    "PROFILES": "options",
    "add_arguments": "options",
    "Sweep": "sweep",
    "resolve": "sweep",
    "resolve_parts": "sweep",
    "available_cores": "runners",
    "run_local": "runners",
    "run_ray": "runners",
    "run_sweep": "runners",
    "train_one": "runners",
    "write_report": "report",
}

__all__ = [
    "PROFILES",
    "Sweep",
    "add_arguments",
    "available_cores",
    "resolve",
    "resolve_parts",
    "run_compare",
    "run_local",
    "run_ray",
    "run_sweep",
    "train_one",
    "write_report",
]


__getattr__, __dir__ = lazy_exports(__name__, _SOURCES, __all__)


def run_compare(args: argparse.Namespace, command: str) -> list[Path]:
    """`weit-rl compare`: validate, train the runs the study's <Env>/<algo> part lacks,
    write its report; with --report-only, rebuild the report of every part selected
    (resolve_parts). Returns the Markdown reports written."""
    from weit_rl.compare import study
    from weit_rl.compare.runners import run_sweep
    from weit_rl.compare.sweep import resolve, resolve_parts

    start = time.time()
    if args.report_only:
        written = []
        for sweep in resolve_parts(args):
            if args.env is None and not any(map(study.is_done, sweep.study_file.parent.glob(f"{sweep.algo}-*"))):
                # a part started elsewhere whose first run has not landed: every other part is still rebuilt
                print(f"{sweep.part}: no run recorded yet in {sweep.study_file.parent}, no report", file=sys.stderr)
                continue
            written.append(_report(sweep, args, command, start, []))
        return written
    sweep = resolve(args)
    trained = run_sweep(sweep, command, args.backend, args.workers, args.address)
    d = study.read_study(sweep.study_file)  # the report covers every sweep of the part
    assert d is not None  # run_sweep has written it
    part = replace(
        sweep, sizes=d["sizes"], inits=d["inits"], seeds=d["seeds"], arms=study.arms_of(d), grid=study.grid_of(d)
    )
    return [_report(part, args, command, start, trained)]


def _report(sweep: Sweep, args: argparse.Namespace, command: str, start: float, trained: list[str]) -> Path:
    from weit_rl import stats
    from weit_rl.compare.report import write_report
    from weit_rl.compare.runners import available_cores

    workers: int | str = min(args.workers or available_cores(), max(len(trained), 1)) if trained else 0
    if trained and args.backend == "ray" and args.address:
        workers = "as many as the Ray cluster has CPUs"
    meta = {
        "command": command,
        "backend": args.backend,
        "workers": workers,
        "trained_now": len(trained),
        "wall_s": time.time() - start,  # validation and training; the report adds seconds
        "created": time.strftime("%Y-%m-%d %H:%M:%S %z"),
    }
    return write_report(sweep, meta, args.reps or stats.REPS, args.stats_seed)
