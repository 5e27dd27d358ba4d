"""Users (list, edit, deactivation confirmation) and the scoring buttons in real Chromium:
phone and desktop, French and English, no serious or critical axe violation."""

from __future__ import annotations

import uuid

import pytest
from playwright.sync_api import Browser, Page
from sqlmodel import Session, select

from app.campaigns.models import Campaign
from app.core.db import create_db_engine
from tests.browser.conftest import ARTIFACTS
from tests.browser.test_jury_pages import assert_no_horizontal_scroll
from tests.browser.test_pages import ADMIN, axe_violations

pytestmark = pytest.mark.browser

PHONE = {"width": 360, "height": 780}
DESKTOP = {"width": 1366, "height": 900}
TEXTS = {
    "fr": {
        "email": "Adresse électronique",
        "password": "Mot de passe",
        "sign_in": "Se connecter",
        "create": "Créer et envoyer l’invitation",
        "choose": "Choisissez un rôle",
        "bad_email": "Saisissez une adresse e-mail valide, par exemple nom@example.fr.",
        "deactivate": "Désactiver ce compte…",
        "preview": "Calculer un aperçu provisoire",
        "see_preview": "Voir l’aperçu",
    },
    "en": {
        "email": "E-mail address",
        "password": "Password",
        "sign_in": "Sign in",
        "create": "Create and send the invitation",
        "choose": "Choose a role",
        "bad_email": "Enter a valid e-mail address, such as name@example.fr.",
        "deactivate": "Deactivate this account…",
        "preview": "Compute a provisional preview",
        "see_preview": "See the preview",
    },
}


@pytest.fixture(scope="module")
def open_campaign_id(live_database_url: str) -> int:
    engine = create_db_engine(live_database_url)
    with Session(engine) as session:
        campaign = session.exec(select(Campaign).where(Campaign.state == "open")).first()
        assert campaign is not None, "the demo has an edition under way"
        campaign_id = campaign.id or 0
    engine.dispose()
    return campaign_id


def shoot(page: Page, axe_source: str, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"admin-{name}.png"), full_page=True)
    violations = axe_violations(page, axe_source)
    summary = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3]) for v in violations]
    assert summary == [], f"{name}: {summary}"
    assert_no_horizontal_scroll(page)


@pytest.mark.parametrize("language", ["fr", "en"])
@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_users_and_scoring_pages(
    browser: Browser,
    live_server: str,
    axe_source: str,
    open_campaign_id: int,
    viewport: dict[str, int],
    language: str,
) -> None:
    size = "phone" if viewport == PHONE else "desktop"
    name = f"{size}-{language}"
    text = TEXTS[language]
    context = browser.new_context(viewport=viewport, locale="fr-FR")
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(f"{live_server}/lang/{language}?next=/login")
    page.get_by_label(TEXTS[language]["email"]).fill(ADMIN[0])
    page.get_by_label(text["password"]).fill(ADMIN[1])
    page.get_by_role("button", name=text["sign_in"]).click()
    page.wait_for_load_state()

    page.goto(f"{live_server}/admin/users")
    role = page.locator("#field-role")
    assert role.input_value() == "" and role.get_attribute("required") is not None
    assert page.locator("#field-role option:checked").inner_text() == text["choose"]
    shoot(page, axe_source, f"users-{name}")

    # A wrong address is refused in the page's language; then the account is created.
    suffix = uuid.uuid4().hex[:8]
    email, person = f"h6-{suffix}@example.org", f"Camille {suffix}"
    page.locator("#field-email").fill("not-an-address")
    page.locator("#field-display_name").fill(person)
    role.select_option("reviewer")
    page.get_by_role("button", name=text["create"]).click()
    page.wait_for_selector("#error-summary")
    assert text["bad_email"] in page.locator("#error-summary").inner_text()
    shoot(page, axe_source, f"users-error-{name}")
    errors.clear()  # the refused form is a 400 page on purpose: Chromium logs its status
    page.locator("#field-email").fill(email)
    page.locator("#field-role").select_option("reviewer")
    page.get_by_role("button", name=text["create"]).click()
    page.wait_for_load_state()
    notice = page.locator(".notice").first.inner_text()
    assert email in notice and "/invitations/" not in notice  # sent by e-mail, never shown

    page.get_by_role("link", name=person).first.click()
    page.wait_for_load_state()
    assert "/admin/users/" in page.url
    shoot(page, axe_source, f"user-edit-{name}")
    page.get_by_role("link", name=text["deactivate"]).click()
    page.wait_for_load_state()
    assert page.url.endswith("/deactivate")
    shoot(page, axe_source, f"user-deactivate-{name}")

    page.goto(f"{live_server}/campaigns/{open_campaign_id}/runs")
    button = page.get_by_role("button", name=text["preview"])
    assert button.count() == 1 or page.locator("#run-progress").count() == 1
    shoot(page, axe_source, f"scoring-{name}")
    if name == "desktop-fr" and button.count() == 1:
        button.click()
        page.wait_for_selector("#run-progress")
        shoot(page, axe_source, "scoring-progress-desktop-fr")
        page.get_by_role("link", name=text["see_preview"]).wait_for(timeout=240_000)
        page.get_by_role("link", name=text["see_preview"]).click()
        page.wait_for_load_state()
        shoot(page, axe_source, "scoring-preview-desktop-fr")
    assert errors == []
    context.close()
