"""The precision planner against simulated editions scored the way the scoring does.

Each simulated edition of a category draws true scores (a common quality factor plus a
channel-specific part, and a survey score), the visits of the plan (with the replicate
subsample of the single-test channels) and the respondents; it computes channel SEs from
the pooled within-authority variance on N − A df (METHODOLOGY.md step 4), the survey SE from
each candidate's own respondents, the overall SE with Welch–Satterthwaite df and its t
interval, and the top-1 set from ``scoring.rank_sets(..., simultaneous=True)``. The planner's
expected half-width and top-1 size must agree within 10 % (issue #12, acceptance). Normal
scores without ceilings or grid steps: the planner's model, so this checks its algebra and
its approximations (equal SEs, the stepdown on the expected configuration), not the scores'
shape.
"""

from __future__ import annotations

import math
from dataclasses import FrozenInstanceError, dataclass

import numpy as np
import pytest
from scipy import stats

from scoring import (
    AlternativeKind,
    FieldworkPlan,
    VarianceComponents,
    compare_plans,
    forecast_precision,
    rank_sets,
)
from scoring.planner import replicate_count, simultaneous_top_critical_value

CHANNEL_WEIGHTS = {
    "guichet": 25.0,
    "telephone": 25.0,
    "courriel": 20.0,
    "site": 15.0,
    "courrier": 10.0,
    "reseaux": 5.0,
}
DEFAULT_VISITS = {
    "guichet": 2,
    "telephone": 3,
    "courriel": 2,
    "site": 1,
    "courrier": 1,
    "reseaux": 1,
}
# Uneven within-authority SDs, so the planner's per-channel algebra is exercised.
WITHIN_SD = {"guichet": 26.0, "telephone": 30.0, "courriel": 28.0, "site": 22.0, "courrier": 32.0,
             "reseaux": 27.0}  # fmt: skip
RESPONDENT_SD = 20.0
CHANNEL_TRUE_SD = 12.0
SURVEY_TRUE_SD = 12.0
COMMON_SHARE = 0.6  # share of a true score's variance from the candidate's common quality
SURVEY_WEIGHT, MYSTERY_WEIGHT = 0.4, 0.6
LEVEL = 0.95
REPLICATE_SHARE, REPLICATE_MINIMUM = 0.15, 10


def _loadings() -> np.ndarray:
    total = sum(CHANNEL_WEIGHTS.values())
    return np.array(
        [SURVEY_WEIGHT] + [MYSTERY_WEIGHT * w / total for w in CHANNEL_WEIGHTS.values()]
    )


def _true_overall_sd() -> float:
    """SD of the true overall scores implied by the simulation's generating model."""
    sds = np.array([SURVEY_TRUE_SD] + [CHANNEL_TRUE_SD] * len(CHANNEL_WEIGHTS))
    cov = COMMON_SHARE * np.outer(sds, sds)
    np.fill_diagonal(cov, sds**2)
    loadings = _loadings()
    return float(math.sqrt(loadings @ cov @ loadings))


def _components() -> VarianceComponents:
    return VarianceComponents(
        within_sd=WITHIN_SD,
        respondent_sd=RESPONDENT_SD,
        between_sd=_true_overall_sd(),
        channel_between_sd={channel: CHANNEL_TRUE_SD for channel in CHANNEL_WEIGHTS},
    )


def _plan(visits: dict[str, int], respondents: int = 30) -> FieldworkPlan:
    return FieldworkPlan(
        visits=visits,
        respondents=respondents,
        replicate_share=REPLICATE_SHARE,
        replicate_minimum=REPLICATE_MINIMUM,
    )


@dataclass(frozen=True)
class Simulated:
    half_width: float  # mean over candidates and editions
    top1_size: float  # mean top-1 set size from scoring.rank_sets
    rule_size: float  # mean of the planner's rule on the same estimates (true V, its c)


def _simulate(
    plan: FieldworkPlan, candidates: int, editions: int, seed: int, *, critical: float, se: float
) -> Simulated:
    """Simulated editions of one category; ``critical`` and ``se`` feed the control variate."""
    rng = np.random.default_rng(seed)
    total_weight = sum(CHANNEL_WEIGHTS.values())
    replicated = replicate_count(candidates, share=REPLICATE_SHARE, minimum=REPLICATE_MINIMUM)
    half_widths, sizes, rule_sizes = [], [], []
    for _ in range(editions):
        common = rng.standard_normal(candidates)

        def true_scores(sd: float, centre: float, common: np.ndarray = common) -> np.ndarray:
            own = rng.standard_normal(candidates)
            mixed = math.sqrt(COMMON_SHARE) * common + math.sqrt(1 - COMMON_SHARE) * own
            return centre + sd * mixed

        estimate = np.zeros(candidates)
        parts: list[tuple[np.ndarray, np.ndarray]] = []  # (weighted variance, df) per component
        for channel, weight in CHANNEL_WEIGHTS.items():
            truth = true_scores(CHANNEL_TRUE_SD, 70.0)
            k = np.full(candidates, plan.visits[channel])
            if plan.visits[channel] == 1:
                k[rng.choice(candidates, replicated, replace=False)] = 2
            authority = np.repeat(np.arange(candidates), k)
            visit = truth[authority] + WITHIN_SD[channel] * rng.standard_normal(len(authority))
            mean = np.bincount(authority, weights=visit) / k
            # Pooled within-authority variance of the (category, channel) on N − A df.
            df = len(visit) - candidates
            pooled = float(np.sum((visit - mean[authority]) ** 2)) / df
            share = MYSTERY_WEIGHT * weight / total_weight
            estimate += share * mean
            parts.append((share**2 * pooled / k, np.full(candidates, float(df))))
        survey_truth = true_scores(SURVEY_TRUE_SD, 75.0)
        answers = survey_truth[:, None] + RESPONDENT_SD * rng.standard_normal(
            (candidates, plan.respondents)
        )
        estimate += SURVEY_WEIGHT * answers.mean(axis=1)
        survey_variance = answers.var(axis=1, ddof=1) / plan.respondents
        parts.append(
            (SURVEY_WEIGHT**2 * survey_variance, np.full(candidates, plan.respondents - 1.0))
        )
        variance = sum(part for part, _ in parts)
        df = variance**2 / sum(part**2 / dof for part, dof in parts)
        se = np.sqrt(variance)
        half_widths.append(float(np.mean(stats.t.ppf(0.5 + LEVEL / 2, df) * se)))
        sets = rank_sets(estimate, se, level=LEVEL, simultaneous=True)
        sizes.append(int(np.sum(sets.lower <= 1)))
        rule_sizes.append(int(np.sum(estimate.max() - estimate <= critical * math.sqrt(2) * se)))
    return Simulated(
        half_width=float(np.mean(half_widths)),
        top1_size=float(np.mean(sizes)),
        rule_size=float(np.mean(rule_sizes)),
    )


def _rule_size_by_draws(candidates: int, se: float, critical: float, seed: int) -> float:
    """Mean size of {j: max θ̂ − θ̂_j ≤ c·√2·SE} over 20,000 cheap editions of normal
    estimates N(0, τ² + SE²): the rule's expectation, without the planner's integral."""
    rng = np.random.default_rng(seed)
    spread = math.sqrt(_true_overall_sd() ** 2 + se**2)
    sizes = []
    for _ in range(4):
        estimate = spread * rng.standard_normal((5_000, candidates))
        gap = estimate.max(axis=1, keepdims=True) - estimate
        sizes.append(np.sum(gap <= critical * math.sqrt(2) * se, axis=1))
    return float(np.mean(np.concatenate(sizes)))


def _expected_size_from_simulation(
    plan: FieldworkPlan, candidates: int, editions: int, seed: int
) -> tuple[float, float, float]:
    """(mean half-width, raw mean top-1 size, control-variate estimate of its expectation).

    The top-1 size of a category varies a lot between editions (SD ≈ 36 at 250 candidates:
    it hangs on the leader's draw), so its raw mean over the few editions a test affords is
    noisy. The planner's rule on the same estimates (true SE, the planner's c) moves with it
    almost one for one: E[rank_sets size] = mean(rank_sets − rule) + E[rule], with E[rule]
    from many cheap draws. An error of the planner's critical value, of its SE or of its
    equal-SE assumption shows in the paired difference; one of its integral, in E[rule].
    """
    forecast = _forecast(plan, candidates)
    simulated = _simulate(
        plan, candidates, editions, seed, critical=forecast.critical_value, se=forecast.se
    )
    rule = _rule_size_by_draws(candidates, forecast.se, forecast.critical_value, seed + 1)
    estimate = simulated.top1_size - simulated.rule_size + rule
    return simulated.half_width, simulated.top1_size, estimate


def _forecast(plan: FieldworkPlan, candidates: int):
    return forecast_precision(
        _components(),
        plan,
        candidates=candidates,
        channel_weights=CHANNEL_WEIGHTS,
        survey_weight=SURVEY_WEIGHT,
        mystery_weight=MYSTERY_WEIGHT,
        level=LEVEL,
    )


SCALED = {
    "default": (1, 30),
    "visits x2": (2, 30),
    "visits x4": (4, 30),
    "respondents x2": (1, 60),
}


@pytest.mark.parametrize("design", sorted(SCALED))
def test_forecast_agrees_with_simulated_editions_of_35_candidates(design: str) -> None:
    factor, respondents = SCALED[design]
    plan = _plan({c: factor * k for c, k in DEFAULT_VISITS.items()}, respondents)
    forecast = _forecast(plan, 35)
    half_width, _raw, top1 = _expected_size_from_simulation(
        plan, 35, editions=80, seed=100 * factor + respondents
    )
    # Measured: half-widths within 1 %, top-1 sizes within 0.5 % (raw means within 9 %).
    assert forecast.half_width == pytest.approx(half_width, rel=0.10)
    assert forecast.top1_size == pytest.approx(top1, rel=0.10)


def test_forecast_agrees_with_simulated_editions_of_250_candidates() -> None:
    plan = _plan(dict(DEFAULT_VISITS))
    forecast = _forecast(plan, 250)
    half_width, _raw, top1 = _expected_size_from_simulation(plan, 250, editions=8, seed=250)
    assert forecast.half_width == pytest.approx(half_width, rel=0.10)
    assert forecast.top1_size == pytest.approx(top1, rel=0.10)


@pytest.mark.parametrize("candidates", [2, 35, 250])
def test_critical_value_is_the_scorings_simultaneous_one(candidates: int) -> None:
    # Equal estimates: nothing is rejected, the first step's value is the final one.
    sets = rank_sets(np.zeros(candidates), np.ones(candidates), level=LEVEL, simultaneous=True)
    assert simultaneous_top_critical_value(candidates, LEVEL) == pytest.approx(
        sets.critical_value[0], rel=1e-6
    )
    if candidates == 2:
        # 2·P(Z1 − Z2 > c√2) = 1 − level: the two-sided normal quantile.
        assert simultaneous_top_critical_value(2, LEVEL) == pytest.approx(1.959964, abs=1e-6)


def test_critical_value_follows_the_stepdown_on_the_expected_configuration() -> None:
    candidates, noise_share = 35, 0.07
    position = np.arange(1, candidates + 1)
    expected = -stats.norm.ppf((position - 0.375) / (candidates + 0.25))
    se = math.sqrt(noise_share)  # estimates in units of their spread √(τ² + V)
    sets = rank_sets(expected, np.full(candidates, se), level=LEVEL, simultaneous=True)
    first_step = simultaneous_top_critical_value(candidates, LEVEL)
    stepped = simultaneous_top_critical_value(candidates, LEVEL, noise_share)
    assert stepped < first_step
    assert stepped == pytest.approx(sets.critical_value[0], rel=1e-6)


def test_more_tests_never_cost_precision() -> None:
    alternatives = compare_plans(
        _components(),
        _plan(dict(DEFAULT_VISITS)),
        candidates=35,
        channel_weights=CHANNEL_WEIGHTS,
        survey_weight=SURVEY_WEIGHT,
        mystery_weight=MYSTERY_WEIGHT,
        level=LEVEL,
    )
    current = alternatives[0]
    assert current.kind is AlternativeKind.current
    kinds = [alternative.kind for alternative in alternatives]
    assert kinds.count(AlternativeKind.one_more_visit) == len(CHANNEL_WEIGHTS)
    assert kinds[-2:] == [AlternativeKind.double_visits, AlternativeKind.double_respondents]
    # Heaviest channel first.
    assert [a.channel for a in alternatives[1:3]] == ["guichet", "telephone"]
    for alternative in alternatives[1:]:
        assert alternative.forecast.half_width < current.forecast.half_width
        assert alternative.forecast.top1_size < current.forecast.top1_size
    # The mystery visits dominate the variance: doubling respondents buys little.
    doubled_visits, doubled_respondents = (a.forecast for a in alternatives[-2:])
    assert current.forecast.mystery_share > 0.9
    assert doubled_respondents.top1_size > doubled_visits.top1_size + 3


def test_a_weighted_channel_without_visits_is_imputed_with_the_between_spread() -> None:
    visits = dict(DEFAULT_VISITS, reseaux=0)
    without = _forecast(_plan(visits), 35)
    total = sum(CHANNEL_WEIGHTS.values())
    share = MYSTERY_WEIGHT * CHANNEL_WEIGHTS["reseaux"] / total
    with_one = _forecast(_plan(dict(DEFAULT_VISITS)), 35)
    # One visit, a second for 10 of the 35 candidates: E[1/k] = 1 − 10/35/2.
    expected = (
        with_one.se**2
        - share**2 * WITHIN_SD["reseaux"] ** 2 * (1 - 10 / 35 / 2)
        + share**2 * CHANNEL_TRUE_SD**2 * (1 + 1 / 35)
    )
    assert without.se**2 == pytest.approx(expected, rel=1e-12)


def test_replicates_count_as_expected_value_and_give_the_pool_its_df() -> None:
    assert replicate_count(35, share=0.15, minimum=10) == 10
    assert replicate_count(100, share=0.15, minimum=10) == 15
    assert replicate_count(20, share=0.15, minimum=0) == 3  # 0.15 × 20 is 3, not 4
    assert replicate_count(6, share=0.15, minimum=10) == 6
    plain = _forecast(FieldworkPlan(visits=dict(DEFAULT_VISITS), respondents=30), 35)
    replicated = _forecast(_plan(dict(DEFAULT_VISITS)), 35)
    assert math.isnan(plain.df)  # no replicate: the single-test channels have no pool
    assert replicated.se < plain.se and math.isfinite(replicated.df)


def test_results_are_frozen_and_inputs_checked() -> None:
    forecast = _forecast(_plan(dict(DEFAULT_VISITS)), 35)
    with pytest.raises(FrozenInstanceError):
        forecast.top1_size = 1.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        forecast.plan.visits["guichet"] = 9  # type: ignore[index]
    with pytest.raises(ValueError, match="respondents"):
        _forecast(_plan(dict(DEFAULT_VISITS), respondents=1), 35)
    with pytest.raises(ValueError, match="within-authority"):
        forecast_precision(
            VarianceComponents(within_sd={}, respondent_sd=20.0, between_sd=10.0),
            _plan(dict(DEFAULT_VISITS)),
            candidates=35,
            channel_weights=CHANNEL_WEIGHTS,
            survey_weight=SURVEY_WEIGHT,
            mystery_weight=MYSTERY_WEIGHT,
        )
    with pytest.raises(ValueError, match="non-negative"):
        VarianceComponents(within_sd={"site": -1.0}, respondent_sd=20.0, between_sd=10.0)
    single = _forecast(_plan(dict(DEFAULT_VISITS)), 1)
    assert single.top1_size == 1.0
