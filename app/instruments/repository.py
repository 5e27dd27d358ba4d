"""Queries on published instrument versions."""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from app.instruments.models import InstrumentVersion


def get(session: Session, version_id: int) -> InstrumentVersion | None:
    return session.get(InstrumentVersion, version_id)


def by_key_and_sha(session: Session, key: str, sha256: str) -> InstrumentVersion | None:
    return session.exec(
        select(InstrumentVersion).where(
            col(InstrumentVersion.key) == key, col(InstrumentVersion.sha256) == sha256
        )
    ).first()


def latest_number(session: Session, key: str) -> int:
    value = session.exec(
        select(func.max(InstrumentVersion.version)).where(col(InstrumentVersion.key) == key)
    ).one()
    return int(value or 0)


def list_versions(session: Session) -> list[InstrumentVersion]:
    return list(
        session.exec(
            select(InstrumentVersion).order_by(
                col(InstrumentVersion.key), col(InstrumentVersion.version).desc()
            )
        ).all()
    )


# Campaigns import this package (a campaign pins versions), so reading them through their models
# here would close an import cycle; the two columns the pin forms need are read by name instead.
_DRAFTS_WITH_PIN = sa.text(
    "SELECT c.id, c.year, c.name, p.instrument_version_id"
    " FROM campaigns AS c"
    " LEFT JOIN campaign_instruments AS p"
    " ON p.campaign_id = c.id AND p.instrument_key = :key"
    " WHERE c.state = 'draft'"
    " ORDER BY c.year DESC, c.id"
)


def draft_campaigns_with_pin(session: Session, key: str) -> list[tuple[int, int, str, int | None]]:
    """``(id, year, name, pinned version id)`` of each draft campaign, for instrument ``key``."""
    rows = session.connection().execute(_DRAFTS_WITH_PIN, {"key": key}).all()
    return [(int(r[0]), int(r[1]), str(r[2]), None if r[3] is None else int(r[3])) for r in rows]
