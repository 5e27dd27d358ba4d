"""Collection progress against the eligibility rules: who is still short of the thresholds.

During collection the organiser (every candidate) and each authority contact (their own row)
see, per registered candidate, the respondents against ``eligibility.min_respondents`` and the
approved visits of each channel against the plan (``tests_per_channel``) and the rule
(``min_visits_per_tested_channel``, ``min_channels_tested``).

The figures are the ones scoring will decide on: the counts are read as a scoring run reads
its inputs (:mod:`app.results.inputs`: registered candidates, the pinned survey version,
responses not excluded, approved visits only), and the rules are the very functions scoring
calls (:mod:`app.campaigns.eligibility`). A run can still leave an eligible-so-far candidate
unranked for reasons collection does not decide (no overall score with a standard error; with
``missing_channel = "unranked"``, a weighted channel tested in its category but not on it).

Everything is counted by the database (:mod:`app.collection.repository`): a few rows per
candidate come back, never a response. The organiser's counts are kept for
:data:`COUNTS_TTL_SECONDS` (sorting and paging through 2,000 candidates would otherwise count a
million responses again at each click).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from babel.numbers import format_decimal
from sqlmodel import Session

import surveys
from app.campaigns.eligibility import (
    channel_tested,
    counted_visits,
    index_has_coverage,
    shortfall,
    tests_planned,
)
from app.campaigns.models import Campaign
from app.campaigns.schemas import CampaignConfig, Channel
from app.campaigns.service import parse_config
from app.collection import repository
from app.core.cache import BoundedCache
from app.core.db import row_id
from app.core.errors import InvalidInput
from app.core.i18n import _, get_locale, ngettext
from app.core.text import search_key
from app.instruments.service import load_published

PER_PAGE = 50


class ProgressSort(StrEnum):
    """How the progress table is ordered (the ``sort`` query parameter)."""

    shortfall = "shortfall"  # the furthest from eligible first
    name = "name"
    respondents = "respondents"  # the fewest first


class SortDirection(StrEnum):
    asc = "asc"
    desc = "desc"


# The direction a column sorts in when its header is first chosen.
NATURAL_DIRECTION = {
    ProgressSort.shortfall: SortDirection.desc,
    ProgressSort.name: SortDirection.asc,
    ProgressSort.respondents: SortDirection.asc,
}


@dataclass(frozen=True)
class ChannelProgress:
    """One channel of one candidate: approved visits against the plan and the rule."""

    channel: str  # code (URLs, API, exports)
    label: str  # in the reader's language
    approved: int  # approved visits
    planned: int  # tests_per_channel (0: not planned)
    counted: int  # approved visits that count (up to the planned tests)
    tested: bool  # counts as tested under min_visits_per_tested_channel


@dataclass(frozen=True)
class CandidateProgress:
    """Where one candidate stands against the campaign's eligibility rules."""

    code: str
    name: str
    category: str
    category_label: str
    respondents: int  # responses that will count as respondents
    respondents_needed: int  # eligibility.min_respondents
    respondents_short: int  # how many more are needed (0: enough)
    channels: tuple[ChannelProgress, ...]
    channels_tested: int
    channels_needed: int  # eligibility.min_channels_tested
    channels_short: int
    eligible_so_far: bool
    reason: str  # why not eligible yet, in words ("" when eligible so far)


@dataclass(frozen=True)
class ProgressSummary:
    """Counts over the candidates listed (all pages of the current filter)."""

    candidates: int
    eligible_so_far: int
    short_of_respondents: int
    short_of_channels: int


@dataclass(frozen=True)
class ProgressPage:
    """One page of the progress table, with what the page around it needs."""

    rows: tuple[CandidateProgress, ...]
    summary: ProgressSummary
    page: int
    pages: int
    per_page: int
    sort: ProgressSort
    direction: SortDirection
    category: str | None
    min_respondents: int
    min_channels_tested: int
    min_visits_per_tested_channel: int
    categories: tuple[tuple[str, str], ...]  # (key, label) of the campaign's categories


def _number(value: int) -> str:
    """A count as the ``number`` template filter writes it (Babel, the reader's locale)."""
    return format_decimal(value, format="#,##0", locale=get_locale())


def category_labels(config: CampaignConfig) -> dict[str, str]:
    """Each category's label in the reader's language."""
    return config.category_labels(get_locale())


def _reason(respondents_short: int, channels_short: int) -> str:
    """Why a candidate is not eligible yet, in words ("" when it is)."""
    respondents = channels = ""
    if respondents_short:
        respondents = ngettext(
            "%(num)s more respondent needed", "%(num)s more respondents needed", respondents_short
        ) % {"num": _number(respondents_short)}
    if channels_short:
        channels = ngettext(
            "%(num)s more channel to test", "%(num)s more channels to test", channels_short
        ) % {"num": _number(channels_short)}
    if respondents and channels:
        # A message of its own: French puts a narrow no-break space before the semicolon.
        return _("%(respondents)s; %(channels)s") % {
            "respondents": respondents,
            "channels": channels,
        }
    return respondents or channels


def _respondents(
    session: Session, *, campaign_id: int, authority_code: str | None
) -> dict[str, int]:
    """Per candidate code, the responses a scoring run would count as respondents."""
    version = repository.pinned_survey(session, campaign_id)
    if version is None:
        return {}
    instrument = load_published(version)
    items = surveys.packed_items(instrument)
    # The satisfaction index averages the packed items that carry a weight (as scoring does).
    weighted = [(j, float(item.weight)) for j, item in enumerate(items) if item.weight > 0]
    total_weight = sum(weight for _j, weight in weighted)
    if total_weight <= 0:
        return {}
    counts: dict[str, int] = {}
    for group in repository.respondent_groups(
        session,
        campaign_id=campaign_id,
        survey_version_id=row_id(version),
        weighted_items=[(j, items[j].key, weight) for j, weight in weighted],
        packed_bytes=surveys.packed_length(instrument),
        authority_code=authority_code,
    ):
        if group.covered is not None:
            covered = group.covered
        else:  # a row stored before packed scores existed: scored from its answers
            covered = sum(
                weight
                for (j, weight), text in zip(weighted, group.answers, strict=True)
                if _answer_score(items[j], text) is not None
            )
        if index_has_coverage(covered, total_weight):
            counts[group.code] = counts.get(group.code, 0) + group.responses
    return counts


@dataclass(frozen=True)
class _Counts:
    """A campaign's raw counts (the rules are applied afterwards): read-only once built."""

    respondents: dict[str, int]  # authority code → respondents
    visits: dict[str, dict[str, int]]  # authority code → channel → approved visits


def _read_counts(session: Session, *, campaign_id: int, authority_code: str | None) -> _Counts:
    visits: dict[str, dict[str, int]] = {}
    for code, channel, count in repository.approved_visit_counts(
        session, campaign_id=campaign_id, authority_code=authority_code
    ):
        visits.setdefault(code, {})[channel] = count
    respondents = _respondents(session, campaign_id=campaign_id, authority_code=authority_code)
    return _Counts(respondents=respondents, visits=visits)


# The organiser's table counts every response of the campaign (seconds at a million), and each
# sort, page or category asks for the same counts again: they are kept COUNTS_TTL_SECONDS per
# campaign and database, so a figure is at most that old (the page says so). Rules are applied
# afresh on each request, so a configuration change shows at once. An authority contact's own
# row is a few index lookups and is always read afresh.
COUNTS_TTL_SECONDS = 30.0
_CAMPAIGN_COUNTS: BoundedCache[tuple[str, int], _Counts] = BoundedCache(
    "collection progress counts", max_entries=64, ttl_seconds=COUNTS_TTL_SECONDS
)


def _counts(session: Session, *, campaign_id: int, authority_code: str | None) -> _Counts:
    if authority_code is not None:
        return _read_counts(session, campaign_id=campaign_id, authority_code=authority_code)
    key = (str(session.get_bind().engine.url), campaign_id)
    return _CAMPAIGN_COUNTS.get_or_load(
        key, lambda: _read_counts(session, campaign_id=campaign_id, authority_code=None)
    )


def _answer_score(item: surveys.Item, text: str | None) -> float | None:
    """An item's score from its answer's JSON text, read as a scoring run reads older rows
    (:func:`app.results.inputs._decode_chunk`): null, absent and true/false are missing, a
    whole float is the integer."""
    value: Any = json.loads(text) if text is not None else None
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    try:
        return surveys.item_score(item, value)
    except ValueError:
        # Not a value of the item: a run would stop on it; the progress page still shows.
        return None


def _channel_order(config: CampaignConfig, seen: set[str]) -> list[str]:
    """The channels to show: planned ones and any with visits, in the channels' own order."""
    planned = {
        channel for channel, count in tests_planned(config.tests_per_channel).items() if count
    }
    known = [channel.value for channel in Channel]
    return [c for c in known if c in planned | seen] + sorted(seen - set(known))


def campaign_progress(
    session: Session,
    *,
    campaign: Campaign,
    category: str | None = None,
    authority_code: str | None = None,
) -> list[CandidateProgress]:
    """Every registered candidate's progress (of one category, or one authority), by code."""
    campaign_id = row_id(campaign)
    config = parse_config(campaign.config)
    rules = config.eligibility
    planned = tests_planned(config.tests_per_channel)
    labels = category_labels(config)
    candidates = repository.progress_candidates(
        session, campaign_id=campaign_id, category=category, authority_code=authority_code
    )
    counts = _counts(session, campaign_id=campaign_id, authority_code=authority_code)
    respondents, visits = counts.respondents, counts.visits
    # The same channels for every row of a page, whatever the category shown.
    channels = _channel_order(config, {c for seen in visits.values() for c in seen})
    rows = []
    for candidate in candidates:
        approved = visits.get(candidate.code, {})
        per_channel = tuple(
            ChannelProgress(
                channel=channel,
                # gettext("") would be the catalog's header: a visit without any channel.
                label=_(channel) if channel else "–",
                approved=approved.get(channel, 0),
                planned=planned.get(channel, 0),
                counted=counted_visits(approved.get(channel, 0), planned.get(channel)),
                tested=channel_tested(
                    approved=approved.get(channel, 0),
                    planned=planned.get(channel),
                    min_visits=rules.min_visits_per_tested_channel,
                ),
            )
            for channel in channels
        )
        tested = sum(channel.tested for channel in per_channel)
        count = respondents.get(candidate.code, 0)
        gap = shortfall(respondents=count, channels_tested=tested, rules=rules)
        rows.append(
            CandidateProgress(
                code=candidate.code,
                name=candidate.name,
                category=candidate.category,
                category_label=labels.get(candidate.category, candidate.category),
                respondents=count,
                respondents_needed=rules.min_respondents,
                respondents_short=gap.respondents,
                channels=per_channel,
                channels_tested=tested,
                channels_needed=rules.min_channels_tested,
                channels_short=gap.channels,
                eligible_so_far=gap.met,
                reason=_reason(gap.respondents, gap.channels),
            )
        )
    return rows


def _sort_key(sort: ProgressSort) -> Callable[[CandidateProgress], Any]:
    # Shortfall: not eligible yet first, then the most respondents missing, then channels.
    if sort == ProgressSort.shortfall:
        return lambda row: (not row.eligible_so_far, row.respondents_short, row.channels_short)
    if sort == ProgressSort.respondents:
        return lambda row: row.respondents
    return lambda row: (search_key(row.name), row.code)


def sorted_rows(
    rows: list[CandidateProgress], *, sort: ProgressSort, direction: SortDirection
) -> list[CandidateProgress]:
    """``rows`` in the order asked; ties stay in name order (the sort is stable)."""
    by_name = sorted(rows, key=_sort_key(ProgressSort.name))
    if sort == ProgressSort.name:
        return by_name if direction == SortDirection.asc else by_name[::-1]
    return sorted(by_name, key=_sort_key(sort), reverse=direction == SortDirection.desc)


def summarise(rows: list[CandidateProgress]) -> ProgressSummary:
    """The counts over ``rows`` (every page of the current filter)."""
    return ProgressSummary(
        candidates=len(rows),
        eligible_so_far=sum(row.eligible_so_far for row in rows),
        short_of_respondents=sum(row.respondents_short > 0 for row in rows),
        short_of_channels=sum(row.channels_short > 0 for row in rows),
    )


def progress_page(
    session: Session,
    *,
    campaign: Campaign,
    category: str | None = None,
    authority_code: str | None = None,
    sort: ProgressSort = ProgressSort.shortfall,
    direction: SortDirection | None = None,
    page: int = 1,
    per_page: int = PER_PAGE,
) -> ProgressPage:
    """One page of the progress table: filtered, sorted, with the counts over all pages.

    ``page`` past the last one shows the last one. An unknown ``category`` is refused (422).
    """
    config = parse_config(campaign.config)
    labels = category_labels(config)
    if category is not None and category not in labels:
        raise InvalidInput(_("There is no such category in this campaign."), field="category")
    rows = campaign_progress(
        session, campaign=campaign, category=category, authority_code=authority_code
    )
    direction = direction or NATURAL_DIRECTION[sort]
    ordered = sorted_rows(rows, sort=sort, direction=direction)
    pages = max(1, math.ceil(len(ordered) / per_page))
    page = min(max(page, 1), pages)
    start = (page - 1) * per_page
    rules = config.eligibility
    return ProgressPage(
        rows=tuple(ordered[start : start + per_page]),
        summary=summarise(rows),
        page=page,
        pages=pages,
        per_page=per_page,
        sort=sort,
        direction=direction,
        category=category,
        min_respondents=rules.min_respondents,
        min_channels_tested=rules.min_channels_tested,
        min_visits_per_tested_channel=rules.min_visits_per_tested_channel,
        categories=tuple(labels.items()),
    )
