"""Seed-free rank sets: exact marginal critical values, csranks' published PISA case, P(best).

Reference data and published values: ``tests/scoring/data/pisa2018_README.md``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy import stats

from scoring import p_best, rank_sets, top_set
from scoring.ranks import _marginal_critical_exact

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def pisa() -> pd.DataFrame:
    return pd.read_csv(DATA / "pisa2018_math.csv")


def _monte_carlo_coverage(se, j, critical, worse_open, better_open, draws, rng):
    """Share of draws with max over j's open hypotheses ≤ critical (brute force)."""
    z = rng.standard_normal((len(se), draws)) * se[:, None]
    sd = np.sqrt(se[j] ** 2 + se**2)
    stat = np.full(draws, -np.inf)
    for k in range(len(se)):
        if k == j:
            continue
        if worse_open[k]:
            stat = np.maximum(stat, (z[j] - z[k]) / sd[k])
        if better_open[k]:
            stat = np.maximum(stat, (z[k] - z[j]) / sd[k])
    return np.mean(stat <= critical)


@pytest.mark.parametrize("sided", [False, True])
def test_exact_marginal_critical_value_matches_a_million_draws(sided):
    # Unequal SEs (ratio 4.4); with sided=True some rivals keep one hypothesis only, as
    # after a stepdown rejection, which gives the one-sided factors.
    se = np.array([1.0, 2.5, 0.7, 1.6, 3.1, 1.2])
    p = len(se)
    sd = np.sqrt(se[:, None] ** 2 + se[None, :] ** 2)
    off = ~np.eye(p, dtype=bool)
    worse_open, better_open = off.copy(), off.copy()
    if sided:
        worse_open[0, [1, 2]] = False  # unit 0 already beats 1 and 2
        better_open[0, [4]] = False  # unit 4 already beats unit 0
        worse_open[3, [5]] = False
    units = np.array([0, 3, 4])
    critical = _marginal_critical_exact(
        units, np.full(3, np.nan), se, sd, worse_open, better_open, 0.95
    )
    rng = np.random.default_rng(20240612)
    draws = 1_000_000
    band = 3.0 * np.sqrt(0.95 * 0.05 / draws)  # 3 binomial SDs
    for unit, c in zip(units, critical, strict=True):
        share = _monte_carlo_coverage(se, unit, c, worse_open[unit], better_open[unit], draws, rng)
        assert abs(share - 0.95) < band, (unit, c, share)


def test_exact_marginal_matches_closed_forms():
    # Two units: the family {H_12, H_21} has max |N(0, 1)|, so c = z_0.975 exactly.
    two = rank_sets([1.0, 2.0], [1.0, 2.0])
    assert_allclose(two.critical_value, 1.959963984540054, rtol=1e-10)
    assert two.n_draws == 0
    # A unit without sampling error: Z_j = 0, so P = (2Φ(c) - 1)^2 for two open rivals,
    # and Φ(c)^2 once the stepdown has kept one side of each (both rivals beat it).
    close = rank_sets([0.0, 0.1, 0.2], [0.0, 1.0, 2.0])
    assert_allclose(close.critical_value[0], stats.norm.ppf((1 + np.sqrt(0.95)) / 2), rtol=1e-9)
    beaten = rank_sets([0.0, 5.0, 9.0], [0.0, 1.0, 2.0])
    assert_allclose(beaten.critical_value[0], stats.norm.ppf(np.sqrt(0.95)), rtol=1e-9)
    assert_array_equal(beaten.lower, [3, 1, 1])  # 5 vs 9 on SE √5: not separated


def test_pisa_marginal_set_equals_csranks(pisa):
    uk = int(np.flatnonzero(pisa["jurisdiction"] == "United Kingdom")[0])
    result = rank_sets(pisa["math_score"], pisa["math_se"])
    # csranks vignette: L = 8, rank = 13, U = 23 (R = 1000 draws).
    assert (result.lower[uk], result.rank[uk], result.upper[uk]) == (8, 13, 23)
    assert not result.unstable.any()


@pytest.mark.parametrize(
    ("level", "expected"),
    [
        (0.95, ["Belgium", "Canada", "Denmark", "Estonia", "Finland", "Japan", "Korea",
                "Netherlands", "Poland", "Slovenia", "Sweden", "Switzerland"]),
        (0.90, ["Belgium", "Canada", "Denmark", "Estonia", "Finland", "Japan", "Korea",
                "Netherlands", "Poland", "Slovenia", "Switzerland"]),
    ],
)  # fmt: skip
def test_pisa_top5_sets_equal_csranks(pisa, level, expected):
    # csranks' sets come from its Monte-Carlo max-t: compared on that path (seeded, with
    # adaptive draws); the exact Boole bound, the app's default, may be one rank wider.
    members = top_set(
        pisa["math_score"], pisa["math_se"], 5, level=level, exact_simultaneous=False,
        max_draws=640_000,
    )  # fmt: skip
    assert sorted(pisa["jurisdiction"].iloc[members]) == expected


def test_published_simultaneous_example_equals_csranks():
    # csranks reference page: x <- seq(1, 3, length = 10); sd <- rep(0.2, 10).
    x, sd = np.linspace(1, 3, 10), np.full(10, 0.2)
    result = rank_sets(x, sd, simultaneous=True, exact_simultaneous=False, max_draws=640_000)
    assert_array_equal(result.lower, [7, 6, 5, 4, 3, 2, 1, 1, 1, 1])
    assert_array_equal(result.upper, [10, 10, 10, 10, 9, 8, 7, 6, 5, 4])
    assert_array_equal(top_set(x, sd, 3, exact_simultaneous=False), [4, 5, 6, 7, 8, 9])
    # The exact bound (seed-free) contains csranks' sets and is at most one rank wider.
    bound = rank_sets(x, sd, simultaneous=True)
    assert np.all(bound.lower <= result.lower) and np.all(bound.lower >= result.lower - 1)
    assert np.all(bound.upper >= result.upper) and np.all(bound.upper <= result.upper + 1)


def test_pisa_sets_do_not_depend_on_the_seed(pisa):
    score, se = pisa["math_score"], pisa["math_se"]
    for simultaneous in (False, True):
        # Adaptive draws (x4 per round) until no open decision is inside the MC band.
        first = rank_sets(score, se, simultaneous=simultaneous, seed=0, max_draws=640_000)
        second = rank_sets(score, se, simultaneous=simultaneous, seed=12345, max_draws=640_000)
        assert_array_equal(first.lower, second.lower)
        assert_array_equal(first.upper, second.upper)
        assert not first.unstable.any() and not second.unstable.any()


@pytest.fixture(scope="module")
def large_category():
    # A national category as the barometer sees it: 250 candidates, true scores spread
    # by about 5 points, overall SEs of 2.5 to 4.5 points.
    rng = np.random.default_rng(250)
    truth = rng.normal(70.0, 5.0, 250)
    se = rng.uniform(2.5, 4.5, 250)
    return truth + se * rng.standard_normal(250), se


def test_large_category_marginal_sets_are_exact(large_category):
    estimate, se = large_category
    marginal = rank_sets(estimate, se, seed=1)
    assert marginal.n_draws == 0  # exact: no draws, nothing flagged
    assert not marginal.unstable.any()
    again = rank_sets(estimate, se, seed=2)
    assert_array_equal(marginal.lower, again.lower)
    assert_array_equal(marginal.upper, again.upper)


def test_large_category_simultaneous_sets_are_seed_free(large_category):
    # Independent candidates: the simultaneous critical value is the exact Boole bound
    # over one-sided families (no draw), so two seeds give the same sets, none flagged.
    estimate, se = large_category
    first = rank_sets(estimate, se, simultaneous=True, seed=1)
    second = rank_sets(estimate, se, simultaneous=True, seed=2)
    assert first.n_draws == 0 and not first.unstable.any() and not second.unstable.any()
    assert_array_equal(first.lower, second.lower)
    assert_array_equal(first.upper, second.upper)
    marginal = rank_sets(estimate, se)
    assert np.all(first.lower <= marginal.lower) and np.all(first.upper >= marginal.upper)


def test_boole_simultaneous_bound_is_valid_and_close_to_the_max_t(large_category):
    # The exact bound must cover at least ``level`` (its critical value is at or above the
    # Monte-Carlo max-t quantile, up to the draws' error) and lose little power (≤ 3 %).
    estimate, se = large_category
    estimate, se = estimate[:60], se[:60]
    exact = rank_sets(estimate, se, simultaneous=True, stepdown=False)
    drawn = rank_sets(
        estimate, se, simultaneous=True, stepdown=False, exact_simultaneous=False,
        n_draws=200_000, seed=7,
    )  # fmt: skip
    c_exact, c_drawn = exact.critical_value[0], drawn.critical_value[0]
    assert c_drawn - 0.02 <= c_exact <= 1.03 * c_drawn


def test_few_degrees_of_freedom_widen_the_sets(large_category):
    estimate, se = large_category
    estimate, se = estimate[:60], se[:60]
    known = rank_sets(estimate, se)
    infinite = rank_sets(estimate, se, df=np.full(60, np.inf))
    assert_array_equal(known.lower, infinite.lower)
    assert_array_equal(known.upper, infinite.upper)
    few = rank_sets(estimate, se, df=np.full(60, 4.0))
    assert np.all(few.lower <= known.lower) and np.all(few.upper >= known.upper)
    assert np.sum(few.upper - few.lower) > np.sum(known.upper - known.lower)
    with pytest.raises(ValueError):
        rank_sets(estimate, se, df=np.zeros(60))


def test_p_best_exact_matches_monte_carlo():
    rng = np.random.default_rng(5)
    estimate, se = rng.normal(60, 3, 12), rng.uniform(1.0, 2.5, 12)
    exact = p_best(estimate, se)
    draws = estimate[:, None] + se[:, None] * rng.standard_normal((12, 400_000))
    share = np.bincount(np.argmax(draws, axis=0), minlength=12) / 400_000
    assert_allclose(exact, share, atol=0.004)
    assert_allclose(exact.sum(), 1.0, rtol=1e-9)


def test_shrunken_p_best_is_calibrated():
    # Editions with known truth: among units given P(best) ≈ q, about q are truly best.
    # The plug-in overstates leaders; the empirical-Bayes posterior should not.
    rng = np.random.default_rng(2025)
    predicted, truly_best, plug_in = [], [], []
    for _ in range(300):
        truth = rng.normal(70.0, 3.0, 30)
        se = rng.uniform(2.0, 4.0, 30)
        estimate = truth + se * rng.standard_normal(30)
        predicted.append(p_best(estimate, se, shrink=True))
        plug_in.append(p_best(estimate, se))
        truly_best.append(np.arange(30) == np.argmax(truth))
    q, hit, raw = (np.concatenate(a) for a in (predicted, truly_best, plug_in))
    for low, high in ((0.1, 0.3), (0.3, 0.6), (0.6, 1.0)):
        inside = (q >= low) & (q < high)
        if inside.sum() >= 30:
            assert abs(hit[inside].mean() - q[inside].mean()) < 0.12, (low, high)
    # Overall: the shrunken probabilities match the hit rate of the predicted leaders.
    leaders = q > 0.3
    assert abs(hit[leaders].mean() - q[leaders].mean()) < 0.08
    assert raw[raw > 0.3].mean() > q[q > 0.3].mean() - 0.2  # plug-in is not shrunk


@pytest.mark.parametrize("sided", [False, True])
def test_quadrature_is_exact_for_many_rivals(sided):
    """The product of 250 Φ factors has an edge far sharper than one factor: the fine grid
    must still give P and dP/dc to 1e-10 of a grid four times finer, and the critical
    values that Newton finds on it agree to 1e-10."""
    from scoring import ranks

    rng = np.random.default_rng(11)
    p = 250
    se = rng.uniform(1.3, 3.5, p)
    estimate = rng.normal(65, 8, p)
    sd = np.sqrt(se[:, None] ** 2 + se[None, :] ** 2)
    np.fill_diagonal(sd, 0.0)
    t = (estimate[:, None] - estimate[None, :]) / np.where(sd > 0, sd, 1.0)
    off = ~np.eye(p, dtype=bool)
    worse_open = (t < 3.3) & off
    better_open = np.zeros_like(off) if sided else (-t < 3.3) & off
    units = np.arange(p)
    critical = np.full(p, 3.0)
    fine = ranks._family_probabilities(
        units, critical, se, sd, worse_open, better_open, ranks._FINE_STEP
    )
    finer = ranks._family_probabilities(
        units, critical, se, sd, worse_open, better_open, ranks._FINE_STEP / 4
    )
    assert_allclose(fine[0], finer[0], rtol=0, atol=1e-10)
    assert_allclose(fine[1], finer[1], rtol=0, atol=1e-10)
    solved = _marginal_critical_exact(
        units[::25], np.full(10, np.nan), se, sd, worse_open, better_open, 0.95
    )
    reference = _marginal_critical_exact(
        units[::25], np.full(10, np.nan), se, sd, worse_open, better_open, 0.95,
        (ranks._FINE_STEP / 4,),
    )  # fmt: skip
    assert_allclose(solved, reference, rtol=0, atol=1e-10)
