"""View models of a frozen run: what the jury, the public pages and the scorecards show.

Shared views of a run — a category's candidates with their ranks and intervals and its
summary statistics, anonymised citizen comments, item labels — and the authority scorecard.
Nothing here scores anything: it reads the rows a scoring run stored. Their plots are in
:mod:`app.scorecards.svg`, the CSV in :mod:`app.scorecards.exports`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
from babel.numbers import get_decimal_symbol
from sqlmodel import Session

import surveys
from app.accounts.models import Role, User
from app.campaigns import repository as campaigns_repository
from app.campaigns.models import Campaign, CampaignState
from app.campaigns.schemas import CampaignConfig
from app.campaigns.service import parse_config
from app.core.cache import BoundedCache
from app.core.db import row_id
from app.core.errors import NotFound
from app.core.i18n import _, get_locale
from app.core.templating import templates
from app.instruments.service import load_published
from app.results import repository as results_repository
from app.results.compute import ScoreLevel
from app.results.models import RankRow, RunStatus, ScoreRow, ScoringRun
from app.scorecards import repository as scorecards_repository
from scoring import Estimates, funnel_limits, yoy_difference

# Anonymity: no comment and no breakdown from fewer respondents (METHODOLOGY.md §6).
MIN_RESPONDENTS_FOR_COMMENTS = 5
MAX_COMMENTS = 30
# Comments are read from the latest responses only: an authority can have thousands.
COMMENT_SCAN_LIMIT = 200
STRENGTHS_SHOWN = 3
# A public or open-data row with one of these flags has too few respondents to be shown.
SUPPRESSED_FLAGS = frozenset({"fewer_than_5", "few_respondents", "suppressed"})
SORT_KEYS = ("rank", "name", "estimate", "p_best", "rank_low")
# Flags a scoring run sets on a score row whose interval bound was cut at the 0–100 scale's edge.
CUT_LOW_FLAG = "ci_cut_low"
CUT_HIGH_FLAG = "ci_cut_high"
CUT_FLAGS = frozenset({CUT_LOW_FLAG, CUT_HIGH_FLAG})


def in_top_set(rank: RankRow, tau: int) -> bool:
    """Whether a candidate belongs to the τ-best set of the award table.

    Read from the very interval the table shows (the simultaneous rank interval): in the top τ
    exactly when its lower bound is at most τ (METHODOLOGY.md, "One family per table"). Every
    page, API and export asks here, so no output can show a member whose bound says otherwise.
    """
    return rank.eligible and rank.rank_low is not None and rank.rank_low <= tau


@lru_cache(maxsize=8)
def _decimal_symbol(locale: str) -> str:
    return str(get_decimal_symbol(locale))


def format_score(value: float | None, digits: int = 1) -> str:
    """A score with its locale's decimal mark, 40× cheaper than Babel's full pattern (the jury
    table of a 350-candidate category formats ~2,000 numbers). Scores have no thousands."""
    if value is None or not math.isfinite(value):
        return "–"
    text = f"{value:.{digits}f}"
    symbol = _decimal_symbol(get_locale())
    return text if symbol == "." else text.replace(".", symbol)


templates.env.filters["score"] = format_score


def has_cut_interval(row: Any) -> bool:
    """A score row whose interval was cut at the edge of the 0–100 scale (a Jinja test)."""
    return bool(CUT_FLAGS & set(getattr(row, "flags", None) or ()))


templates.env.tests["cut_interval"] = has_cut_interval


def category_labels(config: CampaignConfig) -> dict[str, str]:
    return config.category_labels(get_locale())


@dataclass(frozen=True)
class CandidateLine:
    code: str
    name: str
    rank: RankRow
    overall: ScoreRow | None

    @property
    def ci_low(self) -> float | None:
        return self.overall.ci_low if self.overall else None

    @property
    def ci_high(self) -> float | None:
        return self.overall.ci_high if self.overall else None

    @property
    def flags(self) -> list[str]:
        """Precision flags to show in words (the cut marks are drawn on the interval)."""
        if self.overall is None:
            return []
        return [flag for flag in self.overall.flags if flag not in CUT_FLAGS]

    @property
    def ci_cut_low(self) -> bool:
        return bool(self.overall and CUT_LOW_FLAG in self.overall.flags)

    @property
    def ci_cut_high(self) -> bool:
        return bool(self.overall and CUT_HIGH_FLAG in self.overall.flags)

    @property
    def in_top1(self) -> bool:
        return in_top_set(self.rank, 1)

    @property
    def in_top3(self) -> bool:
        return in_top_set(self.rank, 3)


@dataclass(frozen=True)
class CategoryStats:
    count: int
    median: float | None
    q1: float | None
    q3: float | None
    best: float | None
    worst: float | None


@dataclass(frozen=True)
class CategoryView:
    key: str
    label: str
    eligible: list[CandidateLine]
    ineligible: list[CandidateLine]
    stats: CategoryStats
    top1: list[CandidateLine]
    leader: CandidateLine | None
    outliers: dict[str, str] = field(default_factory=dict)  # code → "above" | "below"

    @property
    def tied(self) -> bool:
        return len(self.top1) > 1

    @property
    def top1_by_p_best(self) -> list[CandidateLine]:
        """The top-1 set, most often first in the simulations first (P(best) is descriptive)."""
        return sorted(self.top1, key=lambda line: -(line.rank.p_best or 0.0))

    @property
    def top3(self) -> list[CandidateLine]:
        return [line for line in self.eligible if line.in_top3]

    @property
    def any_cut(self) -> bool:
        return any(line.ci_cut_low or line.ci_cut_high for line in self.eligible)


def category_stats(estimates: Sequence[float]) -> CategoryStats:
    values = np.asarray([v for v in estimates if v is not None and math.isfinite(v)], dtype=float)
    if len(values) == 0:
        return CategoryStats(0, None, None, None, None, None)
    q1, median, q3 = np.quantile(values, [0.25, 0.5, 0.75])
    return CategoryStats(
        count=len(values),
        median=float(median),
        q1=float(q1),
        q3=float(q3),
        best=float(values.max()),
        worst=float(values.min()),
    )


def sort_key(sort: str) -> Any:
    """The ordering of a category table by ``sort`` (one of SORT_KEYS; rank otherwise)."""

    def key(line: CandidateLine) -> tuple[Any, ...]:
        row = line.rank
        if sort == "name":
            return (line.name.lower(),)
        if sort == "estimate":
            return (row.estimate if row.estimate is not None else -1e9, line.name)
        if sort == "p_best":
            return (row.p_best if row.p_best is not None else -1.0, line.name)
        if sort == "rank_low":
            return (row.rank_low if row.rank_low is not None else 10**9, line.name)
        return (row.rank if row.rank is not None else 10**9, line.name)

    return key


# A complete run is never edited, so its rows can be kept in memory: each worker reads a
# category once instead of on every request. The key names the database, the run and its
# creation time (run ids restart when a test database is emptied), so an entry never goes
# stale; the bound only limits memory. Only complete runs are cached.
RUN_CACHE_ENTRIES = 32
_LINES_CACHE: BoundedCache[tuple[str, ...], list[CandidateLine]] = BoundedCache(
    "scorecards.category_lines", max_entries=RUN_CACHE_ENTRIES
)
# Mean item score over a category's candidates, same key and rule.
_MEANS_CACHE: BoundedCache[tuple[str, ...], dict[str, float]] = BoundedCache(
    "scorecards.item_means", max_entries=RUN_CACHE_ENTRIES
)


def run_cache_key(session: Session, run: ScoringRun) -> tuple[str, ...]:
    return (str(session.get_bind().engine.url), str(row_id(run)), run.created_at.isoformat())


def _load_lines(session: Session, run: ScoringRun, category: str) -> list[CandidateLine]:
    lines = [
        CandidateLine(code=rank.authority_code, name=name, rank=rank, overall=overall)
        for rank, overall, name in results_repository.category_lines(
            session, run_id=row_id(run), category=category
        )
    ]
    for line in lines:  # detached copies: nothing may expire or write them back
        session.expunge(line.rank)
        if line.overall is not None:
            session.expunge(line.overall)
    return lines


def category_lines(session: Session, run: ScoringRun, category: str) -> list[CandidateLine]:
    """A category's candidates with their rank and overall score rows (detached copies)."""
    if run.status != RunStatus.complete:
        return _load_lines(session, run, category)
    return _LINES_CACHE.get_or_load(
        (*run_cache_key(session, run), category), lambda: _load_lines(session, run, category)
    )


def _item_means(session: Session, run: ScoringRun, category: str) -> dict[str, float]:
    return _MEANS_CACHE.get_or_load(
        (*run_cache_key(session, run), category),
        lambda: results_repository.item_means(session, run_id=row_id(run), category=category),
    )


def category_view(
    session: Session,
    *,
    run: ScoringRun,
    config: CampaignConfig,
    category: str,
    sort: str = "rank",
    descending: bool = False,
) -> CategoryView:
    labels = category_labels(config)
    if category not in labels:
        raise NotFound(_("No category %(key)s in this campaign.") % {"key": category})
    lines = category_lines(session, run, category)
    eligible = [line for line in lines if line.rank.eligible]
    ineligible = sorted(
        (line for line in lines if not line.rank.eligible), key=lambda line: line.name.lower()
    )
    by_rank = sorted(eligible, key=sort_key("rank"))
    sort = sort if sort in SORT_KEYS else "rank"
    eligible = sorted(eligible, key=sort_key(sort), reverse=descending)
    outliers: dict[str, str] = {}
    scored = [
        line for line in by_rank if line.rank.estimate is not None and (line.rank.se or 0) > 0
    ]
    if len(scored) >= 3:
        limits = funnel_limits(
            np.array([line.rank.estimate for line in scored], dtype=float),
            np.array([line.rank.se for line in scored], dtype=float),
        )
        outer = len(limits.levels) - 1
        for index, line in enumerate(scored):
            if limits.outside[outer][index]:
                above = (line.rank.estimate or 0) > limits.target
                outliers[line.code] = "above" if above else "below"
    return CategoryView(
        key=category,
        label=labels[category],
        eligible=eligible,
        ineligible=ineligible,
        stats=category_stats([line.rank.estimate for line in by_rank]),  # type: ignore[misc]
        top1=[line for line in by_rank if line.in_top1],
        leader=by_rank[0] if by_rank else None,
        outliers=outliers,
    )


# --- instruments: item labels and free-text items -------------------------------------------


def pinned_instruments(session: Session, campaign: Campaign) -> list[surveys.Instrument]:
    # load_published keeps each parsed version (a published version never changes).
    pins = campaigns_repository.pinned_instruments(session, row_id(campaign))
    return [load_published(version) for _pin, version in pins]


def item_labels(instruments: Sequence[surveys.Instrument]) -> dict[str, str]:
    """Item key → label in the current language, under the plain key and prefixed forms."""
    language = get_locale()
    labels: dict[str, str] = {}
    for instrument in instruments:
        for item in instrument.items:
            label = item.label.get(language)
            for key in (
                item.key,
                f"{instrument.key}.{item.key}",
                f"{instrument.key}:{item.key}",
                f"{instrument.key}/{item.key}",
            ):
                labels.setdefault(key, label)
            if instrument.channel:
                labels.setdefault(f"{instrument.channel}.{item.key}", label)
                labels.setdefault(f"{instrument.channel}:{item.key}", label)
    return labels


def theme_labels(instruments: Sequence[surveys.Instrument]) -> dict[str, str]:
    language = get_locale()
    return {
        theme.key: theme.label.get(language)
        for instrument in instruments
        for theme in instrument.themes
    }


def anonymised_comments(
    session: Session, *, campaign: Campaign, code: str, respondents: int | None = None
) -> tuple[int, list[str]]:
    """(valid respondents, comments): free-text answers, contacts masked, none under 5."""
    count = (
        respondents
        if respondents is not None
        else scorecards_repository.count_valid_responses(session, row_id(campaign), code)
    )
    if count < MIN_RESPONDENTS_FOR_COMMENTS:
        return count, []
    rows = scorecards_repository.response_answers(
        session, row_id(campaign), code, limit=COMMENT_SCAN_LIMIT
    )
    text_keys = {
        row_id(version): [item.key for item in load_published(version).items if item.type == "text"]
        for version in scorecards_repository.instrument_versions(session, {vid for _a, vid in rows})
    }
    comments: list[str] = []
    for answers, version_id in rows:
        for key in text_keys.get(version_id, []):
            value = answers.get(key)
            if isinstance(value, str) and value.strip():
                comments.append(surveys.redact_contacts(value.strip()))
        if len(comments) >= MAX_COMMENTS:
            break
    return count, comments[:MAX_COMMENTS]


def visit_remarks(session: Session, visits: Sequence[Any]) -> dict[object, list[str]]:
    """A shopper's free-text remarks of each visit (contacts masked), visit id → texts."""
    versions = {
        version.id: load_published(version)
        for version in scorecards_repository.instrument_versions(
            session, {visit.instrument_version_id for visit in visits}
        )
    }
    remarks: dict[object, list[str]] = {}
    for visit in visits:
        instrument = versions.get(visit.instrument_version_id)
        if instrument is None:
            continue
        texts = [
            surveys.redact_contacts(str(visit.answers[item.key]).strip())
            for item in instrument.items
            if item.type == "text" and str(visit.answers.get(item.key) or "").strip()
        ]
        if texts:
            remarks[visit.id] = texts
    return remarks


# --- the authority scorecard ------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    previous_year: int
    previous: float
    difference: float
    ci_low: float
    ci_high: float

    @property
    def significant(self) -> bool:
        return self.ci_low > 0 or self.ci_high < 0


@dataclass(frozen=True)
class ItemGap:
    key: str
    label: str
    estimate: float
    category_mean: float

    @property
    def gap(self) -> float:
        return self.estimate - self.category_mean


@dataclass(frozen=True)
class Scorecard:
    campaign: Campaign
    run: ScoringRun
    code: str
    name: str
    category: str
    category_label: str
    overall: ScoreRow | None
    rank: RankRow | None
    components: list[ScoreRow]
    channels: list[ScoreRow]
    themes: list[ScoreRow]
    stats: CategoryStats
    change: Change | None
    strengths: list[ItemGap]
    irritants: list[ItemGap]
    respondents: int
    comments: list[str]
    theme_names: dict[str, str]
    candidates_in_category: int

    @property
    def filename_stem(self) -> str:
        return f"scorecard-{self.campaign.year}-{self.code}"

    @property
    def in_top1(self) -> bool:
        """In the award table's top-1 set (read from the simultaneous interval)."""
        return self.rank is not None and in_top_set(self.rank, 1)

    @property
    def has_marginal_interval(self) -> bool:
        return (
            self.rank is not None
            and self.rank.marginal_low is not None
            and self.rank.marginal_high is not None
        )


def can_see_all(user: User) -> bool:
    return user.role in (Role.admin, Role.jury)


def _authorise(user: User, code: str, campaign: Campaign) -> None:
    """An authority contact sees only their own scorecard, once the results are published;
    anything else is a 404 (the others' existence is not revealed)."""
    if can_see_all(user):
        return
    own = user.role == Role.authority and (user.authority_code or "").upper() == code
    if not own or campaign.state != CampaignState.published:
        raise NotFound(_("No scorecard for %(code)s.") % {"code": code})


def _estimates(domain: str, row: ScoreRow) -> Estimates:
    return Estimates(
        domains=pd.Index([domain]),
        estimate=np.array([row.estimate], dtype=float),
        se=np.array([row.se if row.se is not None else math.nan], dtype=float),
        df=np.array([row.df if row.df is not None else math.inf], dtype=float),
        ci_low=np.array([row.ci_low if row.ci_low is not None else math.nan], dtype=float),
        ci_high=np.array([row.ci_high if row.ci_high is not None else math.nan], dtype=float),
        n=np.array([row.n], dtype=float),
        n_eff=np.array([row.n_eff if row.n_eff is not None else math.nan], dtype=float),
        level=0.95,
        method="stored score row",
    )


def year_over_year(
    session: Session, *, campaign: Campaign, code: str, overall: ScoreRow | None
) -> Change | None:
    if overall is None or overall.estimate is None or overall.se is None:
        return None
    previous_campaign = scorecards_repository.previous_campaign(session, campaign)
    if previous_campaign is None:
        return None
    previous_run = results_repository.current_run(session, campaign_id=row_id(previous_campaign))
    if previous_run is None:
        return None
    before = results_repository.overall_score(session, run_id=row_id(previous_run), code=code)
    if before is None or before.estimate is None or before.se is None:
        return None
    config = parse_config(campaign.config)
    difference = yoy_difference(
        _estimates(code, overall), _estimates(code, before), level=config.confidence_level
    )
    return Change(
        previous_year=previous_campaign.year,
        previous=before.estimate,
        difference=float(difference.estimate[0]),
        ci_low=float(difference.ci_low[0]),
        ci_high=float(difference.ci_high[0]),
    )


def get_scorecard(session: Session, *, campaign: Campaign, code: str, user: User) -> Scorecard:
    code = code.upper()
    _authorise(user, code, campaign)
    run = results_repository.current_run(session, campaign_id=row_id(campaign))
    if run is None:
        raise NotFound(_("No scorecard for %(code)s.") % {"code": code})
    rows = results_repository.score_rows(session, run_id=row_id(run), codes=[code])
    rank = results_repository.rank_row(session, run_id=row_id(run), code=code)
    if not rows and rank is None:
        raise NotFound(_("No scorecard for %(code)s.") % {"code": code})
    names = results_repository.authority_names(session, [code])
    config = parse_config(campaign.config)
    labels = category_labels(config)
    category = rank.category if rank else ""
    by_level: dict[str, list[ScoreRow]] = {}
    for row in rows:
        by_level.setdefault(row.level, []).append(row)
    overall = next(iter(by_level.get(ScoreLevel.overall, [])), None)
    peers = [line.rank for line in category_lines(session, run, category)] if category else []
    stats = category_stats(
        [peer.estimate for peer in peers if peer.eligible and peer.estimate is not None]
    )
    instruments = pinned_instruments(session, campaign)
    strengths: list[ItemGap] = []
    irritants: list[ItemGap] = []
    item_rows = [row for row in by_level.get(ScoreLevel.item, []) if row.estimate is not None]
    if item_rows and peers:
        means = _item_means(session, run, category)
        labels_of_items = item_labels(instruments)
        gaps = sorted(
            (
                ItemGap(
                    key=row.key,
                    label=labels_of_items.get(row.key, row.key),
                    estimate=float(row.estimate or 0.0),
                    category_mean=means[row.key],
                )
                for row in item_rows
                if row.key in means
            ),
            key=lambda gap: gap.gap,
        )
        strengths = [gap for gap in reversed(gaps) if gap.gap > 0][:STRENGTHS_SHOWN]
        irritants = [gap for gap in gaps if gap.gap < 0][:STRENGTHS_SHOWN]
    respondents, comments = anonymised_comments(session, campaign=campaign, code=code)
    return Scorecard(
        campaign=campaign,
        run=run,
        code=code,
        name=names.get(code, code),
        category=category,
        category_label=labels.get(category, category),
        overall=overall,
        rank=rank,
        components=sorted(by_level.get(ScoreLevel.component, []), key=lambda r: r.key),
        channels=sorted(by_level.get(ScoreLevel.channel, []), key=lambda r: r.key),
        themes=sorted(by_level.get(ScoreLevel.theme, []), key=lambda r: r.key),
        stats=stats,
        change=year_over_year(session, campaign=campaign, code=code, overall=overall),
        strengths=strengths,
        irritants=irritants,
        respondents=respondents,
        comments=comments,
        theme_names=theme_labels(instruments),
        candidates_in_category=len(peers),
    )
