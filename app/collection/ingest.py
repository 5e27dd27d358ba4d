"""Group commit for the JSON API: many requests, one transaction, acknowledged after COMMIT.

A request validates its submission itself (no database write) and hands the row to the
process's writer for its engine. The writer takes every row waiting, inserts them in one
transaction (``INSERT … ON CONFLICT DO NOTHING RETURNING id``), settles the ids that were not
inserted against the stored ``content_sha256`` (identical → replay, different → conflict),
adds the batch's rate-limit hits to the shared counters in the same transaction, commits, and
only then resolves each request's future. So:

- a 201 is sent only for a row that is committed; if the transaction fails, every request of
  the batch fails (an error response, never an acknowledgement) and nothing of it is stored;
- an id is stored once: the primary key decides, within a batch (the first occurrence
  inserts, the others are replays or conflicts) and across batches and processes;
- one commit (one WAL append on SQLite, one round trip and flush on PostgreSQL) is shared by
  every request that arrived while the previous batch was being written: the busier the
  server, the bigger the batches, with no timer and no added latency when it is idle.

There is one writer per event loop and engine (so per uvicorn worker; SQLite in WAL mode with
a busy timeout lets the workers' writers take turns). It needs no start-up or shutdown: the
first request that finds it idle starts its flush task, which ends when nothing is waiting;
uvicorn's graceful shutdown waits for the requests, and so for their batches.
"""

from __future__ import annotations

import asyncio
import time
import uuid
import weakref
from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session

from app.collection import service
from app.collection.models import Response, ResponseSource
from app.collection.schemas import ResponseSubmission
from app.core import ratelimit
from app.core.config import Settings
from app.core.i18n import _
from app.core.ratelimit import RateLimitCounter

# Bounds a transaction (and SQLite's bound-parameter count: 13 columns per row).
MAX_BATCH = 500


class Outcome(StrEnum):
    created = "created"  # inserted by this request: 201
    replay = "replay"  # the same id with the same content was already stored: 200
    conflict = "conflict"  # the same id with other content: 409


@dataclass
class Pending:
    values: dict[str, Any]  # the row, as prepared by service.prepare_response
    bucket: str | None = None  # the rate-limit bucket to count a hit in when created
    window_seconds: int = 600
    future: asyncio.Future[Outcome] | None = field(default=None, repr=False)

    @property
    def id(self) -> uuid.UUID:
        response_id: uuid.UUID = self.values["id"]
        return response_id

    @property
    def sha256(self) -> str:
        digest: str = self.values["content_sha256"]
        return digest


def _insert(connection: Connection) -> Any:
    return postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert


def write_batch(connection: Connection, batch: list[Pending]) -> list[Outcome]:
    """Store a batch in the caller's transaction; the outcome of each item, in order.

    Nothing here commits: the caller acknowledges the outcomes only after its COMMIT.
    """
    table = Response.__table__  # type: ignore[attr-defined]
    first: dict[uuid.UUID, Pending] = {}
    for item in batch:
        first.setdefault(item.id, item)
    statement = (
        _insert(connection)(table)
        .values([item.values for item in first.values()])
        .on_conflict_do_nothing(index_elements=[table.c.id])
        .returning(table.c.id)
    )
    # RETURNING names exactly the rows this statement inserted.
    inserted = set(connection.execute(statement).scalars())
    missing = [response_id for response_id in first if response_id not in inserted]
    stored: dict[uuid.UUID, str] = {}
    if missing:
        rows = connection.execute(
            sa.select(table.c.id, table.c.content_sha256).where(table.c.id.in_(missing))
        )
        stored = {row.id: row.content_sha256 for row in rows}
    outcomes = []
    for item in batch:
        if item.id in inserted:
            if first[item.id] is item:
                outcomes.append(Outcome.created)
                continue
            reference: str | None = first[item.id].sha256  # a duplicate within the batch
        else:
            reference = stored.get(item.id)
            if reference is None:  # not inserted yet not there: never acknowledge that
                raise RuntimeError(f"response {item.id} was neither inserted nor found")
        outcomes.append(Outcome.replay if reference == item.sha256 else Outcome.conflict)
    _count_hits(
        connection,
        [item for item, outcome in zip(batch, outcomes, strict=True) if outcome is Outcome.created],
    )
    return outcomes


def _count_hits(connection: Connection, created: list[Pending]) -> None:
    """The rate-limit counters (shared by every worker), one upsert per bucket and window."""
    hits = Counter(
        (item.bucket, item.window_seconds) for item in created if item.bucket is not None
    )
    if not hits:
        return
    table = RateLimitCounter.__table__  # type: ignore[attr-defined]
    now = int(time.time())
    for (bucket, window_seconds), count in sorted(hits.items()):
        start = now - now % window_seconds
        statement = _insert(connection)(table).values(
            bucket=bucket, window_start=start, count=count
        )
        statement = statement.on_conflict_do_update(
            index_elements=[table.c.bucket],
            set_={
                "count": sa.case(
                    (table.c.window_start == start, table.c.count + count), else_=count
                ),
                "window_start": start,
            },
        )
        connection.execute(statement)


class IngestWriter:
    """The single writer of one event loop for one engine (see the module docstring)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.waiting: list[Pending] = []
        self.task: asyncio.Task[None] | None = None
        self.batches = 0  # for tests and benchmarks
        self.largest_batch = 0

    async def submit(self, item: Pending) -> Outcome:
        """Queue a row; returns its outcome once the transaction holding it has committed."""
        loop = asyncio.get_running_loop()
        item.future = loop.create_future()
        self.waiting.append(item)
        if self.task is None or self.task.done():
            self.task = loop.create_task(self._flush())
        return await item.future

    async def _flush(self) -> None:
        while self.waiting:
            batch, self.waiting = self.waiting[:MAX_BATCH], self.waiting[MAX_BATCH:]
            try:
                outcomes = await asyncio.to_thread(self._commit, batch)
            except BaseException as exc:  # the batch is not stored: fail every request of it
                for item in batch:
                    assert item.future is not None
                    if not item.future.done():
                        item.future.set_exception(
                            exc if isinstance(exc, Exception) else RuntimeError("write interrupted")
                        )
                if not isinstance(exc, Exception):
                    raise
                continue
            for item, outcome in zip(batch, outcomes, strict=True):
                assert item.future is not None
                if not item.future.done():
                    item.future.set_result(outcome)

    def _commit(self, batch: list[Pending]) -> list[Outcome]:
        with self.engine.begin() as connection:  # COMMIT on leaving, or ROLLBACK and raise
            outcomes = write_batch(connection, batch)
        self.batches += 1
        self.largest_batch = max(self.largest_batch, len(batch))
        return outcomes


_WRITERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, IngestWriter]] = (
    weakref.WeakKeyDictionary()
)


def writer_for(engine: Engine) -> IngestWriter:
    """The writer of the running event loop for this engine (created on first use)."""
    writers = _WRITERS.setdefault(asyncio.get_running_loop(), {})
    writer = writers.get(id(engine))
    if writer is None or writer.engine is not engine:
        writer = writers[id(engine)] = IngestWriter(engine)
    return writer


# --- the JSON API's submission, end to end ---------------------------------------------------


async def accept_submission(
    engine: Engine, settings: Settings, bucket: str, body: ResponseSubmission
) -> tuple[uuid.UUID, bool]:
    """Check, validate and store one API submission; returns (id, created).

    Raises the same domain errors as before (404/409/422/429); a conflict is raised here, in
    the request's own context (its locale), from the writer's outcome.
    """
    if body.invitation is not None:
        # Rare: the invitation is marked used in the response's own transaction.
        return await asyncio.to_thread(_submit_with_invitation, engine, settings, bucket, body)
    with Session(engine, expire_on_commit=False) as session:  # reads only
        _enforce_limit(session, settings, bucket)
        target = service.survey_target(
            session, organiser=settings.organiser, year=body.campaign, authority_code=body.authority
        )
        service.check_invitation_token(session, token=None, target=target, response_id=body.id)
    values = service.prepare_response(
        target=target,
        response_id=body.id,
        answers=body.answers,
        channel=body.channel.value if body.channel else None,
        source=ResponseSource.api,
        started_at=body.started_at,
    )
    pending = Pending(values, bucket=bucket, window_seconds=settings.public_window_seconds)
    outcome = await writer_for(engine).submit(pending)
    if outcome is Outcome.conflict:
        raise service.response_conflict()
    return body.id, outcome is Outcome.created


def _enforce_limit(session: Session, settings: Settings, bucket: str) -> None:
    ratelimit.enforce(
        session,
        bucket,
        limit=settings.public_submissions_per_window,
        window_seconds=settings.public_window_seconds,
        message=_("Too many answers from this connection. Please try again in a few minutes."),
    )


def _submit_with_invitation(
    engine: Engine, settings: Settings, bucket: str, body: ResponseSubmission
) -> tuple[uuid.UUID, bool]:
    with Session(engine, expire_on_commit=False) as session:
        _enforce_limit(session, settings, bucket)
        target = service.survey_target(
            session, organiser=settings.organiser, year=body.campaign, authority_code=body.authority
        )
        invitation = service.check_invitation_token(
            session, token=body.invitation, target=target, response_id=body.id
        )
        response, created = service.submit_response(
            session,
            target=target,
            response_id=body.id,
            answers=body.answers,
            channel=body.channel.value if body.channel else None,
            source=ResponseSource.invitation if invitation else ResponseSource.api,
            started_at=body.started_at,
        )
        if invitation is not None:
            service.mark_invitation_used(session, invitation=invitation, response_id=response.id)
        if created:
            ratelimit.record_hit(session, bucket, window_seconds=settings.public_window_seconds)
        session.commit()
    return body.id, created
