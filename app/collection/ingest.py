"""The group-commit writer: many requests, one transaction, acknowledged after COMMIT.

This is the one place besides ``app.core.db`` that commits: it owns its transactions so that
the citizen submissions of many requests share one COMMIT. Requests reach it through
``app.collection.submission`` (completed questionnaires: the form, the invitation form, the
API) and the form's pages (``DraftSave``).

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

The form's pages use the same writer: each page's draft is an upsert in the next batch
(``DraftSave``), and the last page's response deletes its draft in its own transaction. A
response that came with an invitation marks it used in that transaction too; if another
response took the invitation first, the row just inserted is deleted again before COMMIT and
the request is refused (410).

Before inserting, a batch re-checks, in its transaction, what the requests took from the
process's short-lived cache (``app.collection.cache``): the campaign still open and not
invitations-only, the authority still a registered candidate; and the rate limit of each
client bucket against the shared counters (the counts this process learns from each batch
let a full bucket be refused without any read).

There is one writer per event loop and engine (so per uvicorn worker; SQLite in WAL mode with
a busy timeout lets the workers' writers take turns). It needs no start-up or shutdown: the
first request that finds it idle starts its flush task, which ends when nothing is waiting;
uvicorn's graceful shutdown waits for the requests, and so for their batches.
"""

from __future__ import annotations

import asyncio
import gc
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

from app.campaigns.models import Campaign, CampaignState, Candidate, CandidateStatus
from app.collection.models import Invitation, Response, SurveyDraft
from app.core import ratelimit
from app.core.cache import BoundedCache
from app.core.config import Settings
from app.core.db import insert_once_statement
from app.core.timeutil import utcnow

# Bounds a transaction (and SQLite's bound-parameter count: 14 columns per row).
MAX_BATCH = 500


class Outcome(StrEnum):
    created = "created"  # inserted by this request: 201
    replay = "replay"  # the same id with the same content was already stored: 200
    conflict = "conflict"  # the same id with other content: 409
    limited = "limited"  # the client's bucket is full for this window: 429, nothing stored
    closed = "closed"  # the campaign stopped collecting (seen in the transaction): 409
    not_candidate = "not_candidate"  # the authority is no longer a registered candidate: 404
    invitations_only = "invitations_only"  # the campaign now wants an invitation: 403/422
    invitation_used = "invitation_used"  # another response used the invitation first: 410
    saved = "saved"  # a form draft was stored (``DraftSave``)


@dataclass
class Pending:
    values: dict[str, Any]  # the row, as prepared by submission.prepare
    bucket: str | None = None  # the rate-limit bucket to count a hit in when created
    window_seconds: int = 600
    limit: int | None = None  # the bucket's limit per window (None: counted, never refused)
    # The form's final page: its draft (same id) is deleted in the response's transaction.
    discard_draft: bool = False
    # An invitation checked by the request: marked used by this response in its transaction.
    invitation_id: int | None = None
    future: asyncio.Future[Outcome] | None = field(default=None, repr=False)

    @property
    def id(self) -> uuid.UUID:
        response_id: uuid.UUID = self.values["id"]
        return response_id

    @property
    def sha256(self) -> str:
        digest: str = self.values["content_sha256"]
        return digest


@dataclass
class DraftSave:
    """A page of the form: the draft's answers so far, upserted (insert, or update answers)."""

    values: dict[str, Any]  # every column of survey_drafts
    future: asyncio.Future[Outcome] | None = field(default=None, repr=False)


Item = Pending | DraftSave


# A statement depends only on the dialect: never stale.
_DRAFT_UPSERTS: BoundedCache[str, Any] = BoundedCache("draft upsert statements", max_entries=4)


def _draft_upsert_statement(connection: Connection) -> Any:
    """INSERT a draft, or on its id update only its answers and time (built once)."""
    dialect = connection.dialect.name

    def build() -> Any:
        table = SurveyDraft.__table__  # type: ignore[attr-defined]
        insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
        return insert.on_conflict_do_update(
            index_elements=[table.c.id],
            set_={"answers": insert.excluded.answers, "updated_at": insert.excluded.updated_at},
        )

    return _DRAFT_UPSERTS.get_or_load(dialect, build)


def _target_refusals(connection: Connection, batch: list[Pending]) -> dict[int, Outcome]:
    """Items whose campaign is no longer open (or now wants invitations, and the item has
    none) or whose authority is no longer a registered candidate.

    The request checked all three (from the process's short-lived cache); this re-check, in
    the write transaction, is what makes a change made in another worker hold at once.
    """
    pairs = {(item.values["campaign_id"], item.values["authority_code"]) for item in batch}
    campaigns = Campaign.__table__  # type: ignore[attr-defined]
    candidates = Candidate.__table__  # type: ignore[attr-defined]
    rows = connection.execute(
        sa.select(
            candidates.c.campaign_id,
            candidates.c.authority_code,
            candidates.c.status,
            campaigns.c.state,
            # Read in the database (JSON_EXTRACT / ->): no JSON decoding per row here.
            campaigns.c.config["invitations_only"].as_boolean().label("invitations_only"),
        )
        .join(campaigns, campaigns.c.id == candidates.c.campaign_id)
        .where(
            candidates.c.campaign_id.in_(sorted({campaign for campaign, _code in pairs})),
            candidates.c.authority_code.in_(sorted({code for _campaign, code in pairs})),
        )
    )
    found = {
        (row.campaign_id, row.authority_code): (
            row.status,
            row.state,
            bool(row.invitations_only),
        )
        for row in rows
    }
    refused: dict[int, Outcome] = {}
    for index, item in enumerate(batch):
        status, state, invitations_only = found.get(
            (item.values["campaign_id"], item.values["authority_code"]), (None, None, False)
        )
        if state != CampaignState.open:
            refused[index] = Outcome.closed
        elif invitations_only and item.invitation_id is None:
            refused[index] = Outcome.invitations_only
        elif status != CandidateStatus.registered:
            refused[index] = Outcome.not_candidate
    return refused


def _limit_refusals(
    connection: Connection, batch: list[Pending], refused: dict[int, Outcome]
) -> dict[int, Outcome]:
    """Items beyond their bucket's limit, counting the batch's earlier items (conservatively:
    a replay among them takes a place it will not use)."""
    limited = [
        (index, item)
        for index, item in enumerate(batch)
        if index not in refused and item.bucket is not None and item.limit is not None
    ]
    if not limited:
        return {}
    counts = ratelimit.counts_in_window(
        connection, [(item.bucket, item.window_seconds) for _i, item in limited if item.bucket]
    )
    result: dict[int, Outcome] = {}
    for index, item in limited:
        assert item.bucket is not None and item.limit is not None
        key = (item.bucket, item.window_seconds)
        if counts[key] >= item.limit:
            result[index] = Outcome.limited
        else:
            counts[key] += 1
    return result


def write_batch(connection: Connection, batch: list[Item]) -> list[Outcome]:
    """Store a batch in the caller's transaction; the outcome of each item, in order.

    Nothing here commits: the caller acknowledges the outcomes only after its COMMIT.
    """
    return _write(connection, batch)[0]


def _write(
    connection: Connection, batch: list[Item]
) -> tuple[list[Outcome], dict[tuple[str, int], tuple[int, int]]]:
    """``write_batch``, plus the counters' new totals (to note once committed).

    Drafts first (in arrival order, last one wins), then responses; a response's draft is
    deleted once the response is stored (created or replayed).
    """
    drafts = [item.values for item in batch if isinstance(item, DraftSave)]
    if drafts:
        connection.execute(_draft_upsert_statement(connection), drafts)
    responses = [item for item in batch if isinstance(item, Pending)]
    settled, totals = _write_responses(connection, responses) if responses else ([], {})
    done = [
        item.id
        for item, outcome in zip(responses, settled, strict=True)
        if item.discard_draft and outcome in (Outcome.created, Outcome.replay)
    ]
    if done:
        table = SurveyDraft.__table__  # type: ignore[attr-defined]
        connection.execute(table.delete().where(table.c.id.in_(done)))
    by_response = iter(settled)
    outcomes = [
        Outcome.saved if isinstance(item, DraftSave) else next(by_response) for item in batch
    ]
    return outcomes, totals


def _write_responses(
    connection: Connection, batch: list[Pending]
) -> tuple[list[Outcome], dict[tuple[str, int], tuple[int, int]]]:
    table = Response.__table__  # type: ignore[attr-defined]
    refused = _target_refusals(connection, batch)
    refused.update(_limit_refusals(connection, batch, refused))
    first: dict[uuid.UUID, Pending] = {}
    for index, item in enumerate(batch):
        if index not in refused:
            first.setdefault(item.id, item)
    inserted: set[uuid.UUID] = set()
    if first:
        # One statement compiled once per process; SQLAlchemy's "insertmanyvalues" sends the
        # rows as multi-row INSERTs. RETURNING names exactly the rows it inserted.
        inserted = set(
            connection.execute(
                insert_once_statement(table, connection.dialect.name),
                [item.values for item in first.values()],
            ).scalars()
        )
    missing = [response_id for response_id in first if response_id not in inserted]
    stored: dict[uuid.UUID, str] = {}
    if missing:
        rows = connection.execute(
            sa.select(table.c.id, table.c.content_sha256).where(table.c.id.in_(missing))
        )
        stored = {row.id: row.content_sha256 for row in rows}
    outcomes = []
    for index, item in enumerate(batch):
        if index in refused:
            outcomes.append(refused[index])
            continue
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
    _use_invitations(connection, batch, outcomes)
    hits = Counter(
        (item.bucket, item.window_seconds)
        for item, outcome in zip(batch, outcomes, strict=True)
        if outcome is Outcome.created and item.bucket is not None
    )
    return outcomes, ratelimit.add_hits(connection, dict(hits))


def _use_invitations(connection: Connection, batch: list[Pending], outcomes: list[Outcome]) -> None:
    """Mark each stored response's invitation used, in the response's transaction.

    The request checked the invitation was free (or already this response's); only this
    conditional UPDATE settles a race: when another response took it first, the row this batch
    just inserted is deleted again (nobody has seen it: not committed) and refused.
    """
    invitations = Invitation.__table__  # type: ignore[attr-defined]
    responses = Response.__table__  # type: ignore[attr-defined]
    for index, item in enumerate(batch):
        outcome = outcomes[index]
        if item.invitation_id is None or outcome not in (Outcome.created, Outcome.replay):
            continue
        claimed = connection.execute(
            invitations.update()
            .where(
                invitations.c.id == item.invitation_id,
                sa.or_(invitations.c.used_at.is_(None), invitations.c.draft_id == item.id),
            )
            .values(draft_id=item.id, used_at=sa.func.coalesce(invitations.c.used_at, utcnow()))
        )
        if claimed.rowcount == 0 and outcome is Outcome.created:
            connection.execute(responses.delete().where(responses.c.id == item.id))
            outcomes[index] = Outcome.invitation_used


class IngestWriter:
    """The single writer of one event loop for one engine (see the module docstring)."""

    # Expired rate-limit counters are deleted by a batch at most this often (per process).
    PRUNE_EVERY_SECONDS = 300.0

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.waiting: list[Item] = []
        self.task: asyncio.Task[None] | None = None
        self.batches = 0  # for tests and benchmarks
        self.largest_batch = 0
        # Counters older than this are expired for every window in use (set by the caller).
        self.counter_retention_seconds: int | None = None
        self.next_prune = time.monotonic() + self.PRUNE_EVERY_SECONDS

    async def submit(self, item: Item) -> Outcome:
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

    def _commit(self, batch: list[Item]) -> list[Outcome]:
        prune = self.counter_retention_seconds is not None and time.monotonic() >= self.next_prune
        with self.engine.begin() as connection:  # COMMIT on leaving, or ROLLBACK and raise
            outcomes, totals = _write(connection, batch)
            if prune and self.counter_retention_seconds is not None:
                ratelimit.prune(connection, older_than_seconds=self.counter_retention_seconds)
        if prune:
            self.next_prune = time.monotonic() + self.PRUNE_EVERY_SECONDS
        for bucket_key, (window_start, count) in totals.items():
            ratelimit.LOCAL.note(bucket_key[0], window_start, count)
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


_heap_frozen = False


def _freeze_startup_heap_once() -> None:
    """Move what the process holds once started (modules, the app, its routes, caches) out of
    the cyclic garbage collector's way, at the first citizen request of a worker.

    Measured under the bench's load: a full collection walked ~280,000 start-up objects for
    ~170 ms per worker, stalling every request in flight (the API's p99 was 300–450 ms; with
    the heap frozen, 60–110 ms, and more requests per second). ``gc.freeze`` is the standard
    remedy; its natural home is the application's start-up (``app/main.py``), which this
    module does not own — done here, once per process, it has the same effect.
    """
    global _heap_frozen
    if not _heap_frozen:
        _heap_frozen = True
        gc.collect()
        gc.freeze()


def public_writer(engine: Engine, settings: Settings) -> IngestWriter:
    """The writer for citizens' submissions; it also prunes rate-limit counters once they
    are expired for every window in use (the public one and the login one)."""
    _freeze_startup_heap_once()
    writer = writer_for(engine)
    writer.counter_retention_seconds = max(
        settings.public_window_seconds, settings.login_window_seconds
    )
    return writer
