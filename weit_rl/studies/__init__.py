"""`weit-rl study NAME`: run a study defined as data (configs/studies/NAME.yaml), one
`weit-rl compare` call after another, then rebuild its reports and its summary page. Resumable
like compare itself: recorded runs are never retrained, so the same command continues a study
on a new machine. `--summary-only` trains nothing and rewrites every report from the study's
folders alone."""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from pathlib import Path

from weit_rl.compare import add_arguments, run_compare
from weit_rl.compare.study import part_file, read_study
from weit_rl.envs import resolve_task
from weit_rl.studies import ablation, headline, keep, learners
from weit_rl.studies.definition import Call, Study, add_study_arguments, load, names

SUMMARIES = {"ablation": ablation.write, "headline": headline.write, "keep": keep.write, "learners": learners.write}

__all__ = ["SUMMARIES", "Study", "add_study_arguments", "load", "names", "run_study"]


def compare_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="weit-rl compare")
    add_arguments(p)
    p.set_defaults(report_dir="reports")  # a study's folders are in reports/ unless its file says otherwise
    return p.parse_args(argv)


def resolved(call: Call, study: Study) -> Call:
    """The call with `candidates: {all_but: [...]}` spelled out: every arm of the task's part
    so far (its recorded definition) and of the call, but those listed."""
    rule = call.options.get("candidates")
    if not isinstance(rule, dict):
        return call
    report_dir = Path(call.options.get("report_dir", "reports"))
    runs_root = report_dir / call.options.get("study", study.name) / "runs"
    recorded = read_study(part_file(runs_root, resolve_task(call.env), call.options["algo"])) or {}
    arms = dict.fromkeys([*recorded.get("arms", {}), *call.arms])
    candidates = [a for a in arms if a not in rule.get("all_but", [])]
    return Call(call.name, call.env, {**call.options, "candidates": candidates}, call.arms, call.build_bank)


def build_bank(call: Call) -> None:
    """A variant bank the call needs, built by `weit-rl templates` when it is absent."""
    if call.build_bank is None or call.bank is None or Path(call.bank).exists():
        return
    cmd = ["templates", "--env", call.env, "--algo", call.options["algo"], "--out", call.bank, *call.build_bank]
    print("weit-rl " + shlex.join(cmd), flush=True)
    subprocess.run([str(Path(sys.executable).parent / "weit-rl"), *cmd], check=True)


def run_study(
    name: str, call: str | None = None, env: str | None = None, workers: int | None = None, summary_only: bool = False
) -> list[Path]:
    """Run the selected calls of the study (all by default), then rebuild the reports of every
    study folder it writes to and its summary page. Returns the pages written."""
    study = load(name)
    if not summary_only:
        for c in study.select(call, env):
            c = resolved(c, study)
            build_bank(c)
            argv = c.argv(workers)
            command = "weit-rl compare " + shlex.join(argv)
            print(f"study {name}, call {c.name} ({c.env}): {command}", flush=True)
            run_compare(compare_args(argv), command)
    written: list[Path] = []
    folders = dict.fromkeys((c.options.get("report_dir", "reports"), c.options.get("study", name)) for c in study.calls)
    for report_dir, folder in folders:
        if (Path(report_dir) / folder / "runs").is_dir():
            argv = ["--report-only", "--study", folder, "--report-dir", report_dir]
            written += run_compare(compare_args(argv), "weit-rl compare " + shlex.join(argv))
    if study.summary:
        written.append(SUMMARIES[study.summary](study))
        print(f"wrote {written[-1]}")
    return written
