"""The ``jobs`` table: one row per piece of slow or external work.

A job is ``queued`` until a worker claims it (``running``, with a lease that the worker renews
while it works); it ends ``done`` or, after its last attempt, ``failed``. A failed attempt
before the last one puts it back to ``queued`` with ``run_after`` pushed back (exponential
backoff). A running job whose lease expired (its worker crashed or hangs) is claimable again.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from app.core.labels import N_
from app.core.timeutil import UTCDateTime, utcnow


class JobState(StrEnum):
    queued = "queued"
    running = "running"
    done = "done"
    failed = "failed"


JOB_STATE_LABELS = {
    JobState.queued: N_("Waiting"),
    JobState.running: N_("Running"),
    JobState.done: N_("Done"),
    JobState.failed: N_("Failed"),
}


class Queue(StrEnum):
    """Each queue has its own worker thread, so a long scoring run never holds e-mails back."""

    default = "default"
    long = "long"


class Job(SQLModel, table=True):
    __tablename__ = "jobs"
    __table_args__ = (sa.Index("ix_jobs_claim", "queue", "state", "run_after"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=64, index=True)
    queue: str = Field(default=Queue.default, max_length=16)
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    state: str = Field(default=JobState.queued, max_length=16)
    attempts: int = 0
    max_attempts: int = 5
    run_after: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    lease_owner: str | None = Field(default=None, max_length=128)
    lease_expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_error: str | None = Field(default=None, sa_type=sa.Text)
    # Enqueueing twice with one key gives the same job (a scoring run has exactly one).
    dedupe_key: str | None = Field(default=None, max_length=128, unique=True)
    created_by_id: int | None = Field(default=None, foreign_key="users.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
