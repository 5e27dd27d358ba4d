"""Invitations by e-mail, in the invited person's language, through a real SMTP server."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from app.accounts.models import Role, User
from app.accounts.service import create_admin
from app.audit.models import AuditEvent
from app.core.config import Settings
from app.mail.models import OutboxMessage
from app.main import create_app
from tests.conftest import PASSWORD, csrf_from, login, make_user, run_jobs
from tests.support.smtp import SmtpSink

ROOT = Path(__file__).resolve().parents[2]
INVITATION_LINK = re.compile(r"http://testserver(/invitations/[\w-]+)")


def _invite(
    client: TestClient, token: str, *, email: str, role: str, language: str, name: str = "Ana"
) -> None:
    response = client.post(
        "/admin/users",
        data={
            "csrf_token": token,
            "email": email,
            "display_name": name,
            "role": role,
            "language": language,
        },
    )
    assert response.status_code == 303, response.text


def _link(received_text: str) -> str:
    found = INVITATION_LINK.search(received_text)
    assert found, received_text
    return found.group(1)


def test_invitations_arrive_in_the_users_language_and_their_link_sets_the_password(
    session: Session, client: TestClient, engine: Engine, mail_settings: Settings, smtp: SmtpSink
) -> None:
    admin = make_user(session, Role.admin)
    admin.display_name = "Odile Martin"
    session.add(admin)
    session.commit()
    token = login(client, admin)
    _invite(client, token, email="ana@example.org", role="shopper", language="en")
    assert "/invitations/" not in client.get("/admin/users").text
    _invite(client, token, email="bruno@example.org", role="reviewer", language="fr", name="Bruno")

    # The organiser's screen says where the e-mail went, never the link itself (this instance
    # has no mail server: the message waits in the outbox, which the page links to).
    page = client.get("/admin/users")
    assert "Compte créé pour bruno@example.org." in page.text
    assert "l’e-mail d’invitation à bruno@example.org n’est pas envoyé" in page.text
    assert 'href="http://testserver/admin/outbox"' in page.text
    assert "/invitations/" not in page.text

    stored = session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id))).all()
    users = {user.email: user for user in session.exec(select(User)).all()}
    assert [(m.to_address, m.language, m.template) for m in stored] == [
        ("ana@example.org", "en", "account_invitation"),
        ("bruno@example.org", "fr", "account_invitation"),
    ]
    assert all(m.contains_secret and m.object_type == "user" for m in stored)
    assert [m.object_id for m in stored] == [
        str(users["ana@example.org"].id),
        str(users["bruno@example.org"].id),
    ]
    assert users["ana@example.org"].language == "en"

    assert run_jobs(engine, mail_settings) == 2
    smtp.wait_for(2)
    (english,) = smtp.to("ana@example.org")
    (french,) = smtp.to("bruno@example.org")
    assert english.message["Subject"] == "Your Baromètre account: choose your password"
    assert "Odile Martin has opened an account for you" in english.text
    assert "mystery shopper" in english.text and "usable once" in english.text
    assert english.message["Content-Language"] == "en"
    # (The subject's narrow no-break space before the colon is a plain space for now:
    # app.mail.rendering folds every kind of white space in subjects.)
    subject = french.message["Subject"]
    assert (
        subject.startswith("Votre compte Baromètre") and "choisissez votre mot de passe" in subject
    )
    assert "Odile Martin vous a ouvert un compte" in french.text
    assert "contrôleur qualité" in french.text and "Bonjour Bruno" in french.text
    assert "Choisir mon mot de passe" in french.html
    # The expiry is a date in words, not an ISO stamp.
    assert not re.search(r"\d{4}-\d{2}-\d{2}", english.text + french.text)

    link = _link(english.text)
    assert link == _link(english.html)
    client.post("/logout", data={"csrf_token": token})
    client.cookies.clear()
    assert client.get(link).status_code == 200
    form_token = csrf_from(client, link)
    chosen = client.post(
        link, data={"csrf_token": form_token, "password": PASSWORD, "password_confirm": PASSWORD}
    )
    assert chosen.status_code == 303
    assert client.get(link).status_code == 404  # single use
    login(client, users["ana@example.org"])
    assert client.get("/me/missions").status_code == 200


def test_with_a_mail_server_the_screen_says_the_invitation_was_sent(
    session: Session, engine: Engine, mail_settings: Settings, smtp: SmtpSink
) -> None:
    admin = make_user(session, Role.admin)
    with TestClient(create_app(mail_settings), follow_redirects=False) as client:
        token = login(client, admin)
        _invite(client, token, email="carla@example.org", role="jury", language="fr")
        page = client.get("/admin/users")
        assert "L’invitation a été envoyée par e-mail à carla@example.org." in page.text
        assert "Aucun serveur de messagerie" not in page.text
        assert "/invitations/" not in page.text
        carla = session.exec(select(User).where(User.email == "carla@example.org")).one()
        # A new invitation is sent by e-mail too.
        again = client.post(f"/admin/users/{carla.id}/invitation", data={"csrf_token": token})
        assert again.status_code == 303
        assert "envoyée par e-mail à carla@example.org" in client.get("/admin/users").text
    assert run_jobs(engine, mail_settings) == 2
    received = smtp.wait_for(2)
    assert [m.envelope_to for m in received] == [["carla@example.org"]] * 2
    assert _link(received[0].text) != _link(received[1].text)
    invites = session.exec(select(AuditEvent).where(AuditEvent.action == "user.invite")).all()
    assert len(invites) == 2


def test_the_email_language_is_chosen_on_the_forms(session: Session, client: TestClient) -> None:
    admin = make_user(session, Role.admin)
    reviewer = make_user(session, Role.reviewer)
    token = login(client, admin)
    form = client.get("/admin/users")
    assert 'name="language"' in form.text and "Langue des e-mails" in form.text
    assert '<option value="en" lang="en" >English</option>' in form.text
    edit = client.get(f"/admin/users/{reviewer.id}")
    assert '<option value="fr" lang="fr" selected>Français</option>' in edit.text

    refused = client.post(
        f"/admin/users/{reviewer.id}",
        data={"csrf_token": token, "display_name": "R", "role": "reviewer", "language": "de"},
    )
    assert refused.status_code == 400 and 'href="#field-language"' in refused.text
    saved = client.post(
        f"/admin/users/{reviewer.id}",
        data={"csrf_token": token, "display_name": "R", "role": "reviewer", "language": "en"},
    )
    assert saved.status_code == 303
    session.refresh(reviewer)
    assert reviewer.language == "en"
    [update] = session.exec(select(AuditEvent).where(AuditEvent.action == "user.update")).all()
    assert update.before and update.after
    assert (update.before["language"], update.after["language"]) == ("fr", "en")

    # Without a choice (the command line, an old form) the e-mails are in French.
    admin_from_cli = create_admin(
        session, email="root@example.org", display_name="Root", password=PASSWORD
    )
    assert admin_from_cli.language == "fr"
