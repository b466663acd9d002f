"""Reading a study's recorded runs and computing every number of its report.

Everything here reads the study folder only (the part's runs/<Env>/study-<algo>.json and
each run's evaluations.csv), so a report rebuilds on a machine that never trained the runs."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from weit_rl import UserError, stats
from weit_rl.arms import DEFAULT_PRIMARY
from weit_rl.artifacts.bank_file import read_manifest
from weit_rl.artifacts.experts import read_expert_manifest
from weit_rl.compare.study import is_done, portable

PRIMARY = (*DEFAULT_PRIMARY, "auc")  # the default primary comparison (--primary): method, baseline, metric
METHOD = PRIMARY[0]


@dataclass
class Run:
    name: str
    size: str
    init: str
    seed: int
    timesteps: np.ndarray
    returns: np.ndarray  # mean return of each evaluation, raw
    wall_s: float | None = None  # cumulative wall seconds at the last evaluation, if recorded
    eval_s: float | None = None  # of which spent evaluating


def read_evaluations(path: Path) -> dict[str, np.ndarray]:
    """The columns of one evaluations.csv: timesteps, mean_return, and wall_s / eval_s when
    the file has them (older files do not)."""
    with path.open() as f:
        rows = list(csv.DictReader(f))
    out = {
        "timesteps": np.array([int(float(r["timesteps"])) for r in rows]),
        "mean_return": np.array([float(r["mean_return"]) for r in rows]),
    }
    for key in ("wall_s", "eval_s"):
        if rows and all(r.get(key) not in (None, "") for r in rows):
            out[key] = np.array([float(r[key]) for r in rows])
    return out


def load_runs(sweep: Any) -> tuple[list[Run], list[str]]:
    """The study's recorded runs of the sweep's grid, and the names of those not recorded."""
    runs, missing = [], []
    for size, init, seed in sweep.cells():
        folder = sweep.recorded(size, init, seed)
        if not is_done(folder):
            missing.append(folder.name)
            continue
        ev = read_evaluations(folder / "evaluations.csv")
        if not ev["timesteps"].size or ev["timesteps"][0] != 0:
            raise UserError(
                f"{folder / 'evaluations.csv'} has no evaluation at step 0: delete the folder and "
                "run the sweep again to retrain it"
            )
        wall, spent = (float(ev[k][-1]) if k in ev else None for k in ("wall_s", "eval_s"))
        runs.append(Run(folder.name, size, init, seed, ev["timesteps"], ev["mean_return"], wall, spent))
    return runs, missing


def _number(value: Any) -> float | None:
    if isinstance(value, dict):
        value = value.get("mean")
    return None if value is None else float(value)


def reference_returns(bank: str | None, expert: str | None) -> dict[str, Any]:
    """The expert's and the random policy's returns for normalization, with their sources:
    the bank manifest (expert.eval_return_mean, random_return), else the expert manifest."""
    found: dict[str, Any] = {"expert_return": None, "random_return": None, "expert_source": None, "random_source": None}
    sources: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    if bank and Path(bank).exists():
        m = read_manifest(bank)
        sources.append((f"the manifest of bank {portable(bank)}", m.get("expert") or {}, m))
    if expert and Path(expert).exists():
        m = read_expert_manifest(expert)
        sources.append((f"the manifest of expert {portable(expert)}", m, m))
    for where, expert_part, top in sources:
        for key, value in (("expert", expert_part.get("eval_return_mean")), ("random", top.get("random_return"))):
            if found[f"{key}_return"] is None and _number(value) is not None:
                found[f"{key}_return"], found[f"{key}_source"] = _number(value), where
    return found


def normalization(refs: dict[str, Any]) -> tuple[float | None, float, str]:
    """(expert, random, mode) for stats.normalize. Modes: "expert-random" (docs/protocol.md),
    "expert-only" (no random return recorded: R / expert), "raw" (no expert return)."""
    expert, random = refs.get("expert_return"), refs.get("random_return")
    if expert is None:
        return None, 0.0, "raw"
    if random is None:
        return expert, 0.0, "expert-only"
    return expert, random, "expert-random"


def eval_grid(steps: int, eval_freq: int) -> np.ndarray:
    """The step grid of the learning-curve figure: step 0, every eval_freq steps, the budget."""
    return np.unique(np.r_[np.arange(0, steps, eval_freq), steps])


def ci(point: Any, low: Any = None, high: Any = None) -> dict[str, Any]:
    return {
        "estimate": float(point),
        "low": None if low is None else float(low),
        "high": None if high is None else float(high),
    }


def per_run(run: Run, steps: int, expert: float | None, random: float, mode: str) -> dict[str, Any]:
    """One run's numbers: AUC (step function over [0, steps] / steps), final score (mean
    of the last 3 evaluations at or before the budget), steps to each level (inf: never reached)."""
    scores = stats.normalize(run.returns, expert, random)
    t = np.minimum(run.timesteps, steps)
    levels = {str(f): stats.steps_to_level(t, scores, f) for f in stats.LEVELS} if mode != "raw" else {}
    return {
        "run": run.name,
        "seed": run.seed,
        "auc": stats.auc_step(t, scores, steps),
        "final": stats.final_score(run.timesteps, scores, steps),
        "step0": float(run.returns[0]),
        "steps": levels,
        "curve_t": t,
        "curve_scores": scores,
    }


def analyse(sweep: Any, runs: list[Run], reps: int, seed: int) -> dict[str, Any]:
    """Every number of the report: per size and arm, the runs' metrics and their
    aggregates; then the comparisons (primary, and secondary with Holm's correction)."""
    expert, random, mode = normalization(sweep.references)
    grid = eval_grid(sweep.steps, sweep.eval_freq)
    sizes: dict[str, Any] = {}
    for size in sweep.sizes:
        by_init = {}
        for init in sweep.inits:
            mine = [per_run(r, sweep.steps, expert, random, mode) for r in runs if (r.size, r.init) == (size, init)]
            if mine:
                by_init[init] = _cell(mine, grid, reps, seed)
        if by_init:
            sizes[size] = by_init
    return {
        "grid": grid.tolist(),
        "normalization": mode,
        "sizes": sizes,
        "comparisons": compare_arms(
            sizes, sweep.primary_size, reps, seed, sweep.primary, sweep.candidates or sweep.primary[:1]
        ),
    }


def _cell(mine: list[dict[str, Any]], grid: np.ndarray, reps: int, seed: int) -> dict[str, Any]:
    auc, final, step0 = (np.array([m[k] for m in mine]) for k in ("auc", "final", "step0"))
    curves = np.vstack([stats.curve_at(m["curve_t"], m["curve_scores"], grid) for m in mine])
    cell: dict[str, Any] = {
        "runs": [m["run"] for m in mine],
        "seeds": [m["seed"] for m in mine],
        "auc": auc.tolist(),
        "final": final.tolist(),
        "steps": {f: [m["steps"][f] for m in mine] for f in mine[0]["steps"]},
        "aggregate": {
            metric: {
                "mean": stats.interval([v], stats.mean, seed, reps),
                "iqm": stats.interval([v], stats.iqm, seed, reps),
            }
            for metric, v in (("auc", auc), ("final", final))
        },
        "levels": {},
        "step0": step0.tolist(),  # the head start: raw mean return at step 0
        "step0_mean": stats.interval([step0], stats.mean, seed, reps),
    }
    for f, values in cell["steps"].items():
        v = np.array(values)
        cell["levels"][f] = {
            "reached": int(np.isfinite(v).sum()),
            "n": int(v.size),
            "median": stats.interval([v], stats.median, seed, reps),
        }
    cell["curve"] = {"mean": stats.mean(curves).tolist(), "runs": curves.tolist()}  # pointwise over runs
    if len(mine) >= stats.MIN_RUNS:
        _, low, high = stats.bootstrap_ci([curves], stats.mean, np.random.default_rng(seed), reps)
        cell["curve"].update(low=low.tolist(), high=high.tolist())
    return cell


def pairs(sizes: dict[str, Any], primary_size: str, primary: Any, candidates: list[str]) -> list[tuple]:
    """(method, baseline, size, role) of every comparison: the primary (method vs baseline
    at the primary size), then each candidate against every other arm at every size, a
    pair counted once (the primary, or a candidate vs an earlier candidate, is not repeated)."""
    out, seen = [], set()
    a, b = primary[:2]
    if a in sizes.get(primary_size, {}) and b in sizes[primary_size]:
        out.append((a, b, primary_size, "primary"))
        seen.add((primary_size, frozenset((a, b))))
    for cand in candidates:
        for size, by_arm in sizes.items():
            for base in (x for x in by_arm if cand in by_arm and x != cand):
                if (size, frozenset((cand, base))) not in seen:
                    seen.add((size, frozenset((cand, base))))
                    out.append((cand, base, size, "secondary"))
    return out


def compare_arms(
    sizes: dict[str, Any],
    primary_size: str,
    reps: int,
    seed: int,
    primary: Any = PRIMARY,
    candidates: list[str] | None = None,
) -> list[dict[str, Any]]:
    """The comparisons of `pairs` on AUC (with the final score's difference beside it).
    The primary comparison is tested at ALPHA on its own; the others form the secondary
    family, Holm-corrected. Arms with fewer than MIN_RUNS runs are not tested."""
    out = []
    for method, base, size, role in pairs(sizes, primary_size, primary, candidates or [primary[0]]):
        x, y = np.array(sizes[size][method]["auc"]), np.array(sizes[size][base]["auc"])
        row: dict[str, Any] = {
            "method": method,
            "baseline": base,
            "size": size,
            "metric": "auc",
            "role": role,
            "n": [int(x.size), int(y.size)],
            "tested": min(x.size, y.size) >= stats.MIN_RUNS,
        }
        row["difference"] = stats.interval([x, y], stats.difference_of_means, seed, reps)
        row["final_difference"] = stats.interval(
            [np.array(sizes[size][k]["final"]) for k in (method, base)], stats.difference_of_means, seed, reps
        )
        row["p_improvement"] = stats.interval([x, y], stats.probability_of_improvement, seed, reps)
        row["p"] = stats.permutation_test(x, y, np.random.default_rng(seed), reps) if row["tested"] else None
        out.append(row)
    secondary = [r for r in out if r["role"] == "secondary" and r["tested"]]
    # Holm is monotone in every p, so a test still above ALPHA with every p at its floor
    # cannot reject whatever its runs hold: its run counts are too few for the family.
    for r in secondary:
        n_x, n_y = r["n"]
        r["p_floor"] = stats.smallest_p(n_x, n_y, reps)
    for r, adjusted, best in zip(
        secondary, stats.holm([r["p"] for r in secondary]), stats.holm([r["p_floor"] for r in secondary])
    ):
        r["p_holm"], r["p_holm_best"] = float(adjusted), float(best)
    for r in out:
        if not r["tested"]:
            r["verdict"] = "not tested (n < 5)"
            continue
        p = r["p"] if r["role"] == "primary" else r["p_holm"]  # a tested secondary comparison has its Holm p
        r["verdict"] = stats.verdict(r["difference"]["estimate"], p, r["p"])
    return out


def timing(runs: list[Run]) -> dict[str, Any]:
    """Training time summed over runs and the share of it spent evaluating, from the
    evaluations.csv columns wall_s and eval_s (runs without them are counted apart)."""
    timed = [(r.wall_s, r.eval_s) for r in runs if r.wall_s is not None and r.eval_s is not None]
    wall, evaluating = sum(w for w, _ in timed), sum(e for _, e in timed)
    return {
        "runs_timed": len(timed),
        "runs": len(runs),
        "wall_s": wall,
        "eval_s": evaluating,
        "eval_share": evaluating / wall if wall > 0 else None,
    }
