"""Rank confidence sets, τ-best sets, KWW regions and P(best)."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy import stats

from scoring import kww_rank_region, p_best, point_rank, rank_sets, top_set


def test_point_rank_ties_share_best_rank():
    assert_array_equal(point_rank([3.0, 5.0, 5.0, 1.0]), [3, 1, 1, 4])
    assert_array_equal(point_rank([3.0, 5.0, 5.0, 1.0], higher_is_better=False), [2, 3, 3, 1])


@pytest.mark.parametrize("simultaneous", [False, True])
def test_well_separated_estimates_get_single_ranks(simultaneous):
    estimate = np.array([10.0, 50.0, 30.0, 90.0, 70.0])
    result = rank_sets(estimate, np.full(5, 0.5), simultaneous=simultaneous, n_draws=2_000)
    assert_array_equal(result.rank, [5, 3, 4, 1, 2])
    assert_array_equal(result.lower, result.rank)
    assert_array_equal(result.upper, result.rank)


@pytest.mark.parametrize("simultaneous", [False, True])
def test_equal_estimates_give_full_width(simultaneous):
    result = rank_sets(np.full(6, 60.0), np.full(6, 2.0), simultaneous=simultaneous)
    assert_array_equal(result.lower, 1)
    assert_array_equal(result.upper, 6)
    assert_array_equal(result.rank, 1)


@pytest.fixture(scope="module")
def category():
    rng = np.random.default_rng(4)
    p = 40
    return rng.normal(70, 6, p), rng.uniform(1.0, 3.0, p)


def test_intervals_widen_with_level(category):
    estimate, se = category
    previous = None
    for level in (0.80, 0.90, 0.95, 0.99):
        result = rank_sets(estimate, se, level=level, seed=1)
        if previous is not None:
            assert np.all(result.lower <= previous.lower)
            assert np.all(result.upper >= previous.upper)
        previous = result
    assert np.sum(previous.upper - previous.lower) > 0


def test_simultaneous_contains_marginal(category):
    estimate, se = category
    marginal = rank_sets(estimate, se, seed=3)
    simultaneous = rank_sets(estimate, se, seed=3, simultaneous=True)
    assert np.all(simultaneous.lower <= marginal.lower)
    assert np.all(simultaneous.upper >= marginal.upper)
    assert np.all((marginal.lower <= marginal.rank) & (marginal.rank <= marginal.upper))
    assert np.any(simultaneous.upper - simultaneous.lower > marginal.upper - marginal.lower)


def test_stepdown_is_never_wider(category):
    estimate, se = category
    single = rank_sets(estimate, se, seed=5, stepdown=False)
    step = rank_sets(estimate, se, seed=5)
    assert np.all(step.lower >= single.lower)
    assert np.all(step.upper <= single.upper)


def test_lower_is_better_flips(category):
    estimate, se = category
    up = rank_sets(estimate, se, seed=2)
    down = rank_sets(-estimate, se, seed=2, higher_is_better=False)
    assert_array_equal(up.lower, down.lower)
    assert_array_equal(up.upper, down.upper)


def test_covariance_input_agrees_with_standard_errors(category):
    estimate, se = category
    from_se = rank_sets(estimate, se, seed=8)
    from_cov = rank_sets(estimate, np.diag(se**2), seed=8, n_draws=20_000)
    # Exact (SEs) against Monte-Carlo (covariance): agree up to MC error.
    assert_allclose(from_cov.critical_value, from_se.critical_value, atol=0.06)
    assert np.mean(from_cov.lower == from_se.lower) > 0.9


def test_two_units_critical_value_is_normal_quantile():
    # Marginal family {H_12, H_21}: the max is |N(0, 1)|, so c = z_0.975 = 1.959964.
    result = rank_sets([1.0, 2.0], [1.0, 2.0], n_draws=200_000, seed=0)
    assert_allclose(result.critical_value, 1.959964, atol=0.015)


def test_three_units_critical_value_matches_bivariate_normal():
    # Equal SEs: for unit j the two standardised differences have correlation 1/2, so
    # c solves P(|X1| <= c, |X2| <= c) = 0.95 for a bivariate normal (computed by scipy).
    corr = np.array([[1.0, 0.5], [0.5, 1.0]])
    mvn = stats.multivariate_normal(mean=[0, 0], cov=corr)

    def inside(c: float) -> float:
        return mvn.cdf([c, c]) - 2 * mvn.cdf([c, -c]) + mvn.cdf([-c, -c])

    from scipy.optimize import brentq

    exact = brentq(lambda c: inside(c) - 0.95, 1.5, 3.5)
    result = rank_sets([0.0, 0.1, 0.2], [1.0, 1.0, 1.0], n_draws=200_000, seed=1)
    assert_allclose(result.critical_value, exact, atol=0.015)


def test_top_set_contains_point_leader(category):
    estimate, se = category
    leaders = top_set(estimate, se, 1)
    assert np.argmax(estimate) in leaders
    top3 = top_set(estimate, se, 3)
    assert set(leaders) <= set(top3)
    clear = top_set([100.0, 50.0, 40.0], [0.5, 0.5, 0.5], 1)
    assert_array_equal(clear, [0])


def test_kww_hand_derived():
    # alpha = 0.10, p = 3: individual level 0.9^(1/3) = 0.965489,
    # z = qnorm(1 - (1 - 0.965489) / 2) = 2.114054 (R).
    estimate = np.array([80.0, 75.0, 60.0])
    se = np.array([1.0, 2.0, 1.0])
    # Intervals: [77.886, 82.114], [70.772, 79.228], [57.886, 62.114]:
    # 1 and 2 overlap, 3 lies below both.
    result = kww_rank_region(estimate, se, alpha=0.10)
    assert_allclose(result.critical_value, 2.114054, rtol=1e-5)
    assert_array_equal(result.lower, [1, 1, 3])
    assert_array_equal(result.upper, [2, 2, 3])


def test_p_best_matches_normal_probability():
    # Two independent units: P(first) = Phi((m1 - m2) / sqrt(s1^2 + s2^2)).
    shares = p_best([52.0, 50.0], [1.5, 2.0], n_draws=200_000, seed=3)
    exact = stats.norm.cdf(2.0 / np.sqrt(1.5**2 + 2.0**2))
    assert_allclose(shares, [exact, 1 - exact], atol=0.005)
    again = p_best([52.0, 50.0], [1.5, 2.0], n_draws=200_000, seed=3)
    assert_array_equal(shares, again)


def test_rank_sets_are_frozen_and_framed(category):
    estimate, se = category
    result = rank_sets(estimate, se, n_draws=1_000)
    with pytest.raises(ValueError):
        result.lower[0] = 3
    frame = result.to_frame()
    assert list(frame.columns[:3]) == ["rank", "lower", "upper"]
    assert len(frame) == len(estimate)


def test_unstable_flag_and_more_draws_near_the_critical_value():
    # The marginal path from SEs is exact (no draws, never unstable); the simultaneous
    # path draws. Two units, difference just under z_0.975 * sd (the Bonferroni start,
    # exact here, rejects nothing): a Monte-Carlo toss-up.
    tie = [0.0, 1.955 * np.sqrt(2.0)]
    exact = rank_sets(tie, [1.0, 1.0])
    assert exact.n_draws == 0 and not exact.unstable.any()
    # The Monte-Carlo path (full covariance, or asked for): a toss-up is flagged.
    close = rank_sets(
        tie, [1.0, 1.0], simultaneous=True, n_draws=2_000, max_draws=None,
        exact_simultaneous=False,
    )  # fmt: skip
    assert close.unstable.all()
    far = rank_sets([0.0, 10.0], [1.0, 1.0], simultaneous=True, n_draws=2_000)
    assert not far.unstable.any()
    escalated = rank_sets(
        tie, [1.0, 1.0], simultaneous=True, n_draws=2_000, max_draws=32_000,
        exact_simultaneous=False,
    )  # fmt: skip
    assert escalated.n_draws == 32_000
    assert "unstable" in escalated.to_frame().columns
