"""French first, English second; the layout and error pages."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from babel.messages.pofile import read_po
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.accounts.models import Role
from tests.conftest import login, make_user

ROOT = Path(__file__).resolve().parents[2]


def _catalog(locale: str):
    with (ROOT / "app" / "translations" / locale / "LC_MESSAGES" / "messages.po").open("rb") as f:
        return read_po(f, locale=locale)


def test_every_ui_string_has_a_french_translation(tmp_path: Path) -> None:
    pot = tmp_path / "messages.pot"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "babel.messages.frontend",
            "extract",
            "-F",
            "babel.cfg",
            "-k",
            "_",
            "-k",
            "N_",
            "-k",
            "gettext",
            "-k",
            "ngettext:1,2",
            "-o",
            str(pot),
            ".",
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    with pot.open("rb") as f:
        extracted = {
            message.id if isinstance(message.id, str) else message.id[0]
            for message in read_po(f)
            if message.id
        }
    french = _catalog("fr")
    translated = {
        (m.id if isinstance(m.id, str) else m.id[0])
        for m in french
        if m.id and (m.string if isinstance(m.string, str) else all(m.string))
    }
    missing = sorted(extracted - translated)
    assert missing == [], f"untranslated in fr: {missing[:10]}"


def test_pages_speak_french_by_default_and_english_on_request(
    session: Session, client: TestClient
) -> None:
    home = client.get("/")
    assert 'lang="fr"' in home.text and "Se connecter" in home.text
    switched = client.get("/lang/en?next=/login")
    assert switched.status_code == 303 and switched.headers["location"] == "/login"
    english = client.get("/login")
    assert 'lang="en"' in english.text and "Sign in" in english.text
    assert client.get("/lang/en?next=//evil.example").headers["location"] == "/"


def test_error_pages_are_inside_the_layout(session: Session, client: TestClient) -> None:
    missing = client.get("/no-such-page")
    assert missing.status_code == 404
    assert "Page introuvable" in missing.text and 'id="main"' in missing.text
    login(client, make_user(session, Role.shopper))
    forbidden = client.get("/campaigns")
    assert forbidden.status_code == 403
    assert "Accès refusé" in forbidden.text and "Se déconnecter" in forbidden.text
    api_missing = client.get("/api/v1/nothing")
    assert api_missing.status_code == 404 and "detail" in api_missing.json()


def test_security_headers_on_every_page(session: Session, client: TestClient) -> None:
    response = client.get("/")
    assert "default-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"


def test_unexpected_error_is_a_500_page_inside_the_layout(settings) -> None:
    from app.main import create_app

    app = create_app(settings)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("kaput")

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/boom")
    assert response.status_code == 500
    assert "Une erreur s&#39;est produite" in response.text and "kaput" not in response.text
