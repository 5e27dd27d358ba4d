"""Fixed-window rate limits kept in the database, so every worker and host shares them."""

from __future__ import annotations

import time

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
