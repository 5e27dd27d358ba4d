"""The layout shows who is signed in, also on pages no route dependency served.

Core's templating knows no domain: the accounts domain registers the loader
(``app.main.create_app``). An unknown address (404) and a refused request (a 4xx page whose
unit of work rolled back) still show the user's name and the sign-out button.
"""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlmodel import Session

from app.accounts.dependencies import load_layout_user
from app.accounts.models import Role
from app.core import templating
from tests.conftest import login, make_user


def test_the_accounts_domain_registers_the_layout_user_loader(client: TestClient) -> None:
    assert templating._layout_user_loader is load_layout_user


def test_an_error_page_no_route_served_shows_the_signed_in_user(
    session: Session, client: TestClient
) -> None:
    user = make_user(session, Role.admin)
    client.cookies.set("lang", "en")
    login(client, user)
    missing = client.get("/no-such-page")
    assert missing.status_code == 404
    assert user.display_name in missing.text and "Sign out" in missing.text


def test_an_anonymous_error_page_shows_nobody_signed_in(
    session: Session, client: TestClient
) -> None:
    missing = client.get("/no-such-page")
    assert missing.status_code == 404
    assert "Sign out" not in missing.text and "Se déconnecter" not in missing.text
