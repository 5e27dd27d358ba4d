"""The scoring computation, pure: flattened inputs in, typed score and rank rows out.

Nothing here reads or writes the database: :mod:`app.results.inputs` gathers a
:class:`ScoringInputs`, :func:`compute` turns it into a :class:`ComputedRun`, and
:mod:`app.results.service` stores it. The methods are in METHODOLOGY.md.

Score rows (:class:`ScoreRowData`), per candidate:

- ``overall`` (key ""): Σ component weight × component, variances added, Welch df. Its ``n``
  and ``n_eff`` are the survey part's (respondents, Kish effective n): visits are counted on
  the mystery rows and are never added to respondents;
- ``component`` ``survey``: Hájek mean of the respondents' satisfaction index (design weights
  1, Taylor SE, t on the authority's own df); ``mystery``: the channel scores combined with the
  campaign's channel weights, never renormalised over the channels tested: a weighted channel
  the candidate lacks (and others of its category have) is imputed at the category's channel
  mean with the between-candidate variance (flag ``imputed_channel``), and with
  ``config.missing_channel = "unranked"`` the candidate is also left unranked
  (``missing_channel``). A channel nobody of the category was tested on drops out of every
  member's weights alike;
- ``channel`` (channel code): mean of the k approved visits, SE from the pooled
  within-authority variance of its category and channel for every k
  (:func:`scoring.channel_scores`, one rule in one place), flagged ``national_pool``,
  ``previous_edition_pool`` or ``between_candidate_variance`` when it comes from further away;
- ``theme``: survey themes as Hájek means of the respondents' theme scores, grid themes as
  means of the visits' theme scores (same rule as channels);
- ``item``: key ``"<instrument key>:<item key>"`` (e.g. ``citizen:courtesy``,
  ``grid-guichet:wait``), the item's mean score, for strengths and irritants.

Flags:

- ``fewer_than_5`` (never shown: the respondents' anonymity rule) only on respondent-based rows
  (survey component, survey themes and items); never on visit rows;
- ``insufficient_precision``: on respondent-based rows and the overall score, effective n < 30
  or an interval wider than 30 points (METHODOLOGY.md step 6); on visit-based rows (channels,
  mystery component, grid themes and items) an interval wider than ``VISIT_MAX_CI_WIDTH`` (60)
  points, i.e. a half-width above 30: one to four visits never reach n_eff 30, and with the
  pooled variance a 30-point width would flag nearly every channel (a single visit with a
  within spread of 15 already spans 61 points), so the flag marks the channel scores that
  tell little more than "somewhere in the upper or lower half" — typically a single visit on a
  volatile channel, or a pool on few df. Also on any row without an SE;
- ``ci_cut_low`` / ``ci_cut_high``: the computed bound lay below 0 or above 100; the stored
  bound is cut to the scale and pages mark it as cut;
- ``no_survey`` / ``no_mystery`` (the overall score stands on one component only).

Rank rows (:class:`RankRowData`), per candidate of each category: eligible candidates
(campaign rules, :mod:`app.campaigns.eligibility`) with a finite estimate and SE are ranked:
point rank, simultaneous rank interval (the award table's family) with the τ=1 and τ=3 sets
read from it, the marginal interval (the scorecard's), P(best) (descriptive) and percentile
(share of the other ranked candidates scoring lower, ties counting half). Ineligible
candidates keep their estimate and the reason.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import numpy as np

from app.campaigns.eligibility import channel_tested, index_has_coverage, shortfall, tests_planned
from scoring import (
    ChannelEstimates,
    Design,
    Estimates,
    channel_scores,
    combine_components,
    estimate_means,
    impute_missing_channels,
    p_best,
    precision_flags,
    rank_sets,
    stack_components,
)
from scoring.mystery import BETWEEN_CANDIDATES, IMPUTED, NATIONAL_POOL, PREVIOUS_EDITION

if TYPE_CHECKING:  # the configuration is only read here: no need to load its models
    from app.campaigns.schemas import CampaignConfig

Progress = Callable[[int, str], None]

N_DRAWS = 10_000
MIN_N_EFF = 30.0
MAX_CI_WIDTH = 30.0
MIN_SHOWN = 5
MIN_POOLED_DF = 5
# Visit-based rows: a half-width above 30 points (see the module docstring).
VISIT_MAX_CI_WIDTH = 60.0
NO_OVERALL = "no_overall"
MISSING_CHANNEL = "missing_channel"
# Where a visit-based row's variance comes from, when not its own (category, channel) pool.
VARIANCE_FLAGS = {
    NATIONAL_POOL: "national_pool",
    PREVIOUS_EDITION: "previous_edition_pool",
    BETWEEN_CANDIDATES: "between_candidate_variance",
}


class ScoreLevel(StrEnum):
    overall = "overall"
    component = "component"  # key: survey | mystery
    channel = "channel"  # key: channel code (mystery grids) — INSTRUMENTS.md
    theme = "theme"  # key: theme code
    item = "item"  # key: item key (strengths and irritants on the scorecard)


# --- what goes in ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SurveyItem:
    key: str
    weight: float
    theme: str | None


@dataclass(frozen=True)
class VisitTable:
    """Approved visits, one entry per visit, aligned arrays."""

    ids: list[str]
    candidate: np.ndarray  # index into ScoringInputs.codes
    channel: np.ndarray  # channel code (object array)
    score: np.ndarray  # channel score of the visit 0–100 (0 after a knock-out), NaN if missing
    knocked_out: np.ndarray  # bool
    themes: dict[str, np.ndarray]  # theme key → score of the visit's theme node (NaN: absent)
    items: dict[str, np.ndarray]  # "grid-key:item" → item score (NaN: missing)


@dataclass(frozen=True)
class ScoringInputs:
    campaign_id: int
    year: int
    config: CampaignConfig
    # Candidates (sorted by authority code) and their categories.
    codes: list[str]
    categories: list[str]
    # Survey: one row per valid response.
    survey_key: str
    survey_items: list[SurveyItem]
    themes: list[str]  # survey theme keys
    response_candidate: np.ndarray  # int32 index into codes
    item_scores: np.ndarray  # (n responses, n survey items) 0–100, NaN missing
    visits: VisitTable
    instruments: list[dict[str, Any]]  # key, version, sha256 of each pinned version
    counts: dict[str, Any] = field(default_factory=dict)
    inputs_sha256: str = ""
    # The previous edition's national pool of each channel, channel → (dispersion, df), in
    # the terms of scoring.channel_scores' variance model (its ``pools`` rows with category
    # None): used only for a channel with no replicate visit at all this edition.
    previous_pools: dict[str, tuple[float, float]] = field(default_factory=dict)

    @property
    def n_responses(self) -> int:
        return int(self.item_scores.shape[0])


# --- what comes out -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScoreRowData:
    """One estimate of one candidate, as a ``ScoreRow`` stores it (same field names)."""

    authority_code: str
    level: str
    key: str
    estimate: float | None
    se: float | None
    df: float | None
    ci_low: float | None
    ci_high: float | None
    n: int
    n_eff: float | None
    flags: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RankRowData:
    """A candidate's place in its category, as a ``RankRow`` stores it (same field names)."""

    category: str
    authority_code: str
    eligible: bool
    ineligible_reason: str
    estimate: float | None
    se: float | None
    rank: int | None
    rank_low: int | None
    rank_high: int | None
    in_top1_set: bool
    in_top3_set: bool
    marginal_low: int | None
    marginal_high: int | None
    unstable: bool
    p_best: float | None
    percentile: float | None


@dataclass(frozen=True)
class CategoryCounts:
    candidates: int
    scored: int
    eligible: int


@dataclass(frozen=True)
class ComputedRun:
    """Every row of a run, sorted as stored, and the per-category counts of its summary."""

    score_rows: list[ScoreRowData]
    rank_rows: list[RankRowData]
    categories: dict[str, CategoryCounts]

    def summary(self) -> dict[str, Any]:
        """The run's own part of the stored summary (the inputs add their counts)."""
        return {
            "categories": {
                key: {"candidates": c.candidates, "scored": c.scored, "eligible": c.eligible}
                for key, c in self.categories.items()
            },
            "score_rows": len(self.score_rows),
            "rank_rows": len(self.rank_rows),
            # Rank rows whose intervals could still depend on Monte-Carlo error (0 with
            # independent candidates: both families are computed exactly).
            "unstable_rank_rows": sum(row.unstable for row in self.rank_rows),
        }


def ineligibility_code(
    *,
    respondents: tuple[int, int] | None,
    channels: tuple[int, int] | None,
    no_overall: bool,
    missing_channel: bool = False,
) -> str:
    """``respondents:12/30; channels:1/3`` — stored in rank rows and open data as is
    (:func:`app.results.labels.describe_ineligibility` puts it in words)."""
    parts = []
    if respondents is not None:
        parts.append(f"respondents:{respondents[0]}/{respondents[1]}")
    if channels is not None:
        parts.append(f"channels:{channels[0]}/{channels[1]}")
    if missing_channel:
        parts.append(MISSING_CHANNEL)
    if no_overall:
        parts.append(NO_OVERALL)
    return "; ".join(parts)


# --- helpers ----------------------------------------------------------------------------------


def _num(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) or math.isinf(value) else value


def _on_scale(bound: Any) -> float | None:
    """A confidence bound cut to the 0–100 score scale.

    No score lies outside the scale, so a bound beyond it is stored at the edge; the row is
    flagged ``ci_cut_low`` / ``ci_cut_high`` so that pages show the cut, and the standard
    error is kept as computed (rankings and precision flags use the raw width).
    """
    value = _num(bound)
    return None if value is None else min(max(value, 0.0), 100.0)


def _rows_from(
    estimates: Estimates,
    *,
    codes: list[str],
    level: ScoreLevel,
    key: str | Callable[[Any], str],
    respondents: bool,
    extra_flags: Callable[[int], list[str]] | None = None,
) -> list[ScoreRowData]:
    """Score rows of one result whose domains are candidate indices (or (candidate, key)).

    ``respondents``: the estimate stands on survey respondents (effective-n and anonymity
    rules apply) rather than on visits (interval width only, ``VISIT_MAX_CI_WIDTH``).
    """
    flags = precision_flags(
        estimates,
        min_n_eff=MIN_N_EFF,
        max_ci_width=MAX_CI_WIDTH if respondents else VISIT_MAX_CI_WIDTH,
        min_n=MIN_SHOWN,
        respondents=respondents,
    )
    insufficient = flags["insufficient_precision"].to_numpy()
    suppress = flags["suppress"].to_numpy()
    cut_low = flags["ci_cut_low"].to_numpy()
    cut_high = flags["ci_cut_high"].to_numpy()
    sources = estimates.variance_source if isinstance(estimates, ChannelEstimates) else None
    rows = []
    for i, domain in enumerate(estimates.domains):
        if isinstance(domain, tuple):
            candidate, label = int(domain[0]), domain[1]
            row_key = key(label) if callable(key) else key
        else:
            candidate = int(domain)
            row_key = key if isinstance(key, str) else key(domain)
        estimate = _num(estimates.estimate[i])
        row_flags = []
        if estimate is not None and insufficient[i]:
            row_flags.append("insufficient_precision")
        if suppress[i]:
            row_flags.append("fewer_than_5")
        if cut_low[i]:
            row_flags.append("ci_cut_low")
        if cut_high[i]:
            row_flags.append("ci_cut_high")
        if sources is not None and sources[i] in VARIANCE_FLAGS:
            row_flags.append(VARIANCE_FLAGS[sources[i]])
        if extra_flags is not None:
            row_flags.extend(extra_flags(i))
        rows.append(
            ScoreRowData(
                authority_code=codes[candidate],
                level=level.value,
                key=row_key,
                estimate=estimate,
                se=_num(estimates.se[i]),
                df=_num(estimates.df[i]),
                ci_low=_on_scale(estimates.ci_low[i]),
                ci_high=_on_scale(estimates.ci_high[i]),
                n=int(estimates.n[i]),
                n_eff=_num(estimates.n_eff[i]),
                flags=tuple(row_flags),
            )
        )
    return rows


def _subset(estimates: Estimates, keep: np.ndarray) -> Estimates:
    return Estimates(
        domains=estimates.domains[keep],
        estimate=estimates.estimate[keep],
        se=estimates.se[keep],
        df=estimates.df[keep],
        ci_low=estimates.ci_low[keep],
        ci_high=estimates.ci_high[keep],
        n=estimates.n[keep],
        n_eff=estimates.n_eff[keep],
        level=estimates.level,
        method=estimates.method,
    )


def _concat(parts: list[Estimates]) -> Estimates:
    first = parts[0]
    domains = first.domains.append([part.domains for part in parts[1:]])

    def joined(name: str) -> np.ndarray:
        return np.concatenate([getattr(part, name) for part in parts])

    return Estimates(
        domains=domains,
        estimate=joined("estimate"),
        se=joined("se"),
        df=joined("df"),
        ci_low=joined("ci_low"),
        ci_high=joined("ci_high"),
        n=joined("n"),
        n_eff=joined("n_eff"),
        level=first.level,
        method=first.method,
    )


# --- the citizen survey -----------------------------------------------------------------------


@dataclass(frozen=True)
class SurveyEstimates:
    """Hájek means per candidate of the respondents' index, theme and item scores."""

    index: Estimates
    themes: dict[str, Estimates]  # survey theme key → estimates
    items: dict[str, Estimates]  # "<survey key>:<item key>" → estimates


def survey_estimates(inputs: ScoringInputs, level: float) -> SurveyEstimates | None:
    """The survey's estimates, or None without any valid response."""
    scores = inputs.item_scores
    if scores.shape[0] == 0:
        return None
    weights = np.array([item.weight for item in inputs.survey_items])
    present = ~np.isnan(scores)
    present_weights = present.astype(float)
    filled = np.where(present, scores, 0.0)

    def node(mask: np.ndarray) -> np.ndarray:
        w = np.where(mask, weights, 0.0)
        total_weight = w.sum()
        if total_weight <= 0:
            return np.full(scores.shape[0], np.nan)
        covered = present_weights @ w
        summed = filled @ w
        with np.errstate(divide="ignore", invalid="ignore"):
            value = summed / covered
        # The same floor as surveys.submission_scores: missing below it. The index's count of
        # defined values is the respondents' n the eligibility rule reads (one definition,
        # shared with the collection's progress).
        enough = index_has_coverage(covered, total_weight)
        return np.where(enough, value, np.nan)

    # estimate_means takes named columns; the names stay inside this function.
    everything = weights > 0
    columns: dict[str, np.ndarray] = {
        "authority": inputs.response_candidate.astype(np.int64),
        "index": node(everything),
    }
    theme_columns: dict[str, str] = {}
    for theme in inputs.themes:
        mask = np.array([item.theme == theme for item in inputs.survey_items]) & everything
        if mask.any():
            theme_columns[theme] = f"theme {len(theme_columns)}"
            columns[theme_columns[theme]] = node(mask)
    item_columns: dict[str, str] = {}
    for j, item in enumerate(inputs.survey_items):
        item_columns[f"{inputs.survey_key}:{item.key}"] = f"item {j}"
        columns[f"item {j}"] = scores[:, j]
    ys = [name for name in columns if name != "authority"]
    means = estimate_means(columns, ys, Design(), by="authority", level=level, df="domain")
    return SurveyEstimates(
        index=means["index"],
        themes={theme: means[name] for theme, name in theme_columns.items()},
        items={key: means[name] for key, name in item_columns.items()},
    )


# --- the mystery shopping ---------------------------------------------------------------------


def _grouped_visits(
    inputs: ScoringInputs, values: dict[str, np.ndarray], level: float
) -> Estimates | None:
    """Mean per (candidate, label) of visit-level values, as channel scores are computed."""
    visits = inputs.visits
    categories = np.asarray(inputs.categories, dtype=object)
    parts_score, parts_candidate, parts_label = [], [], []
    for label, column in values.items():
        keep = ~np.isnan(column)
        if keep.any():
            parts_score.append(column[keep])
            parts_candidate.append(visits.candidate[keep])
            parts_label.append(np.full(int(keep.sum()), label, dtype=object))
    if not parts_score:
        return None
    candidate = np.concatenate(parts_candidate).astype(np.int64)
    return channel_scores(
        np.concatenate(parts_score),
        candidate,
        np.concatenate(parts_label),
        categories[candidate],
        level=level,
        min_pool_df=MIN_POOLED_DF,
    )


@dataclass(frozen=True)
class MysteryScores:
    rows: list[ScoreRowData]  # channel, mystery component, grid theme and grid item rows
    component: Estimates | None  # the mystery component, None when no channel is weighted
    # Per candidate: a weighted channel tested in its category but not on it (imputed).
    missing_channel: np.ndarray


def _mystery_component(
    channels: ChannelEstimates,
    categories: np.ndarray,
    channel_weights: dict[str, float],
    level: float,
) -> tuple[Estimates | None, ChannelEstimates]:
    """The channels combined with fixed weights after imputing the missing ones.

    Per category, the weights are those of the weighted channels someone of the category was
    tested on, divided by their total: the same for every member, so a gap is never a gain.
    """
    weighted = [channel for channel, weight in channel_weights.items() if weight > 0]
    candidate = np.asarray(channels.domains.get_level_values(0), dtype=np.int64)
    filled = impute_missing_channels(
        channels,
        {int(c): categories[c] for c in np.unique(candidate)},
        weighted,
        level=level,
    )
    filled_candidate = np.asarray(filled.domains.get_level_values(0), dtype=np.int64)
    filled_label = np.asarray(filled.domains.get_level_values(1), dtype=object)
    parts = []
    for category in dict.fromkeys(categories[filled_candidate]):
        members = categories[filled_candidate] == category
        tested = {str(label) for label in filled_label[members]}
        weights = {c: channel_weights[c] for c in weighted if c in tested}
        if not weights:
            continue
        keep = members & np.isin(filled_label, list(weights))
        parts.append(
            combine_components(_subset(filled, keep), weights, level=level, renormalise=False)
        )
    return (_concat(parts) if parts else None), filled


def _mystery(inputs: ScoringInputs, level: float) -> MysteryScores:
    visits = inputs.visits
    codes = inputs.codes
    config = inputs.config
    missing_channel = np.zeros(len(codes), dtype=bool)
    if not len(visits.ids) or np.all(np.isnan(visits.score)):
        return MysteryScores(rows=[], component=None, missing_channel=missing_channel)
    categories = np.asarray(inputs.categories, dtype=object)
    candidate = visits.candidate.astype(np.int64)
    channels = channel_scores(
        visits.score,
        candidate,
        visits.channel,
        categories[candidate],
        level=level,
        min_pool_df=MIN_POOLED_DF,
        previous_pools=inputs.previous_pools,
        knocked_out=visits.knocked_out,
    )
    rows = _rows_from(channels, codes=codes, level=ScoreLevel.channel, key=str, respondents=False)
    channel_weights = {
        str(channel): float(weight) for channel, weight in config.channel_weights.items()
    }
    tested = {str(channel) for channel in channels.domains.get_level_values(1)}
    channel_weights.update({c: 0.0 for c in tested if c not in channel_weights})
    component, filled = _mystery_component(channels, categories, channel_weights, level)
    imputed = np.asarray(filled.domains.get_level_values(0), dtype=np.int64)[
        filled.variance_source == IMPUTED
    ]
    missing_channel[imputed] = True
    if component is not None:
        component_candidate = np.asarray(component.domains, dtype=np.int64)
        rows += _rows_from(
            component,
            codes=codes,
            level=ScoreLevel.component,
            key="mystery",
            respondents=False,
            extra_flags=lambda i: (
                ["imputed_channel"] if missing_channel[component_candidate[i]] else []
            ),
        )
    themes = _grouped_visits(inputs, visits.themes, level)
    if themes is not None:
        rows += _rows_from(themes, codes=codes, level=ScoreLevel.theme, key=str, respondents=False)
    items = _grouped_visits(inputs, visits.items, level)
    if items is not None:
        rows += _rows_from(items, codes=codes, level=ScoreLevel.item, key=str, respondents=False)
    return MysteryScores(rows=rows, component=component, missing_channel=missing_channel)


# --- the overall score, eligibility and rankings ----------------------------------------------


@dataclass(frozen=True)
class OverallScores:
    """Per candidate (aligned with ``ScoringInputs.codes``), NaN where there is none."""

    estimate: np.ndarray
    se: np.ndarray
    df: np.ndarray  # Welch–Satterthwaite df of the SE (inf: known), for the rank sets
    rows: list[ScoreRowData]


def _overall(
    inputs: ScoringInputs,
    components: dict[str, Estimates],
    level: float,
    missing_channel: np.ndarray,
) -> OverallScores:
    n_candidates = len(inputs.codes)
    estimate = np.full(n_candidates, np.nan)
    se = np.full(n_candidates, np.nan)
    if not components:
        return OverallScores(estimate=estimate, se=se, df=np.full(n_candidates, np.inf), rows=[])
    component_weights = inputs.config.component_weights
    combined = combine_components(
        stack_components(components),
        {"survey": component_weights.survey, "mystery": component_weights.mystery},
        level=level,
    )
    overall_index = np.asarray(combined.domains, dtype=np.int64)
    # n and n_eff of the survey part only: respondents and visits are not one sample size.
    survey_n = np.zeros(n_candidates)
    survey_n_eff = np.full(n_candidates, np.nan)
    if "survey" in components:
        survey = components["survey"]
        indices = np.asarray(survey.domains, dtype=np.int64)
        survey_n[indices] = survey.n
        survey_n_eff[indices] = survey.n_eff
    overall = Estimates(
        domains=combined.domains,
        estimate=combined.estimate,
        se=combined.se,
        df=combined.df,
        ci_low=combined.ci_low,
        ci_high=combined.ci_high,
        n=survey_n[overall_index],
        n_eff=survey_n_eff[overall_index],
        level=combined.level,
        method=combined.method + "; n and n_eff of the survey part",
    )
    present = {name: np.zeros(n_candidates, dtype=bool) for name in ("survey", "mystery")}
    for name, component in components.items():
        indices = np.asarray(component.domains, dtype=np.int64)
        present[name][indices] = ~np.isnan(component.estimate)

    def missing_component(i: int) -> list[str]:
        candidate = overall_index[i]
        flags = []
        if component_weights.survey > 0 and not present["survey"][candidate]:
            flags.append("no_survey")
        if component_weights.mystery > 0 and not present["mystery"][candidate]:
            flags.append("no_mystery")
        if missing_channel[candidate] and present["mystery"][candidate]:
            flags.append("imputed_channel")
        return flags

    rows = _rows_from(
        overall,
        codes=inputs.codes,
        level=ScoreLevel.overall,
        key="",
        respondents=True,
        extra_flags=missing_component,
    )
    estimate[overall_index] = overall.estimate
    se[overall_index] = overall.se
    df = np.full(n_candidates, np.inf)
    df[overall_index] = np.where(np.isfinite(overall.df) & (overall.df > 0), overall.df, np.inf)
    return OverallScores(estimate=estimate, se=se, df=df, rows=rows)


@dataclass(frozen=True)
class Eligibility:
    eligible: np.ndarray  # bool per candidate
    reasons: list[str]  # ineligibility code per candidate ("" when eligible)


def _eligibility(
    inputs: ScoringInputs,
    n_respondents: np.ndarray,
    overall: OverallScores,
    missing_channel: np.ndarray,
) -> Eligibility:
    rules = inputs.config.eligibility
    n_candidates = len(inputs.codes)
    visits = inputs.visits
    channels_tested = np.zeros(n_candidates, dtype=int)
    if len(visits.ids):
        pairs: dict[tuple[int, str], int] = {}
        for candidate, channel in zip(visits.candidate, visits.channel, strict=True):
            pairs[(int(candidate), str(channel))] = pairs.get((int(candidate), str(channel)), 0) + 1
        # Replicates count up to the channel's planned tests (app.campaigns.eligibility, the
        # rule the collection's progress shows too).
        planned = tests_planned(inputs.config.tests_per_channel)
        for (candidate, channel), count in pairs.items():
            if channel_tested(
                approved=count,
                planned=planned.get(channel),
                min_visits=rules.min_visits_per_tested_channel,
            ):
                channels_tested[candidate] += 1
    leave_unranked = inputs.config.missing_channel == "unranked"
    eligible = np.ones(n_candidates, dtype=bool)
    reasons: list[str] = []
    for i in range(n_candidates):
        gap = shortfall(
            respondents=int(n_respondents[i]), channels_tested=int(channels_tested[i]), rules=rules
        )
        few_respondents = gap.respondents > 0
        few_channels = gap.channels > 0
        no_overall = (
            not few_respondents
            and not few_channels
            and (_num(overall.estimate[i]) is None or _num(overall.se[i]) is None)
        )
        reason = ineligibility_code(
            respondents=(int(n_respondents[i]), rules.min_respondents) if few_respondents else None,
            channels=(int(channels_tested[i]), rules.min_channels_tested) if few_channels else None,
            no_overall=no_overall,
            missing_channel=bool(leave_unranked and missing_channel[i]),
        )
        eligible[i] = not reason
        reasons.append(reason)
    return Eligibility(eligible=eligible, reasons=reasons)


def _category_seed(seed: int, position: int) -> int:
    return (seed + 1009 * position) % 2**32


@dataclass(frozen=True)
class Ranking:
    """Rank fields of one ranked candidate."""

    rank: int
    rank_low: int  # simultaneous
    rank_high: int
    in_top1_set: bool  # read from the simultaneous interval: rank_low ≤ 1
    in_top3_set: bool
    marginal_low: int
    marginal_high: int
    unstable: bool
    p_best: float
    percentile: float


def _rank_category(
    members: np.ndarray,
    estimate: np.ndarray,
    se: np.ndarray,
    df: np.ndarray,
    *,
    level: float,
    seed: int,
    n_draws: int,
) -> dict[int, Ranking]:
    """Rank fields of the ranked members of one category (indices into candidates)."""
    p = len(members)
    if p == 0:
        return {}
    est, err, freedom = estimate[members], se[members], df[members]
    # Both families are exact with independent candidates (no draw, no seed); an SE on few
    # Welch df widens its unit's intervals (scoring.rank_sets, ``df=``).
    marginal = rank_sets(est, err, level=level, df=freedom)
    # The award table's family: simultaneous intervals, τ-best sets read from them.
    joint = rank_sets(est, err, level=level, simultaneous=True, df=freedom)
    # Calibrated (empirical-Bayes posterior), not the plug-in share: the jury reads it.
    best = p_best(est, err, n_draws=n_draws, seed=seed, shrink=True)
    out: dict[int, Ranking] = {}
    for j, candidate in enumerate(members):
        others = p - 1
        below = int(np.sum(est < est[j]))
        ties = int(np.sum(est == est[j])) - 1
        percentile = 100.0 if others == 0 else 100.0 * (below + 0.5 * ties) / others
        out[int(candidate)] = Ranking(
            rank=int(joint.rank[j]),
            rank_low=int(joint.lower[j]),
            rank_high=int(joint.upper[j]),
            in_top1_set=bool(joint.lower[j] <= 1),
            in_top3_set=bool(joint.lower[j] <= 3),
            marginal_low=int(marginal.lower[j]),
            marginal_high=int(marginal.upper[j]),
            unstable=bool(joint.unstable[j] or marginal.unstable[j]),
            p_best=float(best[j]),
            percentile=round(percentile, 6),
        )
    return out


def _rank_row(
    category: str,
    index: int,
    *,
    inputs: ScoringInputs,
    overall: OverallScores,
    rules: Eligibility,
    ranking: Ranking | None,
) -> RankRowData:
    return RankRowData(
        category=category,
        authority_code=inputs.codes[index],
        eligible=bool(rules.eligible[index]),
        ineligible_reason=rules.reasons[index][:200],
        estimate=_num(overall.estimate[index]),
        se=_num(overall.se[index]),
        rank=ranking.rank if ranking else None,
        rank_low=ranking.rank_low if ranking else None,
        rank_high=ranking.rank_high if ranking else None,
        in_top1_set=ranking.in_top1_set if ranking else False,
        in_top3_set=ranking.in_top3_set if ranking else False,
        marginal_low=ranking.marginal_low if ranking else None,
        marginal_high=ranking.marginal_high if ranking else None,
        unstable=ranking.unstable if ranking else False,
        p_best=ranking.p_best if ranking else None,
        percentile=ranking.percentile if ranking else None,
    )


def compute(
    inputs: ScoringInputs, *, seed: int, n_draws: int = N_DRAWS, progress: Progress | None = None
) -> ComputedRun:
    """Score rows, rank rows and per-category counts from flattened inputs."""
    config = inputs.config
    level = config.confidence_level
    codes = inputs.codes
    report = progress or (lambda _p, _m: None)
    rows: list[ScoreRowData] = []

    report(55, "survey estimates")
    survey = survey_estimates(inputs, level)
    n_respondents = np.zeros(len(codes))
    components: dict[str, Estimates] = {}
    if survey is not None:
        rows += _rows_from(
            survey.index, codes=codes, level=ScoreLevel.component, key="survey", respondents=True
        )
        for theme, estimates in survey.themes.items():
            rows += _rows_from(
                estimates, codes=codes, level=ScoreLevel.theme, key=theme, respondents=True
            )
        for item, estimates in survey.items.items():
            rows += _rows_from(
                estimates, codes=codes, level=ScoreLevel.item, key=item, respondents=True
            )
        components["survey"] = survey.index
        n_respondents[np.asarray(survey.index.domains, dtype=np.int64)] = survey.index.n

    report(65, "mystery-shopper estimates")
    mystery = _mystery(inputs, level)
    rows += mystery.rows
    if mystery.component is not None:
        components["mystery"] = mystery.component

    report(72, "overall scores")
    overall = _overall(inputs, components, level, mystery.missing_channel)
    rows += overall.rows

    report(78, "eligibility and rankings")
    rules = _eligibility(inputs, n_respondents, overall, mystery.missing_channel)
    categories = np.asarray(inputs.categories, dtype=object)
    rank_rows: list[RankRowData] = []
    per_category: dict[str, CategoryCounts] = {}
    order = [category.key for category in config.categories]
    order += sorted(set(inputs.categories) - set(order))
    for position, category in enumerate(order):
        members = np.flatnonzero(categories == category)
        if len(members) == 0:
            continue
        ranked = members[rules.eligible[members]]
        report(78 + int(12 * position / len(order)), f"ranking {category}")
        rankings = _rank_category(
            ranked,
            overall.estimate,
            overall.se,
            overall.df,
            level=level,
            seed=_category_seed(seed, position),
            n_draws=n_draws,
        )
        per_category[category] = CategoryCounts(
            candidates=len(members),
            scored=int(np.sum(~np.isnan(overall.estimate[members]))),
            eligible=len(ranked),
        )
        rank_rows += [
            _rank_row(
                category,
                int(member),
                inputs=inputs,
                overall=overall,
                rules=rules,
                ranking=rankings.get(int(member)),
            )
            for member in members
        ]
    report(90, "sorting rows")
    rows.sort(key=lambda row: (row.authority_code, row.level, row.key))
    rank_rows.sort(key=lambda row: (row.category, row.authority_code))
    return ComputedRun(score_rows=rows, rank_rows=rank_rows, categories=per_category)
