"""Queries on responses and drafts."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, func, select

from app.authorities.models import Authority
from app.campaigns.models import CampaignInstrument, Candidate
from app.collection.models import Invitation, Response, SurveyDraft
from app.instruments.models import InstrumentVersion


def insert_response_once(session: Session, values: dict[str, Any]) -> bool:
    """Insert unless the id exists (atomic on both databases); True when this call inserted."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = Response.__table__  # type: ignore[attr-defined]
    statement = (
        insert(table)
        .values(**values)
        .on_conflict_do_nothing(index_elements=[table.c.id])
        .returning(table.c.id)
    )
    # RETURNING gives a row only when this statement inserted (rowcount is unreliable here).
    return session.execute(statement).first() is not None


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


def answered_or_invited(connection: sa.Connection, draft_id: uuid.UUID) -> tuple[bool, bool]:
    """Whether a response has this id, and whether an invitation opened it (one query)."""
    responses = Response.__table__  # type: ignore[attr-defined]
    invitations = Invitation.__table__  # type: ignore[attr-defined]
    row = connection.execute(
        sa.select(
            sa.exists().where(responses.c.id == draft_id),
            sa.exists().where(invitations.c.draft_id == draft_id),
        )
    ).one()
    return bool(row[0]), bool(row[1])


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


def get_invitation_by_draft(session: Session, draft_id: uuid.UUID) -> Invitation | None:
    return session.exec(select(Invitation).where(col(Invitation.draft_id) == draft_id)).first()


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
_PUBLISHED: dict[tuple[int, str], InstrumentVersion] = {}


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
        if len(_PUBLISHED) > 256:
            _PUBLISHED.clear()
        _PUBLISHED[key] = version
    return version
