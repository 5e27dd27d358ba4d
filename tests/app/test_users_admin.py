"""User administration: edit, deactivate (sessions end at once), reactivate, guards, audit."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.accounts.models import Role, User
from app.audit.models import AuditEvent
from app.mail.models import OutboxMessage
from tests.conftest import login, make_user


def _audit(session: Session, action: str) -> list[AuditEvent]:
    session.expire_all()
    return list(session.exec(select(AuditEvent).where(AuditEvent.action == action)).all())


def _reload(session: Session, user: User) -> User:
    session.expire_all()
    found = session.get(User, user.id)
    assert found is not None
    return found


def test_edit_name_and_role_is_audited(registry: Session, client: TestClient) -> None:
    admin = make_user(registry, Role.admin)
    reviewer = make_user(registry, Role.reviewer)
    token = login(client, admin)
    page = client.get(f"/admin/users/{reviewer.id}")
    assert page.status_code == 200 and reviewer.email in page.text
    saved = client.post(
        f"/admin/users/{reviewer.id}",
        data={"csrf_token": token, "display_name": "Anne Dupont", "role": "jury"},
    )
    assert saved.status_code == 303
    changed = _reload(registry, reviewer)
    assert (changed.display_name, changed.role) == ("Anne Dupont", "jury")
    [event] = _audit(registry, "user.update")
    assert event.actor_id == admin.id and event.object_id == str(reviewer.id)
    assert event.before["role"] == "reviewer" and event.after["role"] == "jury"  # type: ignore[index]
    # An authority contact needs an existing authority; refused in words, nothing changed.
    refused = client.post(
        f"/admin/users/{reviewer.id}",
        data={"csrf_token": token, "display_name": "X", "role": "authority"},
    )
    assert refused.status_code == 400 and 'href="#field-authority_code"' in refused.text
    assert _reload(registry, reviewer).role == "jury"


def test_deactivated_user_is_refused_on_the_next_request(
    registry: Session, client: TestClient, application: FastAPI
) -> None:
    admin = make_user(registry, Role.admin)
    reviewer = make_user(registry, Role.reviewer)
    with TestClient(application, follow_redirects=False) as other:
        login(other, reviewer)
        assert other.get("/review").status_code == 200
        kept_cookies = dict(other.cookies)  # a copy of the session cookie, kept aside
        token = login(client, admin)
        confirm = client.get(f"/admin/users/{reviewer.id}/deactivate")
        assert confirm.status_code == 200
        assert "déconnecté immédiatement" in confirm.text and "csrf_token" in confirm.text
        assert client.post(f"/admin/users/{reviewer.id}/deactivate").status_code in (400, 403)
        done = client.post(f"/admin/users/{reviewer.id}/deactivate", data={"csrf_token": token})
        assert done.status_code == 303
        refused = other.get("/review")
        assert refused.status_code == 303 and refused.headers["location"].startswith("/login")
        assert other.get("/review").status_code == 303  # and stays refused
        assert not _reload(registry, reviewer).is_active
        assert len(_audit(registry, "user.deactivate")) == 1
        # The users page says so.
        assert "désactivé" in client.get("/admin/users").text

        # Reactivation opens the account again with a new invitation link; a cookie kept
        # from before the deactivation does not come back to life.
        back = client.post(f"/admin/users/{reviewer.id}/reactivate", data={"csrf_token": token})
        assert back.status_code == 303
        assert _reload(registry, reviewer).is_active
        assert len(_audit(registry, "user.reactivate")) == 1
        # ... sent by e-mail (kept in the outbox here: no mail server), not shown on screen.
        assert "/invitations/" not in client.get("/admin/users").text
        [message] = registry.exec(
            select(OutboxMessage).where(OutboxMessage.to_address == reviewer.email)
        ).all()
        assert "/invitations/" in message.text_body
    with TestClient(application, follow_redirects=False) as stale:
        stale.cookies.update(kept_cookies)
        assert stale.get("/review").status_code == 303


def test_an_admin_cannot_deactivate_themselves_nor_remove_the_last_admin(
    registry: Session, client: TestClient
) -> None:
    admin = make_user(registry, Role.admin)
    token = login(client, admin)
    confirm = client.get(f"/admin/users/{admin.id}/deactivate")
    assert "Vous ne pouvez pas désactiver votre propre compte." in confirm.text
    assert "Désactiver le compte</button>" not in confirm.text
    own = client.post(f"/admin/users/{admin.id}/deactivate", data={"csrf_token": token})
    assert own.status_code == 403
    assert "Vous ne pouvez pas désactiver votre propre compte." in own.text
    assert _reload(registry, admin).is_active
    # The last active admin cannot lose the role.
    demoted = client.post(
        f"/admin/users/{admin.id}",
        data={"csrf_token": token, "display_name": "Moi", "role": "reviewer"},
    )
    assert demoted.status_code == 409
    assert "dernier organisateur (admin) actif" in demoted.text
    assert _reload(registry, admin).role == "admin"
    # With a second admin, the other one may be deactivated, then not the remaining one.
    second = make_user(registry, Role.admin)
    assert (
        client.post(f"/admin/users/{second.id}/deactivate", data={"csrf_token": token}).status_code
        == 303
    )
    assert _audit(registry, "user.update") == []


def test_the_create_form_preselects_no_role(registry: Session, client: TestClient) -> None:
    login(client, make_user(registry, Role.admin))
    page = client.get("/admin/users").text
    select_html = page[page.index('<select id="field-role"') : page.index("</select>")]
    assert "required" in select_html
    assert '<option value="" selected>' in select_html
    assert select_html.count("selected") == 1


def test_missing_role_and_bad_email_are_refused_in_french(
    registry: Session, client: TestClient
) -> None:
    token = login(client, make_user(registry, Role.admin))
    response = client.post(
        "/admin/users",
        data={"csrf_token": token, "email": "pas-une-adresse", "display_name": "X", "role": ""},
    )
    assert response.status_code == 400
    assert "Saisissez une adresse e-mail valide, par exemple nom@example.fr." in response.text
    assert "Choisissez un rôle." in response.text
    for english in ("value is not a valid email", "An email address", "Input should be"):
        assert english not in response.text
    client.cookies.set("lang", "en")
    english_page = client.post(
        "/admin/users",
        data={"csrf_token": token, "email": "nope", "display_name": "X", "role": "jury"},
    )
    assert "Enter a valid e-mail address, such as name@example.fr." in english_page.text
    assert len(registry.exec(select(User)).all()) == 1


def test_reinvite_is_audited_and_admin_only(registry: Session, client: TestClient) -> None:
    admin = make_user(registry, Role.admin)
    shopper = make_user(registry, Role.shopper)
    token = login(client, make_user(registry, Role.jury))
    assert client.get(f"/admin/users/{shopper.id}").status_code == 403
    forbidden = client.post(f"/admin/users/{shopper.id}/deactivate", data={"csrf_token": token})
    assert forbidden.status_code == 403
    client.cookies.clear()
    token = login(client, admin)
    sent = client.post(f"/admin/users/{shopper.id}/invitation", data={"csrf_token": token})
    assert sent.status_code == 303
    assert len(_audit(registry, "user.invite")) == 1
    assert client.get("/admin/users/9999").status_code == 404
