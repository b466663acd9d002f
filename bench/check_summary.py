"""A reviewer's check of reports/summary.json (and .md) against the headline's raw runs, with numpy
alone: weit_rl is not imported, every rule is re-implemented from its statement in the reports
(docs/protocol.md; each part report's "statistics" block). Exit status 1 when any number differs.
The re-implementation is on purpose: an independent check shares no code with what it checks, so it
stays in bench/ and imports nothing of the library (tests run it as a program).

From each run's evaluations.csv and its part's references (runs/<Env>/study-<algo>.json):
normalized AUC (step function over the budget, steps past it count as the budget), steps to 50%
of the expert. Per cell of the summary: runs per arm, weit minus each baseline (the part's
stand-in where the study names one), its percentile-bootstrap interval, permutation p, Holm
over every tested cell and the verdict; median steps to 50%; the IQM across tasks.

    .venv/bin/python bench/check_summary.py                      # reports/summary.json, reports/headline/
    .venv/bin/python bench/check_summary.py --summary S.json --study STUDY_DIR
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import re
import sys
from itertools import combinations
from pathlib import Path

import numpy as np

ALPHA, MIN_RUNS, LEVEL = 0.05, 5, 0.5
BASELINES = ("scratch", "distill", "select")


def curve(run: Path, random: float, expert: float) -> tuple[np.ndarray, np.ndarray]:
    with (run / "evaluations.csv").open() as f:
        rows = list(csv.DictReader(f))
    steps = np.array([float(r["timesteps"]) for r in rows])
    score = (np.array([float(r["mean_return"]) for r in rows]) - random) / (expert - random)
    return steps, score


def auc(steps: np.ndarray, score: np.ndarray, budget: float) -> float:
    t = np.minimum(steps, budget)
    return float(np.sum(score * np.diff(np.append(t, budget))) / budget)


def steps_to(steps: np.ndarray, score: np.ndarray, level: float, budget: float) -> float:
    """The first evaluation at or above level (steps past the budget count as the budget)."""
    hit = np.flatnonzero(score >= level)
    return float(min(steps[hit[0]], budget)) if hit.size else math.inf


def bootstrap(samples: list[np.ndarray], func, seed: int, reps: int) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    draws = [a[rng.integers(0, a.size, size=(reps, a.size))] for a in samples]
    dist = func(*draws, axis=1)
    return float(np.quantile(dist, ALPHA / 2, method="lower")), float(np.quantile(dist, 1 - ALPHA / 2, method="higher"))


def permutation_p(x: np.ndarray, y: np.ndarray, seed: int, reps: int) -> float:
    pooled, n = np.r_[x, y], x.size
    observed = abs(x.mean() - y.mean())
    tol = 1e-9 * max(1.0, float(np.max(np.abs(pooled))))
    if math.comb(pooled.size, n) <= reps:
        hits = total = 0
        for first in combinations(range(pooled.size), n):
            mask = np.zeros(pooled.size, dtype=bool)
            mask[list(first)] = True
            hits += abs(pooled[mask].mean() - pooled[~mask].mean()) >= observed - tol
            total += 1
        return hits / total
    perms = np.random.default_rng(seed).permuted(np.tile(pooled, (reps, 1)), axis=1)
    diff = perms[:, :n].mean(axis=1) - perms[:, n:].mean(axis=1)
    return float((1 + np.sum(np.abs(diff) >= observed - tol)) / (1 + reps))


def holm(p: list[float]) -> list[float]:
    order = np.argsort(p, kind="stable")
    adjusted = np.minimum(1.0, np.maximum.accumulate((len(p) - np.arange(len(p))) * np.asarray(p)[order]))
    out = np.empty(len(p))
    out[order] = adjusted
    return list(out)


def iqm(v: np.ndarray, axis: int = 0) -> np.ndarray:
    v = np.sort(v, axis=axis)
    cut = v.shape[axis] // 4
    return np.take(v, np.arange(cut, v.shape[axis] - cut), axis=axis).mean(axis=axis)


def mean_difference(x: np.ndarray, y: np.ndarray, axis: int = 0) -> np.ndarray:
    return x.mean(axis=axis) - y.mean(axis=axis)


class Checker:
    def __init__(self) -> None:
        self.checked, self.errors = 0, []

    def same(self, what: str, got, want, tol: float = 1e-9) -> None:
        self.checked += 1
        if isinstance(want, float) and isinstance(got, (int, float)):
            ok = (math.isinf(want) and got == want) or abs(got - want) <= tol * max(1.0, abs(want))
        else:
            ok = got == want
        if not ok:
            self.errors.append(f"{what}: summary has {got!r}, the runs give {want!r}")


def part_runs(env_dir: Path, algo: str, budget: float, random: float, expert: float) -> dict:
    """(size, arm) -> {"seeds", "auc", "steps50"} over the part's recorded runs, by seed."""
    out: dict = {}
    for run in sorted(env_dir.iterdir()):
        m = re.fullmatch(rf"{algo}-(.+)-([a-z0-9_]+)-s(\d+)", run.name)
        if not m or not (run / "evaluations.csv").exists() or not (run / "config.yaml").exists():
            continue
        steps, score = curve(run, random, expert)
        cell = out.setdefault((m[1], m[2]), {"seeds": [], "auc": [], "steps50": []})
        cell["seeds"].append(int(m[3]))
        cell["auc"].append(auc(steps, score, budget))
        cell["steps50"].append(steps_to(steps, score, LEVEL, budget))
    for cell in out.values():
        order = np.argsort(cell["seeds"])
        cell.update({k: np.asarray(v)[order] for k, v in cell.items()})
    return out


def median_steps(v: np.ndarray) -> float:
    return float(np.median(np.sort(v)))


def check(summary_path: Path, study_dir: Path) -> Checker:
    summary = json.loads(summary_path.read_text())
    text = summary_path.with_suffix(".md").read_text()
    c = Checker()
    tested, by_task = [], {}
    for name, part in summary["parts"].items():
        if part["report"] is None:
            continue
        env, algo = part["task"], part["algo"]
        definition = json.loads((study_dir / "runs" / env / f"study-{algo}.json").read_text())
        refs, budget = definition["references"], float(definition["steps"])
        statistics = json.loads((study_dir / f"{name}.json").read_text())["statistics"]
        seed, reps = statistics["seed"], statistics["reps"]
        runs = part_runs(study_dir / "runs" / env, algo, budget, refs["random_return"], refs["expert_return"])
        chosen = part.get("baselines", {})  # the stand-in arm of a baseline, where the study names one
        for size in part["sizes"]:
            for role in part["arms"]:
                cell = runs.get((size, chosen.get(role, role)))
                c.same(
                    f"{name} {size} {role}: runs",
                    part["runs"].get(size, {}).get(role, 0),
                    0 if cell is None else len(cell["auc"]),
                )
                if cell is not None:
                    by_task.setdefault((algo, size, role), {})[env] = cell["auc"]
                    got = part["steps_to_50"][size].get(role)
                    if got is not None:
                        want = median_steps(cell["steps50"])
                        c.same(f"{name} {size} {role}: median steps to 50%", float(got["median"]), want)
                        c.same(
                            f"{name} {size} {role}: runs reaching 50%",
                            got["reached"],
                            int(np.isfinite(cell["steps50"]).sum()),
                        )
            for base in BASELINES:
                got = part["comparisons"].get(size, {}).get(base)
                x, y = runs.get((size, "weit")), runs.get((size, chosen.get(base, base)))
                if got is None:
                    c.same(
                        f"{name} {size} weit vs {base}: present",
                        False,
                        x is not None and y is not None and base in part["arms"],
                    )
                    continue
                x, y = x["auc"], y["auc"]
                where = f"{name} {size} weit vs {base}"
                c.same(f"{where}: estimate", got["estimate"], float(x.mean() - y.mean()))
                if min(x.size, y.size) >= MIN_RUNS:
                    low, high = bootstrap([x, y], mean_difference, seed, reps)
                    c.same(f"{where}: interval low", got["low"], low)
                    c.same(f"{where}: interval high", got["high"], high)
                    c.same(f"{where}: p", got["p"], permutation_p(x, y, seed, reps))
                    tested.append((where, got))
                    shown = f"{got['estimate']:+.3f} [{got['low']:+.3f}, {got['high']:+.3f}] {got['verdict']}"
                    c.same(f"{where}: shown in summary.md", shown in text, True)
                else:
                    c.same(f"{where}: untested below {MIN_RUNS} runs", got["p"], None)
    for (where, got), adjusted in zip(tested, holm([g["p"] for _, g in tested])):
        c.same(f"{where}: Holm p", got["p_holm"], float(adjusted))
        verdict = (
            ("better" if got["estimate"] > 0 else "worse")
            if adjusted <= ALPHA and got["estimate"] != 0
            else "inconclusive"
        )
        if verdict == "inconclusive" and got["p"] <= ALPHA:
            verdict = "suggestive"
        c.same(f"{where}: verdict", got["verdict"], verdict)
    for (algo, size, role), tasks in by_task.items():
        groups = [tasks[env] for env in sorted(tasks)]  # the summary draws the strata in task-name order
        got = summary["iqm"][algo][size][role]
        where = f"IQM across tasks {algo} {size} {role}"
        c.same(f"{where}: estimate", got["estimate"], float(iqm(np.concatenate(groups))))
        if min(g.size for g in groups) >= MIN_RUNS:
            low, high = bootstrap(groups, lambda *g, axis: iqm(np.concatenate(g, axis=axis), axis=axis), seed, reps)
            c.same(f"{where}: interval low", got["low"], low)
            c.same(f"{where}: interval high", got["high"], high)
    return c


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--summary", type=Path, default=Path("reports/summary.json"))
    p.add_argument("--study", type=Path, default=Path("reports/headline"))
    args = p.parse_args()
    c = check(args.summary, args.study)
    for e in c.errors:
        print(e)
    print(f"{c.checked} numbers checked against the runs, {len(c.errors)} differ")
    sys.exit(1 if c.errors else 0)


if __name__ == "__main__":
    main()
