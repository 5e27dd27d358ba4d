"""Sign-in, throttling, CSRF, cookies and invitations."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.accounts.models import AccountInvitation, Role, User
from app.core.ratelimit import RateLimitCounter
from app.mail.models import OutboxMessage
from tests.conftest import PASSWORD, csrf_from, login, make_user


def test_wrong_password_gets_a_generic_error(session: Session, client: TestClient) -> None:
    user = make_user(session, Role.admin)
    token = csrf_from(client)
    wrong_password = client.post(
        "/login", data={"email": user.email, "password": "nope", "csrf_token": token}
    )
    unknown_user = client.post(
        "/login", data={"email": "ghost@example.org", "password": "nope", "csrf_token": token}
    )
    assert wrong_password.status_code == unknown_user.status_code == 400
    generic = "Adresse électronique ou mot de passe incorrect."
    assert generic in wrong_password.text and generic in unknown_user.text
    assert "barometre_session" not in wrong_password.headers.get("set-cookie", "") or (
        "user_id" not in wrong_password.text
    )


def test_repeated_failures_get_429_even_with_the_right_password(
    session: Session, client: TestClient
) -> None:
    user = make_user(session, Role.admin)
    token = csrf_from(client)
    for _ in range(3):  # the test settings allow 3 failures per window
        response = client.post(
            "/login", data={"email": user.email, "password": "bad", "csrf_token": token}
        )
        assert response.status_code == 400
    blocked = client.post(
        "/login", data={"email": user.email, "password": PASSWORD, "csrf_token": token}
    )
    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) > 0
    # The client address is never stored in clear.
    buckets = [row.bucket for row in session.exec(select(RateLimitCounter)).all()]
    assert buckets and not any("testclient" in bucket for bucket in buckets)


def test_login_sets_a_signed_httponly_samesite_cookie(session: Session, client: TestClient) -> None:
    user = make_user(session, Role.jury)
    token = csrf_from(client)
    response = client.post(
        "/login", data={"email": user.email, "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 303
    cookie = response.headers["set-cookie"].lower()
    assert "barometre_session=" in cookie and "httponly" in cookie and "samesite=lax" in cookie
    # A tampered cookie is not a session.
    value = client.cookies["barometre_session"]
    client.cookies.set("barometre_session", value[:-4] + "AAAA")
    assert client.get("/campaigns").status_code == 303


def test_form_without_or_with_wrong_csrf_token_is_refused(
    session: Session, client: TestClient
) -> None:
    user = make_user(session, Role.admin)
    missing = client.post("/login", data={"email": user.email, "password": PASSWORD})
    assert missing.status_code == 403
    csrf_from(client)
    wrong = client.post(
        "/login", data={"email": user.email, "password": PASSWORD, "csrf_token": "forged"}
    )
    assert wrong.status_code == 403
    # Refused before anything happened: no session was opened.
    assert client.get("/campaigns").status_code == 303


def test_csrf_is_enforced_on_signed_in_state_changes(session: Session, client: TestClient) -> None:
    login(client, make_user(session, Role.admin))
    response = client.post("/campaigns", data={"year": "2030", "name": "X"})
    assert response.status_code == 403
    header_ok = client.post("/logout", headers={"X-CSRF-Token": csrf_from(client, "/")})
    assert header_ok.status_code == 303


def test_invitation_link_sets_the_password_once(session: Session, client: TestClient) -> None:
    token = login(client, make_user(session, Role.admin))
    created = client.post(
        "/admin/users",
        data={
            "csrf_token": token,
            "email": "New.Reviewer@Example.org",
            "display_name": "Nouvelle contrôleuse",
            "role": "reviewer",
        },
    )
    assert created.status_code == 303
    # The link goes by e-mail only (queued in the outbox), never on the organiser's screen.
    assert "/invitations/" not in client.get("/admin/users").text
    message = session.exec(select(OutboxMessage)).one()
    link = re.search(r"http://testserver(/invitations/[\w-]+)", message.text_body)
    assert link, message.text_body
    invitation_path = link.group(1)
    user = session.exec(select(User).where(User.email == "new.reviewer@example.org")).one()
    assert user.password_hash is None
    # The token is stored hashed, never in clear.
    stored = session.exec(select(AccountInvitation)).all()
    assert all(invitation_path.rsplit("/", 1)[1] != row.token_hash for row in stored)

    client.post("/logout", data={"csrf_token": token})
    form_token = csrf_from(client, invitation_path)
    too_short = client.post(
        invitation_path,
        data={"csrf_token": form_token, "password": "short", "password_confirm": "short"},
    )
    assert too_short.status_code == 400 and 'aria-invalid="true"' in too_short.text
    accepted = client.post(
        invitation_path,
        data={"csrf_token": form_token, "password": PASSWORD, "password_confirm": PASSWORD},
    )
    assert accepted.status_code == 303
    assert client.get(invitation_path).status_code == 404
    login(client, user)
    assert client.get("/campaigns").status_code == 200


def test_user_creation_errors_name_the_field(session: Session, client: TestClient) -> None:
    token = login(client, make_user(session, Role.admin))
    response = client.post(
        "/admin/users",
        data={
            "csrf_token": token,
            "email": "not-an-email",
            "display_name": "X",
            "role": "authority",
        },
    )
    assert response.status_code == 400
    assert 'href="#field-email"' in response.text
    assert len(session.exec(select(User)).all()) == 1


def test_authority_user_needs_an_existing_authority(registry: Session, client: TestClient) -> None:
    token = login(client, make_user(registry, Role.admin))
    response = client.post(
        "/admin/users",
        data={
            "csrf_token": token,
            "email": "mairie@example.org",
            "display_name": "Mairie",
            "role": "authority",
            "authority_code": "00000",
        },
    )
    assert response.status_code == 422
    ok = client.post(
        "/admin/users",
        data={
            "csrf_token": token,
            "email": "mairie@example.org",
            "display_name": "Mairie",
            "role": "authority",
            "authority_code": "69123",
        },
    )
    assert ok.status_code == 303
