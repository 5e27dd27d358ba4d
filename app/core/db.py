"""Engine, sessions and the one place that commits."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import Depends, Request
from sqlalchemy.engine import Engine
from sqlmodel import Session

SQLITE_BUSY_TIMEOUT_MS = 10_000


def create_db_engine(database_url: str, *, echo: bool = False) -> Engine:
    """Create the engine; SQLite gets WAL, foreign keys and a busy timeout on every connection."""
    if database_url.startswith("sqlite"):
        engine = sa.create_engine(
            database_url,
            echo=echo,
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
        )

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    if database_url.startswith("postgresql://"):
        # psycopg 3 is the only PostgreSQL driver we ship.
        database_url = "postgresql+psycopg://" + database_url.removeprefix("postgresql://")
    return sa.create_engine(database_url, echo=echo, pool_pre_ping=True)


def get_session(request: Request) -> Iterator[Session]:
    """One session per request, committed once when the route succeeded.

    Services only flush; a business error (an exception) rolls everything back, so a refused
    request changes nothing.
    """
    engine: Engine = request.app.state.engine
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
        except Exception:
            session.rollback()
            raise
        else:
            session.commit()


# scope="function": commit before the response is sent, so a failed commit is an error
# response and never a success the client believes in.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
