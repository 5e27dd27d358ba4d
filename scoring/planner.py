"""Precision planner: what a fieldwork plan buys before the edition starts.

Given a category's variance components (the previous edition's, or stated defaults) and a
fieldwork plan (visits per channel, respondents per candidate), predict the expected
half-width of a candidate's overall interval and the expected size of the category's
top-1 set (the candidates the simultaneous rank intervals cannot exclude from first
place), for the plan and for simple alternatives (one more visit on a channel, twice the
visits, twice the respondents). Analytic: no draws, no seed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from types import MappingProxyType

import numpy as np
from scipy import optimize, special, stats

__all__ = [
    "AlternativeKind",
    "FieldworkPlan",
    "PlanAlternative",
    "PrecisionForecast",
    "VarianceComponents",
    "compare_plans",
    "forecast_precision",
    "replicate_count",
    "simultaneous_top_critical_value",
]

# Quadrature grid for the one-dimensional normal integrals (standard normal scale): ±9 SD
# holds all but 2e-19 of the mass, and a step of 0.015 keeps the trapezoid rule's error on
# these smooth integrands far below the planner's needs (checked against draws in tests).
_GRID = np.linspace(-9.0, 9.0, 1201)
_GRID_STEP = float(_GRID[1] - _GRID[0])
_GRID_PDF = stats.norm.pdf(_GRID)


def _frozen_mapping(values: Mapping[str, float] | Mapping[str, int]) -> Mapping[str, float]:
    return MappingProxyType({str(key): float(value) for key, value in values.items()})


@dataclass(frozen=True)
class VarianceComponents:
    """A category's variance components, on the 0–100 scale.

    Attributes
    ----------
    within_sd : mapping channel → float
        SD of one visit's score around the candidate's true channel score (the square
        root of the pooled within-authority variance, METHODOLOGY.md step 4).
    respondent_sd : float
        SD of one respondent's index around the candidate's true survey score (with the
        design effect of the weights, as ``se·√n`` of the survey component gives it).
    between_sd : float
        SD across the category's candidates of their true overall scores.
    channel_between_sd : mapping channel → float
        SD across candidates of the true channel scores; used only for a weighted channel
        planned with no visit, which the scoring imputes with the between-candidate
        variance (METHODOLOGY.md step 4).
    source : str
        Where the figures come from (free text, for the reader).
    """

    within_sd: Mapping[str, float]
    respondent_sd: float
    between_sd: float
    channel_between_sd: Mapping[str, float] = field(default_factory=dict)
    source: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "within_sd", _frozen_mapping(self.within_sd))
        object.__setattr__(self, "channel_between_sd", _frozen_mapping(self.channel_between_sd))
        sds = [*self.within_sd.values(), *self.channel_between_sd.values()]
        sds += [self.respondent_sd, self.between_sd]
        if not all(math.isfinite(sd) and sd >= 0 for sd in sds):
            raise ValueError("standard deviations must be finite and non-negative")


@dataclass(frozen=True)
class FieldworkPlan:
    """Tests per candidate: visits per channel and respondents to the survey.

    ``replicate_share`` and ``replicate_minimum`` describe the second tests given to a
    random subsample of the candidates in every single-test channel (the campaign's
    ``replicates`` setting): ``replicate_count`` candidates of a category get two visits.
    """

    visits: Mapping[str, int]
    respondents: int
    replicate_share: float = 0.0
    replicate_minimum: int = 0

    def __post_init__(self) -> None:
        visits = {str(channel): int(count) for channel, count in self.visits.items()}
        if any(count < 0 for count in visits.values()):
            raise ValueError("visit counts must be non-negative")
        if self.respondents < 0:
            raise ValueError("respondents must be non-negative")
        if not 0.0 <= self.replicate_share <= 1.0 or self.replicate_minimum < 0:
            raise ValueError("replicate_share must be in [0, 1] and replicate_minimum ≥ 0")
        object.__setattr__(self, "visits", MappingProxyType(visits))


@dataclass(frozen=True)
class PrecisionForecast:
    """Expected precision of one category under one plan.

    Attributes
    ----------
    plan : FieldworkPlan
    candidates : int
        Candidates ranked in the category (p).
    se : float
        Sampling SD of a candidate's overall score, ``√V``.
    df : float
        Welch–Satterthwaite degrees of freedom of the estimated SE (``inf`` if known).
    half_width : float
        Expected half-width of the overall interval, ``E[t_df · SE_hat]``.
    top1_size : float
        Expected number of candidates in the top-1 set.
    critical_value : float
        Critical value of the simultaneous family on the t-statistic scale.
    mystery_share : float
        Share of ``V`` that comes from the mystery visits (the rest, the survey).
    level : float
    method : str
    """

    plan: FieldworkPlan
    candidates: int
    se: float
    df: float
    half_width: float
    top1_size: float
    critical_value: float
    mystery_share: float
    level: float
    method: str


class AlternativeKind(StrEnum):
    """Which plan a line of the planner's table shows: the configured one or a variant."""

    current = "current"
    one_more_visit = "one_more_visit"  # on one channel, named by ``PlanAlternative.channel``
    double_visits = "double_visits"  # on every channel
    double_respondents = "double_respondents"


@dataclass(frozen=True)
class PlanAlternative:
    """One line of the planner's table: a plan and its forecast."""

    kind: AlternativeKind
    channel: str | None
    forecast: PrecisionForecast


def replicate_count(candidates: int, *, share: float, minimum: int) -> int:
    """Candidates of a category that get a second test in a single-test channel.

    The mission planner's rule: ``min(p, max(minimum, ⌈share · p⌉))``.
    """
    wanted = max(minimum, math.ceil(share * candidates - 1e-9))
    return min(candidates, max(0, wanted))


def _family_exceedance(rivals: np.ndarray, critical: float) -> np.ndarray:
    """P(max over ``m`` rivals of (Z_j − Z_k)/√2 > c) for each ``m`` of ``rivals``.

    Equal SEs: ``U_j ≤ c`` ⇔ every ``Z_k ≥ Z_j − c√2``, so
    ``P(U_j ≤ c) = ∫ φ(z) Φ(c√2 − z)^m dz`` (one-sided factors).
    """
    log_cdf = special.log_ndtr(critical * math.sqrt(2.0) - _GRID)
    inside = np.exp(np.outer(rivals, log_cdf)) @ (_GRID_PDF * _GRID_STEP)
    return np.clip(1.0 - inside, 0.0, 1.0)


def _boole_critical(rivals: np.ndarray, level: float) -> float:
    """``c`` solving ``Σ_j P(U_j > c) = 1 − level`` over families of ``rivals[j]`` rivals."""
    sizes, counts = np.unique(rivals[rivals > 0], return_counts=True)
    if not len(sizes):
        return math.nan

    def excess(critical: float) -> float:
        return float(counts @ _family_exceedance(sizes, critical)) - (1.0 - level)

    return float(optimize.brentq(excess, 0.0, 40.0, xtol=1e-9))


@lru_cache(maxsize=4096)
def simultaneous_top_critical_value(
    candidates: int, level: float, noise_share: float = 0.0
) -> float:
    """Critical value of the simultaneous family for p equally precise units.

    Parameters
    ----------
    candidates : int
        Number of units p (at least 2).
    level : float
    noise_share : float
        ``V / (τ² + V)``: the share of the estimates' spread that is sampling noise; it
        decides how many hypotheses the stepdown rejects. 0 gives the first step's value
        (no stepdown).

    Returns
    -------
    float
        ``c`` on the t-statistic scale: rival ``k`` is significantly above ``j`` when
        ``(θ̂_k − θ̂_j)/√(2V) > c``.

    Notes
    -----
    The scoring's simultaneous family (``scoring.rank_sets``; Mogstad, Romano, Shaikh &
    Wilhelm 2024, doi:10.1093/restud/rdad006) takes its seed-free critical value from
    Boole's inequality over the one-sided "upper" families ``U_j = max_k (Z_j − Z_k)/σ_jk``
    of the open hypotheses ``H_jk``: ``Σ_j P(U_j > c) = 1 − level``. With equal SEs each
    family's law is the integral of :func:`_family_exceedance`, and only its number of
    rivals matters. The stepdown closes ``H_jk`` once ``j`` is shown above ``k``; the
    planner follows it on the expected configuration of the estimates — their normal
    order statistics (Blom 1958 plotting positions) with SD ``√(τ² + V)`` — where the
    unit ranked ``i`` keeps the ``i − 1`` rivals above it and those below it within
    ``c·√(2V)``, until ``c`` no longer moves. (The max-t critical value, the quantile of
    the range of p normals over √2, is about 2 % lower: Tippett 1925, doi:10.2307/2332087.)
    """
    if candidates < 2:
        raise ValueError("the family needs at least two units")
    _check_level(level)
    if not 0.0 <= noise_share <= 1.0:
        raise ValueError("noise_share must be in [0, 1]")
    rivals = np.full(candidates, candidates - 1)
    critical = _boole_critical(rivals, level)
    if noise_share == 0.0:
        return critical
    position = np.arange(1, candidates + 1)
    # Expected estimates in units of their spread √(τ² + V), best first.
    expected = -stats.norm.ppf((position - 0.375) / (candidates + 0.25))
    for _ in range(50):
        margin = critical * math.sqrt(2.0 * noise_share)
        # Rivals below i within the margin: the first index whose estimate falls below it.
        within = np.searchsorted(-expected, -expected + margin, side="right") - position
        updated = _boole_critical((position - 1) + within, level)
        if abs(updated - critical) < 1e-9:
            return updated
        critical = updated
    return critical


def _check_level(level: float) -> None:
    if not 0.5 < level < 1.0:
        raise ValueError(f"level must be in (0.5, 1), got {level}")


def _expected_sd_factor(df: float) -> float:
    """E[s/σ] for s² on ``df`` degrees of freedom (chi distribution; c4 of control charts)."""
    if not math.isfinite(df):
        return 1.0
    return float(
        math.sqrt(2.0 / df) * math.exp(special.gammaln((df + 1) / 2) - special.gammaln(df / 2))
    )


def _expected_top1_size(candidates: int, se: float, between_sd: float, critical: float) -> float:
    """p · P(no rival's estimate lies more than c·√(2V) above the unit's own)."""
    if candidates == 1:
        return 1.0
    spread = math.sqrt(between_sd**2 + se**2)
    if spread == 0.0:
        return float(candidates)
    margin = critical * math.sqrt(2.0) * se / spread
    below = stats.norm.cdf(_GRID + margin) ** (candidates - 1)
    return float(min(candidates, candidates * np.trapezoid(_GRID_PDF * below, _GRID)))


def forecast_precision(
    components: VarianceComponents,
    plan: FieldworkPlan,
    *,
    candidates: int,
    channel_weights: Mapping[str, float],
    survey_weight: float,
    mystery_weight: float,
    level: float = 0.95,
) -> PrecisionForecast:
    """Expected half-width of the overall interval and expected size of the top-1 set.

    Parameters
    ----------
    components : VarianceComponents
    plan : FieldworkPlan
    candidates : int
        Candidates ranked in the category (p ≥ 1).
    channel_weights : mapping channel → weight
        Normalised to sum 1 over all weighted channels (a missing channel is imputed, never
        renormalised away).
    survey_weight, mystery_weight : float
        Component weights, normalised to sum 1.
    level : float
        The campaign's confidence level.

    Returns
    -------
    PrecisionForecast

    Notes
    -----
    Model: a candidate's channel score is the mean of its ``k_c`` visits, SE
    ``σ_c/√k_c`` with ``σ_c²`` the pooled within-authority variance on ``N − A`` df
    (METHODOLOGY.md step 4); its survey score the mean of ``n`` respondents, SE
    ``s/√n`` on ``n − 1`` df. The overall sampling variance adds the weighted parts,
    ``V = w_s² s²/n + w_m² Σ_c v_c² σ_c²/k_c``, the df follow Welch–Satterthwaite
    (Satterthwaite 1946, doi:10.2307/3002019), and the expected half-width is
    ``t_df · √V · c4(df)``, ``c4(df) = E[SE_hat]/SE``. In a single-test channel the
    ``replicate_count`` candidates with a second visit enter as an expected value:
    ``σ_c² · E[1/k_c]``, and their ``m`` second visits give the pool its ``m`` df.
    A weighted channel with no visit is imputed at the category's channel mean with
    variance ``τ_c²(1 + 1/p)``. When a single-test channel has no replicate at all the
    pool has no df and ``df`` is NaN (the half-width then uses the normal quantile).

    True overall scores are taken as normal across candidates with SD ``between_sd``
    and every candidate with the same ``V``, so the estimates are independent
    ``N(μ, τ² + V)``. Rival ``k`` is significantly above ``j`` when
    ``θ̂_k − θ̂_j > c·√(2V)``, with ``c`` from :func:`simultaneous_top_critical_value`
    (the scoring's exact simultaneous family and its stepdown);
    the top-1 set (Mogstad, Romano, Shaikh & Wilhelm 2024, doi:10.1093/restud/rdad006,
    §4) holds the units no rival is significantly above, so
    ``E[size] = p ∫ φ(x) Φ(x + c√(2V)/√(τ² + V))^{p−1} dx``. The rank sets treat the
    SEs as known, as the planner does for ``c``.
    """
    _check_level(level)
    if candidates < 1:
        raise ValueError("candidates must be at least 1")
    total_component = survey_weight + mystery_weight
    if survey_weight < 0 or mystery_weight < 0 or total_component <= 0:
        raise ValueError("component weights must be non-negative and not both 0")
    w_survey, w_mystery = survey_weight / total_component, mystery_weight / total_component
    weighted = {str(c): float(w) for c, w in channel_weights.items() if w > 0}
    if w_mystery > 0 and not weighted:
        raise ValueError("the mystery component is weighted but no channel is")
    total_channel = sum(weighted.values())
    replicated = replicate_count(
        candidates, share=plan.replicate_share, minimum=plan.replicate_minimum
    )
    parts: list[tuple[float, float]] = []  # (variance contribution to V, its df)
    if w_mystery > 0:
        for channel, weight in weighted.items():
            share = w_mystery * weight / total_channel
            visits = plan.visits.get(channel, 0)
            if visits == 0:
                if channel not in components.channel_between_sd:
                    raise ValueError(f"no between-candidate SD for unvisited channel {channel}")
                tau = components.channel_between_sd[channel]
                df = candidates - 1.0 if candidates > 1 else math.inf
                parts.append((share**2 * tau**2 * (1 + 1 / candidates), df))
                continue
            if channel not in components.within_sd:
                raise ValueError(f"no within-authority SD for channel {channel}")
            sigma2 = components.within_sd[channel] ** 2
            if visits == 1 and replicated > 0:
                inverse_k = 1.0 - replicated / candidates / 2.0
                df = float(replicated)
            else:
                inverse_k = 1.0 / visits
                df = candidates * (visits - 1.0) if visits > 1 else math.nan
            parts.append((share**2 * sigma2 * inverse_k, df))
    mystery_variance = sum(variance for variance, _ in parts)
    if w_survey > 0:
        if plan.respondents < 2:
            raise ValueError("the survey is weighted: plan at least 2 respondents")
        survey_var = w_survey**2 * components.respondent_sd**2 / plan.respondents
        parts.append((survey_var, plan.respondents - 1.0))
    variance = sum(v for v, _ in parts)
    if any(v > 0 and not df > 0 for v, df in parts):
        # A single-test channel with no replicate has no pooled variance at all.
        df_total = math.nan
    else:
        spread = sum(v**2 / df for v, df in parts if v > 0 and math.isfinite(df))
        df_total = variance**2 / spread if spread > 0 else math.inf
    se = math.sqrt(variance)
    if not math.isfinite(df_total):
        quantile, factor = float(stats.norm.ppf(0.5 + level / 2)), 1.0
    else:
        quantile = float(stats.t.ppf(0.5 + level / 2, df_total))
        factor = _expected_sd_factor(df_total)
    noise_share = variance / (variance + components.between_sd**2) if variance > 0 else 0.0
    critical = (
        simultaneous_top_critical_value(candidates, level, round(noise_share, 6))
        if candidates > 1
        else 0.0
    )
    top1 = _expected_top1_size(candidates, se, components.between_sd, critical)
    return PrecisionForecast(
        plan=plan,
        candidates=candidates,
        se=se,
        df=df_total,
        half_width=quantile * se * factor,
        top1_size=top1,
        critical_value=critical,
        mystery_share=mystery_variance / variance if variance > 0 else 0.0,
        level=level,
        method=(
            "analytic: pooled within variances, Welch–Satterthwaite df; top-1 set from "
            "the simultaneous (Boole) critical value with its stepdown on the expected "
            "configuration, over normal true scores"
        ),
    )


def compare_plans(
    components: VarianceComponents,
    plan: FieldworkPlan,
    *,
    candidates: int,
    channel_weights: Mapping[str, float],
    survey_weight: float,
    mystery_weight: float,
    level: float = 0.95,
) -> tuple[PlanAlternative, ...]:
    """The plan's forecast and its alternatives, in the order a table shows them.

    The current plan; one more visit on each weighted channel (channel weight order,
    heaviest first); twice the visits on every channel; twice the respondents (only when
    the survey is weighted). Arguments as :func:`forecast_precision`.
    """

    def forecast(candidate_plan: FieldworkPlan) -> PrecisionForecast:
        return forecast_precision(
            components,
            candidate_plan,
            candidates=candidates,
            channel_weights=channel_weights,
            survey_weight=survey_weight,
            mystery_weight=mystery_weight,
            level=level,
        )

    def with_visits(visits: Mapping[str, int]) -> FieldworkPlan:
        return FieldworkPlan(
            visits=visits,
            respondents=plan.respondents,
            replicate_share=plan.replicate_share,
            replicate_minimum=plan.replicate_minimum,
        )

    alternatives = [PlanAlternative(AlternativeKind.current, None, forecast(plan))]
    weighted = sorted(
        (str(channel) for channel, weight in channel_weights.items() if weight > 0),
        key=lambda channel: -float(channel_weights[channel]),
    )
    if mystery_weight > 0:
        for channel in weighted:
            visits = dict(plan.visits)
            visits[channel] = visits.get(channel, 0) + 1
            alternatives.append(
                PlanAlternative(
                    AlternativeKind.one_more_visit, channel, forecast(with_visits(visits))
                )
            )
        doubled = {channel: 2 * count for channel, count in plan.visits.items()}
        alternatives.append(
            PlanAlternative(AlternativeKind.double_visits, None, forecast(with_visits(doubled)))
        )
    if survey_weight > 0:
        more_respondents = FieldworkPlan(
            visits=plan.visits,
            respondents=2 * plan.respondents,
            replicate_share=plan.replicate_share,
            replicate_minimum=plan.replicate_minimum,
        )
        alternatives.append(
            PlanAlternative(AlternativeKind.double_respondents, None, forecast(more_respondents))
        )
    return tuple(alternatives)
