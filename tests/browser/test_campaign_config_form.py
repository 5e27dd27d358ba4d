"""The configuration form and the confirmation pages in Chromium, phone and desktop, FR and EN."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Page

from tests.browser.conftest import ARTIFACTS
from tests.browser.test_pages import axe_violations, sign_in

pytestmark = pytest.mark.browser

SIZES = {"phone": {"width": 360, "height": 780}, "desktop": {"width": 1366, "height": 900}}
YEARS = {
    ("fr", "phone"): 2041,
    ("fr", "desktop"): 2042,
    ("en", "phone"): 2043,
    ("en", "desktop"): 2044,
}


def check(page: Page, axe_source: str, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    violations = axe_violations(page, axe_source)
    summary = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3]) for v in violations]
    assert summary == [], f"{name}: {summary}"


def _new_draft(page: Page, base: str, year: int) -> str:
    """A draft campaign made through the creation form; returns its page's path."""
    page.goto(base + "/campaigns/new")
    page.fill("#field-year", str(year))
    page.fill("#field-name", f"Baromètre {year}")
    page.fill("#field-opens_at", f"{year}-01-15")
    page.fill("#field-closes_at", f"{year}-10-31")
    page.locator("main form button[type=submit]").click()
    page.wait_for_url("**/campaigns/*")
    return page.url


@pytest.mark.parametrize("size", ["phone", "desktop"])
@pytest.mark.parametrize("lang", ["fr", "en"])
def test_fill_the_form_with_an_error_then_save(
    browser: Browser, live_server: str, axe_source: str, lang: str, size: str
) -> None:
    context = browser.new_context(viewport=SIZES[size], locale="fr-FR")
    page = context.new_page()
    sign_in(page, live_server)
    context.add_cookies([{"name": "lang", "value": lang, "url": live_server}])
    campaign_url = _new_draft(page, live_server, YEARS[(lang, size)])
    page.fill("#field-code", "01001")  # L'Abergement-Clémenciat, 860 inhabitants
    page.locator("form[action$='/candidates'] button").click()
    page.wait_for_url("**#candidates")
    page.goto(campaign_url + "/config")
    page.wait_for_selector("#config-form")
    check(page, axe_source, f"config-form-{lang}-{size}")

    # A band changes: htmx recounts in place (without JS, the "recount" button does it).
    one = "1 candidat inscrit" if lang == "fr" else "1 registered candidate"
    assert one in page.inner_text("#count-0")
    page.fill("#field-cat-0-population_min", "1000")
    page.press("#field-cat-0-population_min", "Tab")
    page.locator("#unplaced .notice").wait_for()
    assert one in page.inner_text("#unplaced") and one not in page.inner_text("#count-0")
    check(page, axe_source, f"config-form-recount-{lang}-{size}")
    page.fill("#field-cat-0-population_min", "0")

    # One error: the channel weights add up to 115 %.
    page.fill("#field-weight-guichet", "40")
    page.fill("#field-confidence_level", "90")
    page.locator("button[name=action][value=save]").click()
    summary = page.wait_for_selector("#error-summary")
    words = "Pondération des canaux" if lang == "fr" else "Channel weights"
    assert words in summary.inner_text() and "115" in summary.inner_text()
    assert page.get_attribute("#field-weight-guichet", "aria-invalid") == "true"
    assert page.input_value("#field-weight-guichet") == "40"  # the input is kept
    assert page.input_value("#field-confidence_level") == "90"
    check(page, axe_source, f"config-form-error-{lang}-{size}")
    page.locator("#error-summary a").first.click()
    assert page.evaluate("document.activeElement.id") == "field-weight-guichet"

    page.fill("#field-weight-guichet", "25")
    page.locator("button[name=action][value=save]").click()
    page.wait_for_url(campaign_url)
    saved = "Configuration enregistrée" if lang == "fr" else "Configuration saved."
    assert saved in page.inner_text("main")
    assert "90" in page.inner_text("#config-title + .grid-2")

    # The next step asks first: the confirmation page says what opening does.
    page.locator("form[action$='/transition'] button").click()
    page.wait_for_selector("#consequences")
    check(page, axe_source, f"confirm-transition-{lang}-{size}")
    context.close()


@pytest.mark.parametrize("size", ["phone", "desktop"])
def test_regenerate_and_close_confirmation_pages(
    browser: Browser, live_server: str, axe_source: str, size: str
) -> None:
    context = browser.new_context(viewport=SIZES[size], locale="fr-FR")
    page = context.new_page()
    sign_in(page, live_server)
    page.get_by_role("link", name="Baromètre de l'expérience citoyenne 2026").click()
    page.wait_for_selector("h1")
    campaign_url = page.url
    for language, cancel in (("fr", "Annuler"), ("en", "Cancel")):
        page.goto(f"{live_server}/lang/{language}?next=/")
        page.goto(campaign_url)
        page.locator("form[action$='/transition'] button").click()
        page.wait_for_selector("#consequences")
        if language == "fr":
            assert "cesse de recevoir des réponses" in page.inner_text("#consequences")
        check(page, axe_source, f"confirm-close-{language}-{size}")
        page.get_by_role("link", name=cancel).click()
        page.wait_for_url(campaign_url)
        page.goto(campaign_url + "/missions")
        regenerate = page.locator("form[action$='/missions/regenerate'] button")
        if regenerate.count():
            regenerate.click()
            page.wait_for_selector("#consequences")
            if language == "fr":
                consequences = page.inner_text("#consequences")
                assert "seront supprimées" in consequences or "sera supprimée" in consequences
            check(page, axe_source, f"confirm-regenerate-{language}-{size}")
    context.close()
