"""The tables of an export: citizen responses, and approved visits one table per channel.

Each :class:`Dataset` has its columns (metadata first, then the instrument's, from
:mod:`app.exports.codebook`) and streams its rows from the database. Nothing here names a
person: responses are anonymous, and the shopper behind a visit appears only as a number,
only in the organiser's exports (``shopper_ids``), never in an authority's.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session

import surveys
from app.campaigns import repository as campaigns_repository
from app.campaigns.schemas import CampaignConfig
from app.collection.models import ResponseSource
from app.core.db import row_id
from app.core.i18n import _
from app.core.timeutil import LOCAL_ZONE
from app.exports import repository
from app.exports.codebook import Codebook, CodedValue, Column, Names, build_codebook, meta_column
from app.instruments.models import InstrumentVersion
from app.instruments.service import load_published

# Quality flags a response can carry (app.collection.service.quality_flags): a 0/1 column each.
QUALITY_FLAGS = ("too_fast", "straight_lining")

RowSource = Callable[[Session], Iterator[list[Any]]]


@dataclass(frozen=True)
class Dataset:
    """One table of an export."""

    key: str  # the file stem: "responses", "visits_guichet"
    title: str
    columns: tuple[Column, ...]
    rows: RowSource


@dataclass(frozen=True)
class ExportScope:
    """Which rows and which columns an export holds."""

    campaign_id: int
    config: CampaignConfig
    authority_code: str | None  # one authority's rows only
    shopper_ids: bool  # the visits' shopper number (organiser only)
    language: str


def _no_yes() -> tuple[CodedValue, ...]:
    return (CodedValue(0, _("No"), "0"), CodedValue(1, _("Yes"), "1"))


def _category_codes(scope: ExportScope) -> tuple[dict[str, int], tuple[CodedValue, ...]]:
    codes = {category.key: position for position, category in enumerate(scope.config.categories, 1)}
    labels = tuple(
        CodedValue(codes[c.key], c.label(scope.language), c.key) for c in scope.config.categories
    )
    return codes, labels


def _local(moment: datetime | None) -> datetime | None:
    """A stored UTC moment as the campaign's local wall-clock time, to the second."""
    if moment is None:
        return None
    return moment.astimezone(LOCAL_ZONE).replace(tzinfo=None, microsecond=0)


def _number(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else value


def _versions(session: Session, scope: ExportScope) -> dict[str, InstrumentVersion]:
    """The campaign's pinned instrument versions by key."""
    return {
        version.key: version
        for _, version in campaigns_repository.pinned_instruments(session, scope.campaign_id)
    }


def responses_dataset(session: Session, scope: ExportScope, version: InstrumentVersion) -> Dataset:
    instrument = load_published(version)
    category_of, category_labels = _category_codes(scope)
    sources = [s.value for s in ResponseSource]
    source_labels = {
        "link": _("Public link"),
        "qr": _("QR code"),
        "invitation": _("Invitation"),
        "api": _("API"),
    }
    source_codes = tuple(
        CodedValue(i, source_labels.get(s, s), s) for i, s in enumerate(sources, 1)
    )
    source_of = {s: i for i, s in enumerate(sources, 1)}
    meta = [
        meta_column("response_id", _("Response identifier (random)"), "text"),
        meta_column("authority_code", _("Authority code (INSEE, SIREN)"), "text"),
        meta_column("authority_name", _("Authority"), "text"),
        meta_column("category", _("Award category"), "code", category_labels),
        meta_column("source", _("How the citizen reached the questionnaire"), "code", source_codes),
        meta_column("instrument_version", _("Questionnaire version"), "integer"),
        meta_column("started_at", _("Started (local time)"), "datetime"),
        meta_column("submitted_at", _("Sent (local time)"), "datetime"),
        meta_column("duration_seconds", _("Time taken to answer (seconds)"), "integer"),
        meta_column("flag_too_fast", _("Flagged: answered too fast"), "code", _no_yes()),
        meta_column(
            "flag_straight_lining", _("Flagged: same answer to every agreement"), "code", _no_yes()
        ),
        meta_column("excluded", _("Left out of scoring"), "code", _no_yes()),
    ]
    names = Names(column.name for column in meta)
    codebook = build_codebook(instrument, scope.language, names)
    authorities = repository.authorities_of(session, scope.campaign_id)
    version_numbers = {row_id(version): version.version}

    def rows(read: Session) -> Iterator[list[Any]]:
        for (
            response_id,
            code,
            version_id,
            source,
            started,
            submitted,
            answers,
            flags,
            excluded,
        ) in repository.stream_responses(
            read, campaign_id=scope.campaign_id, authority_code=scope.authority_code
        ):
            name, category, _departement = authorities.get(code, ("", "", None))
            duration = (
                int((submitted - started).total_seconds())
                if started is not None and submitted is not None
                else None
            )
            flagged = set(flags or ())
            yield [
                str(response_id),
                code,
                name,
                category_of.get(category),
                source_of.get(source),
                version_numbers.get(version_id),
                _local(started),
                _local(submitted),
                duration,
                *(int(flag in flagged) for flag in QUALITY_FLAGS),
                int(bool(excluded)),
                *codebook.encode(answers or {}),
            ]

    return Dataset(
        key="responses",
        title=_("Citizen responses"),
        columns=(*meta, *codebook.columns),
        rows=rows,
    )


def visits_dataset(session: Session, scope: ExportScope, version: InstrumentVersion) -> Dataset:
    instrument = load_published(version)
    channel = instrument.channel or ""
    category_of, category_labels = _category_codes(scope)
    meta = [
        meta_column("visit_id", _("Visit identifier"), "text"),
        meta_column("authority_code", _("Authority code (INSEE, SIREN)"), "text"),
        meta_column("authority_name", _("Authority"), "text"),
        meta_column("category", _("Award category"), "code", category_labels),
        meta_column("mission_number", _("Test number on this channel"), "integer"),
        meta_column("scenario", _("Scenario"), "text"),
        meta_column("grid_version", _("Grid version"), "integer"),
        meta_column("visited_at", _("Test done (local time)"), "datetime"),
        meta_column("submitted_at", _("Report sent (local time)"), "datetime"),
        meta_column("revision", _("Report revision"), "integer"),
    ]
    if scope.shopper_ids:
        meta.append(meta_column("shopper_id", _("Mystery shopper (account number)"), "integer"))
    meta += [
        meta_column("channel_score", _("Score of the test, 0–100"), "number"),
        meta_column("knocked_out", _("A knock-out criterion failed (score 0)"), "code", _no_yes()),
    ]
    names = Names(column.name for column in meta)
    themes = [
        meta_column(
            names.take(f"theme_{theme.key}"),
            _("Theme score 0–100: %(theme)s") % {"theme": theme.label.get(scope.language)},
            "number",
        )
        for theme in instrument.themes
    ]
    codebook: Codebook = build_codebook(instrument, scope.language, names)
    authorities = repository.authorities_of(session, scope.campaign_id)
    version_numbers = {row_id(version): version.version}
    shopper_ids = scope.shopper_ids

    def rows(read: Session) -> Iterator[list[Any]]:
        for (
            visit_id,
            code,
            sequence,
            scenario,
            version_id,
            visited,
            submitted,
            revision,
            shopper,
            answers,
        ) in repository.stream_approved_visits(
            read,
            campaign_id=scope.campaign_id,
            channel=channel,
            authority_code=scope.authority_code,
        ):
            name, category, departement = authorities.get(code, ("", "", None))
            subdivision = surveys.holiday_subdivision(departement)
            clean = answers or {}
            try:
                scored = surveys.submission_scores(instrument, clean, subdivision=subdivision)
                total = _number(scored.total.score)
                knocked = int(scored.knocked_out)
                theme_scores = [_number(scored.themes[t.key].score) for t in instrument.themes]
            except (surveys.InvalidAnswersError, KeyError, ValueError):
                total, knocked, theme_scores = None, None, [None] * len(instrument.themes)
            cells = [
                str(visit_id),
                code,
                name,
                category_of.get(category),
                sequence,
                scenario or "",
                version_numbers.get(version_id),
                _local(visited),
                _local(submitted),
                revision,
            ]
            if shopper_ids:
                cells.append(shopper)
            yield [*cells, total, knocked, *theme_scores, *codebook.encode(clean)]

    channel_label = surveys.CHANNELS.get(channel, (channel, channel))
    return Dataset(
        key=f"visits_{channel}",
        title=_("Mystery-shopper visits: %(channel)s")
        % {"channel": channel_label[1 if scope.language == "en" else 0]},
        columns=(*meta, *themes, *codebook.columns),
        rows=rows,
    )


def datasets_of(session: Session, scope: ExportScope, content: str) -> list[Dataset]:
    """The tables of an export of ``content`` (responses, visits or all), in a fixed order."""
    versions = _versions(session, scope)
    out: list[Dataset] = []
    if content in ("responses", "all"):
        out += [
            responses_dataset(session, scope, v) for v in versions.values() if v.kind == "survey"
        ]
    if content in ("visits", "all"):
        grids = [v for v in versions.values() if v.kind == "grid" and v.channel]
        order = list(surveys.CHANNELS)
        grids.sort(key=lambda v: order.index(v.channel) if v.channel in order else len(order))
        out += [visits_dataset(session, scope, v) for v in grids]
    return out
