"""Sample-efficiency metrics as small pure functions on numpy arrays.

Scores are plain `(runs x tasks)` arrays, as rliable expects; learning curves are
`(runs x points)` arrays of returns read on a common step grid. Every bootstrap takes
one `np.random.Generator`, so a seed fixes every confidence interval.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
from rliable import library as rly
from rliable import metrics

REPS = 2000  # bootstrap replications: enough for stable 95% CIs on a handful of seeds


@contextmanager
def _seeded(rng: np.random.Generator) -> Iterator[None]:
    """Make rliable's bootstrap follow `rng`.

    rliable 1.2 draws its resampling indices from numpy's *global* legacy RNG
    (`np.random.choice` in StratifiedBootstrap.update_indices) and ignores its
    `random_state` argument for them, so we seed the global RNG from `rng` for the
    duration of the call and put the caller's global state back afterwards."""
    saved = np.random.get_state()
    seed = int(rng.integers(2**32))
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(saved)


def interval_estimates(
    scores: dict[str, np.ndarray | list[np.ndarray]],
    func: Callable[..., np.ndarray],
    rng: np.random.Generator,
    reps: int = REPS,
) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """`{name: (point, lower, upper)}`: 95% stratified-bootstrap CIs of `func` (rliable).

    A value may be a list of arrays (for metrics of several algorithms, such as the
    probability of improvement): rliable then resamples each array independently."""
    out = {}
    for name, value in scores.items():
        with _seeded(rng):
            points, cis = rly.get_interval_estimates({name: value}, func, reps=reps)
        out[name] = (np.asarray(points[name]), np.asarray(cis[name][0]), np.asarray(cis[name][1]))
    return out


def iqm(scores: np.ndarray) -> float:
    """Interquartile mean over all runs and tasks of a `(runs x tasks)` array: the mean
    of the middle 50% of scores (rliable's aggregate_iqm, 25% trimmed from each end)."""
    return float(_iqm(scores)[0])


def _iqm(scores: np.ndarray) -> np.ndarray:
    # Same cut as scipy's trim_mean, which rliable uses, but ~20x faster on the tiny
    # arrays a bootstrap resamples thousands of times (tests pin the equality).
    v = np.sort(np.asarray(scores, dtype=float), axis=None)
    cut = int(0.25 * v.size)
    return np.array([v[cut:v.size - cut].mean()])


def iqm_with_ci(scores: dict[str, np.ndarray], rng: np.random.Generator,
                reps: int = REPS) -> dict[str, tuple[float, float, float]]:
    """`{name: (iqm, lower, upper)}` for `(runs x tasks)` score arrays."""
    est = interval_estimates(scores, _iqm, rng, reps)
    return {k: (float(p[0]), float(lo[0]), float(hi[0])) for k, (p, lo, hi) in est.items()}


def iqm_curve(curves: np.ndarray) -> np.ndarray:
    """IQM across runs at each point of `(runs x points)` learning curves."""
    v = np.sort(np.asarray(curves, dtype=float), axis=0)
    cut = int(0.25 * v.shape[0])
    return v[cut:v.shape[0] - cut].mean(axis=0)


def iqm_curve_with_ci(curves: dict[str, np.ndarray], rng: np.random.Generator,
                      reps: int = REPS) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Pointwise IQM curves with 95% CIs (each point is its own stratum, as in rliable's
    sample-efficiency curves)."""
    return interval_estimates(curves, iqm_curve, rng, reps)


def probability_of_improvement(x: np.ndarray, y: np.ndarray) -> float:
    """P(a run of X scores higher than a run of Y), averaged over tasks; ties count half."""
    return float(metrics.probability_of_improvement(x, y))


def probability_of_improvement_with_ci(x: np.ndarray, y: np.ndarray, rng: np.random.Generator,
                                       reps: int = REPS) -> tuple[float, float, float]:
    """`(P(X > Y), lower, upper)` with runs of X and Y resampled independently."""
    func = lambda a, b: np.array([metrics.probability_of_improvement(a, b)])  # noqa: E731
    p, lo, hi = interval_estimates({"poi": [x, y]}, func, rng, reps)["poi"]
    return float(p[0]), float(lo[0]), float(hi[0])


def curve_at(timesteps: np.ndarray, returns: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Read one run's evaluations on `grid`: the last evaluation at or before each step
    (NaN before the first evaluation). `timesteps` must be increasing."""
    idx = np.searchsorted(np.asarray(timesteps), np.asarray(grid), side="right") - 1
    out = np.asarray(returns, dtype=float)[np.clip(idx, 0, None)]
    return np.where(idx >= 0, out, np.nan)


def area_under_curve(grid: np.ndarray, curves: np.ndarray) -> np.ndarray:
    """Per-run area under `(runs x points)` curves (trapezoids over the step grid),
    divided by the steps spanned: the mean return over training, in return units."""
    grid = np.asarray(grid, dtype=float)
    return np.trapezoid(curves, grid, axis=-1) / (grid[-1] - grid[0])


def threshold(start: float, final: float, fraction: float) -> float:
    """The return at `fraction` of the way from `start` to `final`.

    With `start` = scratch's return at step 0 and `final` = its final return, this is
    "fraction of scratch's final return", measured as progress from where it began
    (plain `fraction * final` is meaningless for tasks whose returns start negative)."""
    return start + fraction * (final - start)


def steps_to_reach(grid: np.ndarray, curve: np.ndarray, level: float) -> float:
    """First step of `grid` at which `curve` is >= `level`; NaN if it never gets there."""
    hits = np.flatnonzero(np.asarray(curve) >= level)
    return float(np.asarray(grid)[hits[0]]) if hits.size else float("nan")


def normalize(scores: np.ndarray, expert: float | None, floor: float = 0.0) -> np.ndarray:
    """Expert-normalized return `(score - floor) / (expert - floor)`: 1.0 is the expert.
    With no expert return (test banks), the scores come back unchanged."""
    if expert is None:
        return np.asarray(scores, dtype=float)
    if expert == floor:
        raise ValueError(f"cannot normalize: the expert's return equals the floor ({floor})")
    return (np.asarray(scores, dtype=float) - floor) / (expert - floor)


def verdict(x: tuple[float, float, float], y: tuple[float, float, float],
            poi: tuple[float, float, float]) -> str:
    """"wins", "loses" or "ties" for X against Y.

    `x` and `y` are (estimate, lower, upper) of a score, `poi` is P(X > Y) with its CI.
    X wins when its CI lies wholly above Y's, or when the CI of P(X > Y) lies wholly
    above 0.5; it loses in the mirror cases; anything else is a tie."""
    win = x[1] > y[2] or poi[1] > 0.5
    lose = x[2] < y[1] or poi[2] < 0.5
    if win and not lose:
        return "wins"
    if lose and not win:
        return "loses"
    return "ties"


def performance_profile(scores: dict[str, np.ndarray], taus: np.ndarray, rng: np.random.Generator,
                        reps: int = REPS) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Score distributions: the fraction of runs scoring above each tau, with 95% CIs
    (rliable's performance profile, computed with our generator)."""
    taus = np.asarray(taus, dtype=float)
    return interval_estimates(scores, lambda s: (s.reshape(-1, 1) > taus).mean(axis=0), rng, reps)
