"""Forgotten passwords: one-hour single-use links by e-mail, answers that reveal no account,
rate limits; through a real SMTP server."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from app.accounts import service
from app.accounts.models import PasswordReset, Role, User
from app.audit.models import AuditEvent
from app.core.config import Settings
from app.core.errors import TooManyRequests
from app.core.timeutil import utcnow
from app.mail.models import OutboxMessage
from tests.conftest import CSRF_PATTERN, PASSWORD, csrf_from, login, make_user, run_jobs
from tests.support.smtp import SmtpSink

NEW_PASSWORD = "a brand new password, long enough"
RESET_LINK = re.compile(r"http://testserver(/password/reset/[\w-]+)")
SENT = "Si un compte actif correspond à cette adresse, un e-mail vient de lui être envoyé"


def _ask(client: TestClient, email: str) -> httpx.Response:
    return client.post(
        "/password/forgot",
        data={"csrf_token": csrf_from(client, "/password/forgot"), "email": email},
    )


def _link_sent_to(smtp: SmtpSink, address: str) -> str:
    (received,) = smtp.to(address)
    found = RESET_LINK.search(received.text)
    assert found, received.text
    assert found.group(1) in received.html
    return found.group(1)


def _choose(
    client: TestClient, link: str, password: str, confirm: str | None = None
) -> httpx.Response:
    token = csrf_from(client, "/password/forgot")
    return client.post(
        link,
        data={
            "csrf_token": token,
            "password": password,
            "password_confirm": password if confirm is None else confirm,
        },
    )


def _sign_in(client: TestClient, user: User, password: str) -> int:
    token = csrf_from(client)
    response = client.post(
        "/login", data={"email": user.email, "password": password, "csrf_token": token}
    )
    return response.status_code


def _actions(session: Session) -> list[tuple[str, str]]:
    session.expire_all()
    return [
        (event.action, event.object_id)
        for event in session.exec(select(AuditEvent).order_by(col(AuditEvent.id))).all()
    ]


def test_the_login_page_links_to_the_forgotten_password_page(
    session: Session, client: TestClient
) -> None:
    login_page = client.get("/login")
    assert 'href="http://testserver/password/forgot"' in login_page.text
    assert "Mot de passe oublié\u202f?" in login_page.text
    forgot = client.get("/password/forgot")
    assert forgot.status_code == 200 and 'name="email"' in forgot.text


def test_a_reset_link_arrives_sets_the_password_once_and_ends_old_sessions(
    session: Session,
    client: TestClient,
    application: FastAPI,
    engine: Engine,
    mail_settings: Settings,
    smtp: SmtpSink,
) -> None:
    user = make_user(session, Role.reviewer, email="rita@example.org")
    user.language = "en"
    session.add(user)
    session.commit()
    with TestClient(application, follow_redirects=False) as elsewhere:
        login(elsewhere, user)  # a session opened with the old password
        asked = _ask(client, "  Rita@Example.org ")
        assert asked.status_code == 200 and SENT in asked.text
        assert run_jobs(engine, mail_settings) == 1
        smtp.wait_for(1)
        (received,) = smtp.to("rita@example.org")
        assert "choose a new password" in received.message["Subject"]
        assert "valid for one hour, usable once" in received.text
        assert "If you did not ask for it, ignore this message" in received.text
        [reset] = session.exec(select(PasswordReset)).all()
        link = _link_sent_to(smtp, "rita@example.org")
        assert link.rsplit("/", 1)[1] != reset.token_hash  # stored hashed only
        assert reset.expires_at - reset.created_at == timedelta(hours=1)
        [message] = session.exec(select(OutboxMessage)).all()
        assert message.contains_secret and message.template == "password_reset"
        assert (message.object_type, message.object_id) == ("user", str(user.id))

        page = client.get(link)
        assert page.status_code == 200 and 'autocomplete="new-password"' in page.text
        done = _choose(client, link, NEW_PASSWORD)
        assert done.status_code == 303 and done.headers["location"] == "/login"
        assert "Votre mot de passe a été changé. Connectez-vous." in client.get("/login").text
        # Single use: the same link is refused afterwards, in words, with a way forward.
        again = client.get(link)
        assert again.status_code == 404
        assert "invalide, expiré ou déjà utilisé" in again.text
        assert 'href="http://testserver/password/forgot"' in again.text
        assert _choose(client, link, "yet another long password").status_code == 404
        # The session opened with the old password is over.
        assert elsewhere.get("/review").status_code == 303
    assert _sign_in(client, user, PASSWORD) == 400
    assert _sign_in(client, user, NEW_PASSWORD) == 303
    assert _actions(session) == [
        ("user.password_reset_requested", str(user.id)),
        ("user.password_reset", str(user.id)),
    ]


def test_a_new_request_cancels_the_earlier_link(
    session: Session, client: TestClient, engine: Engine, mail_settings: Settings, smtp: SmtpSink
) -> None:
    make_user(session, Role.jury, email="jules@example.org")
    _ask(client, "jules@example.org")
    run_jobs(engine, mail_settings)
    smtp.wait_for(1)
    first = _link_sent_to(smtp, "jules@example.org")
    smtp.messages.clear()
    _ask(client, "jules@example.org")
    run_jobs(engine, mail_settings)
    smtp.wait_for(1)
    second = _link_sent_to(smtp, "jules@example.org")
    assert first != second
    assert client.get(first).status_code == 404
    assert client.get(second).status_code == 200


def _without_csrf(text: str) -> str:
    return CSRF_PATTERN.sub('name="csrf_token" value=""', text)


def test_the_answer_is_the_same_for_known_unknown_and_inactive_addresses(
    session: Session, client: TestClient, engine: Engine, mail_settings: Settings, smtp: SmtpSink
) -> None:
    known = make_user(session, Role.shopper, email="known@example.org")
    inactive = make_user(session, Role.shopper, email="gone@example.org")
    inactive.is_active = False
    session.add(inactive)
    session.commit()
    answers = [
        _ask(client, address) for address in (known.email, "nobody@example.org", inactive.email)
    ]
    assert {answer.status_code for answer in answers} == {200}
    bodies = {_without_csrf(answer.text) for answer in answers}
    assert len(bodies) == 1 and SENT in bodies.pop()
    # The address typed is not repeated, so the pages cannot differ by it.
    assert all("example.org" not in answer.text for answer in answers)

    assert run_jobs(engine, mail_settings) == 1
    smtp.wait_for(1)
    assert [m.envelope_to for m in smtp.messages] == [["known@example.org"]]
    stored = session.exec(select(PasswordReset)).all()
    assert [reset.user_id for reset in stored] == [known.id]
    # Nothing in the trail about the unknown or inactive address.
    assert _actions(session) == [("user.password_reset_requested", str(known.id))]
    events = session.exec(select(AuditEvent)).all()
    assert not any("nobody" in str(event.after) for event in events)


def test_an_expired_link_is_refused(session: Session, client: TestClient) -> None:
    user = make_user(session, Role.jury)
    _ask(client, user.email)
    message = session.exec(select(OutboxMessage)).one()
    found = RESET_LINK.search(message.text_body)
    assert found
    link = found.group(1)
    reset = session.exec(select(PasswordReset)).one()
    reset.expires_at = utcnow() - timedelta(minutes=1)
    session.add(reset)
    session.commit()
    page = client.get(link)
    assert page.status_code == 404 and "Demander un nouveau lien" in page.text
    assert _choose(client, link, NEW_PASSWORD).status_code == 404
    session.expire_all()
    assert session.get(User, user.id).password_hash == user.password_hash  # type: ignore[union-attr]
    assert client.get("/password/reset/not-a-token").status_code == 404


def test_bad_input_names_the_field_and_changes_nothing(
    session: Session, client: TestClient
) -> None:
    empty = _ask(client, "")
    assert empty.status_code == 400 and 'href="#field-email"' in empty.text
    assert 'aria-invalid="true"' in empty.text
    malformed = _ask(client, "not-an-address")
    assert malformed.status_code == 400
    assert session.exec(select(OutboxMessage)).all() == []

    user = make_user(session, Role.jury)
    _ask(client, user.email)
    message = session.exec(select(OutboxMessage)).one()
    found = RESET_LINK.search(message.text_body)
    assert found
    link = found.group(1)
    differ = _choose(client, link, NEW_PASSWORD, confirm=NEW_PASSWORD + "!")
    assert differ.status_code == 400 and 'href="#field-password_confirm"' in differ.text
    short = _choose(client, link, "short")
    assert short.status_code == 400 and 'href="#field-password"' in short.text
    session.expire_all()
    assert session.get(User, user.id).password_hash == user.password_hash  # type: ignore[union-attr]
    assert session.exec(select(PasswordReset)).one().used_at is None
    assert client.get(link).status_code == 200  # still usable


def test_requests_are_rate_limited_per_client_and_per_account(
    session: Session, client: TestClient, settings: Settings
) -> None:
    limit = service.PASSWORD_RESET_MAX_REQUESTS
    # One client, many addresses (none of them an account).
    for number in range(limit):
        assert _ask(client, f"guess{number}@example.org").status_code == 200
    refused = _ask(client, "guess-more@example.org")
    assert refused.status_code == 429
    assert "Trop de demandes de nouveau mot de passe" in refused.text
    assert int(refused.headers["retry-after"]) > 0

    # One address asked from many clients: refused the same way, account or not.
    for email in ("someone@example.org", make_user(session, Role.jury).email):
        for number in range(limit):
            service.request_password_reset(
                session,
                email=email,
                client_address=f"192.0.2.{number}",
                settings=settings,
                link_for=lambda token: f"http://testserver/password/reset/{token}",
            )
        with pytest.raises(TooManyRequests):
            service.request_password_reset(
                session,
                email=email.upper(),
                client_address="198.51.100.7",
                settings=settings,
                link_for=lambda token: f"http://testserver/password/reset/{token}",
            )
    session.rollback()
