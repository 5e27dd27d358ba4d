"""Queries on the audit trail: a filtered page, its count, the filter choices, the export."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from app.audit.models import AuditEvent
from app.audit.schemas import AuditFilters

PAGE_SIZE = 50
EXPORT_CHUNK_ROWS = 500
EXPORT_COLUMNS = (
    col(AuditEvent.at),
    col(AuditEvent.actor_id),
    col(AuditEvent.action),
    col(AuditEvent.object_type),
    col(AuditEvent.object_id),
    col(AuditEvent.before),
    col(AuditEvent.after),
)


def _conditions(filters: AuditFilters) -> list[sa.ColumnElement[bool]]:
    conditions: list[sa.ColumnElement[bool]] = []
    if filters.actor is not None:
        conditions.append(col(AuditEvent.actor_id) == filters.actor)
    if filters.action_prefix is not None:
        # autoescape: "_" in a code is a letter here, not LIKE's any-character.
        conditions.append(col(AuditEvent.action).startswith(filters.action_prefix, autoescape=True))
    elif filters.action is not None:
        conditions.append(col(AuditEvent.action) == filters.action)
    if filters.object_type is not None:
        conditions.append(col(AuditEvent.object_type) == filters.object_type)
    if filters.object_id is not None:
        conditions.append(col(AuditEvent.object_id) == filters.object_id)
    if filters.starts_at is not None:
        conditions.append(col(AuditEvent.at) >= filters.starts_at)
    if filters.ends_before is not None:
        conditions.append(col(AuditEvent.at) < filters.ends_before)
    return conditions


def _newest_first() -> tuple[Any, Any]:
    # The id breaks ties between events of one transaction (they share their instant).
    return col(AuditEvent.at).desc(), col(AuditEvent.id).desc()


def count(session: Session, filters: AuditFilters) -> int:
    statement = select(func.count()).select_from(AuditEvent).where(*_conditions(filters))
    return int(session.exec(statement).one())


def page_of_events(
    session: Session, filters: AuditFilters, *, offset: int, limit: int = PAGE_SIZE
) -> list[AuditEvent]:
    statement = (
        select(AuditEvent)
        .where(*_conditions(filters))
        .order_by(*_newest_first())
        .offset(offset)
        .limit(limit)
    )
    return list(session.exec(statement).all())


def distinct_actions(session: Session) -> list[str]:
    statement = select(col(AuditEvent.action)).distinct().order_by(col(AuditEvent.action))
    return list(session.exec(statement).all())


def distinct_object_types(session: Session) -> list[str]:
    statement = select(col(AuditEvent.object_type)).distinct().order_by(col(AuditEvent.object_type))
    return list(session.exec(statement).all())


def stream_events(
    session: Session, filters: AuditFilters, *, chunk_rows: int = EXPORT_CHUNK_ROWS
) -> Iterator[sa.Row[Any]]:
    """Every matching event, newest first, fetched ``chunk_rows`` at a time (a server-side
    cursor on PostgreSQL): an export of the whole trail never holds it in memory."""
    statement = (
        sa.select(*EXPORT_COLUMNS)
        .where(*_conditions(filters))
        .order_by(*_newest_first())
        .execution_options(yield_per=chunk_rows)
    )
    yield from session.execute(statement)
