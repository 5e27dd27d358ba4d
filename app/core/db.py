"""Engine, sessions and the one place that commits.

Two named units of work commit or roll back, and nothing else in ``app/`` commits:

- :data:`SessionDep`, the request scope: one session per request, committed once when the route
  returned normally, rolled back when it raised *or refused the request* (a route that renders a
  4xx page or flashes an error marks the request refused through :func:`mark_refused`, so what
  a service flushed before raising is never kept);
- :func:`unit_of_work`, for the command line and background work.

The one documented exception is the citizen group-commit writer
(``app/collection/ingest.py``), which owns its transactions so that it can batch many requests
into one COMMIT and acknowledge each only after it.

An ``engine.begin()`` block commits when it ends, so it counts as a commit point too: outside
this module and the writer, nothing in ``app/`` calls ``.commit()`` or ``.begin()``
(``tests/test_boundaries.py`` greps for both). Reads may use a session or connection of their
own, which rolls back when it closes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, Protocol

import sqlalchemy as sa
from fastapi import Depends, Request
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlmodel import Session

from app.core.cache import BoundedCache

SQLITE_BUSY_TIMEOUT_MS = 10_000
_REFUSED = "barometre_refused"
_KEEP = "barometre_keep_changes"


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


@contextmanager
def unit_of_work(
    engine: Engine, *, refused: Callable[[], bool] = lambda: False
) -> Iterator[Session]:
    """A session committed when the block ends normally, rolled back (nothing kept) when it
    raises or when ``refused()`` says so at the end: the command line and background jobs use
    it as it is, a request's session (:func:`get_session`) with the request's refusal."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
        except BaseException:
            session.rollback()
            raise
        if refused():
            session.rollback()
        else:
            session.commit()


def mark_refused(request: Request) -> None:
    """Say that this request was refused (a 4xx page, an error flash and a redirect): its
    session rolls back instead of committing."""
    request.state.__setattr__(_REFUSED, True)


def keep_changes(request: Request) -> None:
    """Commit this request's changes even though it is refused: the refusal *is* the record
    (a failed sign-in counts against the throttle)."""
    request.state.__setattr__(_KEEP, True)


def is_refused(request: Request) -> bool:
    state = request.state
    return bool(getattr(state, _REFUSED, False)) and not getattr(state, _KEEP, False)


def get_session(request: Request) -> Iterator[Session]:
    """The request's unit of work: one session, committed once when the route succeeded.

    Services only flush; a business error (an exception) or a refused request rolls everything
    back, so a refused request changes nothing.
    """
    with unit_of_work(request.app.state.engine, refused=lambda: is_refused(request)) as session:
        yield session


# scope="function": commit before the response is sent, so a failed commit is an error
# response and never a success the client believes in.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


class _HasId(Protocol):
    @property
    def id(self) -> Any: ...


def row_id(row: _HasId) -> int:
    """The id of a stored row. A row without one was never flushed: that is a bug, not 0."""
    value = row.id
    if value is None:
        raise RuntimeError(f"{type(row).__name__} has no id yet: flush it before using its id")
    return int(value)


# Never invalidated: a statement depends only on its table and dialect, both fixed in a process.
_INSERT_ONCE: BoundedCache[tuple[str, str], Any] = BoundedCache(
    "insert_once_statements", max_entries=64
)


def insert_once_statement(table: sa.Table, dialect_name: str) -> Any:
    """``INSERT … ON CONFLICT (id) DO NOTHING RETURNING id`` for ``table`` (built once per
    table and dialect).

    Atomic on both databases: of concurrent inserts of one id exactly one returns a row, the
    others return none (``rowcount`` is unreliable here, RETURNING is not). Give the values
    with ``.values(...)`` or as execute parameters.
    """
    insert = postgresql.insert if dialect_name == "postgresql" else sqlite.insert
    return _INSERT_ONCE.get_or_load(
        (table.name, dialect_name),
        lambda: (
            insert(table).on_conflict_do_nothing(index_elements=[table.c.id]).returning(table.c.id)
        ),
    )


def insert_once(session: Session, table: sa.Table, values: dict[str, Any]) -> bool:
    """Insert ``values`` unless their id exists; True when this call inserted."""
    statement = insert_once_statement(table, session.get_bind().dialect.name)
    return session.execute(statement, values).first() is not None
