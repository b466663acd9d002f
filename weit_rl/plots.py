"""Figures for the comparison report (matplotlib, headless Agg backend): learning
curves, steps to reach fractions of the expert's return, and performance profiles.
Each function takes numbers already computed (weit_rl.stats, weit_rl.compare.results)
and writes one PNG."""

from __future__ import annotations

import math
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from weit_rl.arms import ARMS

Band = tuple[np.ndarray, np.ndarray, np.ndarray]  # estimate, lower, upper
Profile = tuple[np.ndarray, np.ndarray | None, np.ndarray | None]  # fraction, lower, upper (None: no band)


@cache
def _pyplot() -> Any:
    """matplotlib's pyplot on the headless Agg backend, imported at the first figure: importing
    this module (the command line does, through the reports) costs no matplotlib."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and CI; must precede pyplot
    import matplotlib.pyplot as plt

    return plt


def __getattr__(name: str) -> Any:
    """`plots.plt`, pyplot itself, for figures drawn elsewhere (PEP 562: imported on first use)."""
    if name == "plt":
        return _pyplot()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _fallback() -> list[str]:
    import matplotlib

    taken = {arm.color for arm in ARMS.values()}
    return [c for c in map(matplotlib.colors.to_hex, matplotlib.color_sequences["tab20"]) if c not in taken]


def color(arm: str, i: int = 0) -> str:
    """The arm's colour: its own if it is registered (weit_rl/arms.py, the same in every figure),
    else the i-th of the other tab20 colours (a study's own arms, by their place in the study)."""
    if arm in ARMS:
        return ARMS[arm].color
    fallback = _fallback()
    return fallback[i % len(fallback)]


def _places(panels: dict[str, dict[str, Any]]) -> dict[str, int]:
    """Each arm's place among all the arms of every panel: its colour's index, the same in every panel."""
    return {arm: i for i, arm in enumerate(dict.fromkeys(a for by_arm in panels.values() for a in by_arm))}


def _panels(n: int, width: float = 4.5, height: float = 3.5, sharey: bool = False):
    fig, axes = _pyplot().subplots(1, max(n, 1), figsize=(width * max(n, 1), height), squeeze=False, sharey=sharey)
    return fig, axes[0]


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=110)
    _pyplot().close(fig)
    tmp.replace(path)
    return path


def learning_curves(path: Path, grid: np.ndarray, sizes: dict[str, dict[str, Any]], ylabel: str) -> Path:
    """One panel per size, one colour per initializer: its mean curve, each run thin,
    and the 95% band when there is one. `sizes[size][init]["curve"]` holds "mean",
    "runs" and optionally "low"/"high" on the step `grid`. With more than six arms the single
    runs are left out and the legend goes beside the panels: they would hide the means. The
    panels share their y range: sizes compare at a glance."""
    crowded = max((len(by_init) for by_init in sizes.values()), default=0) > 6
    fig, axes = _panels(len(sizes), width=6.0 if crowded else 4.5, sharey=True)
    place = _places(sizes)
    for ax, (size, by_init) in zip(axes, sizes.items()):
        for init, cell in by_init.items():
            i, c = place[init], cell["curve"]
            for run in [] if crowded else c["runs"]:
                ax.plot(grid, run, color=color(init, i), lw=0.6, alpha=0.35)
            ax.plot(grid, c["mean"], color=color(init, i), label=f"{init} (n={len(c['runs'])})", lw=1.8)
            if "low" in c:
                ax.fill_between(grid, c["low"], c["high"], color=color(init, i), alpha=0.2, lw=0)
        ax.set(title=size, xlabel="environment steps")
        ax.grid(alpha=0.3)
        ax.ticklabel_format(axis="x", style="sci", scilimits=(0, 3))
    axes[0].set_ylabel(ylabel)  # shared: the other panels' y axes read the same
    if crowded:
        axes[-1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    else:
        axes[0].legend(fontsize=8)
    return _save(fig, path)


def level_steps(path: Path, sizes: dict[str, dict[str, Any]], budget: int) -> Path:
    """Median steps to reach each fraction of the expert's return, one panel per size,
    with the 95% interval as an error bar (to the budget when its upper end is not
    reached). A median that is not reached is an empty hatched bar at the budget.
    `sizes[size][init]["levels"][fraction]` is {"median": {estimate, low, high}, ...}."""
    fig, axes = _panels(len(sizes))
    place = _places(sizes)
    for ax, (size, by_init) in zip(axes, sizes.items()):
        inits = list(by_init)
        fractions = list(next(iter(by_init.values()))["levels"])
        width = 0.8 / max(len(inits), 1)
        for i, init in enumerate(inits):
            x = np.arange(len(fractions)) + (i - (len(inits) - 1) / 2) * width
            med = [by_init[init]["levels"][f]["median"] for f in fractions]
            y = np.array([m["estimate"] for m in med], dtype=float)
            reached = np.isfinite(y)
            ax.bar(x[reached], y[reached], width, color=color(init, place[init]), label=init)
            ax.bar(
                x[~reached],
                np.full((~reached).sum(), budget),
                width,
                fill=False,
                hatch="//",
                edgecolor=color(init, place[init]),
            )
            for xi, yi, m in zip(x, y, med):
                if m["low"] is not None and math.isfinite(yi):
                    high = min(m["high"], budget)
                    ax.errorbar(xi, yi, yerr=[[yi - m["low"]], [high - yi]], color="k", lw=0.8, capsize=2)
        ax.axhline(budget, color="k", lw=0.8, ls=":")
        ax.set_xticks(np.arange(len(fractions)), [f"{float(f):.0%}" for f in fractions])
        ax.set(title=size, xlabel="fraction of the expert's return", ylabel="steps to reach (median run)")
        ax.grid(alpha=0.3, axis="y")
    axes[0].legend(fontsize=8, title="hatched: not reached", title_fontsize=7)
    return _save(fig, path)


def performance_profiles(path: Path, taus: np.ndarray, profiles: dict[str, dict[str, Profile]], xlabel: str) -> Path:
    """Score distributions (fraction of runs scoring above tau) per size, with 95% bands.
    `profiles[size][init]` is (fraction, lower, upper) over `taus`; lower/upper may be None."""
    fig, axes = _panels(len(profiles))
    place = _places(profiles)
    for ax, (size, by_init) in zip(axes, profiles.items()):
        for init, (mid, lo, hi) in by_init.items():
            i = place[init]
            ax.plot(taus, mid, color=color(init, i), label=init, lw=1.8)
            if lo is not None and hi is not None:
                ax.fill_between(taus, lo, hi, color=color(init, i), alpha=0.2, lw=0)
        ax.set(title=size, xlabel=xlabel, ylabel="fraction of runs with score > τ", ylim=(-0.02, 1.02))
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    return _save(fig, path)
