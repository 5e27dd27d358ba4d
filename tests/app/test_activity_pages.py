"""The organiser's jobs and outbox pages: states in words, filters, the message itself."""

from __future__ import annotations

import re
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session

from app.accounts.models import Role
from app.core.config import Settings
from app.core.db import unit_of_work
from app.core.timeutil import utcnow
from app.jobs.models import Job
from app.mail.service import queue_email
from tests.conftest import login, make_user, run_jobs


def _queue(engine: Engine, settings: Settings) -> int:
    with unit_of_work(engine) as session:
        message = queue_email(
            session,
            settings=settings,
            to="ana@example.org",
            language="en",
            template="account_invitation",
            context={
                "name": "Ana",
                "inviter": "Odile",
                "role": "jury",
                "url": "http://testserver/invitation/abc",
                "expires_at": (utcnow() + timedelta(days=14)).date(),
            },
        )
        return int(message.id or 0)


def test_jobs_page_lists_jobs_in_words(
    client: TestClient, session: Session, engine: Engine, settings: Settings
) -> None:
    _queue(engine, settings)
    session.add(
        Job(kind="scoring.run", queue="long", payload={"run": 1}, attempts=1, last_error="boom")
    )
    session.commit()
    login(client, make_user(session, Role.admin))
    page = client.get("/admin/jobs")
    assert page.status_code == 200
    text = re.sub(r"<[^>]+>", " ", page.text)  # what a person reads
    assert "Tâches de fond" in text
    assert "mail.send" not in text and "scoring.run" not in text  # labels, not codes
    assert "boom" in text
    only_waiting = client.get("/admin/jobs", params={"state": "queued", "kind": "mail.send"})
    assert only_waiting.status_code == 200
    assert client.get("/admin/jobs", params={"state": "nonsense"}).status_code == 422
    assert client.get("/admin/jobs", params={"page": 0}).status_code == 422
    assert client.get("/admin/jobs", params={"kind": "nonsense"}).status_code == 422


def test_outbox_shows_held_messages_without_a_mail_server(
    client: TestClient, session: Session, engine: Engine, settings: Settings
) -> None:
    message_id = _queue(engine, settings)
    run_jobs(engine, settings)
    login(client, make_user(session, Role.admin))
    outbox = client.get("/admin/outbox")
    assert outbox.status_code == 200
    assert "BAROMETRE_SMTP_HOST" in outbox.text and "ana@example.org" in outbox.text
    message = client.get(f"/admin/outbox/{message_id}")
    assert message.status_code == 200
    assert "http://testserver/invitation/abc" in message.text
    html = client.get(f"/admin/outbox/{message_id}/html")
    assert html.status_code == 200 and "invitation/abc" in html.text
    assert html.headers["content-security-policy"].startswith("default-src 'none'")
    assert client.get("/admin/outbox/999999").status_code == 404
    assert client.get("/admin/outbox", params={"state": "x"}).status_code == 422
