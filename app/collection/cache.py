"""What a public link opens, remembered for a moment: one lookup instead of five per request.

A survey target (open campaign + registered candidate + authority + pinned survey) is read on
every citizen request; it changes only when an organiser acts. So each process keeps the open
campaigns it has loaded (with their pinned survey) for ``TTL_SECONDS`` and each authority with
its registered candidacy for ``TARGET_TTL_SECONDS`` (a target is put together from both on
each request), as detached copies nobody writes through, and:

- forgets all of them as soon as a session of this process flushes or commits a change to a
  campaign, a candidate, a pin, an authority or an instrument version (ORM events below), or
  runs a bulk statement on those tables — so the process that made a change sees it at once;
- the other workers see a campaign's change within ``TTL_SECONDS``, a candidacy's within
  ``TARGET_TTL_SECONDS``; the group-commit writer (the JSON API) also re-checks, inside each
  write transaction, that the campaign is still open (and not invitations-only) and the
  authority still a registered candidate, so it stores nothing against such a change at all;
- ``reset()`` forgets everything (tests call it when they empty the tables).

A load that overlapped an invalidation is not kept (generation counter), so a target read
before a change cannot be cached after it.
"""

from __future__ import annotations

import copy
import threading
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction
from sqlmodel import SQLModel

from app.authorities.models import Authority
from app.campaigns.models import Campaign, CampaignInstrument, Candidate
from app.core import ratelimit
from app.core.cache import BoundedCache
from app.instruments.models import InstrumentVersion

# An open campaign (its state, configuration and pinned survey) is re-read after this long.
TTL_SECONDS = 2.0
# An authority and its candidacy in a campaign: re-read after this long. (Withdrawing a
# candidate is also re-checked by the writer's transaction for the API.)
TARGET_TTL_SECONDS = 10.0
MAX_ENTRIES = 10_000

_WATCHED_TYPES = (Campaign, Candidate, CampaignInstrument, Authority, InstrumentVersion)
_WATCHED_TABLES = frozenset(str(model.__tablename__) for model in _WATCHED_TYPES)
_CHANGED = "collection_targets_changed"

Key = tuple[Any, ...]
_lock = threading.Lock()
_entries: BoundedCache[Key, Any] = BoundedCache("collection targets", max_entries=MAX_ENTRIES)
_generation = 0


def key_for(bind: Any, *, organiser: str, year: int, authority_code: str) -> Key:
    return (str(getattr(bind, "url", id(bind))), organiser, year, authority_code.upper())


def campaign_key(bind: Any, *, organiser: str, year: int) -> Key:
    return ("campaign", str(getattr(bind, "url", id(bind))), organiser, year)


def generation() -> int:
    return _generation


def get(key: Key) -> Any | None:
    return _entries.get(key)


def put(
    key: Key, value: Any, *, loaded_in_generation: int, ttl_seconds: float = TTL_SECONDS
) -> None:
    """Keep a value loaded while the generation was ``loaded_in_generation`` (else drop it)."""
    with _lock:
        if loaded_in_generation != _generation:
            return
        _entries.put(key, value, ttl_seconds=ttl_seconds)


def invalidate() -> None:
    global _generation
    with _lock:
        _generation += 1
        _entries.clear()


def reset() -> None:
    """Forget every cached target and what this process knows of rate-limit counters."""
    invalidate()
    ratelimit.LOCAL.clear()


M = TypeVar("M", bound=SQLModel)


def detached_copy(instance: M) -> M:
    """A plain copy of a loaded row, attached to no session (read-only by convention)."""
    values = {name: copy.deepcopy(getattr(instance, name)) for name in type(instance).model_fields}
    return type(instance)(**values)


# --- invalidation on this process's own changes ----------------------------------------------


@sa.event.listens_for(Session, "after_flush")
def _after_flush(session: Session, _flush_context: UOWTransaction) -> None:
    if any(
        isinstance(instance, _WATCHED_TYPES)
        for instance in (*session.new, *session.dirty, *session.deleted)
    ):
        session.info[_CHANGED] = True
        invalidate()


@sa.event.listens_for(Session, "do_orm_execute")
def _bulk_statement(state: ORMExecuteState) -> None:
    if not (state.is_insert or state.is_update or state.is_delete):
        return
    table = getattr(state.statement, "table", None)
    if getattr(table, "name", None) in _WATCHED_TABLES:
        state.session.info[_CHANGED] = True
        invalidate()


@sa.event.listens_for(Session, "after_commit")
@sa.event.listens_for(Session, "after_rollback")
def _after_transaction(session: Session) -> None:
    if session.info.pop(_CHANGED, False):
        invalidate()
