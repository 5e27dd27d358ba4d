"""The precision planner of the configuration page: what each extra test buys, per category.

The variance components come from the previous edition of the same organiser (its latest
complete final scoring run), read back from its stored score rows, or from stated defaults
when there is none; :mod:`scoring.planner` turns them into forecasts.

The campaigns domain cannot import ``app.results`` (results depends on campaigns and the
package graph has no cycle), so the few reads of stored runs below name the tables and
columns they use, as lightweight SQLAlchemy table clauses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.campaigns.models import Campaign
from app.campaigns.schemas import CampaignConfig, CategoryRule
from scoring import FieldworkPlan, PlanAlternative, VarianceComponents, compare_plans

# Defaults, used when no earlier edition of the organiser has a complete scoring run. They are
# calibrated on the simulated editions of issue #12 (35 candidates per category, the default
# design of 2/3/2/1/1/1 visits and 30 respondents): with them the planner gives a mystery share
# of 93 % of the overall variance (issue: ~93 %) and top-1 sets of about 24.5, 17.7 and 11.8 of 35
# candidates for the design, twice and four times its visits (issue: ~25, ~17, ~11).
DEFAULT_WITHIN_SD = 28.0  # one visit's score around the candidate's true channel score
DEFAULT_RESPONDENT_SD = 20.0  # one respondent's index around the candidate's true score
DEFAULT_BETWEEN_SD = 10.0  # true overall scores across the candidates of a category
# Only used for a weighted channel planned with no visit (imputed with this spread); the
# between-candidate SD of the channels in the same calibration.
DEFAULT_CHANNEL_BETWEEN_SD = 12.0
# Candidates assumed in a category with none registered and none in the previous edition:
# the size of issue #12's simulated categories.
DEFAULT_CANDIDATES = 35
# A category of the previous edition with fewer ranked candidates gives too noisy a spread:
# the previous edition's figures over all its categories are used instead.
MIN_CATEGORY_CANDIDATES = 5
# Respondents the planner accepts as a planned figure.
MIN_PLANNED_RESPONDENTS = 2
MAX_PLANNED_RESPONDENTS = 100_000

# Stored values of app.results (RunKind.final, RunStatus.complete, ScoreLevel members).
_FINAL, _COMPLETE = "final", "complete"
_LEVEL_OVERALL, _LEVEL_COMPONENT, _LEVEL_CHANNEL = "overall", "component", "channel"
_SURVEY = "survey"

_runs = sa.table(
    "scoring_runs",
    sa.column("id"),
    sa.column("campaign_id"),
    sa.column("kind"),
    sa.column("status"),
    sa.column("superseded_by"),
)
_scores = sa.table(
    "score_rows",
    sa.column("run_id"),
    sa.column("authority_code"),
    sa.column("level"),
    sa.column("key"),
    sa.column("estimate"),
    sa.column("se"),
    sa.column("n"),
)
_ranks = sa.table(
    "rank_rows",
    sa.column("run_id"),
    sa.column("authority_code"),
    sa.column("category"),
    sa.column("eligible"),
)


class ComponentsSource(StrEnum):
    previous_category = "previous_category"  # the same category of the previous edition
    previous_edition = "previous_edition"  # all categories of the previous edition
    defaults = "defaults"  # the stated defaults above


class CandidatesSource(StrEnum):
    registered = "registered"  # the campaign's registered candidates
    previous_edition = "previous_edition"  # the category's ranked candidates last time
    assumed = "assumed"  # DEFAULT_CANDIDATES


@dataclass(frozen=True)
class PreviousEdition:
    year: int
    run_id: int


@dataclass(frozen=True)
class ScoreSample:
    """Stored rows of one group of candidates: estimate, SE and n aligned."""

    estimate: np.ndarray
    se: np.ndarray
    n: np.ndarray


@dataclass(frozen=True)
class CategoryPlanner:
    key: str
    label_fr: str
    label_en: str
    candidates: int
    candidates_source: CandidatesSource
    components: VarianceComponents
    components_source: ComponentsSource
    alternatives: tuple[PlanAlternative, ...]

    @property
    def current(self) -> PlanAlternative:
        return self.alternatives[0]


@dataclass(frozen=True)
class CampaignPlanner:
    respondents: int
    respondents_planned: bool  # False: the eligibility minimum
    previous: PreviousEdition | None
    level: float
    categories: tuple[CategoryPlanner, ...]


# --- reads ------------------------------------------------------------------------------------


def previous_edition(session: Session, *, campaign: Campaign) -> PreviousEdition | None:
    """The latest earlier edition of the organiser that has a complete final run, and the run."""
    row = session.exec(
        select(Campaign.year, _runs.c.id)
        .join(_runs, _runs.c.campaign_id == col(Campaign.id))
        .where(
            col(Campaign.organiser) == campaign.organiser,
            col(Campaign.year) < campaign.year,
            _runs.c.kind == _FINAL,
            _runs.c.status == _COMPLETE,
            _runs.c.superseded_by.is_(None),
        )
        .order_by(col(Campaign.year).desc(), _runs.c.id.desc())
        .limit(1)
    ).first()
    return None if row is None else PreviousEdition(year=int(row[0]), run_id=int(row[1]))


def _score_samples(
    session: Session, *, run_id: int, level: str, eligible_only: bool
) -> dict[tuple[str, str], ScoreSample]:
    """(category, key) → the run's rows at ``level`` with an estimate, an SE and n ≥ 1."""
    query = (
        sa.select(_ranks.c.category, _scores.c.key, _scores.c.estimate, _scores.c.se, _scores.c.n)
        .select_from(_scores)
        .join(
            _ranks,
            sa.and_(
                _ranks.c.run_id == _scores.c.run_id,
                _ranks.c.authority_code == _scores.c.authority_code,
            ),
        )
        .where(
            _scores.c.run_id == run_id,
            _scores.c.level == level,
            _scores.c.estimate.is_not(None),
            _scores.c.se.is_not(None),
            # Imputed channels (n = 0) carry the between-candidate spread, not a measurement.
            _scores.c.n >= 1,
        )
    )
    if eligible_only:
        query = query.where(_ranks.c.eligible.is_(True))
    grouped: dict[tuple[str, str], list[tuple[float, float, float]]] = {}
    for category, key, estimate, se, n in session.execute(query).all():
        grouped.setdefault((str(category), str(key)), []).append(
            (float(estimate), float(se), float(n))
        )
    samples = {}
    for group, values in grouped.items():
        array = np.asarray(values, dtype=float)
        samples[group] = ScoreSample(estimate=array[:, 0], se=array[:, 1], n=array[:, 2])
    return samples


# --- components from stored rows --------------------------------------------------------------


def _merge(samples: list[ScoreSample]) -> ScoreSample:
    return ScoreSample(
        estimate=np.concatenate([s.estimate for s in samples]),
        se=np.concatenate([s.se for s in samples]),
        n=np.concatenate([s.n for s in samples]),
    )


def unit_sd(sample: ScoreSample) -> float:
    """SD of one visit or respondent: ``√mean(se²·n)`` (se² = s²/n for a mean of n)."""
    return math.sqrt(float(np.mean(sample.se**2 * sample.n)))


def between_sd(sample: ScoreSample) -> float:
    """SD of the true scores: variance of the estimates minus their mean sampling variance.

    Floored at 0 (a spread all sampling noise); needs at least two estimates.
    """
    if len(sample.estimate) < 2:
        return math.nan
    spread = float(np.var(sample.estimate, ddof=1)) - float(np.mean(sample.se**2))
    return math.sqrt(max(spread, 0.0))


@dataclass(frozen=True)
class _StoredRows:
    overall: dict[str, ScoreSample]  # category → eligible candidates' overall rows
    survey: dict[str, ScoreSample]  # category → survey component rows
    channels: dict[str, dict[str, ScoreSample]]  # category → channel → channel rows


def _stored_rows(session: Session, run_id: int) -> _StoredRows:
    overall = _score_samples(session, run_id=run_id, level=_LEVEL_OVERALL, eligible_only=True)
    component = _score_samples(session, run_id=run_id, level=_LEVEL_COMPONENT, eligible_only=False)
    channel = _score_samples(session, run_id=run_id, level=_LEVEL_CHANNEL, eligible_only=False)
    channels: dict[str, dict[str, ScoreSample]] = {}
    for (category, key), sample in channel.items():
        channels.setdefault(category, {})[key] = sample
    return _StoredRows(
        overall={category: sample for (category, _key), sample in overall.items()},
        survey={
            category: sample for (category, key), sample in component.items() if key == _SURVEY
        },
        channels=channels,
    )


def _centred(sample: ScoreSample) -> ScoreSample:
    """The sample around its own mean: merged categories then show the spread within them."""
    return ScoreSample(estimate=sample.estimate - sample.estimate.mean(), se=sample.se, n=sample.n)


@dataclass(frozen=True)
class _NationalRows:
    """The previous edition's rows over all categories, each category centred on its mean."""

    overall: ScoreSample | None
    survey: ScoreSample | None
    channels: dict[str, ScoreSample]


def _national(stored: _StoredRows) -> _NationalRows:
    overall = [_centred(s) for s in stored.overall.values() if len(s.estimate) >= 2]
    survey = list(stored.survey.values())
    by_channel: dict[str, list[ScoreSample]] = {}
    for per_channel in stored.channels.values():
        for key, sample in per_channel.items():
            by_channel.setdefault(key, []).append(_centred(sample))
    return _NationalRows(
        overall=_merge(overall) if overall else None,
        survey=_merge(survey) if survey else None,
        channels={key: _merge(samples) for key, samples in by_channel.items()},
    )


def _components_from(
    overall: ScoreSample,
    survey: ScoreSample | None,
    channels: dict[str, ScoreSample],
    *,
    national_overall: ScoreSample | None,
    source: str,
) -> VarianceComponents:
    """Components from stored rows; a figure the rows cannot give falls back to its default."""
    within = {key: unit_sd(sample) for key, sample in channels.items() if len(sample.se)}
    channel_between = {}
    for key, sample in channels.items():
        spread = between_sd(sample)
        channel_between[key] = spread if math.isfinite(spread) else DEFAULT_CHANNEL_BETWEEN_SD
    respondent = unit_sd(survey) if survey is not None and len(survey.se) else math.nan
    # The overall spread between candidates is removed from the category's ranked candidates;
    # (the component spreads would need their correlation, which the stored rows hide).
    spread = between_sd(overall)
    if not math.isfinite(spread) and national_overall is not None:
        spread = between_sd(national_overall)
    return VarianceComponents(
        within_sd=within,
        respondent_sd=respondent if math.isfinite(respondent) else DEFAULT_RESPONDENT_SD,
        between_sd=spread if math.isfinite(spread) else DEFAULT_BETWEEN_SD,
        channel_between_sd=channel_between,
        source=source,
    )


def default_components(channels: list[str]) -> VarianceComponents:
    return VarianceComponents(
        within_sd={channel: DEFAULT_WITHIN_SD for channel in channels},
        respondent_sd=DEFAULT_RESPONDENT_SD,
        between_sd=DEFAULT_BETWEEN_SD,
        channel_between_sd={channel: DEFAULT_CHANNEL_BETWEEN_SD for channel in channels},
        source=ComponentsSource.defaults,
    )


def _with_default_channels(
    components: VarianceComponents, channels: list[str]
) -> VarianceComponents:
    """Fill the channels the previous edition did not test with the default figures."""
    within = dict(components.within_sd)
    between = dict(components.channel_between_sd)
    for channel in channels:
        within.setdefault(channel, DEFAULT_WITHIN_SD)
        between.setdefault(channel, DEFAULT_CHANNEL_BETWEEN_SD)
    return VarianceComponents(
        within_sd=within,
        respondent_sd=components.respondent_sd,
        between_sd=components.between_sd,
        channel_between_sd=between,
        source=components.source,
    )


# --- the planner ------------------------------------------------------------------------------


def planned_respondents(config: CampaignConfig, requested: int | None) -> tuple[int, bool]:
    """The respondents to plan for and whether they were asked for (else the minimum)."""
    if requested is not None:
        return requested, True
    return max(MIN_PLANNED_RESPONDENTS, config.eligibility.min_respondents), False


def plan_campaign(
    session: Session,
    *,
    campaign: Campaign,
    config: CampaignConfig,
    registered: dict[str, int],
    respondents: int | None = None,
) -> CampaignPlanner:
    """Forecasts for every category of ``config``: the configured plan and its alternatives.

    ``registered``: registered candidates per category key; ``respondents``: a planned number
    of respondents per candidate (None: the eligibility minimum).
    """
    planned, asked = planned_respondents(config, respondents)
    channel_weights = {str(channel): weight for channel, weight in config.channel_weights.items()}
    visits = {str(channel): count for channel, count in config.tests_per_channel.items()}
    channels = sorted(set(channel_weights) | set(visits))
    plan = FieldworkPlan(
        visits=visits,
        respondents=planned,
        replicate_share=config.replicates.share,
        replicate_minimum=config.replicates.minimum,
    )
    previous = previous_edition(session, campaign=campaign)
    stored = _stored_rows(session, previous.run_id) if previous is not None else None
    national = _national(stored) if stored is not None else None
    categories = []
    for category in config.categories:
        components, source, previous_count = _category_components(
            category, stored, national, channels
        )
        if registered.get(category.key, 0) > 0:
            count, count_source = registered[category.key], CandidatesSource.registered
        elif previous_count > 0:
            count, count_source = previous_count, CandidatesSource.previous_edition
        else:
            count, count_source = DEFAULT_CANDIDATES, CandidatesSource.assumed
        alternatives = compare_plans(
            components,
            plan,
            candidates=count,
            channel_weights=channel_weights,
            survey_weight=config.component_weights.survey,
            mystery_weight=config.component_weights.mystery,
            level=config.confidence_level,
        )
        categories.append(
            CategoryPlanner(
                key=category.key,
                label_fr=category.label_fr,
                label_en=category.label_en,
                candidates=count,
                candidates_source=count_source,
                components=components,
                components_source=source,
                alternatives=alternatives,
            )
        )
    return CampaignPlanner(
        respondents=planned,
        respondents_planned=asked,
        previous=previous,
        level=config.confidence_level,
        categories=tuple(categories),
    )


def _category_components(
    category: CategoryRule,
    stored: _StoredRows | None,
    national: _NationalRows | None,
    channels: list[str],
) -> tuple[VarianceComponents, ComponentsSource, int]:
    """The category's components, where they come from, and its ranked candidates last time."""
    if stored is None or national is None:
        return default_components(channels), ComponentsSource.defaults, 0
    national_overall, national_survey = national.overall, national.survey
    national_channels = national.channels
    overall = stored.overall.get(category.key)
    previous_count = 0 if overall is None else len(overall.estimate)
    if overall is not None and previous_count >= MIN_CATEGORY_CANDIDATES:
        components = _components_from(
            overall,
            stored.survey.get(category.key, national_survey),
            {**national_channels, **stored.channels.get(category.key, {})},
            national_overall=national_overall,
            source=ComponentsSource.previous_category,
        )
        source = ComponentsSource.previous_category
    elif national_overall is not None and len(national_overall.estimate) >= 2:
        components = _components_from(
            national_overall,
            national_survey,
            national_channels,
            national_overall=None,
            source=ComponentsSource.previous_edition,
        )
        source = ComponentsSource.previous_edition
    else:
        return default_components(channels), ComponentsSource.defaults, previous_count
    return _with_default_channels(components, channels), source, previous_count
