"""Figures for the comparison report (matplotlib, headless Agg backend): learning
curves, steps-to-threshold bars and performance profiles. Each function takes the
numbers already computed by weit_rl.stats and writes one PNG."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on servers and CI; must precede pyplot
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

Band = tuple[np.ndarray, np.ndarray, np.ndarray]  # estimate, lower, upper

# One colour per initializer, the same in every figure.
COLORS = {"scratch": "#7f7f7f", "weit": "#d62728", "distill": "#1f77b4", "select": "#2ca02c"}
_FALLBACK = plt.rcParams["axes.prop_cycle"].by_key()["color"]


def color(init: str, i: int = 0) -> str:
    """The initializer's colour (a cycle colour for initializers added later)."""
    return COLORS.get(init, _FALLBACK[i % len(_FALLBACK)])


def _panels(n: int, width: float = 4.5, height: float = 3.5):
    fig, axes = plt.subplots(1, n, figsize=(width * n, height), squeeze=False)
    return fig, axes[0]


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def learning_curves(path: Path, grid: np.ndarray, curves: dict[str, dict[str, Band]], ylabel: str) -> Path:
    """One panel per size, one line per initializer with its shaded 95% CI.
    `curves[size][init]` is (IQM, lower, upper) on the step `grid`."""
    fig, axes = _panels(len(curves))
    for ax, (size, by_init) in zip(axes, curves.items()):
        for i, (init, (mid, lo, hi)) in enumerate(by_init.items()):
            ax.plot(grid, mid, color=color(init, i), label=init, lw=1.8)
            ax.fill_between(grid, lo, hi, color=color(init, i), alpha=0.2, lw=0)
        ax.set(title=size, xlabel="environment steps", ylabel=ylabel)
        ax.grid(alpha=0.3)
        ax.ticklabel_format(axis="x", style="sci", scilimits=(0, 3))
    axes[0].legend(fontsize=8)
    return _save(fig, path)


def threshold_bars(path: Path, steps: dict[str, dict[str, dict[float, float]]], budget: int) -> Path:
    """Steps each initializer's IQM curve needs to reach each threshold, one panel per
    size. `steps[size][init][fraction]` is a step count or NaN (not reached within
    `budget`), drawn as an empty hatched bar at the budget."""
    fig, axes = _panels(len(steps))
    for ax, (size, by_init) in zip(axes, steps.items()):
        if not by_init:
            ax.text(0.5, 0.5, "thresholds undefined (see the report)", ha="center", va="center", transform=ax.transAxes)
            ax.set(title=size, xticks=[], yticks=[])
            continue
        inits = list(by_init)
        fractions = sorted({f for v in by_init.values() for f in v})
        width = 0.8 / max(len(inits), 1)
        for i, init in enumerate(inits):
            x = np.arange(len(fractions)) + (i - (len(inits) - 1) / 2) * width
            y = np.array([by_init[init].get(f, np.nan) for f in fractions], dtype=float)
            reached = ~np.isnan(y)
            bars = ax.bar(x[reached], y[reached], width, color=color(init, i), label=init)
            # A bar of height 0 (reached at step 0, before any training) would be invisible.
            ax.bar_label(bars, labels=["0" if v == 0 else "" for v in y[reached]], fontsize=7,
                         color=color(init, i))
            ax.bar(x[~reached], np.full((~reached).sum(), budget), width, fill=False, hatch="//",
                   edgecolor=color(init, i))
        ax.axhline(budget, color="k", lw=0.8, ls=":")
        ax.set_xticks(np.arange(len(fractions)), [f"{f:.0%}" for f in fractions])
        ax.set(title=size, xlabel="fraction of scratch's final return", ylabel="steps to reach")
        ax.grid(alpha=0.3, axis="y")
    with_bars = [ax for ax, by_init in zip(axes, steps.values()) if by_init]
    if with_bars:
        with_bars[0].legend(fontsize=8, title="hatched: not reached", title_fontsize=7)
    return _save(fig, path)


def performance_profiles(path: Path, taus: np.ndarray, profiles: dict[str, dict[str, Band]], xlabel: str) -> Path:
    """Score distributions (fraction of runs scoring above tau) per size, with 95% CIs.
    `profiles[size][init]` is (fraction, lower, upper) over `taus`."""
    fig, axes = _panels(len(profiles))
    for ax, (size, by_init) in zip(axes, profiles.items()):
        for i, (init, (mid, lo, hi)) in enumerate(by_init.items()):
            ax.plot(taus, mid, color=color(init, i), label=init, lw=1.8)
            ax.fill_between(taus, lo, hi, color=color(init, i), alpha=0.2, lw=0)
        ax.set(title=size, xlabel=xlabel, ylabel="fraction of runs with score > τ", ylim=(-0.02, 1.02))
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    return _save(fig, path)
