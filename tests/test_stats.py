"""Sample-efficiency statistics on arrays whose answers can be worked out by hand."""

import math
from itertools import combinations

import numpy as np
import pytest

from weit_rl import stats

col = lambda *v: np.array(v, dtype=float)  # noqa: E731


def test_auc_is_the_integral_of_the_step_function_over_the_budget():
    # 1 holds on [0, 10), 2 on [10, 30), 4 on [30, 40]: (10 + 40 + 40) / 40
    assert stats.auc_step(col(0, 10, 30), col(1, 2, 4), 40) == pytest.approx(90 / 40)
    # An evaluation past the budget (PPO's last rollout) counts as the budget: its width is 0.
    assert stats.auc_step(col(0, 10, 42), col(1, 2, 4), 40) == pytest.approx((10 + 60) / 40)
    assert stats.auc_step(col(0), col(3), 100) == 3.0
    with pytest.raises(ValueError):
        stats.auc_step(col(5, 10), col(1, 2), 40)  # no evaluation at step 0


def test_final_score_is_the_mean_of_the_last_three_evaluations():
    steps = np.array([0, 10, 20, 30, 40])
    assert stats.final_score(steps, col(1, 2, 3, 4, 5), 40) == 4.0
    assert stats.final_score(steps[:2], col(7, 9), 40) == 8.0  # fewer than 3: all of them
    # a PPO run evaluated at 20, 40 and just past the 40-step budget: the extra row does not count
    assert stats.final_score(np.array([0, 20, 40, 41]), col(1, 2, 3, 9), 40) == 2.0


def test_steps_to_level_is_the_first_evaluation_reaching_it_or_censored():
    t, s = col(0, 10, 20, 30), col(0.0, 0.5, 0.4, 0.8)
    assert stats.steps_to_level(t, s, 0.5) == 10  # first hit, even though the next one dips
    assert stats.steps_to_level(t, s, 0.6) == 30
    assert stats.steps_to_level(t, s, -1.0) == 0
    assert stats.steps_to_level(t, s, 0.9) == math.inf  # never: censored


def test_curve_at_reads_the_last_evaluation_at_or_before_each_step():
    t, r = col(0, 512, 1024), col(1, 2, 3)
    np.testing.assert_array_equal(stats.curve_at(t, r, col(0, 500, 512, 1000, 1024, 5000)), [1, 1, 2, 2, 3, 3])
    assert math.isnan(stats.curve_at(col(10), col(1), col(0))[0])


def test_normalization_by_the_random_and_expert_returns():
    np.testing.assert_allclose(stats.normalize(col(-100, 450, 1000), 1000.0, random=-100.0), [0.0, 0.5, 1.0])
    np.testing.assert_allclose(stats.normalize(col(50, 100), 100.0), [0.5, 1.0])  # fallback: R / expert
    np.testing.assert_array_equal(stats.normalize(col(3), None), [3.0])
    with pytest.raises(ValueError):
        stats.normalize(col(1), 5.0, random=5.0)


def test_mean_iqm_and_median():
    assert stats.iqm(np.arange(1.0, 9.0)) == 4.5  # n = 8: drop 2 lowest and 2 highest -> mean(3, 4, 5, 6)
    assert stats.iqm(col(1, 2, 100)) == pytest.approx(103 / 3)  # n = 3: nothing is dropped, IQM = mean
    assert stats.iqm(col(1, 2, 3, 100)) == 2.5  # n = 4: drop one at each end
    assert stats.iqm(np.arange(10.0)) == pytest.approx(np.mean([2, 3, 4, 5, 6, 7]))  # n = 10: drop 2 and 2
    np.testing.assert_allclose(stats.iqm(np.array([[0.0, 1, 2, 9], [4, 4, 5, 5]]), axis=1), [1.5, 4.5])
    assert stats.mean(col(1, 2, 6)) == 3.0
    assert stats.median(col(3, 1, 2)) == 2.0
    assert stats.median(col(1, 2, math.inf)) == 2.0  # one censored of three
    assert stats.median(col(1, math.inf)) == math.inf  # half censored: the median is not reached
    assert stats.median(col(math.inf, math.inf)) == math.inf


def test_bootstrap_is_the_percentile_interval_of_resampled_runs():
    x = col(0.3, 1.7, 2.2, 4.1, 5.9, 7.3)
    point, low, high = stats.bootstrap_ci([x], stats.mean, np.random.default_rng(4), reps=1000)
    rng = np.random.default_rng(4)  # by hand: the same draws
    dist = x[rng.integers(0, 6, size=(1000, 6))].mean(axis=1)
    assert point == pytest.approx(21.5 / 6)
    assert low == np.sort(dist)[math.floor(0.025 * 999)] and high == np.sort(dist)[math.ceil(0.975 * 999)]
    again = stats.bootstrap_ci([x], stats.mean, np.random.default_rng(4), reps=1000)
    other = stats.bootstrap_ci([x], stats.mean, np.random.default_rng(5), reps=1000)
    assert again == (point, low, high) and other != (point, low, high)


def test_bootstrap_of_two_samples_resamples_each_in_turn():
    x, y = col(1, 2, 3, 4, 5), col(0, 0, 1, 1, 1, 2)
    point, low, high = stats.bootstrap_ci([x, y], stats.difference_of_means, np.random.default_rng(0), reps=500)
    rng = np.random.default_rng(0)
    ix, iy = rng.integers(0, 5, size=(500, 5)), rng.integers(0, 6, size=(500, 6))
    dist = x[ix].mean(axis=1) - y[iy].mean(axis=1)
    assert point == pytest.approx(3 - 5 / 6)
    assert (low, high) == (np.quantile(dist, 0.025, method="lower"), np.quantile(dist, 0.975, method="higher"))


def test_bootstrap_bounds_allow_censored_runs_and_constant_scores():
    _, low, high = stats.bootstrap_ci(
        [col(10, 20, math.inf, math.inf, 30)], stats.median, np.random.default_rng(0), reps=300
    )
    assert low >= 10 and high == math.inf
    assert stats.bootstrap_ci([np.full(5, 2.5)], stats.iqm, np.random.default_rng(0), reps=50) == (2.5, 2.5, 2.5)


def test_bootstrap_leaves_the_global_numpy_rng_alone():
    np.random.seed(5)
    expected = np.random.rand()
    np.random.seed(5)
    stats.bootstrap_ci([np.arange(6.0)], stats.iqm, np.random.default_rng(0), reps=50)
    assert np.random.rand() == expected


def test_exact_permutation_test_by_hand():
    # 20 ways to split 1..6 into two groups of 3; only {1,2,3} | {4,5,6} and its mirror are
    # as extreme as the observed difference of 3.
    assert stats.permutation_test(col(1, 2, 3), col(4, 5, 6), np.random.default_rng(0), reps=100) == 2 / 20
    assert stats.permutation_test(col(1, 2), col(1, 2), np.random.default_rng(0), reps=100) == 1.0
    x, y = col(0.3, 1.2, 0.8, 2.0), col(0.1, 0.4, 0.2)
    pooled = np.r_[x, y]
    diffs = [pooled[list(c)].mean() - np.delete(pooled, list(c)).mean() for c in combinations(range(7), 4)]
    expected = np.mean(np.abs(diffs) >= abs(x.mean() - y.mean()) - 1e-12)
    assert stats.permutation_test(x, y, np.random.default_rng(0), reps=35) == pytest.approx(expected)


def test_monte_carlo_permutation_test_is_seeded_and_never_zero():
    x, y = np.arange(10.0) + 100, np.arange(10.0)  # C(20, 10) = 184756 splits > reps: Monte Carlo
    p = stats.permutation_test(x, y, np.random.default_rng(1), reps=999)
    assert p == 1 / 1000  # no permutation is as extreme: (1 + 0) / (1 + reps)
    z = np.random.default_rng(2).normal(size=10)
    p1 = stats.permutation_test(z, y / 10, np.random.default_rng(3), reps=500)
    assert p1 == stats.permutation_test(z, y / 10, np.random.default_rng(3), reps=500)


def test_the_test_rejects_about_five_percent_of_identical_arms():
    """The old rule (separated intervals or P(improvement), two metrics, three baselines)
    fired in about 20% of comparisons of identical arms; the permutation test at 0.05
    must fire in about 5%."""
    rng = np.random.default_rng(0)
    decisions = []
    for _ in range(300):
        x, y = rng.normal(size=10), rng.normal(size=10)
        decisions.append(stats.decide(x.mean() - y.mean(), stats.permutation_test(x, y, rng, reps=400)))
    rate = np.mean([d != "inconclusive" for d in decisions])
    assert 0.01 <= rate <= 0.09, rate


def test_smallest_p_is_what_the_most_extreme_runs_give():
    col = lambda *v: np.array(v, dtype=float)  # noqa: E731
    assert stats.smallest_p(3, 3, reps=100) == 2 / 20  # a split and its mirror
    assert stats.permutation_test(col(4, 5, 6), col(1, 2, 3), np.random.default_rng(0), reps=100) == 2 / 20
    assert stats.smallest_p(1, 3, reps=100) == 1 / 4  # unequal arms: no mirror split
    assert stats.permutation_test(col(10), col(1, 2, 3), np.random.default_rng(0), reps=100) == 1 / 4
    assert stats.smallest_p(5, 5, reps=100) == 1 / 101  # 252 splits > 100: Monte Carlo
    assert stats.smallest_p(5, 5, reps=10_000) == pytest.approx(0.0079, abs=1e-4)


def test_holm_adjusts_by_rank_and_stays_monotone():
    np.testing.assert_allclose(stats.holm([0.01, 0.04, 0.03]), [0.03, 0.06, 0.06])
    np.testing.assert_allclose(stats.holm([0.02, 0.5]), [0.04, 0.5])
    np.testing.assert_allclose(stats.holm([0.6, 0.6]), [1.0, 1.0])
    assert stats.holm([]).size == 0


def test_decide_says_inconclusive_when_the_test_does_not_reject():
    assert stats.decide(0.2, 0.01) == "better"
    assert stats.decide(-0.2, 0.05) == "worse"
    assert stats.decide(0.2, 0.051) == "inconclusive"


def test_probability_of_improvement_counts_pairs_and_ties_half():
    assert stats.probability_of_improvement(col(2, 3), col(0, 1)) == 1.0
    assert stats.probability_of_improvement(col(0, 1), col(2, 3)) == 0.0
    assert stats.probability_of_improvement(col(1, 2), col(1, 2)) == 0.5
    assert stats.probability_of_improvement(col(2, 3), col(2, 1)) == pytest.approx(3.5 / 4)  # 3 wins, 1 tie
    batch = stats.probability_of_improvement(np.array([[2.0, 3], [0, 1]]), np.array([[0.0, 1], [2, 3]]), axis=1)
    np.testing.assert_array_equal(batch, [1.0, 0.0])


def test_performance_profile_is_the_fraction_of_runs_above_tau():
    profile = stats.performance_profile(col(0, 1, 2, 3), col(-1, 0.5, 2.5, 3))
    np.testing.assert_allclose(profile, [1.0, 0.75, 0.25, 0.0])
    above = lambda s, axis: stats.performance_profile(s, col(1.5), axis)  # noqa: E731
    mid, low, high = stats.bootstrap_ci([col(0, 1, 2, 3, 4)], above, np.random.default_rng(0), reps=200)
    assert mid[0] == 0.6 and low[0] <= 0.6 <= high[0]


def test_iqm_matches_rliable_where_it_is_installed():
    metrics = pytest.importorskip("rliable.metrics")
    rng = np.random.default_rng(0)
    for n in (3, 5, 7, 10):
        x = rng.normal(size=n)
        assert stats.iqm(x) == pytest.approx(metrics.aggregate_iqm(x[:, None]))


def test_keep_reads_the_mean_curve_and_reports_the_per_run_version_beside():
    grid = np.array([0, 10, 20, 30])
    runs = np.array([[1.0, 0.5, 0.9, 1.2], [0.6, 0.6, 0.1, 0.8]])  # mean curve 0.8, 0.55, 0.5, 1.0
    out = stats.keep(grid, runs)
    assert out["start"] == pytest.approx(0.8) and out["lowest"] == pytest.approx(0.5)
    assert out["lowest_step"] == 20 and out["keep_ratio"] == pytest.approx(0.5 / 0.8)
    assert out["keep_ratio_per_run"] == pytest.approx((0.5 / 1.0 + 0.1 / 0.6) / 2)
    with pytest.raises(ValueError):
        stats.keep(np.array([10, 20]), runs[:, :2])


def test_keep_recomputes_the_headlines_falls():
    """The keep-and-grow issue's table, from the headline's shipped report (size small)."""
    import json
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "reports" / "headline"
    expected = {("Walker2d-sac", "weit"): (0.70, 0.18, 65_000), ("Ant-sac", "weit"): (0.63, -0.08, 55_000)}
    expected |= {("Hopper-ppo", "weit"): (0.77, 0.54, 80_000), ("Walker2d-sac", "distill"): (0.93, 0.10, 50_000)}
    for (part, arm), (start, lowest, step) in expected.items():
        results = json.loads((root / f"{part}.json").read_text())["results"]
        out = stats.keep(np.array(results["grid"]), np.array(results["sizes"]["small"][arm]["curve"]["runs"]))
        assert (round(out["start"], 2), round(out["lowest"], 2), out["lowest_step"]) == (start, lowest, step)


def test_one_verdict_rule_with_suggestive():
    """stats.verdict, what every report says: the family's (Holm) p decides; where only the
    uncorrected p rejects, "suggestive"; a zero difference is never a verdict."""
    assert stats.verdict(0.1, 0.04, 0.01) == "better" and stats.verdict(-0.1, 0.04) == "worse"
    assert stats.verdict(0.1, 0.2, 0.03) == "suggestive" and stats.verdict(-0.1, 0.2, 0.05) == "suggestive"
    assert stats.verdict(0.1, 0.2, 0.06) == "inconclusive" and stats.verdict(0.1, 0.2) == "inconclusive"
    assert stats.verdict(0.0, 0.01, 0.01) == "inconclusive"


def test_one_interval_rule_below_min_runs():
    few, enough = np.arange(stats.MIN_RUNS - 1.0), np.arange(float(stats.MIN_RUNS))
    assert stats.interval([few], stats.mean, seed=0) == {"estimate": few.mean(), "low": None, "high": None}
    ci = stats.interval([enough], stats.mean, seed=0, reps=200)
    point, low, high = stats.bootstrap_ci([enough], stats.mean, np.random.default_rng(0), 200)
    assert ci == {"estimate": float(point), "low": float(low), "high": float(high)} and low < point < high
