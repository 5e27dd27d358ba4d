"""The outbox for the organiser: every message the platform sent or keeps, and its state.

In development, without an SMTP server, this is where the messages are read: nothing
leaves the machine.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from app.accounts.dependencies import AdminUser
from app.core.config import SettingsDep
from app.core.db import SessionDep
from app.core.errors import NotFound
from app.core.i18n import _
from app.core.templating import render
from app.mail import repository
from app.mail.models import MESSAGE_STATE_LABELS, MessageState, OutboxMessage

router = APIRouter()
PAGE_SIZE = 50
# The HTML part is shown in a sandboxed frame: no script, no network, only its inline styles.
MESSAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'"


@router.get("/admin/outbox", name="admin_outbox")
def outbox_page(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    user: AdminUser,
    state: Annotated[MessageState | None, Query()] = None,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
) -> Response:
    """The outbox, newest first, filterable by state."""
    messages, total = repository.page(
        session,
        state=state.value if state else None,
        offset=(page - 1) * PAGE_SIZE,
        limit=PAGE_SIZE,
    )
    return render(
        request,
        "outbox/outbox.html",
        {
            "messages": messages,
            "total": total,
            "page": page,
            "pages": max(1, -(-total // PAGE_SIZE)),
            "state": state.value if state else "",
            "state_labels": MESSAGE_STATE_LABELS,
            "counts": repository.counts_by_state(session),
            "smtp_configured": bool(settings.smtp_host),
        },
    )


def _message(session: SessionDep, message_id: int) -> OutboxMessage:
    message = repository.get(session, message_id)
    if message is None:
        raise NotFound(_("No such message."))
    return message


@router.get("/admin/outbox/{message_id}", name="admin_outbox_message")
def outbox_message(
    request: Request, session: SessionDep, user: AdminUser, message_id: int
) -> Response:
    """One message: its headers, plain text and (in a sandboxed frame) its HTML part."""
    return render(
        request,
        "outbox/message.html",
        {"message": _message(session, message_id), "state_labels": MESSAGE_STATE_LABELS},
    )


@router.get("/admin/outbox/{message_id}/html", name="admin_outbox_message_html")
def outbox_message_html(session: SessionDep, user: AdminUser, message_id: int) -> Response:
    """The HTML part as the recipient's mail client shows it."""
    message = _message(session, message_id)
    return HTMLResponse(
        message.html_body,
        headers={"Content-Security-Policy": MESSAGE_CSP, "X-Frame-Options": "SAMEORIGIN"},
    )
