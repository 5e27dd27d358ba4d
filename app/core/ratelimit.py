"""Fixed-window rate limits kept in the database, so every worker and host shares them."""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Field, Session, SQLModel

from app.core.errors import TooManyRequests


class RateLimitCounter(SQLModel, table=True):
    __tablename__ = "rate_limit_counters"

    bucket: str = Field(primary_key=True, max_length=128)
    window_start: int
    count: int = 0


def _window_start(window_seconds: int, now: float | None = None) -> int:
    current = int(now if now is not None else time.time())
    return current - current % window_seconds


def current_count(session: Session, bucket: str, window_seconds: int) -> int:
    row = session.get(RateLimitCounter, bucket)
    if row is None or row.window_start != _window_start(window_seconds):
        return 0
    return row.count


def enforce(
    session: Session, bucket: str, *, limit: int, window_seconds: int, message: str
) -> None:
    """Refuse with 429 and Retry-After when the bucket is full for the current window."""
    if current_count(session, bucket, window_seconds) >= limit:
        start = _window_start(window_seconds)
        retry_after = max(1, start + window_seconds - int(time.time()))
        raise TooManyRequests(message, retry_after=retry_after)


def record_hit(session: Session, bucket: str, *, window_seconds: int) -> None:
    """Count one hit atomically (an upsert), resetting the counter when a new window starts."""
    start = _window_start(window_seconds)
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = RateLimitCounter.__table__  # type: ignore[attr-defined]
    statement = insert(table).values(bucket=bucket, window_start=start, count=1)
    statement = statement.on_conflict_do_update(
        index_elements=[table.c.bucket],
        set_={
            "count": sa.case(
                (table.c.window_start == start, table.c.count + 1),
                else_=1,
            ),
            "window_start": start,
        },
    )
    session.execute(statement)
    session.expire_all()


def clear(session: Session, bucket: str) -> None:
    row = session.get(RateLimitCounter, bucket)
    if row is not None:
        session.delete(row)


# --- the group-commit path: counters known in memory, settled in the writer's transaction ---


def retry_after(window_seconds: int, now: float | None = None) -> int:
    current = int(now if now is not None else time.time())
    return max(1, _window_start(window_seconds, current) + window_seconds - current)


class LocalCounts:
    """What this process last learned of the shared counters: bucket -> (window start, count).

    It lets a request be refused (429) without a database read when its bucket is known to be
    full; the authoritative check is made in the write transaction (``counts_in_window``),
    and every batch refreshes what is known here from the counters it wrote (RETURNING).
    """

    MAX_BUCKETS = 100_000

    def __init__(self) -> None:
        self._known: dict[str, tuple[int, int]] = {}

    def check(self, bucket: str, *, limit: int, window_seconds: int, message: str) -> None:
        known = self._known.get(bucket)
        if known is not None and known[0] == _window_start(window_seconds) and known[1] >= limit:
            raise TooManyRequests(message, retry_after=retry_after(window_seconds))

    def note(self, bucket: str, window_start: int, count: int) -> None:
        if len(self._known) >= self.MAX_BUCKETS:
            self._known.clear()
        self._known[bucket] = (window_start, count)

    def clear(self) -> None:
        self._known.clear()


LOCAL = LocalCounts()


def _insert_for(connection: sa.Connection) -> Any:
    return postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert


def counts_in_window(
    connection: sa.Connection, buckets: list[tuple[str, int]], now: float | None = None
) -> dict[tuple[str, int], int]:
    """The current-window count of each (bucket, window_seconds), read in one query."""
    if not buckets:
        return {}
    table = RateLimitCounter.__table__  # type: ignore[attr-defined]
    names = sorted({bucket for bucket, _window in buckets})
    stored = {
        bucket: (int(window_start), int(count))
        for bucket, window_start, count in connection.execute(
            sa.select(table.c.bucket, table.c.window_start, table.c.count).where(
                table.c.bucket.in_(names)
            )
        )
    }
    result = {}
    for bucket, window_seconds in buckets:
        start = _window_start(window_seconds, now)
        window_start, count = stored.get(bucket, (start, 0))
        result[(bucket, window_seconds)] = count if window_start == start else 0
    return result


def add_hits(
    connection: sa.Connection, hits: dict[tuple[str, int], int], now: float | None = None
) -> dict[tuple[str, int], tuple[int, int]]:
    """Add hits to the shared counters (one upsert per bucket, in the caller's transaction).

    Returns each counter's (window start, new total), to ``LOCAL.note`` once committed.
    """
    totals = {}
    table = RateLimitCounter.__table__  # type: ignore[attr-defined]
    insert = _insert_for(connection)
    for (bucket, window_seconds), count in sorted(hits.items()):
        start = _window_start(window_seconds, now)
        statement = (
            insert(table)
            .values(bucket=bucket, window_start=start, count=count)
            .on_conflict_do_update(
                index_elements=[table.c.bucket],
                set_={
                    "count": sa.case(
                        (table.c.window_start == start, table.c.count + count), else_=count
                    ),
                    "window_start": start,
                },
            )
            .returning(table.c.count)
        )
        totals[(bucket, window_seconds)] = (start, int(connection.execute(statement).scalar_one()))
    return totals


def prune(connection: sa.Connection, *, older_than_seconds: int, now: float | None = None) -> int:
    """Delete counters whose window started more than ``older_than_seconds`` ago (all expired
    when that is at least the longest window in use); returns how many were deleted."""
    table = RateLimitCounter.__table__  # type: ignore[attr-defined]
    cutoff = int(now if now is not None else time.time()) - older_than_seconds
    result = connection.execute(table.delete().where(table.c.window_start < cutoff))
    return int(result.rowcount or 0)
