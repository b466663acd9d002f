"""Sample-efficiency metrics on arrays whose answers can be worked out by hand."""

import math

import numpy as np
import pytest
from rliable import metrics

from weit_rl import stats


def test_iqm_is_the_mean_of_the_middle_half_as_in_rliable():
    assert stats.iqm(np.arange(1.0, 9.0).reshape(8, 1)) == 4.5  # mean of 3, 4, 5, 6
    assert stats.iqm(np.array([[1.0], [2.0], [100.0]])) == pytest.approx(103 / 3)  # 3 runs: nothing trimmed
    rng = np.random.default_rng(0)
    for shape in [(3, 1), (5, 1), (7, 2), (10, 3)]:
        x = rng.normal(size=shape)
        assert stats.iqm(x) == pytest.approx(metrics.aggregate_iqm(x))


def test_iqm_curve_is_the_pointwise_iqm():
    curves = np.array([[0.0, 10.0], [1.0, 20.0], [2.0, 30.0], [100.0, 40.0]])
    np.testing.assert_allclose(stats.iqm_curve(curves), [1.5, 25.0])  # middle two of each column


def test_curve_at_reads_the_last_evaluation_at_or_before_each_step():
    t, r = np.array([0, 512, 1024]), np.array([1.0, 2.0, 3.0])
    np.testing.assert_array_equal(stats.curve_at(t, r, np.array([0, 500, 512, 1000, 1024, 5000])),
                                  [1, 1, 2, 2, 3, 3])
    assert math.isnan(stats.curve_at(np.array([10]), np.array([1.0]), np.array([0]))[0])


def test_area_under_curve_is_the_mean_return_over_training():
    grid = np.array([0, 1, 2])
    curves = np.array([[0.0, 1.0, 2.0], [3.0, 3.0, 3.0]])
    np.testing.assert_allclose(stats.area_under_curve(grid, curves), [1.0, 3.0])
    # Uneven spacing: trapezoids of width 1 and 3 -> (0.5 + 3 * 1) / 4
    np.testing.assert_allclose(stats.area_under_curve(np.array([0, 1, 4]), np.array([[0.0, 1.0, 1.0]])), [0.875])


def test_threshold_and_steps_to_reach():
    assert stats.threshold(0.0, 200.0, 0.5) == 100.0
    assert stats.threshold(-100.0, 300.0, 0.5) == 100.0  # progress from a negative start
    assert stats.threshold(-100.0, 300.0, 1.0) == 300.0
    grid, curve = np.array([0, 10, 20, 30]), np.array([0.0, 5.0, 4.0, 10.0])
    assert stats.steps_to_reach(grid, curve, 5.0) == 10
    assert stats.steps_to_reach(grid, curve, 6.0) == 30
    assert stats.steps_to_reach(grid, curve, -1.0) == 0
    assert math.isnan(stats.steps_to_reach(grid, curve, 11.0))


def test_expert_normalization():
    np.testing.assert_allclose(stats.normalize(np.array([50.0, 100.0]), 100.0), [0.5, 1.0])
    np.testing.assert_allclose(stats.normalize(np.array([0.0, 100.0]), 100.0, floor=-100.0), [0.5, 1.0])
    np.testing.assert_array_equal(stats.normalize(np.array([3.0]), None), [3.0])  # no expert return: unchanged
    with pytest.raises(ValueError):
        stats.normalize(np.array([1.0]), 0.0)


def test_probability_of_improvement_counts_pairs_and_ties_half():
    col = lambda *v: np.array(v, dtype=float)[:, None]  # noqa: E731
    assert stats.probability_of_improvement(col(2, 3), col(0, 1)) == 1.0
    assert stats.probability_of_improvement(col(0, 1), col(2, 3)) == 0.0
    assert stats.probability_of_improvement(col(1, 2), col(1, 2)) == 0.5
    assert stats.probability_of_improvement(col(1, 3), col(2, 2)) == 0.5  # one pair of two wins per run
    assert stats.probability_of_improvement(col(2, 3), col(2, 1)) == pytest.approx(3.5 / 4)  # 3 wins, 1 tie


def test_same_seed_same_confidence_intervals():
    rng = np.random.default_rng(123)
    scores = {"a": rng.normal(size=(5, 1)), "b": rng.normal(size=(5, 1)) + 1}
    first = stats.iqm_with_ci(scores, np.random.default_rng(7), reps=300)
    second = stats.iqm_with_ci(scores, np.random.default_rng(7), reps=300)
    other = stats.iqm_with_ci(scores, np.random.default_rng(8), reps=300)
    assert first == second
    assert first != other
    for name, (point, low, high) in first.items():
        assert low <= point <= high and point == pytest.approx(stats.iqm(scores[name]))
    p1 = stats.probability_of_improvement_with_ci(scores["b"], scores["a"], np.random.default_rng(7), reps=200)
    p2 = stats.probability_of_improvement_with_ci(scores["b"], scores["a"], np.random.default_rng(7), reps=200)
    assert p1 == p2 and p1[1] <= p1[0] <= p1[2]


def test_bootstrap_leaves_the_global_numpy_rng_alone():
    np.random.seed(5)
    expected = np.random.rand()
    np.random.seed(5)
    stats.iqm_with_ci({"a": np.arange(6.0)[:, None]}, np.random.default_rng(0), reps=50)
    assert np.random.rand() == expected


def test_constant_scores_have_a_zero_width_interval():
    (point, low, high), = stats.iqm_with_ci({"a": np.full((4, 1), 2.5)}, np.random.default_rng(0), reps=50).values()
    assert point == low == high == 2.5


def test_iqm_curve_intervals_bracket_the_curve():
    curves = np.random.default_rng(0).normal(size=(5, 4)).cumsum(axis=1)
    mid, low, high = stats.iqm_curve_with_ci({"a": curves}, np.random.default_rng(0), reps=200)["a"]
    np.testing.assert_allclose(mid, stats.iqm_curve(curves))
    assert mid.shape == low.shape == high.shape == (4,)
    assert np.all(low <= mid + 1e-12) and np.all(mid <= high + 1e-12)


def test_performance_profile_is_the_fraction_of_runs_above_tau():
    scores = {"a": np.array([[0.0], [1.0], [2.0], [3.0]])}
    mid, low, high = stats.performance_profile(scores, np.array([-1.0, 0.5, 2.5, 3.0]),
                                               np.random.default_rng(0), reps=100)["a"]
    np.testing.assert_allclose(mid, [1.0, 0.75, 0.25, 0.0])
    assert np.all(low <= mid) and np.all(mid <= high)


@pytest.mark.parametrize("x, y, poi, expected", [
    ((10, 9, 11), (5, 4, 6), (0.5, 0.4, 0.6), "wins"),      # CIs apart
    ((5, 4, 6), (10, 9, 11), (0.5, 0.4, 0.6), "loses"),
    ((10, 5, 15), (9, 4, 14), (0.9, 0.6, 1.0), "wins"),     # CIs overlap, P(X > Y) surely above 0.5
    ((10, 5, 15), (9, 4, 14), (0.1, 0.0, 0.4), "loses"),
    ((10, 5, 15), (9, 4, 14), (0.6, 0.3, 0.9), "ties"),
])
def test_verdict(x, y, poi, expected):
    assert stats.verdict(x, y, poi) == expected
