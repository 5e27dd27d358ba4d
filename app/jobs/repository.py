"""Queries on the ``jobs`` table: the claim, the lease and the end of an attempt.

Every statement that changes a claimed job says ``WHERE lease_owner = :owner``: a worker
whose lease was taken over (it hung past its expiry) changes nothing any more.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from app.jobs.models import Job, JobState

_jobs = Job.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class ClaimedJob:
    id: int
    kind: str
    payload: dict[str, Any]
    attempts: int
    max_attempts: int


def get(session: Session, job_id: int) -> Job | None:
    return session.get(Job, job_id)


def by_dedupe_key(session: Session, key: str) -> Job | None:
    return session.exec(select(Job).where(Job.dedupe_key == key)).first()


def claim(
    session: Session, *, owner: str, queue: str, now: datetime, lease_seconds: float
) -> ClaimedJob | None:
    """Take the oldest due job of ``queue`` (or one whose lease expired) in one statement.

    ``UPDATE … WHERE id = (SELECT … FOR UPDATE SKIP LOCKED LIMIT 1) RETURNING`` on
    PostgreSQL: concurrent workers lock different rows and never wait for each other. SQLite
    has no row locks (SQLAlchemy leaves the clause out) and needs none: it runs one writing
    statement at a time, so the select and the update of one statement are atomic.
    """
    due = sa.or_(
        sa.and_(_jobs.c.state == JobState.queued, _jobs.c.run_after <= now),
        sa.and_(_jobs.c.state == JobState.running, _jobs.c.lease_expires_at < now),
    )
    candidate = (
        sa.select(_jobs.c.id)
        .where(_jobs.c.queue == queue, due, _jobs.c.attempts < _jobs.c.max_attempts)
        .order_by(_jobs.c.run_after, _jobs.c.id)
        .limit(1)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    statement = (
        sa.update(_jobs)
        .where(_jobs.c.id == candidate)
        .values(
            state=JobState.running,
            lease_owner=owner,
            lease_expires_at=now + timedelta(seconds=lease_seconds),
            attempts=_jobs.c.attempts + 1,
            started_at=now,
        )
        .returning(
            _jobs.c.id, _jobs.c.kind, _jobs.c.payload, _jobs.c.attempts, _jobs.c.max_attempts
        )
    )
    row = session.execute(statement).first()
    if row is None:
        return None
    return ClaimedJob(
        id=row.id,
        kind=row.kind,
        payload=dict(row.payload or {}),
        attempts=row.attempts,
        max_attempts=row.max_attempts,
    )


def _owned(job_id: int, owner: str) -> Any:
    return sa.and_(
        _jobs.c.id == job_id, _jobs.c.lease_owner == owner, _jobs.c.state == JobState.running
    )


def renew_lease(
    session: Session, *, job_id: int, owner: str, now: datetime, lease_seconds: float
) -> bool:
    """Push the lease back; False when the job is no longer this worker's."""
    result = session.execute(
        sa.update(_jobs)
        .where(_owned(job_id, owner))
        .values(lease_expires_at=now + timedelta(seconds=lease_seconds))
        .returning(_jobs.c.id)
    )
    return result.first() is not None


def finish(session: Session, *, job_id: int, owner: str, now: datetime) -> bool:
    """Mark the job done; False when this worker lost it (its work must then be rolled back)."""
    result = session.execute(
        sa.update(_jobs)
        .where(_owned(job_id, owner))
        .values(
            state=JobState.done,
            lease_owner=None,
            lease_expires_at=None,
            finished_at=now,
            last_error=None,
        )
        .returning(_jobs.c.id)
    )
    return result.first() is not None


def retry_later(
    session: Session, *, job_id: int, owner: str, run_after: datetime, error: str
) -> bool:
    result = session.execute(
        sa.update(_jobs)
        .where(_owned(job_id, owner))
        .values(
            state=JobState.queued,
            lease_owner=None,
            lease_expires_at=None,
            run_after=run_after,
            last_error=error,
        )
        .returning(_jobs.c.id)
    )
    return result.first() is not None


def give_up(session: Session, *, job_id: int, owner: str | None, now: datetime, error: str) -> bool:
    """Mark the job failed for good (``owner`` None: a sweep of an abandoned job)."""
    condition = (
        _owned(job_id, owner)
        if owner is not None
        else sa.and_(_jobs.c.id == job_id, _jobs.c.state == JobState.running)
    )
    result = session.execute(
        sa.update(_jobs)
        .where(condition)
        .values(
            state=JobState.failed,
            lease_owner=None,
            lease_expires_at=None,
            finished_at=now,
            last_error=error,
        )
        .returning(_jobs.c.id)
    )
    return result.first() is not None


def abandoned(session: Session, *, now: datetime) -> list[Job]:
    """Running jobs whose lease expired after their last attempt: nobody may claim them."""
    return list(
        session.exec(
            select(Job).where(
                Job.state == JobState.running,
                col(Job.lease_expires_at) < now,
                Job.attempts >= Job.max_attempts,
            )
        )
    )


def page(
    session: Session, *, state: str | None, kind: str | None, offset: int, limit: int
) -> tuple[list[Job], int]:
    query = select(Job)
    count = select(func.count()).select_from(Job)
    if state:
        query = query.where(Job.state == state)
        count = count.where(Job.state == state)
    if kind:
        query = query.where(Job.kind == kind)
        count = count.where(Job.kind == kind)
    rows = session.exec(query.order_by(col(Job.id).desc()).offset(offset).limit(limit))
    return list(rows), int(session.exec(count).one())


def counts_by_state(session: Session) -> dict[str, int]:
    rows = session.exec(select(Job.state, func.count()).group_by(Job.state))
    return {state: int(n) for state, n in rows}
