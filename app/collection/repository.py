"""Queries on responses and drafts, and the aggregates of the collection's progress."""

from __future__ import annotations

import math
import struct
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from app.authorities.models import Authority
from app.campaigns.models import CampaignInstrument, Candidate, CandidateStatus
from app.collection.models import Invitation, InvitationRecipient, Response, SurveyDraft
from app.core.cache import BoundedCache
from app.instruments.models import InstrumentVersion
from app.mail.models import MessageState, OutboxMessage
from app.missions.models import Mission, ReviewState, Visit


def candidate_authority(
    session: Session, *, campaign_id: int, authority_code: str
) -> tuple[Authority, str] | None:
    """An authority and its candidacy's status in a campaign (one query), if it is a candidate."""
    row = session.exec(
        select(Authority, Candidate.status)
        .join(Candidate, col(Candidate.authority_code) == col(Authority.code))
        .where(col(Candidate.campaign_id) == campaign_id, col(Authority.code) == authority_code)
    ).first()
    return (row[0], str(row[1])) if row is not None else None


def get_response(session: Session, response_id: uuid.UUID) -> Response | None:
    return session.get(Response, response_id)


def response_exists(session: Session, response_id: uuid.UUID) -> bool:
    table = Response.__table__  # type: ignore[attr-defined]
    row = session.execute(sa.select(table.c.id).where(table.c.id == response_id)).first()
    return row is not None


@dataclass(frozen=True)
class DraftRow:
    """A draft as the form's pages read it (plain columns, no ORM object)."""

    id: uuid.UUID
    campaign_id: int
    authority_code: str
    channel: str | None
    source: str
    answers: dict[str, Any]
    started_at: datetime
    invitation_id: int | None


def read_draft(connection: sa.Connection, draft_id: uuid.UUID) -> DraftRow | None:
    table = SurveyDraft.__table__  # type: ignore[attr-defined]
    columns = [table.c[name] for name in DraftRow.__dataclass_fields__]
    row = connection.execute(sa.select(*columns).where(table.c.id == draft_id)).first()
    return DraftRow(**row._mapping) if row is not None else None


def answered_or_invitation(
    connection: sa.Connection, draft_id: uuid.UUID
) -> tuple[bool, int | None]:
    """Whether a response has this id, and the invitation that opened it if any (one query)."""
    responses = Response.__table__  # type: ignore[attr-defined]
    invitations = Invitation.__table__  # type: ignore[attr-defined]
    row = connection.execute(
        sa.select(
            sa.exists().where(responses.c.id == draft_id),
            sa.select(invitations.c.id)
            .where(invitations.c.draft_id == draft_id)
            .limit(1)
            .scalar_subquery(),
        )
    ).one()
    return bool(row[0]), row[1]


@dataclass(frozen=True)
class InvitationRow:
    """An invitation as the API's check reads it (plain columns)."""

    id: int
    campaign_id: int
    authority_code: str
    draft_id: uuid.UUID | None
    used_at: datetime | None


def invitation_by_hash(connection: sa.Connection, token_hash: str) -> InvitationRow | None:
    table = Invitation.__table__  # type: ignore[attr-defined]
    columns = [table.c[name] for name in InvitationRow.__dataclass_fields__]
    row = connection.execute(sa.select(*columns).where(table.c.token_hash == token_hash)).first()
    return InvitationRow(**row._mapping) if row is not None else None


def get_draft(session: Session, draft_id: uuid.UUID) -> SurveyDraft | None:
    return session.get(SurveyDraft, draft_id)


def count_responses(
    session: Session, *, campaign_id: int, authority_code: str | None = None
) -> int:
    statement = (
        select(func.count()).select_from(Response).where(col(Response.campaign_id) == campaign_id)
    )
    if authority_code is not None:
        statement = statement.where(col(Response.authority_code) == authority_code)
    return int(session.exec(statement).one())


def get_invitation_by_hash(session: Session, token_hash: str) -> Invitation | None:
    return session.exec(select(Invitation).where(col(Invitation.token_hash) == token_hash)).first()


def add_invitations(session: Session, rows: list[dict[str, Any]]) -> None:
    if rows:
        session.execute(sa.insert(Invitation), rows)


def responses_per_day(
    session: Session, *, campaign_id: int, authority_code: str | None
) -> list[tuple[str, int]]:
    day = sa.func.date(col(Response.submitted_at))
    statement = (
        sa.select(day, sa.func.count())
        .where(col(Response.campaign_id) == campaign_id)
        .group_by(day)
        .order_by(day)
    )
    if authority_code is not None:
        statement = statement.where(col(Response.authority_code) == authority_code)
    return [(str(value), int(count)) for value, count in session.execute(statement).all()]


def responses_by(
    session: Session, column: Any, *, campaign_id: int, authority_code: str | None
) -> dict[str, int]:
    statement = (
        sa.select(column, sa.func.count())
        .where(col(Response.campaign_id) == campaign_id)
        .group_by(column)
    )
    if authority_code is not None:
        statement = statement.where(col(Response.authority_code) == authority_code)
    return {str(value): int(count) for value, count in session.execute(statement).all()}


def unfinished_draft_answers(
    session: Session, *, campaign_id: int, authority_code: str | None
) -> list[dict[str, Any]]:
    """Only the answers' keys matter here (how far people went), never who or what."""
    statement = sa.select(col(SurveyDraft.answers)).where(
        col(SurveyDraft.campaign_id) == campaign_id
    )
    if authority_code is not None:
        statement = statement.where(col(SurveyDraft.authority_code) == authority_code)
    return [row[0] or {} for row in session.execute(statement).all()]


# Published instrument versions never change (database triggers refuse it), so the survey a
# campaign pins is loaded once per (id, sha256) and reused; each request still reads which
# version is pinned (one light query, without the JSON content), so a re-pin shows at once.
# Never stale (the key holds the content's hash); bounded because ids restart with a new database.
_PUBLISHED: BoundedCache[tuple[int, str], InstrumentVersion] = BoundedCache(
    "published surveys", max_entries=256
)


def pinned_survey(session: Session, campaign_id: int) -> InstrumentVersion | None:
    """The survey version a campaign pins (cached by id and sha256; immutable once published)."""
    row = session.execute(
        sa.select(col(InstrumentVersion.id), col(InstrumentVersion.sha256))
        .join(
            CampaignInstrument,
            col(InstrumentVersion.id) == col(CampaignInstrument.instrument_version_id),
        )
        .where(
            col(CampaignInstrument.campaign_id) == campaign_id,
            col(InstrumentVersion.kind) == "survey",
        )
        .order_by(col(CampaignInstrument.instrument_key))
        .limit(1)
    ).first()
    if row is None:
        return None
    key = (int(row[0]), str(row[1]))
    version = _PUBLISHED.get(key)
    if version is None:
        version = session.get(InstrumentVersion, key[0])
        if version is None:
            return None
        session.expunge(version)
        _PUBLISHED.put(key, version)
    return version


# --- citizens invited by e-mail (app.collection.email_invitations) ---------------------------

CHUNK = 500  # under SQLite's bound-parameter limit


def insert_invitations(session: Session, rows: list[dict[str, Any]]) -> list[int]:
    """Insert invitations in bulk; their ids, in the order of ``rows``."""
    table = Invitation.__table__  # type: ignore[attr-defined]
    statement = sa.insert(table).returning(table.c.id, sort_by_parameter_order=True)
    ids: list[int] = []
    for start in range(0, len(rows), CHUNK):
        result = session.execute(statement, rows[start : start + CHUNK])
        ids.extend(int(row[0]) for row in result)
    return ids


def insert_recipients(session: Session, rows: list[dict[str, Any]]) -> None:
    table = InvitationRecipient.__table__  # type: ignore[attr-defined]
    for start in range(0, len(rows), CHUNK):
        session.execute(sa.insert(table), rows[start : start + CHUNK])


def invited_email_hashes(session: Session, *, campaign_id: int, hashes: list[str]) -> set[str]:
    """Which of these address hashes were already invited to the campaign (opted out too)."""
    found: set[str] = set()
    for start in range(0, len(hashes), CHUNK):
        chunk = hashes[start : start + CHUNK]
        found.update(
            str(value)
            for value in session.exec(
                select(InvitationRecipient.email_hash).where(
                    col(InvitationRecipient.campaign_id) == campaign_id,
                    col(InvitationRecipient.email_hash).in_(chunk),
                )
            )
        )
    return found


def recipient_by_optout_hash(session: Session, token_hash: str) -> InvitationRecipient | None:
    return session.exec(
        select(InvitationRecipient).where(col(InvitationRecipient.optout_token_hash) == token_hash)
    ).first()


def recipients_to_invite(
    session: Session, *, campaign_id: int, limit: int
) -> list[tuple[InvitationRecipient, Invitation]]:
    """Recipients whose invitation e-mail is not queued yet (and who are still reachable)."""
    rows = session.exec(
        select(InvitationRecipient, Invitation)
        .join(Invitation, col(Invitation.id) == col(InvitationRecipient.invitation_id))
        .where(
            col(InvitationRecipient.campaign_id) == campaign_id,
            col(InvitationRecipient.invited_at).is_(None),
            col(InvitationRecipient.email).is_not(None),
            col(InvitationRecipient.erased_at).is_(None),
        )
        .order_by(col(InvitationRecipient.id))
        .limit(limit)
    ).all()
    return [(recipient, invitation) for recipient, invitation in rows]


def recipients_due_reminder(
    session: Session, *, campaign_id: int, now: datetime
) -> list[tuple[InvitationRecipient, Invitation]]:
    """Recipients whose reminder is due: not reminded, not opted out, not erased, and whose
    invitation was not used to answer."""
    rows = session.exec(
        select(InvitationRecipient, Invitation)
        .join(Invitation, col(Invitation.id) == col(InvitationRecipient.invitation_id))
        .where(
            col(InvitationRecipient.campaign_id) == campaign_id,
            col(InvitationRecipient.remind_after) <= now,
            col(InvitationRecipient.invited_at).is_not(None),
            col(InvitationRecipient.reminded_at).is_(None),
            col(InvitationRecipient.opted_out_at).is_(None),
            col(InvitationRecipient.erased_at).is_(None),
            col(InvitationRecipient.email).is_not(None),
            col(Invitation.used_at).is_(None),
        )
        .order_by(col(InvitationRecipient.id))
    ).all()
    return [(recipient, invitation) for recipient, invitation in rows]


def recipient_ids(session: Session, *, campaign_id: int) -> list[int]:
    rows = session.exec(
        select(InvitationRecipient.id).where(col(InvitationRecipient.campaign_id) == campaign_id)
    )
    return [int(value) for value in rows if value is not None]


def recipients_with_unsent_messages(
    session: Session, *, object_type: str, recipient_ids: list[int]
) -> list[int]:
    """Those of these recipients that still have a message waiting in the outbox."""
    found: set[int] = set()
    for start in range(0, len(recipient_ids), CHUNK):
        chunk = [str(value) for value in recipient_ids[start : start + CHUNK]]
        found.update(
            int(str(value))
            for value in session.exec(
                select(OutboxMessage.object_id)
                .where(
                    col(OutboxMessage.object_type) == object_type,
                    col(OutboxMessage.object_id).in_(chunk),
                    col(OutboxMessage.state).in_([MessageState.queued, MessageState.held]),
                )
                .distinct()
            )
        )
    return sorted(found)


def erase_recipient_addresses(session: Session, *, campaign_id: int, now: datetime) -> int:
    """Forget every address, clear token and address hash of a campaign's recipients."""
    result = session.execute(
        sa.update(InvitationRecipient)
        .where(
            col(InvitationRecipient.campaign_id) == campaign_id,
            col(InvitationRecipient.erased_at).is_(None),
        )
        .values(email=None, email_hash=None, token=None, erased_at=now)
    )
    # Opted-out recipients have no address any more, but still a hash that kept them from
    # being invited again: gone too now that no upload can come.
    session.execute(
        sa.update(InvitationRecipient)
        .where(
            col(InvitationRecipient.campaign_id) == campaign_id,
            col(InvitationRecipient.email_hash).is_not(None),
        )
        .values(email=None, email_hash=None, token=None)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class RecipientCountsRow:
    authority_code: str
    authority_name: str
    invited: int
    reminded: int
    opted_out: int
    answered: int
    erased: int


def recipient_counts(session: Session, *, campaign_id: int) -> list[RecipientCountsRow]:
    """Per candidate: invited by e-mail, reminded, opted out, answered, erased (counts only)."""
    recipient = InvitationRecipient.__table__  # type: ignore[attr-defined]
    invitation = Invitation.__table__  # type: ignore[attr-defined]
    authority = Authority.__table__  # type: ignore[attr-defined]
    statement = (
        sa.select(
            invitation.c.authority_code,
            authority.c.name,
            sa.func.count(recipient.c.id),
            sa.func.count(recipient.c.reminded_at),
            sa.func.count(recipient.c.opted_out_at),
            sa.func.count(invitation.c.used_at),
            sa.func.count(recipient.c.erased_at),
        )
        .select_from(
            recipient.join(invitation, invitation.c.id == recipient.c.invitation_id).join(
                authority, authority.c.code == invitation.c.authority_code
            )
        )
        .where(recipient.c.campaign_id == campaign_id)
        .group_by(invitation.c.authority_code, authority.c.name)
        .order_by(authority.c.name)
    )
    return [
        RecipientCountsRow(str(code), str(name), *(int(n) for n in numbers))
        for code, name, *numbers in session.execute(statement).all()
    ]


# --- collection progress against the eligibility rules (app.collection.progress) ------------
#
# Aggregates only: a national campaign holds a million responses, and the page is read while
# they come in. Each query groups in the database and returns at most a few rows per
# candidate. The responses counted are those a scoring run reads (app.results.inputs):
# registered candidates, the pinned survey version, not excluded.

# What ``surveys.pack_item_scores`` writes for a missing score (``struct.pack("<d", nan)``):
# the one writer of packed scores, so a missing score is always these 8 bytes.
MISSING_SCORE_BYTES = struct.pack("<d", math.nan)


def _registered_candidate(campaign: Any, authority_code: Any) -> Any:
    """Join condition: the row's authority is a registered candidate of the campaign."""
    candidates = Candidate.__table__  # type: ignore[attr-defined]
    return (
        (candidates.c.campaign_id == campaign)
        & (candidates.c.authority_code == authority_code)
        & (candidates.c.status == CandidateStatus.registered.value)
    )


@dataclass(frozen=True)
class ProgressCandidateRow:
    """A registered candidate as the progress page lists it."""

    code: str
    name: str
    category: str


def progress_candidates(
    session: Session, *, campaign_id: int, category: str | None, authority_code: str | None
) -> list[ProgressCandidateRow]:
    """The campaign's registered candidates (of one category, or one authority), by code."""
    candidates = Candidate.__table__  # type: ignore[attr-defined]
    authorities = Authority.__table__  # type: ignore[attr-defined]
    statement = (
        sa.select(candidates.c.authority_code, authorities.c.name, candidates.c.category)
        .join(authorities, authorities.c.code == candidates.c.authority_code)
        .where(
            candidates.c.campaign_id == campaign_id,
            candidates.c.status == CandidateStatus.registered.value,
        )
        .order_by(candidates.c.authority_code)
    )
    if category is not None:
        statement = statement.where(candidates.c.category == category)
    if authority_code is not None:
        statement = statement.where(candidates.c.authority_code == authority_code)
    return [
        ProgressCandidateRow(str(code), str(name), str(key))
        for code, name, key in session.execute(statement).all()
    ]


def _scored_responses(
    columns: list[Any], *, campaign_id: int, survey_version_id: int, authority_code: str | None
) -> Any:
    """SELECT ``columns`` of the responses a scoring run reads (see the section's note)."""
    responses = Response.__table__  # type: ignore[attr-defined]
    candidates = Candidate.__table__  # type: ignore[attr-defined]
    statement = (
        sa.select(*columns)
        .select_from(responses)
        .join(
            candidates, _registered_candidate(responses.c.campaign_id, responses.c.authority_code)
        )
        .where(
            responses.c.campaign_id == campaign_id,
            responses.c.instrument_version_id == survey_version_id,
            sa.not_(responses.c.excluded),
        )
    )
    if authority_code is not None:
        statement = statement.where(responses.c.authority_code == authority_code)
    return statement


@dataclass(frozen=True)
class RespondentGroup:
    """Scored responses of one candidate that a respondent count treats alike.

    Rows with packed item scores carry ``covered``: the weight of the index's items that have
    a score. Older rows (no packed scores of the pinned version's length) carry ``answers``:
    their answers to those items as JSON texts, for the caller to score as a run would.
    """

    code: str
    covered: float | None
    answers: tuple[str | None, ...]
    responses: int


def respondent_groups(
    session: Session,
    *,
    campaign_id: int,
    survey_version_id: int,
    weighted_items: list[tuple[int, str, float]],
    packed_bytes: int,
    authority_code: str | None = None,
) -> list[RespondentGroup]:
    """The scored responses (registered candidates, pinned survey version, not excluded),
    grouped per candidate by the weight of the satisfaction index they cover.

    ``weighted_items``: (position in the packed scores, item key, weight) of the items the
    index averages; an item covers its weight when its packed score is not the missing
    value. One scan: the database reads 8 bytes per item and groups, so a candidate has one
    row per distinct covered weight (ten at most with nine items of equal weight); older rows
    without packed scores are grouped by their distinct answers to those items instead.
    """
    if not weighted_items:
        return []
    responses = Response.__table__  # type: ignore[attr-defined]
    missing = sa.literal(MISSING_SCORE_BYTES, sa.LargeBinary)
    packed = sa.func.length(responses.c.item_scores) == packed_bytes
    covered: Any = sa.literal(0.0, sa.Float)
    for position, _key, weight in weighted_items:
        # Literal offsets: PostgreSQL's substr wants integers, not untyped parameters.
        score = sa.func.substr(
            responses.c.item_scores,
            sa.literal_column(str(8 * position + 1)),
            sa.literal_column("8"),
        )
        covered = covered + sa.case((score == missing, 0.0), else_=sa.literal(weight, sa.Float))
    answers = [
        sa.case((packed, sa.null()), else_=sa.cast(responses.c.answers[key], sa.Text))
        for _position, key, _weight in weighted_items
    ]
    columns = [
        responses.c.authority_code,
        sa.case((packed, covered), else_=sa.null()),
        *answers,
    ]
    statement = _scored_responses(
        [*columns, sa.func.count()],
        campaign_id=campaign_id,
        survey_version_id=survey_version_id,
        authority_code=authority_code,
    ).group_by(
        # By position: PostgreSQL cannot match an expression with parameters in GROUP BY, and
        # grouping in the same SELECT spares SQLite a subquery of a million rows.
        *(sa.literal_column(str(position)) for position in range(1, len(columns) + 1))
    )
    return [
        RespondentGroup(
            code=str(row[0]),
            covered=None if row[1] is None else float(row[1]),
            answers=tuple(row[2:-1]),
            responses=int(row[-1]),
        )
        for row in session.execute(statement).all()
    ]


def approved_visit_counts(
    session: Session, *, campaign_id: int, authority_code: str | None = None
) -> list[tuple[str, str, int]]:
    """(authority code, channel, approved visits) of the campaign's registered candidates.

    The channel is the mission's, else the grid version's, as a scoring run reads it.
    """
    visits = Visit.__table__  # type: ignore[attr-defined]
    missions = Mission.__table__  # type: ignore[attr-defined]
    versions = InstrumentVersion.__table__  # type: ignore[attr-defined]
    candidates = Candidate.__table__  # type: ignore[attr-defined]
    channel = sa.func.coalesce(sa.func.nullif(missions.c.channel, ""), versions.c.channel, "")
    per_visit = (
        sa.select(missions.c.authority_code.label("code"), channel.label("channel"))
        .select_from(visits)
        .join(missions, missions.c.id == visits.c.mission_id)
        .join(versions, versions.c.id == visits.c.instrument_version_id)
        .join(candidates, _registered_candidate(missions.c.campaign_id, missions.c.authority_code))
        .where(
            missions.c.campaign_id == campaign_id,
            visits.c.review_state == ReviewState.approved.value,
        )
    )
    if authority_code is not None:
        per_visit = per_visit.where(missions.c.authority_code == authority_code)
    counted = per_visit.subquery()
    statement = sa.select(counted.c.code, counted.c.channel, sa.func.count()).group_by(
        counted.c.code, counted.c.channel
    )
    return [
        (str(code), str(channel), int(count))
        for code, channel, count in session.execute(statement).all()
    ]
