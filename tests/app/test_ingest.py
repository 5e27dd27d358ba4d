"""The group-commit writer: exactly once, acknowledged only after COMMIT."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from app.campaigns.models import Campaign
from app.collection import ingest, service
from app.collection.models import Response, ResponseSource
from app.core.ratelimit import RateLimitCounter
from tests.conftest import OPEN_YEAR, VALID_ANSWERS


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
    values = service.prepare_response(
        target=target,
        response_id=response_id or uuid.uuid4(),
        answers={**VALID_ANSWERS, **changes},
        channel="guichet",
        source=ResponseSource.api,
        started_at=None,
    )
    return ingest.Pending(values, bucket=bucket, window_seconds=600)


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

    outcomes, writer = asyncio.run(run())
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
        results = asyncio.run(run())
    finally:
        sa.event.remove(engine, "commit", refuse)
    assert all(isinstance(result, RuntimeError) for result in results), results
    assert _rows(session) == []
    # The writer recovers: the next submission is stored and acknowledged.
    item = _pending(session)

    async def again() -> ingest.Outcome:
        return await ingest.writer_for(engine).submit(item)

    assert asyncio.run(again()) == ingest.Outcome.created
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

    statuses = asyncio.run(run())
    assert statuses.count(201) == 1 and statuses.count(409) + statuses.count(200) == 14
    assert statuses.count(409) in (5, 10)  # 5 when `body` won the id, 10 when `other` did
    assert len(_rows(session)) == 1
