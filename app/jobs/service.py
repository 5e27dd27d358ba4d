"""Enqueueing jobs, and what the organiser's jobs page shows.

Why a module of our own rather than a library: the maintained database-backed queues for
Python (procrastinate, chancy, pgqueuer, postgres-tq) run on PostgreSQL only, and the others
(Celery, RQ, Dramatiq, arq, Huey with Redis) need a broker; the quick start runs on SQLite
with nothing else to install. What we need is small: one table, a claim with
``FOR UPDATE SKIP LOCKED`` on PostgreSQL and SQLite's single writer, a lease, backoff.

A job is enqueued in the caller's unit of work (flushed, never committed here): it exists
exactly when the action that wants it was committed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlmodel import Session

from app.core.errors import InvalidInput
from app.core.i18n import _
from app.core.timeutil import utcnow
from app.jobs import repository
from app.jobs.kinds import KINDS
from app.jobs.models import Job, JobState

PAGE_SIZE = 50


class _Actor(Protocol):
    id: int | None


def enqueue(
    session: Session,
    kind: str,
    payload: dict[str, Any] | None = None,
    *,
    run_after: datetime | None = None,
    dedupe_key: str | None = None,
    actor: _Actor | None = None,
) -> Job:
    """Add a job to run once the caller's transaction commits (at ``run_after`` at the
    earliest). With ``dedupe_key``, a job already enqueued with that key is returned instead."""
    spec = KINDS[kind]
    if dedupe_key is not None:
        existing = repository.by_dedupe_key(session, dedupe_key)
        if existing is not None:
            return existing
    job = Job(
        kind=kind,
        queue=spec.queue,
        payload=payload or {},
        max_attempts=spec.max_attempts,
        run_after=run_after or utcnow(),
        dedupe_key=dedupe_key,
        created_by_id=actor.id if actor is not None else None,
    )
    session.add(job)
    session.flush()
    return job


def job_by_key(session: Session, dedupe_key: str) -> Job | None:
    return repository.by_dedupe_key(session, dedupe_key)


def is_pending(job: Job | None) -> bool:
    """Still to be done by some worker (waiting, retrying or running)."""
    return job is not None and job.state in (JobState.queued, JobState.running)


@dataclass(frozen=True)
class JobsPage:
    jobs: list[Job]
    total: int
    page: int
    pages: int
    counts: dict[str, int]


def jobs_page(
    session: Session, *, state: str | None = None, kind: str | None = None, page: int = 1
) -> JobsPage:
    if state and state not in set(JobState):
        raise InvalidInput(_("Unknown job state."), field="state")
    if kind and kind not in KINDS:
        raise InvalidInput(_("Unknown kind of job."), field="kind")
    if page < 1:
        raise InvalidInput(_("The page number starts at 1."), field="page")
    jobs, total = repository.page(
        session, state=state, kind=kind, offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE
    )
    return JobsPage(
        jobs=jobs,
        total=total,
        page=page,
        pages=max(1, -(-total // PAGE_SIZE)),
        counts=repository.counts_by_state(session),
    )
