"""Queries of the exports: the export rows themselves, and the answers they stream."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.authorities.models import Authority
from app.campaigns.models import Candidate
from app.collection.models import Response
from app.exports.models import Export, ExportState
from app.missions.models import Mission, ReviewState, Scenario, Visit

STREAM_CHUNK_ROWS = 2_000


def get_export(session: Session, export_id: int) -> Export | None:
    return session.get(Export, export_id)


def exports_of(
    session: Session, *, campaign_id: int, authority_code: str | None, limit: int = 50
) -> list[Export]:
    """The campaign's exports, newest first: an authority's own only when a code is given."""
    statement = select(Export).where(col(Export.campaign_id) == campaign_id)
    if authority_code is not None:
        statement = statement.where(col(Export.authority_code) == authority_code)
    return list(session.exec(statement.order_by(col(Export.id).desc()).limit(limit)).all())


def expired_ready(session: Session, *, now: datetime) -> list[Export]:
    return list(
        session.exec(
            select(Export).where(
                col(Export.state) == ExportState.ready, col(Export.expires_at) <= now
            )
        ).all()
    )


def authorities_of(session: Session, campaign_id: int) -> dict[str, tuple[str, str, str | None]]:
    """Candidate code → (name, category key, département) for the campaign's candidates."""
    rows = session.exec(
        select(Candidate.authority_code, Authority.name, Candidate.category, Authority.departement)
        .join(Authority, col(Authority.code) == col(Candidate.authority_code))
        .where(col(Candidate.campaign_id) == campaign_id)
    ).all()
    return {code: (name, category, departement) for code, name, category, departement in rows}


def count_responses(session: Session, *, campaign_id: int, authority_code: str | None) -> int:
    from sqlalchemy import func

    statement = (
        select(func.count()).select_from(Response).where(col(Response.campaign_id) == campaign_id)
    )
    if authority_code is not None:
        statement = statement.where(col(Response.authority_code) == authority_code)
    return int(session.exec(statement).one())


def response_authorities(
    session: Session, *, campaign_id: int, authority_code: str | None
) -> list[str]:
    """The authorities with responses, in code order (read from the index alone)."""
    if authority_code is not None:
        return [authority_code]
    statement = (
        select(Response.authority_code)
        .where(col(Response.campaign_id) == campaign_id)
        .distinct()
        .order_by(col(Response.authority_code))
    )
    return list(session.exec(statement).all())


def stream_responses(
    session: Session,
    *,
    campaign_id: int,
    authority_code: str | None,
    chunk_rows: int = STREAM_CHUNK_ROWS,
) -> Iterator[tuple[Any, ...]]:
    """(id, authority, version id, source, started, submitted, answers, flags, excluded) of
    every response, by authority then id, a chunk of ``chunk_rows`` per query.

    Keyset paging within each authority: every query is a range of the (campaign, authority)
    index, so it sorts one authority's rows at most. (One keyset over the whole campaign,
    ``ORDER BY id``, made SQLite sort the million rows again for every chunk: 0.5 s each.)
    Memory stays flat and no cursor stays open between chunks.
    """
    for code in response_authorities(
        session, campaign_id=campaign_id, authority_code=authority_code
    ):
        after: uuid.UUID | None = None
        while True:
            # SQLAlchemy's select: sqlmodel's is typed for at most four columns.
            statement = sa.select(
                col(Response.id),
                col(Response.authority_code),
                col(Response.instrument_version_id),
                col(Response.source),
                col(Response.started_at),
                col(Response.submitted_at),
                col(Response.answers),
                col(Response.quality_flags),
                col(Response.excluded),
            ).where(col(Response.campaign_id) == campaign_id, col(Response.authority_code) == code)
            if after is not None:
                statement = statement.where(col(Response.id) > after)
            rows = session.execute(statement.order_by(col(Response.id)).limit(chunk_rows)).all()
            yield from rows
            if len(rows) < chunk_rows:
                break
            after = rows[-1][0]


def stream_approved_visits(
    session: Session,
    *,
    campaign_id: int,
    channel: str,
    authority_code: str | None,
    chunk_rows: int = STREAM_CHUNK_ROWS,
) -> Iterator[tuple[Any, ...]]:
    """(visit id, authority, sequence, scenario key, version id, visited, submitted,
    revision, shopper id, answers) of the approved visits of one channel, in id order."""
    after: uuid.UUID | None = None
    while True:
        statement = (
            sa.select(
                col(Visit.id),
                col(Mission.authority_code),
                col(Mission.sequence),
                col(Scenario.key),
                col(Visit.instrument_version_id),
                col(Visit.visited_at),
                col(Visit.submitted_at),
                col(Visit.revision),
                col(Visit.shopper_id),
                col(Visit.answers),
            )
            .join(Mission, col(Mission.id) == col(Visit.mission_id))
            .outerjoin(Scenario, col(Scenario.id) == col(Mission.scenario_id))
            .where(
                col(Mission.campaign_id) == campaign_id,
                col(Mission.channel) == channel,
                col(Visit.review_state) == ReviewState.approved,
            )
        )
        if authority_code is not None:
            statement = statement.where(col(Mission.authority_code) == authority_code)
        if after is not None:
            statement = statement.where(col(Visit.id) > after)
        rows = session.execute(statement.order_by(col(Visit.id)).limit(chunk_rows)).all()
        if not rows:
            return
        yield from rows
        after = rows[-1][0]
        if len(rows) < chunk_rows:
            return
