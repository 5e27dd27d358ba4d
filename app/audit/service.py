"""Reading the audit trail: the rows of the organiser's page and the CSV export.

The audit domain sits below accounts (accounts records its actions here), so it never imports
it: callers hand over the people who may appear as actors (:class:`Person`), and what is shown
of them is copied into plain :class:`ActorInfo` values.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Protocol

from sqlalchemy.engine import Engine
from sqlmodel import Session

from app.audit import labels, repository
from app.audit.models import AuditEvent
from app.audit.schemas import AuditFilters
from app.core.i18n import _
from app.core.spreadsheet import neutral_text
from app.core.timeutil import LOCAL_ZONE

CSV_COLUMNS = (
    "at",
    "actor_email",
    "actor_name",
    "action",
    "action_label",
    "object_type",
    "object_id",
    "before",
    "after",
)
MAX_CHANGES_SHOWN = 4
MAX_VALUE_CHARS = 48


class Person(Protocol):
    @property
    def id(self) -> int | None: ...
    @property
    def display_name(self) -> str: ...
    @property
    def email(self) -> str: ...


@dataclass(frozen=True)
class ActorInfo:
    id: int
    name: str
    email: str


def actors_of(people: Iterable[Person]) -> dict[int, ActorInfo]:
    """Who may appear as an actor, by id: a snapshot that outlives the session."""
    return {
        person.id: ActorInfo(id=person.id, name=person.display_name, email=person.email)
        for person in people
        if person.id is not None
    }


@dataclass(frozen=True)
class Change:
    """One key of an event's before/after, written short (``None``: absent on that side)."""

    key: str
    before: str | None
    after: str | None


@dataclass(frozen=True)
class AuditRow:
    at: datetime
    day: date  # the day of ``at`` in Paris
    actor_id: int | None
    actor: ActorInfo | None
    action: str
    action_label: str  # a msgid (or the code when it has no label): translate when shown
    object_type: str
    object_type_label: str
    object_id: str
    changes: tuple[Change, ...]
    more_changes: int


@dataclass(frozen=True)
class AuditPage:
    rows: list[AuditRow]
    total: int
    page: int
    pages: int


@dataclass(frozen=True)
class Choice:
    value: str
    label: str  # a msgid


@dataclass(frozen=True)
class ActionGroup:
    """The actions of one group in the filter; ``prefix`` selects them all ("user.")."""

    prefix: str
    label: str
    actions: list[Choice]


@dataclass(frozen=True)
class FilterChoices:
    action_groups: list[ActionGroup]
    object_types: list[Choice]


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    if len(text) > MAX_VALUE_CHARS:
        return text[: MAX_VALUE_CHARS - 1] + "…"
    return text


def summarise(
    before: dict[str, Any] | None, after: dict[str, Any] | None
) -> tuple[tuple[Change, ...], int]:
    """What changed, in a few short lines: keys whose value differs (or that appear or go),
    empty values left out; and how many more were left out for room."""
    before, after = before or {}, after or {}
    changes = []
    for key in [*before, *(key for key in after if key not in before)]:
        old, new = before.get(key), after.get(key)
        if key in before and key in after and old == new:
            continue
        if old in (None, "") and new in (None, ""):
            continue
        changes.append(
            Change(
                key=key,
                before=_short(old) if key in before else None,
                after=_short(new) if key in after else None,
            )
        )
    return tuple(changes[:MAX_CHANGES_SHOWN]), max(0, len(changes) - MAX_CHANGES_SHOWN)


def _row(event: AuditEvent, actors: Mapping[int, ActorInfo]) -> AuditRow:
    changes, more = summarise(event.before, event.after)
    return AuditRow(
        at=event.at,
        day=event.at.astimezone(LOCAL_ZONE).date(),
        actor_id=event.actor_id,
        actor=actors.get(event.actor_id) if event.actor_id is not None else None,
        action=event.action,
        action_label=labels.action_label(event.action),
        object_type=event.object_type,
        object_type_label=labels.object_type_label(event.object_type),
        object_id=event.object_id,
        changes=changes,
        more_changes=more,
    )


def audit_page(
    session: Session, *, filters: AuditFilters, actors: Mapping[int, ActorInfo]
) -> AuditPage:
    """One page of matching events, newest first; a page past the end shows the last one."""
    total = repository.count(session, filters)
    pages = max(1, math.ceil(total / repository.PAGE_SIZE))
    page = min(filters.page, pages)
    events = repository.page_of_events(session, filters, offset=(page - 1) * repository.PAGE_SIZE)
    return AuditPage(
        rows=[_row(event, actors) for event in events], total=total, page=page, pages=pages
    )


def filter_choices(session: Session) -> FilterChoices:
    """The actions (by group) and object types present in the trail, ordered by their label
    in the reader's language."""
    groups: dict[str, list[Choice]] = {}
    for action in repository.distinct_actions(session):
        groups.setdefault(labels.action_group(action), []).append(
            Choice(action, labels.action_label(action))
        )
    action_groups = [
        ActionGroup(
            prefix=group + ".",
            label=labels.action_group_label(group),
            actions=sorted(choices, key=lambda choice: _(choice.label).casefold()),
        )
        for group, choices in groups.items()
    ]
    object_types = [
        Choice(object_type, labels.object_type_label(object_type))
        for object_type in repository.distinct_object_types(session)
    ]
    return FilterChoices(
        action_groups=sorted(action_groups, key=lambda group: _(group.label).casefold()),
        object_types=sorted(object_types, key=lambda choice: _(choice.label).casefold()),
    )


def _compact_json(value: dict[str, Any] | None) -> str:
    if value is None:
        return ""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def _csv_chunk(rows: list[list[str]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(
        [[neutral_text(cell) for cell in row] for row in rows]
    )
    return buffer.getvalue().encode("utf-8")


def csv_filename(today: date) -> str:
    return f"audit-{today:%Y%m%d}.csv"


def csv_export(
    engine: Engine,
    *,
    filters: AuditFilters,
    actors: Mapping[int, ActorInfo],
    chunk_rows: int = repository.EXPORT_CHUNK_ROWS,
) -> Iterator[bytes]:
    """The matching events as UTF-8 CSV, ``chunk_rows`` a chunk, newest first (every page).

    Timestamps are ISO 8601 in UTC and before/after compact JSON: a machine export. The
    action labels are put in the reader's language now, before the response streams; the
    rows are read in a session of the export's own (the request's has closed by then).
    """
    action_labels = {code: _(label) for code, label in labels.ACTION_LABELS.items()}

    def chunks() -> Iterator[bytes]:
        yield _csv_chunk([list(CSV_COLUMNS)])
        with Session(engine) as session:  # reads only: it rolls back when it closes
            pending: list[list[str]] = []
            for event in repository.stream_events(session, filters, chunk_rows=chunk_rows):
                actor = actors.get(event.actor_id) if event.actor_id is not None else None
                pending.append(
                    [
                        event.at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
                        actor.email if actor else "",
                        actor.name if actor else "",
                        event.action,
                        action_labels.get(event.action, event.action),
                        event.object_type,
                        event.object_id,
                        _compact_json(event.before),
                        _compact_json(event.after),
                    ]
                )
                if len(pending) >= chunk_rows:
                    yield _csv_chunk(pending)
                    pending = []
            if pending:
                yield _csv_chunk(pending)

    return chunks()
