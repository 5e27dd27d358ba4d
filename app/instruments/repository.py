"""Queries on published instrument versions."""

from __future__ import annotations

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
