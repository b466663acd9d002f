"""Do the two engines learn the same? Reads the engines study's two parts (reports/engines/stock
and reports/engines/fast: HalfCheetah SAC, size small, scratch, 5 seeds, 50k steps; `weit-rl study
engines`) and compares the fast engine's runs with the stock engine's: difference of mean
normalized AUC and of mean final score, with 95% percentile-bootstrap intervals and a two-sided
permutation test (weit_rl/stats.py, as every report). Writes reports/engines/README.md and
reports/engines/engines.json.

Usage: python bench/engine_curves.py [--reps 10000]"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from weit_rl.stats import ALPHA, bootstrap_ci, difference_of_means, permutation_test

FOLDER = Path("reports/engines")
ENGINES = ("fast", "stock")


def per_run(engine: str, env: str = "HalfCheetah", algo: str = "sac") -> dict[str, list[float]]:
    """The part's per-run normalized AUC and final score, from its report's JSON."""
    report = json.loads((FOLDER / engine / f"{env}-{algo}.json").read_text())
    cell = report["results"]["sizes"]["small"]["scratch"]
    kernels = report["study"].get("kernels", "COMPATIBLE")  # absent: recorded before parts named them
    return {"runs": cell["runs"], "auc": cell["auc"], "final": cell["final"], "kernels": kernels}


def compare(reps: int, seed: int = 0) -> dict:
    data = {engine: per_run(engine) for engine in ENGINES}
    out: dict = {"runs": data, "alpha": ALPHA}
    for metric in ("auc", "final"):
        fast, stock = (np.asarray(data[e][metric], dtype=float) for e in ENGINES)
        point, low, high = bootstrap_ci([fast, stock], difference_of_means, np.random.default_rng(seed), reps)
        p = permutation_test(fast, stock, np.random.default_rng(seed), reps)
        out[metric] = {
            "fast_mean": float(fast.mean()),
            "stock_mean": float(stock.mean()),
            "difference": float(point),
            "low": float(low),
            "high": float(high),
            "p": p,
        }
    return out


def page(result: dict) -> str:
    n = {e: len(result["runs"][e]["runs"]) for e in ENGINES}
    lines = [
        "# The engines' learning curves (HalfCheetah SAC, size small, scratch, 50k steps)",
        "",
        "Written by `python bench/engine_curves.py` from the two parts of `weit-rl study engines` "
        "(configs/studies/engines.yaml): reports/engines/stock/ and reports/engines/fast/, each with its runs' "
        "evaluations.csv and config.yaml and its own report. Normalized scores (random 0, expert 1).",
        "",
        "| metric | fast (mean) | stock (mean) | fast - stock | 95% bootstrap interval | permutation p |",
        "|---|---|---|---|---|---|",
    ]
    for metric, name in (("auc", "AUC"), ("final", "final score")):
        r = result[metric]
        lines.append(
            f"| {name} | {r['fast_mean']:.3f} | {r['stock_mean']:.3f} | {r['difference']:+.3f} | "
            f"[{r['low']:+.3f}, {r['high']:+.3f}] | {r['p']:.3f} |"
        )
    auc = result["auc"]
    verdict = "inconclusive" if auc["p"] >= result["alpha"] else "a difference (a defect to find)"
    lines += [
        "",
        f"{n['fast']} runs on the fast engine, {n['stock']} on the stock engine (seeds 0-4 each). On AUC the test "
        f"is {verdict} at {result['alpha']}; with 5 runs per engine the percentile interval under-covers "
        "(about 88%, docs/protocol.md) and a difference smaller than the interval's half-width goes unseen.",
        "",
        "MKL branch of each part's runs (their config.yaml, `kernels`): "
        + ", ".join(f"{e} {result['runs'][e]['kernels']}" for e in ENGINES)
        + ": this compares the engines' update code at the same kernels. Fast-engine runs on MKL's AVX2 "
        "branch (new parts since parts record their branch, weit_rl/numerics.py) are not in this comparison.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reps", type=int, default=10_000)
    a = p.parse_args()
    result = compare(a.reps)
    (FOLDER / "engines.json").write_text(json.dumps(result, indent=1) + "\n")
    (FOLDER / "README.md").write_text(page(result))
    print(page(result))


if __name__ == "__main__":
    main()
