"""The outbox: e-mails written with their action, sent over real SMTP (aiosmtpd), each with
one Message-ID however many times a crash makes the worker try again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from app.core.config import Settings
from app.core.db import unit_of_work
from app.core.timeutil import utcnow
from app.jobs.models import Job, JobState
from app.mail.models import MessageState, OutboxMessage
from app.mail.service import queue_email
from tests.conftest import TEST_SECRET_KEY, run_jobs
from tests.support.smtp import SmtpSink

ROOT = Path(__file__).resolve().parents[2]


def _queue(
    engine: Engine, settings: Settings, *, to: str = "ana@example.org", language: str = "fr"
) -> int:
    with unit_of_work(engine) as session:
        message = queue_email(
            session,
            settings=settings,
            to=to,
            language=language,
            template="account_invitation",
            context={
                "name": "Ana",
                "inviter": "Odile",
                "role": "jury",
                "url": "http://barometre.test/invitation/abc",
                "expires_at": (utcnow() + timedelta(days=14)).date(),
            },
            contains_secret=True,
            object_type="user",
            object_id=7,
        )
        return int(message.id or 0)


def _message(engine: Engine, message_id: int) -> OutboxMessage:
    with Session(engine) as session:
        message = session.get(OutboxMessage, message_id)
        assert message is not None
        return message


def test_a_message_is_sent_over_smtp_with_its_stored_message_id(
    engine: Engine, session: Session, mail_settings: Settings, smtp: SmtpSink
) -> None:
    message_id = _queue(engine, mail_settings, language="en")
    stored = _message(engine, message_id)
    assert stored.state == MessageState.queued and "invitation/abc" in stored.text_body
    assert run_jobs(engine, mail_settings) == 1
    (received,) = smtp.wait_for(1)
    assert received.envelope_to == ["ana@example.org"]
    assert received.message["Message-ID"] == stored.message_id
    assert received.message["Subject"] == stored.subject
    assert received.message["Content-Language"] == "en"
    assert "http://barometre.test/invitation/abc" in received.text
    assert 'href="http://barometre.test/invitation/abc"' in received.html
    sent = _message(engine, message_id)
    assert sent.state == MessageState.sent and sent.accepted_at is not None
    # The single-use link does not stay in the outbox once the server has it.
    assert "invitation/abc" not in sent.text_body + sent.html_body
    assert run_jobs(engine, mail_settings) == 0
    assert len(smtp.messages) == 1


def test_without_a_mail_server_nothing_leaves_the_machine(
    engine: Engine, session: Session, settings: Settings, smtp: SmtpSink
) -> None:
    assert settings.smtp_host == ""
    message_id = _queue(engine, settings)
    assert run_jobs(engine, settings) == 1
    held = _message(engine, message_id)
    assert held.state == MessageState.held
    assert "invitation/abc" in held.text_body  # the organiser reads it at /admin/outbox
    assert smtp.messages == []


def test_a_rolled_back_action_sends_nothing(
    engine: Engine, session: Session, settings: Settings
) -> None:
    with pytest.raises(RuntimeError), unit_of_work(engine) as work:
        queue_email(
            work,
            settings=settings,
            to="ana@example.org",
            language="fr",
            template="account_invitation",
            context={
                "name": "A",
                "inviter": "B",
                "role": "jury",
                "url": "u",
                "expires_at": utcnow().date(),
            },
        )
        raise RuntimeError("the action failed")
    with Session(engine) as check:
        assert check.exec(select(OutboxMessage)).all() == []
        assert check.exec(select(Job)).all() == []


def test_a_refused_recipient_fails_at_once_and_says_why(
    engine: Engine, session: Session, mail_settings: Settings, smtp: SmtpSink
) -> None:
    message_id = _queue(engine, mail_settings, to="nobody@refused.invalid")
    run_jobs(engine, mail_settings)
    failed = _message(engine, message_id)
    assert failed.state == MessageState.failed and "550" in (failed.last_error or "")
    with Session(engine) as check:
        job = check.exec(select(Job)).one()
    assert (job.state, job.attempts) == (JobState.failed, 1)


def test_an_unreachable_server_is_retried_later(
    engine: Engine, session: Session, settings: Settings
) -> None:
    down = settings.model_copy(
        update={
            "smtp_host": "127.0.0.1",
            "smtp_port": 9,
            "smtp_security": "none",
            "smtp_timeout_seconds": 2,
        }
    )
    message_id = _queue(engine, down)
    run_jobs(engine, down)
    assert _message(engine, message_id).state == MessageState.queued
    with Session(engine) as check:
        job = check.exec(select(Job)).one()
    assert (job.state, job.attempts) == (JobState.queued, 1) and job.run_after > utcnow()


def _worker_process(engine: Engine, settings: Settings, tmp_path: Path) -> subprocess.Popen[bytes]:
    """``barometre worker`` in a process of its own, as an operator starts it."""
    env = {
        **os.environ,
        "BAROMETRE_ENVIRONMENT": "test",
        "BAROMETRE_DATABASE_URL": engine.url.render_as_string(hide_password=False),
        "BAROMETRE_SECRET_KEY": TEST_SECRET_KEY,
        "BAROMETRE_VAR_DIR": str(tmp_path),
        "BAROMETRE_JOB_LEASE_SECONDS": "2",
        "BAROMETRE_JOB_POLL_SECONDS": "0.1",
        "BAROMETRE_SMTP_HOST": settings.smtp_host,
        "BAROMETRE_SMTP_PORT": str(settings.smtp_port),
        "BAROMETRE_SMTP_SECURITY": settings.smtp_security,
        "BAROMETRE_SMTP_SENDER": settings.smtp_sender,
    }
    return subprocess.Popen([sys.executable, "-m", "app.cli", "worker"], cwd=tmp_path, env=env)


def _wait_for(predicate, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)


def _after_lease(engine: Engine) -> None:
    with Session(engine) as check:
        lease = check.exec(select(Job.lease_expires_at)).one()
    assert lease is not None
    _wait_for(lambda: utcnow() > lease)


@pytest.mark.parametrize("moment", ["after_acceptance", "before_acceptance"])
def test_a_worker_killed_while_sending_never_sends_a_second_message_id(
    engine: Engine,
    session: Session,
    mail_settings: Settings,
    smtp: SmtpSink,
    tmp_path: Path,
    moment: str,
) -> None:
    """SIGKILL the worker in the middle of the SMTP conversation. After the server accepted
    the message (the worker stamps it before QUIT): no retry sends it again. Before the
    worker heard the acceptance: the retry sends it again, with the same Message-ID."""
    message_id = _queue(engine, mail_settings)
    process = _worker_process(engine, mail_settings, tmp_path)

    def kill() -> None:
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)

    if moment == "after_acceptance":
        smtp.on_quit = kill
    else:
        smtp.on_message = lambda _received: kill()
    try:
        smtp.wait_for(1, timeout=60)
        _wait_for(lambda: process.poll() is not None)
    finally:
        kill()
    smtp.on_quit = None
    smtp.on_message = None
    stored = _message(engine, message_id)
    _after_lease(engine)
    run_jobs(engine, mail_settings)
    ids = [received.message["Message-ID"] for received in smtp.messages]
    if moment == "after_acceptance":
        assert stored.state == MessageState.sent
        assert ids == [stored.message_id]
    else:
        assert stored.state == MessageState.queued
        assert ids == [stored.message_id, stored.message_id]
    assert _message(engine, message_id).state == MessageState.sent
    with Session(engine) as check:
        job = check.exec(select(Job)).one()
    assert job.state == JobState.done
    assert run_jobs(engine, mail_settings) == 0
    assert len(smtp.messages) == len(ids)


def test_the_outbox_keeps_ids_unique(engine: Engine, session: Session, settings: Settings) -> None:
    first, second = _queue(engine, settings), _queue(engine, settings)
    assert _message(engine, first).message_id != _message(engine, second).message_id
    assert _message(engine, first).message_id.endswith("@barometre.invalid>")
    session.execute(sa.text("SELECT 1"))
