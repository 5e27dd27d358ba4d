"""Queueing e-mails in the outbox, and the job that sends one.

:func:`queue_email` renders the message and stores it in the caller's unit of work, with a
``mail.send`` job: both exist exactly when the action that causes them was committed.

The job sends the stored message over SMTP and stamps ``accepted_at`` in a transaction of its
own right after the server accepted it; from then on no retry sends it again. Should the
worker die between the server's acceptance and that stamp, the retry sends the same message
with the same Message-ID, which mail systems recognise as a duplicate. Without an SMTP host
nothing is sent: the message is marked *held* and the organiser reads it at /admin/outbox.
"""

from __future__ import annotations

import smtplib
import ssl
import uuid
from collections.abc import Callable
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses
from typing import Any

from sqlmodel import Session

from app.core.config import Settings
from app.core.db import row_id, unit_of_work
from app.core.i18n import SUPPORTED_LOCALES, _, use_locale
from app.core.timeutil import utcnow
from app.jobs import service as jobs
from app.jobs.models import Job
from app.jobs.worker import JobContext, PermanentFailure
from app.mail import repository
from app.mail.models import MessageState, OutboxMessage
from app.mail.rendering import render_message


def sender_domain(settings: Settings) -> str:
    addresses = getaddresses([settings.smtp_sender])
    address = addresses[0][1] if addresses else ""
    return address.rpartition("@")[2] or "barometre.invalid"


def queue_email(
    session: Session,
    *,
    settings: Settings,
    to: str,
    language: str,
    template: str,
    context: dict[str, Any],
    contains_secret: bool = False,
    object_type: str | None = None,
    object_id: object | None = None,
    headers: dict[str, str] | None = None,
) -> OutboxMessage:
    """Render message ``template`` in ``language`` for ``to`` and queue it (flushed only).

    ``context`` gets ``organiser`` added. ``contains_secret``: the body holds a single-use
    link, replaced by a note once the server accepted it (the outbox keeps no live token).
    """
    language = language if language in SUPPORTED_LOCALES else SUPPORTED_LOCALES[0]
    rendered = render_message(template, language, {"organiser": settings.organiser, **context})
    message = OutboxMessage(
        message_id=f"<{uuid.uuid4().hex}@{sender_domain(settings)}>",
        to_address=to,
        language=language,
        template=template,
        subject=rendered.subject[:300],
        text_body=rendered.text,
        html_body=rendered.html,
        headers=headers or {},
        contains_secret=contains_secret,
        object_type=object_type,
        object_id=str(object_id) if object_id is not None else None,
    )
    session.add(message)
    session.flush()
    jobs.enqueue(session, "mail.send", {"message": row_id(message)})
    return message


def cancel_messages(session: Session, *, object_type: str, object_id: object) -> int:
    """Cancel the messages about an object that are not sent yet (an opt-out, a closing)."""
    return repository.cancel_unsent(session, object_type=object_type, object_id=str(object_id))


def build_email(message: OutboxMessage, settings: Settings) -> EmailMessage:
    email = EmailMessage()
    email["Message-ID"] = message.message_id
    email["Date"] = format_datetime(message.created_at)
    email["From"] = settings.smtp_sender
    email["To"] = Address(addr_spec=message.to_address or "")
    email["Subject"] = message.subject
    # Tells auto-responders not to answer (RFC 3834).
    email["Auto-Submitted"] = "auto-generated"
    for name, value in (message.headers or {}).items():
        email[name] = value
    email.set_content(message.text_body)
    email.add_alternative(message.html_body, subtype="html")
    # After the parts: setting the content drops the Content-* headers set before.
    email["Content-Language"] = message.language
    return email


def _deliver(email: EmailMessage, settings: Settings, on_accepted: Callable[[], None]) -> None:
    """Hand ``email`` to the SMTP server; ``on_accepted`` runs as soon as the server accepted
    it (before QUIT, to keep the window in which a crash causes a resend small)."""
    timeout = settings.smtp_timeout_seconds
    smtp: smtplib.SMTP
    if settings.smtp_security == "tls":
        smtp = smtplib.SMTP_SSL(
            settings.smtp_host,
            settings.smtp_port,
            timeout=timeout,
            context=ssl.create_default_context(),
        )
    else:
        smtp = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=timeout)
    with smtp:
        if settings.smtp_security == "starttls":
            smtp.starttls(context=ssl.create_default_context())
        if settings.smtp_user:
            smtp.login(settings.smtp_user, settings.smtp_password)
        try:
            smtp.send_message(email)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _message in exc.recipients.values()]
            if all(500 <= code < 600 for code in codes):
                raise PermanentFailure(f"recipient refused: {exc.recipients}") from exc
            raise
        except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as exc:
            if 500 <= exc.smtp_code < 600:
                raise PermanentFailure(f"refused by the mail server: {exc}") from exc
            raise
        on_accepted()


def send_message_job(context: JobContext) -> None:
    """Send one outbox message (the ``mail.send`` job)."""
    settings = context.settings
    message_id = int(context.payload["message"])
    with unit_of_work(context.engine) as session:
        message = repository.get(session, message_id)
        if message is None or message.state != MessageState.queued or not message.to_address:
            return  # sent, cancelled or erased meanwhile: nothing to do
        if not settings.smtp_host:
            repository.mark_held(session, message)
            return
        email = build_email(message, settings)

    def stamp_accepted() -> None:
        # Its own transaction, at once: from now on no retry sends this message again.
        with unit_of_work(context.engine) as session:
            message = repository.get(session, message_id)
            if message is not None:
                note = None
                if message.contains_secret:
                    with use_locale(message.language):
                        note = _("Content removed after sending: it held a single-use link.")
                repository.mark_sent(session, message, at=utcnow(), redacted_note=note)

    _deliver(email, settings, stamp_accepted)


def message_gave_up(session: Session, job: Job) -> None:
    """The last attempt failed: the message says it was not sent, and why."""
    message = repository.get(session, int(job.payload.get("message", 0)))
    if message is not None and message.state == MessageState.queued:
        repository.mark_failed(session, message, error=job.last_error or "")
