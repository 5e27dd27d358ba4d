"""The group-commit writer: exactly once, acknowledged only after COMMIT."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from app.campaigns.models import Campaign
from app.campaigns.service import transition
from app.collection import cache, ingest, service, submission
from app.collection.models import Response, ResponseSource, SurveyDraft
from app.core import ratelimit
from app.core.errors import TooManyRequests
from app.core.ratelimit import RateLimitCounter
from tests.conftest import OPEN_YEAR, VALID_ANSWERS

T = TypeVar("T")


def run_in_own_loop(coroutine: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` in a thread of its own: a session-scoped Playwright (sync API) keeps an
    event loop running in the main thread of the xdist worker that also ran the browser tests."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def _pending(
    session: Session,
    *,
    response_id: uuid.UUID | None = None,
    bucket: str | None = None,
    **changes: Any,
) -> ingest.Pending:
    target = service.survey_target(
        session, organiser="Baromètre", year=OPEN_YEAR, authority_code="69123"
    )
    pending = submission.prepare(
        submission.Submission(
            target=target,
            response_id=response_id or uuid.uuid4(),
            answers={**VALID_ANSWERS, **changes},
            channel="guichet",
            source=ResponseSource.api,
        )
    )
    pending.bucket = bucket
    return pending


def _rows(session: Session) -> list[Response]:
    session.expire_all()
    return list(session.exec(select(Response)).all())


def test_a_batch_settles_duplicates_and_conflicts_row_by_row(
    open_campaign: Campaign, engine: Engine, session: Session
) -> None:
    stored = _pending(session)
    with engine.begin() as connection:
        assert ingest.write_batch(connection, [stored]) == [ingest.Outcome.created]
    fresh = _pending(session, bucket="b")
    twin = _pending(session, response_id=fresh.id, bucket="b")
    other = _pending(session, response_id=fresh.id, satisfied=1, bucket="b")
    replay = _pending(session, response_id=stored.id, bucket="b")
    clash = _pending(session, response_id=stored.id, trust=1, bucket="b")
    with engine.begin() as connection:
        outcomes = ingest.write_batch(connection, [fresh, twin, other, replay, clash])
    assert outcomes == [
        ingest.Outcome.created,
        ingest.Outcome.replay,
        ingest.Outcome.conflict,
        ingest.Outcome.replay,
        ingest.Outcome.conflict,
    ]
    rows = {row.id: row for row in _rows(session)}
    assert set(rows) == {stored.id, fresh.id}
    assert rows[fresh.id].content_sha256 == fresh.sha256
    counter = session.get(RateLimitCounter, "b")
    assert counter is not None and counter.count == 1  # only the created row is counted


def test_concurrent_submissions_share_commits_and_are_all_stored(
    open_campaign: Campaign, engine: Engine, session: Session
) -> None:
    items = [_pending(session) for _ in range(200)]

    async def run() -> tuple[list[ingest.Outcome], ingest.IngestWriter]:
        writer = ingest.writer_for(engine)
        outcomes = await asyncio.gather(*(writer.submit(item) for item in items))
        return list(outcomes), writer

    outcomes, writer = run_in_own_loop(run())
    assert outcomes == [ingest.Outcome.created] * 200
    assert writer.batches < 200 and writer.largest_batch > 1
    assert len(_rows(session)) == 200


def test_a_failed_commit_fails_every_request_of_the_batch_and_stores_nothing(
    open_campaign: Campaign, engine: Engine, session: Session
) -> None:
    items = [_pending(session) for _ in range(20)]

    def refuse(_connection: Any) -> None:
        raise RuntimeError("disk full")

    async def run() -> list[Any]:
        writer = ingest.writer_for(engine)
        return list(
            await asyncio.gather(*(writer.submit(item) for item in items), return_exceptions=True)
        )

    sa.event.listen(engine, "commit", refuse)
    try:
        results = run_in_own_loop(run())
    finally:
        sa.event.remove(engine, "commit", refuse)
    assert all(isinstance(result, RuntimeError) for result in results), results
    assert _rows(session) == []
    # The writer recovers: the next submission is stored and acknowledged.
    item = _pending(session)

    async def again() -> ingest.Outcome:
        return await ingest.writer_for(engine).submit(item)

    assert run_in_own_loop(again()) == ingest.Outcome.created
    assert len(_rows(session)) == 1


def test_concurrent_replays_and_conflicts_through_the_api(
    open_campaign: Campaign, live_server_url: str, session: Session
) -> None:
    import httpx

    body = {
        "id": str(uuid.uuid4()),
        "campaign": OPEN_YEAR,
        "authority": "69123",
        "channel": "guichet",
        "answers": dict(VALID_ANSWERS),
    }
    other = {**body, "answers": {**VALID_ANSWERS, "satisfied": 1}}

    async def run() -> list[int]:
        async with httpx.AsyncClient(base_url=live_server_url, timeout=30) as client:
            posts = [client.post("/api/v1/responses", json=b) for b in [body] * 10 + [other] * 5]
            return [r.status_code for r in await asyncio.gather(*posts)]

    statuses = run_in_own_loop(run())
    assert statuses.count(201) == 1 and statuses.count(409) + statuses.count(200) == 14
    assert statuses.count(409) in (5, 10)  # 5 when `body` won the id, 10 when `other` did
    assert len(_rows(session)) == 1


# --- what the request took from the cache is checked again in the write transaction --------


@pytest.mark.parametrize(
    ("change", "outcome"),
    [
        ("UPDATE campaigns SET state = 'closed'", ingest.Outcome.closed),
        (
            "UPDATE candidates SET status = 'withdrawn' WHERE authority_code = '69123'",
            ingest.Outcome.not_candidate,
        ),
        ("UPDATE campaigns SET config = :config", ingest.Outcome.invitations_only),
    ],
)
def test_the_write_transaction_refuses_what_another_worker_changed(
    open_campaign: Campaign, engine: Engine, session: Session, change: str, outcome: ingest.Outcome
) -> None:
    item = _pending(session, bucket="b")  # the target is now in this process's cache
    config = json.dumps({**open_campaign.config, "invitations_only": True})
    with engine.begin() as connection:  # as another process would: no ORM event here
        connection.execute(sa.text(change), {"config": config} if ":config" in change else {})
    # This process still has the target cached …
    assert service.cached_survey_target(
        engine, organiser="Baromètre", year=OPEN_YEAR, authority_code="69123"
    )
    # … but the writer's transaction sees the change: nothing stored, nothing counted.
    with engine.begin() as connection:
        assert ingest.write_batch(connection, [item]) == [outcome]
    assert _rows(session) == []
    assert session.get(RateLimitCounter, "b") is None


def test_a_change_made_in_this_process_is_seen_at_once(
    open_campaign: Campaign, client: TestClient, session: Session
) -> None:
    first = client.post("/api/v1/responses", json=_api_body())
    assert first.status_code == 201
    target = service.survey_target(
        session, organiser="Baromètre", year=OPEN_YEAR, authority_code="69123"
    )
    assert target.campaign.state == "open"  # cached
    campaign = session.get(Campaign, open_campaign.id)
    assert campaign is not None
    transition(session, campaign=campaign, to_state="closed", actor=None)
    session.commit()
    # No TTL to wait for: the commit of a campaign change emptied the cache.
    refused = client.post("/api/v1/responses", json=_api_body())
    assert refused.status_code == 409 and refused.json()["field"] == "campaign"
    assert client.get(f"/s/{OPEN_YEAR}/69123").status_code == 409
    assert len(_rows(session)) == 1


def test_the_cache_drops_a_target_loaded_across_a_change(
    open_campaign: Campaign, engine: Engine
) -> None:
    key = cache.key_for(engine, organiser="Baromètre", year=OPEN_YEAR, authority_code="69123")
    generation = cache.generation()
    cache.invalidate()  # a change committed while the target was being read
    cache.put(key, object(), loaded_in_generation=generation)
    assert cache.get(key) is None


# --- rate limits: counted in the write transaction, known in memory ---------------------------


def test_the_limit_holds_across_workers_and_batches(
    open_campaign: Campaign, engine: Engine, session: Session
) -> None:
    def items(count: int) -> list[ingest.Item]:
        return [
            ingest.Pending(_pending(session).values, bucket="shared", window_seconds=600, limit=5)
            for _ in range(count)
        ]

    with engine.begin() as connection:  # worker A
        assert ingest.write_batch(connection, items(4)) == [ingest.Outcome.created] * 4
    ratelimit.LOCAL.clear()  # worker B knows nothing in memory: the database decides
    with engine.begin() as connection:
        assert ingest.write_batch(connection, items(3)) == [
            ingest.Outcome.created,
            ingest.Outcome.limited,
            ingest.Outcome.limited,
        ]
    assert len(_rows(session)) == 5
    counter = session.get(RateLimitCounter, "shared")
    assert counter is not None and counter.count == 5


def test_a_full_bucket_is_refused_from_memory_after_a_batch(
    open_campaign: Campaign, engine: Engine, session: Session
) -> None:
    item = ingest.Pending(_pending(session).values, bucket="full", window_seconds=600, limit=1)

    async def run() -> ingest.Outcome:
        return await ingest.writer_for(engine).submit(item)

    assert run_in_own_loop(run()) == ingest.Outcome.created
    # The batch noted the bucket's new total: the next request is refused without a read.
    with pytest.raises(TooManyRequests) as refused:
        ratelimit.LOCAL.check("full", limit=1, window_seconds=600, message="full")
    assert refused.value.retry_after is not None and refused.value.retry_after > 0
    ratelimit.LOCAL.check("other", limit=1, window_seconds=600, message="other")


def test_expired_counters_are_pruned(engine: Engine, session: Session) -> None:
    now = int(time.time())
    with engine.begin() as connection:
        connection.execute(
            sa.insert(RateLimitCounter),
            [
                {"bucket": "old", "window_start": now - 7200, "count": 3},
                {"bucket": "current", "window_start": now - now % 600, "count": 1},
            ],
        )
        assert ratelimit.prune(connection, older_than_seconds=1800) == 1
    assert session.get(RateLimitCounter, "old") is None
    assert session.get(RateLimitCounter, "current") is not None


def test_the_writer_prunes_now_and_then(
    open_campaign: Campaign, engine: Engine, session: Session
) -> None:
    with engine.begin() as connection:
        connection.execute(
            sa.insert(RateLimitCounter), [{"bucket": "stale", "window_start": 0, "count": 9}]
        )
    writer = ingest.IngestWriter(engine)
    writer.counter_retention_seconds = 1800
    writer.next_prune = 0  # due
    writer._commit([_pending(session)])
    assert session.get(RateLimitCounter, "stale") is None
    assert writer.next_prune > time.monotonic()


# --- form drafts through the writer -----------------------------------------------------------


def test_a_draft_is_upserted_and_deleted_with_its_response(
    open_campaign: Campaign, engine: Engine, session: Session
) -> None:
    target = service.survey_target(
        session, organiser="Baromètre", year=OPEN_YEAR, authority_code="69123"
    )
    draft_id = uuid.uuid4()

    def save(answers: dict[str, Any]) -> ingest.DraftSave:
        draft = session.get(SurveyDraft, draft_id)
        return ingest.DraftSave(
            service.draft_values(
                draft_id=draft_id,
                target=target,
                draft=draft,
                answers=answers,
                channel="guichet",
                source=ResponseSource.qr,
                invitation_id=None,
            )
        )

    with engine.begin() as connection:
        assert ingest.write_batch(connection, [save({"channel": "guichet"})]) == [
            ingest.Outcome.saved
        ]
    session.expire_all()
    first = session.get(SurveyDraft, draft_id)
    assert first is not None and first.answers == {"channel": "guichet"}
    with engine.begin() as connection:
        ingest.write_batch(connection, [save({"channel": "guichet", "overall": 3})])
    session.expire_all()
    again = session.get(SurveyDraft, draft_id)
    assert again is not None and again.answers == {"channel": "guichet", "overall": 3}
    assert again.started_at == first.started_at and again.source == "qr"
    final = _pending(session, response_id=draft_id)
    final.discard_draft = True
    with engine.begin() as connection:
        assert ingest.write_batch(connection, [final]) == [ingest.Outcome.created]
    session.expire_all()
    assert session.get(SurveyDraft, draft_id) is None
    assert [row.id for row in _rows(session)] == [draft_id]


def _api_body() -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "campaign": OPEN_YEAR,
        "authority": "69123",
        "channel": "guichet",
        "answers": dict(VALID_ANSWERS),
    }
