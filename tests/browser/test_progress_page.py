"""The collection progress page in real Chromium, on the demo's open 2026 edition: the
organiser's table (sorted, filtered, paged by plain links) and the authority contact's own row;
phone (360 px) and desktop (1366 px), French and English, no serious or critical axe violation,
nothing wider than the screen, no console error."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, ViewportSize

from tests.browser.conftest import sign_in
from tests.browser.test_audit_pages import check
from tests.browser.test_export_pages import AUTHORITY, _campaign_id
from tests.browser.test_pages import ADMIN

pytestmark = pytest.mark.browser

PHONE: ViewportSize = {"width": 360, "height": 780}
DESKTOP: ViewportSize = {"width": 1366, "height": 900}


# French on a phone, English on a desktop: each language and each width once (the suite's
# time is mostly its browser tests).
@pytest.mark.parametrize(
    ("viewport", "language"), [(PHONE, "fr"), (DESKTOP, "en")], ids=["phone-fr", "desktop-en"]
)
def test_the_organiser_follows_who_is_short_of_the_thresholds(
    browser: Browser,
    live_server: str,
    live_database_url: str,
    axe_source: str,
    viewport: ViewportSize,
    language: str,
) -> None:
    name = f"{'phone' if viewport == PHONE else 'desktop'}-{language}"
    campaign_id = _campaign_id(live_database_url, 2026)
    context = browser.new_context(viewport=viewport, locale="fr-FR")
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    sign_in(page, live_server, language, ADMIN)
    page.goto(f"{live_server}/campaigns/{campaign_id}/progress")
    assert page.locator("th[aria-sort]").count() == 1
    assert page.locator("tbody th[scope='rowgroup']").count() == 50
    check(page, axe_source, f"progress-organiser-{name}")

    page.locator("thead th a").first.click()  # sort by name: a plain link
    page.wait_for_load_state()
    assert page.locator("th[aria-sort='ascending']").count() == 1
    page.locator("select[name='category']").select_option(index=1)
    page.locator("form.filters button").click()
    page.wait_for_load_state()
    assert "category=" in page.url and "sort=name" in page.url
    check(page, axe_source, f"progress-organiser-filtered-{name}")
    assert errors == []
    context.close()


@pytest.mark.parametrize("viewport", [PHONE], ids=["phone"])
def test_the_authority_contact_sees_its_own_row(
    browser: Browser,
    live_server: str,
    live_database_url: str,
    axe_source: str,
    viewport: ViewportSize,
) -> None:
    name = "phone" if viewport == PHONE else "desktop"
    campaign_id = _campaign_id(live_database_url, 2026)
    context = browser.new_context(viewport=viewport, locale="fr-FR")
    page = context.new_page()
    sign_in(page, live_server, "fr", AUTHORITY)
    page.goto(f"{live_server}/campaigns/{campaign_id}/progress")
    assert page.locator("tbody th[scope='rowgroup']").count() == 1
    assert page.locator("thead th a").count() == 0
    check(page, axe_source, f"progress-authority-{name}")
    context.close()
