"""Published instrument versions: immutable once stored (the database refuses changes)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from app.core.timeutil import UTCDateTime, utcnow


class InstrumentVersion(SQLModel, table=True):
    __tablename__ = "instrument_versions"
    __table_args__ = (
        sa.UniqueConstraint("key", "version", name="uq_instrument_key_version"),
        sa.UniqueConstraint("key", "sha256", name="uq_instrument_key_sha256"),
    )

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=64, index=True)
    # Published number, 1, 2, 3… per key; the definition's own `version` label is kept apart.
    version: int
    definition_version: str = Field(max_length=32)
    kind: str = Field(max_length=10)
    channel: str | None = Field(default=None, max_length=20)
    title_fr: str = Field(max_length=300)
    title_en: str = Field(max_length=300)
    content: dict[str, Any] = Field(sa_type=sa.JSON)
    # sha256 of the canonical JSON: identical content is the same version.
    sha256: str = Field(max_length=64)
    published_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    published_by_id: int | None = Field(default=None, foreign_key="users.id")
