"""Queries on the registry."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from app.authorities.models import Authority
from app.core.text import search_key

COMPARED_COLUMNS = (
    "siren",
    "name",
    "search_name",
    "kind",
    "population",
    "departement",
    "region",
    "parent_code",
)


def get(session: Session, code: str) -> Authority | None:
    return session.get(Authority, code)


def get_many(session: Session, codes: Iterable[str]) -> dict[str, Authority]:
    wanted = list(set(codes))
    found: dict[str, Authority] = {}
    # Chunked to stay under SQLite's bound-parameter limit.
    for start in range(0, len(wanted), 900):
        chunk = wanted[start : start + 900]
        for authority in session.exec(select(Authority).where(col(Authority.code).in_(chunk))):
            found[authority.code] = authority
    return found


def snapshot(session: Session) -> dict[str, tuple[Any, ...]]:
    """Every authority's compared columns, keyed by code (one query, no ORM objects)."""
    columns = [Authority.code, *(getattr(Authority, name) for name in COMPARED_COLUMNS)]
    rows = session.execute(sa.select(*columns)).all()
    return {row[0]: tuple(row[1:]) for row in rows}


def insert_many(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        session.execute(sa.insert(Authority), list(rows))


def update_many(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        session.execute(sa.update(Authority), list(rows))


def _search_filter(query: str, kind: str | None) -> list[Any]:
    conditions: list[Any] = []
    cleaned = query.strip()
    if cleaned:
        key = search_key(cleaned)
        by_code = col(Authority.code) == cleaned.upper()
        by_siren = col(Authority.siren) == cleaned
        conditions.append(
            sa.or_(by_code, by_siren, col(Authority.search_name).contains(key))
            if key
            else sa.or_(by_code, by_siren)
        )
    if kind:
        conditions.append(col(Authority.kind) == kind)
    return conditions


def search(
    session: Session, *, query: str, kind: str | None, offset: int, limit: int
) -> tuple[list[Authority], int]:
    conditions = _search_filter(query, kind)
    total = session.exec(select(func.count()).select_from(Authority).where(*conditions)).one()
    # Exact code matches first, then the most populous: what a person searching expects.
    ordering = [
        sa.case((col(Authority.code) == query.strip().upper(), 0), else_=1),
        col(Authority.population).desc(),
        col(Authority.code),
    ]
    rows = session.exec(
        select(Authority).where(*conditions).order_by(*ordering).offset(offset).limit(limit)
    ).all()
    return list(rows), int(total)


def count(session: Session) -> int:
    return int(session.exec(select(func.count()).select_from(Authority)).one())
