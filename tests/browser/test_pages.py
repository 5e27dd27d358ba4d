"""Pages in real headless Chromium: they work, and axe-core finds no serious violation."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Browser, Page

from tests.browser.conftest import ARTIFACTS

pytestmark = pytest.mark.browser

ADMIN = ("admin@demo.barometre.fr", "demo-admin-2026")
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


def axe_violations(page: Page, axe_source: str) -> list[dict[str, Any]]:
    # Evaluated through the DevTools protocol rather than added as a <script>: the pages' strict
    # CSP (no inline scripts) stays on, so a CSP violation of our own would still show.
    page.evaluate(axe_source + "\n;undefined")
    result = page.evaluate(
        "async () => await axe.run(document, {runOnly: {type: 'tag', values: "
        "['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']}})"
    )
    return [v for v in result["violations"] if v["impact"] in ("serious", "critical")]


def check_page(page: Page, axe_source: str, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    violations = axe_violations(page, axe_source)
    summary = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3]) for v in violations]
    assert summary == [], f"{name}: {summary}"


def sign_in(page: Page, base: str) -> None:
    page.goto(base + "/login")
    page.get_by_label("Adresse électronique").fill(ADMIN[0])
    page.get_by_label("Mot de passe").fill(ADMIN[1])
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url(base + "/campaigns")


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_login_registry_and_campaign_pages(
    browser: Browser, live_server: str, axe_source: str, viewport: dict[str, int]
) -> None:
    size = "phone" if viewport == PHONE else "desktop"
    context = browser.new_context(viewport=viewport, locale="fr-FR")
    page = context.new_page()
    errors: list[str] = []
    page.on(
        "console", lambda message: errors.append(message.text) if message.type == "error" else None
    )

    page.goto(live_server + "/")
    check_page(page, axe_source, f"home-{size}")

    page.goto(live_server + "/login")
    check_page(page, axe_source, f"login-{size}")
    page.get_by_label("Adresse électronique").fill(ADMIN[0])
    page.get_by_label("Mot de passe").fill("wrong password")
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_selector("#error-summary")
    check_page(page, axe_source, f"login-error-{size}")

    sign_in(page, live_server)
    check_page(page, axe_source, f"campaigns-{size}")

    page.get_by_role("link", name="Baromètre de l'expérience citoyenne 2026").click()
    page.wait_for_selector("h1")
    assert "ouverte" in page.inner_text(".stepper")
    check_page(page, axe_source, f"campaign-{size}")
    page.get_by_role("link", name="Missions d'enquête mystère").click()
    page.wait_for_selector("h1")
    check_page(page, axe_source, f"missions-{size}")
    page.go_back()
    page.get_by_role("link", name="Suivi de la collecte").click()
    page.wait_for_selector("#figures")
    check_page(page, axe_source, f"collection-figures-{size}")

    page.goto(live_server + "/registry")
    check_page(page, axe_source, f"registry-{size}")
    # htmx live search: typing replaces the results without a page load.
    page.get_by_label("Nom ou code").fill("saint etienne")
    page.locator("#registry-results").get_by_role(
        "link", name="Saint-Étienne", exact=True
    ).wait_for()
    assert "q=saint" in page.url
    check_page(page, axe_source, f"registry-search-{size}")

    page.goto(live_server + "/admin/instruments")
    check_page(page, axe_source, f"instruments-{size}")
    page.get_by_role("link", name="Votre avis sur votre démarche").first.click()
    page.wait_for_selector("fieldset legend")
    check_page(page, axe_source, f"instrument-preview-{size}")

    page.goto(live_server + "/does-not-exist")
    check_page(page, axe_source, f"not-found-{size}")
    # The wrong password (400) and the missing page (404) are deliberate; anything else, such as
    # a CSP violation or a script error, is a defect.
    unexpected = [e for e in errors if not e.startswith("Failed to load resource")]
    assert unexpected == []
    assert len(errors) == 2
    context.close()


def test_registry_search_works_without_javascript(
    browser: Browser, live_server: str, axe_source: str
) -> None:
    context = browser.new_context(viewport=PHONE, java_script_enabled=False)
    page = context.new_page()
    sign_in(page, live_server)
    page.goto(live_server + "/registry")
    page.get_by_label("Nom ou code").fill("saint")
    page.get_by_role("button", name="Rechercher").click()
    page.wait_for_url("**/registry?q=saint*")
    assert "Saint" in page.inner_text("#registry-results")
    page.get_by_role("link", name="Suivant").click()
    assert "Page 2" in page.inner_text("#registry-results")
    context.close()


def test_shopper_pages(browser: Browser, live_server: str, axe_source: str) -> None:
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    page.goto(live_server + "/login")
    page.get_by_label("Adresse électronique").fill("shopper@demo.barometre.fr")
    page.get_by_label("Mot de passe").fill("demo-shopper-2026")
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url(live_server + "/me/missions")
    check_page(page, axe_source, "shopper-missions-phone")
    page.get_by_role("link", name="Mes conflits d'intérêts").click()
    page.wait_for_selector("h1")
    check_page(page, axe_source, "shopper-conflicts-phone")
    context.close()
