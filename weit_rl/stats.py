"""Sample-efficiency statistics as small pure functions on numpy arrays (rliable style).

Per run: `auc_step`, `final_score`, `steps_to_level` on one run's evaluations.
Aggregates over runs: `mean`, `iqm`, `median` (each takes `axis`, so the bootstrap can
call it on a `(reps x runs)` array). Intervals: `bootstrap_ci` (percentile bootstrap,
each sample resampled independently). Tests: `permutation_test` (difference of means),
`smallest_p` (its resolution), `holm`, `decide`. The rules every report applies, defined here
only: `interval` (no interval below MIN_RUNS runs) and `verdict` (with "suggestive"). Every random
draw comes from the one `np.random.Generator` passed in, so a seed fixes every number.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from itertools import combinations

import numpy as np

ALPHA = 0.05  # level of every test and 1 - coverage of every interval
MIN_RUNS = 5  # below this many runs per arm, no interval or verdict is reported
REPS = 10_000  # bootstrap replications / Monte Carlo permutations
FINAL_EVALS = 3  # final score: mean of the last 3 evaluations at or before the budget
LEVELS = (0.25, 0.5, 0.75)  # fractions of the expert's (normalized) return for steps-to-level


# --- One run ----------------------------------------------------------------------------


def curve_at(timesteps: np.ndarray, returns: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Read one run's evaluations on `grid` as a step function: the last evaluation at or
    before each step (NaN before the first evaluation). `timesteps` must be increasing."""
    idx = np.searchsorted(np.asarray(timesteps), np.asarray(grid), side="right") - 1
    out = np.asarray(returns, dtype=float)[np.clip(idx, 0, None)]
    return np.where(idx >= 0, out, np.nan)


def auc_step(timesteps: np.ndarray, returns: np.ndarray, budget: float) -> float:
    """Area under the step-function learning curve over [0, budget], divided by budget.

    Each evaluation's return holds from its step until the next evaluation (the last one
    until `budget`): sum_i r_i * (t_{i+1} - t_i) / budget with t_{n} = budget. Steps past
    the budget (a last PPO rollout that overshoots) count as the budget. The result is the
    mean score over training, in the units of `returns`; the first evaluation must be at 0."""
    t = np.minimum(np.asarray(timesteps, dtype=float), budget)
    r = np.asarray(returns, dtype=float)
    if t.size == 0 or t[0] != 0 or np.any(np.diff(t) < 0):
        raise ValueError("auc_step needs evaluations at increasing steps starting at step 0")
    return float(np.sum(r * np.diff(np.r_[t, budget])) / budget)


def final_score(timesteps: np.ndarray, returns: np.ndarray, budget: float, last: int = FINAL_EVALS) -> float:
    """Mean of the last `last` evaluations at or before `budget` (fewer if the run has fewer):
    an evaluation after a PPO rollout that overshoots the budget does not count the end twice."""
    kept = np.asarray(returns, dtype=float)[np.asarray(timesteps) <= budget]
    return float(np.mean(kept[-last:]))


def keep(grid: np.ndarray, curves: np.ndarray) -> dict[str, float]:
    """How well an arm keeps its start (docs/protocol.md, "Keeping a start"), from its runs'
    normalized curves on one evaluation grid (runs x steps, grid[0] = 0): the mean curve's
    start, its lowest point after step 0 and that step, the keep ratio (lowest / start), and
    the per-run version (the mean over runs of each run's lowest point after 0 over its own
    start), reported beside and never selected on."""
    curves = np.atleast_2d(np.asarray(curves, dtype=float))
    if np.asarray(grid)[0] != 0 or curves.shape[1] < 2:
        raise ValueError("keep needs a grid starting at step 0 and at least one evaluation after it")
    mean_curve = curves.mean(axis=0)
    low = int(np.argmin(mean_curve[1:])) + 1
    return {
        "start": float(mean_curve[0]),
        "lowest": float(mean_curve[low]),
        "lowest_step": float(np.asarray(grid)[low]),
        "keep_ratio": float(mean_curve[low] / mean_curve[0]),
        "keep_ratio_per_run": float(np.mean(curves[:, 1:].min(axis=1) / curves[:, 0])),
    }


def steps_to_level(timesteps: np.ndarray, scores: np.ndarray, level: float) -> float:
    """Step of the first evaluation whose score is >= `level`; +inf if none (censored:
    the run never got there within its budget)."""
    hits = np.flatnonzero(np.asarray(scores, dtype=float) >= level)
    return float(np.asarray(timesteps)[hits[0]]) if hits.size else math.inf


def normalize(scores: np.ndarray, expert: float | None, random: float = 0.0) -> np.ndarray:
    """`(score - random) / (expert - random)`: 0 is the random policy, 1 the expert.
    With `random` = 0 this is score / expert; with no expert, scores come back unchanged."""
    if expert is None:
        return np.asarray(scores, dtype=float)
    if expert == random:
        raise ValueError(f"cannot normalize: the expert's return equals the random policy's ({random})")
    return (np.asarray(scores, dtype=float) - random) / (expert - random)


# --- Aggregates over runs (axis: the runs) ------------------------------------------------


def mean(x: np.ndarray, axis: int = 0) -> np.ndarray:
    return np.mean(np.asarray(x, dtype=float), axis=axis)


def iqm(x: np.ndarray, axis: int = 0) -> np.ndarray:
    """Interquartile mean: the mean after dropping the floor(n/4) lowest and floor(n/4)
    highest runs (scipy's trim_mean(0.25), as rliable). With n < 4 nothing is dropped."""
    v = np.sort(np.asarray(x, dtype=float), axis=axis)
    n = v.shape[axis]
    cut = n // 4
    return np.mean(np.take(v, np.arange(cut, n - cut), axis=axis), axis=axis)


def median(x: np.ndarray, axis: int = 0) -> np.ndarray:
    """Median; +inf values (censored runs) sort last, so it is finite while fewer than
    half of the runs (exactly half for odd n) are censored."""
    v = np.sort(np.asarray(x, dtype=float), axis=axis)
    n = v.shape[axis]
    lo, hi = np.take(v, (n - 1) // 2, axis=axis), np.take(v, n // 2, axis=axis)
    return np.where(lo == hi, lo, (lo + hi) / 2)  # (inf + inf) / 2 is inf; lo == hi avoids inf - inf


def probability_of_improvement(x: np.ndarray, y: np.ndarray, axis: int = 0) -> np.ndarray:
    """P(a run of X scores higher than a run of Y) over all pairs; ties count half."""
    x, y = np.moveaxis(np.asarray(x, float), axis, -1), np.moveaxis(np.asarray(y, float), axis, -1)
    gt = (x[..., :, None] > y[..., None, :]).mean(axis=(-2, -1))
    eq = (x[..., :, None] == y[..., None, :]).mean(axis=(-2, -1))
    return gt + 0.5 * eq


def difference_of_means(x: np.ndarray, y: np.ndarray, axis: int = 0) -> np.ndarray:
    return mean(x, axis) - mean(y, axis)


# --- Intervals and tests --------------------------------------------------------------


def bootstrap_ci(
    samples: Sequence[np.ndarray],
    func: Callable[..., np.ndarray],
    rng: np.random.Generator,
    reps: int = REPS,
    alpha: float = ALPHA,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Percentile bootstrap: `(point, low, high)` of `func(*samples, axis=0)`.

    Each sample is resampled independently along its first axis (runs), in order:
    `idx = rng.integers(0, n, size=(reps, n))`, and `func(*resampled, axis=1)` gives the
    bootstrap distribution. The bounds are its alpha/2 and 1 - alpha/2 order statistics
    (numpy quantile method "lower" and "higher": no interpolation, so +inf is allowed)."""
    arrays = [np.asarray(s, dtype=float) for s in samples]
    point = np.asarray(func(*arrays, axis=0), dtype=float)
    draws = [a[rng.integers(0, a.shape[0], size=(reps, a.shape[0]))] for a in arrays]
    dist = np.asarray(func(*draws, axis=1), dtype=float)
    low = np.quantile(dist, alpha / 2, axis=0, method="lower")
    high = np.quantile(dist, 1 - alpha / 2, axis=0, method="higher")
    return point, low, high


def permutation_test(x: np.ndarray, y: np.ndarray, rng: np.random.Generator, reps: int = REPS) -> float:
    """Two-sided p-value of mean(x) - mean(y) under exchangeable labels.

    Exact (every split of the pooled runs) when there are at most `reps` splits; otherwise
    `reps` random permutations, `rng.permuted` row by row, with p = (1 + hits) / (1 + reps).
    A split counts as extreme when |its difference| >= |observed| (up to rounding)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    pooled, n = np.r_[x, y], x.size
    observed = abs(x.mean() - y.mean())
    tol = 1e-9 * max(1.0, float(np.max(np.abs(pooled))))
    if math.comb(pooled.size, n) <= reps:
        first = np.array(list(combinations(range(pooled.size), n)))
        member = np.zeros((len(first), pooled.size), dtype=bool)
        np.put_along_axis(member, first, True, axis=1)
        diff = (member @ pooled) / n - (~member @ pooled) / y.size
        return float(np.mean(np.abs(diff) >= observed - tol))
    perms = rng.permuted(np.tile(pooled, (reps, 1)), axis=1)
    diff = perms[:, :n].mean(axis=1) - perms[:, n:].mean(axis=1)
    return float((1 + np.sum(np.abs(diff) >= observed - tol)) / (1 + reps))


def smallest_p(n_x: int, n_y: int, reps: int = REPS) -> float:
    """The smallest p `permutation_test` can return for n_x and n_y runs, whatever they hold:
    one split in all of them when exact (two with equal arms: a split and its mirror are
    equally extreme), else 1 / (1 + reps)."""
    splits = math.comb(n_x + n_y, n_x)
    if splits <= reps:
        return (2 if n_x == n_y else 1) / splits
    return 1 / (1 + reps)


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm-adjusted p-values: sorted ascending, p_(i) * (m - i + 1), made monotone,
    capped at 1. Rejecting where the adjusted value is <= alpha is Holm's step-down test."""
    p = np.asarray(pvalues, dtype=float)
    order = np.argsort(p, kind="stable")
    m = p.size
    adjusted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out = np.empty(m)
    out[order] = adjusted
    return out


def decide(difference: float, p: float, alpha: float = ALPHA) -> str:
    """ "better" / "worse" when the test rejects at `alpha` (by the sign of the difference),
    else "inconclusive": a test that does not reject shows no tie, only no decision."""
    if p <= alpha and difference != 0:
        return "better" if difference > 0 else "worse"
    return "inconclusive"


def verdict(difference: float, p: float, p_uncorrected: float | None = None, alpha: float = ALPHA) -> str:
    """The one verdict rule of every report: `decide` on the family's (Holm-corrected) p-value;
    "suggestive" where only the uncorrected test rejects (a lead for a follow-up, not a finding)."""
    out = decide(difference, p, alpha)
    if out == "inconclusive" and p_uncorrected is not None and p_uncorrected <= alpha and difference != 0:
        return "suggestive"
    return out


def interval(
    samples: Sequence[np.ndarray], func: Callable[..., np.ndarray], seed: int, reps: int = REPS
) -> dict[str, float | None]:
    """The one interval rule of every report: the estimate of `func` over the samples with its
    percentile-bootstrap interval from a fresh default_rng(seed) (so each interval can be
    recomputed on its own); the estimate alone, low and high None, below MIN_RUNS runs."""
    arrays = [np.asarray(s, dtype=float) for s in samples]
    if min(a.size for a in arrays) < MIN_RUNS:
        return {"estimate": float(func(*arrays, axis=0)), "low": None, "high": None}
    point, low, high = bootstrap_ci(arrays, func, np.random.default_rng(seed), reps)
    return {"estimate": float(point), "low": float(low), "high": float(high)}


def performance_profile(scores: np.ndarray, taus: np.ndarray, axis: int = 0) -> np.ndarray:
    """Fraction of runs scoring above each tau (rliable's score distribution)."""
    s = np.moveaxis(np.asarray(scores, dtype=float), axis, -1)
    return (s[..., None] > np.asarray(taus, dtype=float)).mean(axis=-2)
