"""Exports asked for by the organiser or an authority, built by a background job."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from app.core.labels import N_
from app.core.timeutil import UTCDateTime, utcnow


class ExportState(StrEnum):
    queued = "queued"
    running = "running"
    ready = "ready"
    failed = "failed"
    expired = "expired"  # the file was deleted (kept a few days only: it holds answers)


EXPORT_STATE_LABELS = {
    ExportState.queued: N_("Waiting for a worker"),
    ExportState.running: N_("Being prepared"),
    ExportState.ready: N_("Ready"),
    ExportState.failed: N_("Failed"),
    ExportState.expired: N_("Expired (file deleted)"),
}


class ExportContent(StrEnum):
    responses = "responses"  # citizen responses
    visits = "visits"  # approved mystery-shopper visits, one table per channel's grid
    all = "all"


class ExportFormat(StrEnum):
    csv = "csv"  # international CSV (``,`` and ``.``) with labels.csv, in a zip
    csv_french = "csv_french"  # French spreadsheet CSV (``;``, decimal comma, BOM), in a zip
    xlsx = "xlsx"
    sav = "sav"
    dta = "dta"
    zip = "zip"  # every format above


class Export(SQLModel, table=True):
    __tablename__ = "exports"

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaigns.id", index=True)
    # Set when the rows are one authority's only (always so for an authority's own exports).
    authority_code: str | None = Field(default=None, foreign_key="authorities.code", max_length=12)
    content: str = Field(max_length=20)
    format: str = Field(max_length=20)
    # The language of the labels, the dictionary and the README.
    language: str = Field(default="fr", max_length=8)
    # Whether the visits tables hold the shopper's id (never for an authority).
    shopper_ids: bool = False
    requested_by_id: int = Field(foreign_key="users.id", index=True)
    state: str = Field(default=ExportState.queued, max_length=20)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    file_name: str = Field(default="", max_length=200)
    # Relative to the exports directory of the settings; never built from user input.
    storage_path: str = Field(default="", max_length=200)
    size_bytes: int | None = Field(default=None, sa_type=sa.BigInteger)
    sha256: str = Field(default="", max_length=64)
    # Rows per table, e.g. {"responses": 1000000, "visits_guichet": 6000}.
    rows: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    error: str = Field(default="", max_length=2000)
