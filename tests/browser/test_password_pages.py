"""The forgotten-password pages in real Chromium: phone and desktop, French and English, no
serious or critical axe violation, no sideways scrolling."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Page
from sqlmodel import Session

from app.accounts.service import request_password_reset
from app.core.config import Settings
from app.core.db import create_db_engine
from tests.browser.conftest import ARTIFACTS
from tests.browser.test_jury_pages import assert_no_horizontal_scroll
from tests.browser.test_pages import ADMIN, axe_violations

pytestmark = pytest.mark.browser

PHONE = {"width": 360, "height": 780}
DESKTOP = {"width": 1366, "height": 900}
TEXTS = {
    "fr": {
        "forgot": "Mot de passe oublié\u202f?",
        "email": "Adresse électronique",
        "send": "M’envoyer un lien",
        "bad_email": "Saisissez une adresse e-mail valide",
        "sent": "Si un compte actif correspond à cette adresse",
        "new": "Nouveau mot de passe",
        "confirm": "Confirmez le mot de passe",
        "save": "Enregistrer mon nouveau mot de passe",
        "differ": "Les deux mots de passe sont différents.",
        "invalid": "Ce lien ne fonctionne plus",
        "ask_again": "Demander un nouveau lien",
    },
    "en": {
        "forgot": "Forgot your password?",
        "email": "E-mail address",
        "send": "Send me a link",
        "bad_email": "Enter a valid e-mail address",
        "sent": "If an active account matches this address",
        "new": "New password",
        "confirm": "Confirm the password",
        "save": "Save my new password",
        "differ": "The two passwords differ.",
        "invalid": "This link no longer works",
        "ask_again": "Ask for a new link",
    },
}


def shoot(page: Page, axe_source: str, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"password-{name}.png"), full_page=True)
    violations = axe_violations(page, axe_source)
    summary = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3]) for v in violations]
    assert summary == [], f"{name}: {summary}"
    assert_no_horizontal_scroll(page)


def _reset_path(database_url: str, email: str) -> str:
    """A fresh reset link for ``email``, made through the service (as the form does)."""
    engine = create_db_engine(database_url)
    settings = Settings(
        environment="test",
        database_url=database_url,
        secret_key="browser-test-secret-0123456789abcdef",
        in_process_worker=False,
    )
    links: list[str] = []

    def remember(token: str) -> str:
        links.append(f"/password/reset/{token}")
        return links[-1]

    with Session(engine) as session:
        request_password_reset(
            session,
            email=email,
            client_address="browser-test",
            settings=settings,
            link_for=remember,
        )
        session.commit()
    engine.dispose()
    return links[0]


@pytest.mark.parametrize("language", ["fr", "en"])
@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_forgot_sent_and_reset_pages(
    browser: Browser,
    live_server: str,
    live_database_url: str,
    axe_source: str,
    viewport: dict[str, int],
    language: str,
) -> None:
    name = f"{'phone' if viewport == PHONE else 'desktop'}-{language}"
    text = TEXTS[language]
    context = browser.new_context(viewport=viewport, locale="fr-FR")
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(f"{live_server}/lang/{language}?next=/login")
    page.get_by_role("link", name=text["forgot"]).click()
    page.wait_for_load_state()
    assert page.url.endswith("/password/forgot")
    shoot(page, axe_source, f"forgot-{name}")

    page.get_by_role("button", name=text["send"]).click()
    page.wait_for_selector("#error-summary")
    assert text["bad_email"] in page.locator("#error-summary").inner_text()
    shoot(page, axe_source, f"forgot-error-{name}")
    errors.clear()  # the refused form is a 400 page on purpose: Chromium logs its status

    page.get_by_label(text["email"]).fill(f"nobody-{name}@example.org")
    page.get_by_role("button", name=text["send"]).click()
    page.wait_for_load_state()
    assert text["sent"] in page.locator("main").inner_text()
    shoot(page, axe_source, f"sent-{name}")

    page.goto(live_server + _reset_path(live_database_url, ADMIN[0]))
    shoot(page, axe_source, f"reset-{name}")
    assert errors == []
    page.get_by_label(text["new"]).fill("a long enough new password")
    page.get_by_label(text["confirm"]).fill("something else entirely")
    page.get_by_role("button", name=text["save"]).click()
    page.wait_for_selector("#error-summary")
    assert text["differ"] in page.locator("#error-summary").inner_text()
    shoot(page, axe_source, f"reset-error-{name}")

    page.goto(f"{live_server}/password/reset/not-a-real-token")
    assert text["invalid"] in page.locator("h1").inner_text()
    assert page.get_by_role("link", name=text["ask_again"]).count() == 1
    shoot(page, axe_source, f"invalid-{name}")
    context.close()
