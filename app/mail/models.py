"""The outbox: every e-mail the platform sends, rendered when the action that causes it runs.

The message is rendered in the recipient's language and stored whole (subject, plain text,
HTML) in the same transaction as that action, so a rolled-back action sends nothing and a
committed one is never lost. ``message_id`` is fixed at that moment: a retry after a crash
sends the same Message-ID, which the receiving side recognises as the same message.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from app.core.labels import N_
from app.core.timeutil import UTCDateTime, utcnow


class MessageState(StrEnum):
    queued = "queued"  # waiting for the worker
    sent = "sent"  # the SMTP server accepted it (accepted_at)
    held = "held"  # no SMTP server configured: kept here, visible at /admin/outbox
    failed = "failed"  # refused by the server or given up after the last attempt
    cancelled = "cancelled"  # no longer to be sent (the recipient opted out, a campaign closed)


MESSAGE_STATE_LABELS = {
    MessageState.queued: N_("Waiting to be sent"),
    MessageState.sent: N_("Sent"),
    MessageState.held: N_("Kept (no mail server configured)"),
    MessageState.failed: N_("Not sent"),
    MessageState.cancelled: N_("Cancelled"),
}


class OutboxMessage(SQLModel, table=True):
    __tablename__ = "outbox_messages"

    id: int | None = Field(default=None, primary_key=True)
    message_id: str = Field(max_length=255, unique=True)
    # None once erased (citizens' addresses are erased when their campaign closes).
    to_address: str | None = Field(default=None, max_length=254)
    language: str = Field(default="fr", max_length=8)
    template: str = Field(max_length=64, index=True)
    subject: str = Field(max_length=300)
    text_body: str = Field(sa_type=sa.Text)
    html_body: str = Field(sa_type=sa.Text)
    # Extra headers (List-Unsubscribe for citizens' invitations).
    headers: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    state: str = Field(default=MessageState.queued, max_length=16, index=True)
    # The body holds a single-use link: it is replaced by a note once the server accepted it.
    contains_secret: bool = False
    # What the message is about, so that it can be cancelled or erased with it.
    object_type: str | None = Field(default=None, max_length=64)
    object_id: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    accepted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_error: str | None = Field(default=None, sa_type=sa.Text)
