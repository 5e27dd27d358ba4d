"""Queries on the outbox."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from app.mail.models import MessageState, OutboxMessage


def get(session: Session, message_id: int) -> OutboxMessage | None:
    return session.get(OutboxMessage, message_id)


def mark_held(session: Session, message: OutboxMessage) -> None:
    message.state = MessageState.held
    session.add(message)


def mark_sent(
    session: Session, message: OutboxMessage, *, at: datetime, redacted_note: str | None
) -> None:
    message.state = MessageState.sent
    message.accepted_at = at
    message.last_error = None
    if redacted_note is not None:
        message.text_body = redacted_note + "\n"
        message.html_body = f"<p>{redacted_note}</p>"
    session.add(message)


def mark_failed(session: Session, message: OutboxMessage, *, error: str) -> None:
    message.state = MessageState.failed
    message.last_error = error[:4000]
    session.add(message)


def cancel_unsent(session: Session, *, object_type: str, object_id: str) -> int:
    result = session.execute(
        sa.update(OutboxMessage)
        .where(
            col(OutboxMessage.object_type) == object_type,
            col(OutboxMessage.object_id) == object_id,
            col(OutboxMessage.state).in_([MessageState.queued, MessageState.held]),
        )
        .values(state=MessageState.cancelled)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def erase_recipients(session: Session, *, object_type: str, object_ids: list[str]) -> int:
    """Forget the addresses and bodies of messages about these objects (kept: that they were
    sent, when, and in which language)."""
    erased = 0
    for start in range(0, len(object_ids), 500):
        chunk = object_ids[start : start + 500]
        result = session.execute(
            sa.update(OutboxMessage)
            .where(
                col(OutboxMessage.object_type) == object_type,
                col(OutboxMessage.object_id).in_(chunk),
            )
            .values(to_address=None, text_body="", html_body="")
        )
        erased += int(result.rowcount or 0)  # type: ignore[attr-defined]
    session.execute(
        sa.update(OutboxMessage)
        .where(
            col(OutboxMessage.object_type) == object_type,
            col(OutboxMessage.state) == MessageState.queued,
            col(OutboxMessage.to_address).is_(None),
        )
        .values(state=MessageState.cancelled)
    )
    return erased


def page(
    session: Session, *, state: str | None, offset: int, limit: int
) -> tuple[list[OutboxMessage], int]:
    query = select(OutboxMessage)
    count = select(func.count()).select_from(OutboxMessage)
    if state:
        query = query.where(OutboxMessage.state == state)
        count = count.where(OutboxMessage.state == state)
    rows = session.exec(query.order_by(col(OutboxMessage.id).desc()).offset(offset).limit(limit))
    return list(rows), int(session.exec(count).one())


def counts_by_state(session: Session) -> dict[str, int]:
    rows = session.exec(select(OutboxMessage.state, func.count()).group_by(OutboxMessage.state))
    return {state: int(n) for state, n in rows}


def latest_to(session: Session, address: str) -> list[OutboxMessage]:
    """Messages to one address, newest first (tests and the organiser's search)."""
    query = (
        select(OutboxMessage)
        .where(func.lower(OutboxMessage.to_address) == address.lower())
        .order_by(col(OutboxMessage.id).desc())
    )
    return list(session.exec(query))
