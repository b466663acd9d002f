"""The headline page's figures, from the parts' reports alone (each run's normalized learning
curve on the evaluation grid, as compare records it):
- sample efficiency against policy size: per part, the score at fixed budgets and the steps to
  90% of the expert, one line per arm (IQM or median over runs, 95% bootstrap band);
- the learning curves of every arm at each size (IQM over runs, 95% bootstrap band)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from weit_rl import plots, stats
from weit_rl.config import parse_size

BUDGETS = (10_000, 50_000)  # and each part's full budget
LEVEL = 0.9  # steps to this fraction of the expert's (normalized) return
REPS = 2_000  # bootstrap replications of the bands (figures only; the tables use stats.REPS)


def hidden_params(size: str) -> int:
    """Weights and biases of the hidden layers: the size axis, whatever the task's dimensions."""
    w = parse_size(size)
    return sum(a * b for a, b in zip(w, w[1:])) + sum(w)


def role(arm: str, baselines: Mapping[str, str]) -> str | None:
    """The name an arm stands under on the summary: a part's stand-in for a baseline (baselines:
    baseline -> arm) stands under the baseline's name; the arm of that name it replaces stands for
    nothing (the part's report shows it); every other arm under its own name."""
    return next((base for base, a in baselines.items() if a == arm), None if arm in baselines else arm)


def runs_of(
    report: Path, baselines: Mapping[str, str] | None = None
) -> tuple[np.ndarray, dict[str, dict[str, np.ndarray]]]:
    """The evaluation grid and, per size and arm (named by role), the runs' normalized curves on it
    (runs x grid)."""
    data = json.loads(report.read_text())["results"]
    cells = {
        size: {
            r: np.array(cell["curve"]["runs"], dtype=float)
            for arm, cell in by_arm.items()
            if (r := role(arm, baselines or {}))
        }
        for size, by_arm in data["sizes"].items()
    }
    return np.array(data["grid"], dtype=float), cells


def score_at(grid: np.ndarray, runs: np.ndarray, step: float) -> np.ndarray:
    """Each run's score at `step`: the last evaluation at or before it (the step-function curve)."""
    return runs[:, np.searchsorted(grid, step, side="right") - 1]


def steps_to(grid: np.ndarray, runs: np.ndarray, level: float) -> np.ndarray:
    """Each run's first evaluation step at or above `level`; +inf when it never gets there."""
    hit = runs >= level
    return np.where(hit.any(axis=1), grid[np.argmax(hit, axis=1)], math.inf)


def _band(values: np.ndarray, func, seed: int) -> tuple[float, float, float]:
    point, low, high = stats.bootstrap_ci([values], func, np.random.default_rng(seed), REPS)
    return float(point), float(low), float(high)


def size_figure(path: Path, parts: list[dict]) -> None:
    """One row per part (task and algorithm), one column per measure, x the policy's hidden-layer
    parameters (log scale). Each part: {"title", "report", "sizes", "arms", "budget", "baselines"}."""
    columns = [*(f"score at {b // 1000}k steps" for b in BUDGETS), "score at the budget", f"steps to {LEVEL:.0%}"]
    fig, axes = plots.plt.subplots(len(parts), len(columns), figsize=(3.6 * len(columns), 3.0 * len(parts)))
    axes = np.atleast_2d(axes)
    for row, part in zip(axes, parts):
        grid, cells = runs_of(part["report"], part["baselines"])
        points = [*BUDGETS, part["budget"]]
        for i, arm in enumerate(part["arms"]):
            sizes = [z for z in part["sizes"] if arm in cells.get(z, {})]
            if not sizes:
                continue
            x = np.array([hidden_params(z) for z in sizes])
            color = plots.color(arm, i)
            for ax, step in zip(row, points):
                got = np.array([_band(score_at(grid, cells[z][arm], step), stats.iqm, 0) for z in sizes])
                ax.plot(x, got[:, 0], "o-", color=color, label=arm, ms=4)
                ax.fill_between(x, got[:, 1], got[:, 2], color=color, alpha=0.15)
                ax.vlines(x, got[:, 1], got[:, 2], color=color, alpha=0.4, lw=1.5)  # a band at a lone size too
            got = np.array([_band(steps_to(grid, cells[z][arm], LEVEL), stats.median, 0) for z in sizes])
            ax = row[-1]
            finite = np.isfinite(got[:, 0])
            ax.plot(x[finite], got[finite, 0], "o-", color=color, label=arm, ms=4)
            top = np.where(np.isfinite(got[:, 2]), got[:, 2], part["budget"])
            ax.fill_between(x, np.minimum(got[:, 1], part["budget"]), top, color=color, alpha=0.12)
            shift = 1 + 0.06 * (i - (len(part["arms"]) - 1) / 2)  # side by side: censored arms stay visible
            ax.plot(x[~finite] * shift, [part["budget"]] * int((~finite).sum()), "^", mfc="none", ms=9, color=color)
        for ax, title in zip(row, columns):
            ax.set_xscale("log")
            ax.set_title(f"{part['title']}: {title}", fontsize=9)
            ax.grid(alpha=0.3)
            ax.set_xlabel("hidden-layer parameters", fontsize=8)
            ax.set_xticks([hidden_params(z) for z in part["sizes"]], part["sizes"], fontsize=7, rotation=30)
            ax.minorticks_off()
        for ax in row[:-1]:
            ax.set_ylabel("normalized return (IQM)", fontsize=8)
        row[-1].set_ylabel("steps (median run)", fontsize=8)
        row[-1].axhline(part["budget"], color="k", lw=0.8, ls=":")
        row[-1].set_ylim(0, part["budget"] * 1.08)
        row[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plots.plt.close(fig)


def curves_figure(path: Path, part: dict) -> None:
    """The part's learning curves: one panel per size, one line per arm (IQM over runs, band)."""
    grid, cells = runs_of(part["report"], part["baselines"])
    sizes = [z for z in part["sizes"] if z in cells]
    fig, axes = plots.plt.subplots(1, len(sizes), figsize=(3.8 * len(sizes), 3.2), squeeze=False)
    for ax, size in zip(axes[0], sizes):
        for i, arm in enumerate(a for a in part["arms"] if a in cells[size]):
            runs = cells[size][arm]
            point, low, high = stats.bootstrap_ci([runs], stats.iqm, np.random.default_rng(0), REPS)
            ax.plot(grid, point, color=plots.color(arm, i), label=f"{arm} ({len(runs)})")
            ax.fill_between(grid, low, high, color=plots.color(arm, i), alpha=0.15)
        ax.set(title=f"{part['title']}, {size}", xlabel="environment steps", ylabel="normalized return (IQM)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, title="arm (runs)", title_fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plots.plt.close(fig)
