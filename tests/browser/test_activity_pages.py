"""The organiser's background jobs and outbox in real Chromium: phone and desktop, French and
English, no serious or critical axe violation, nothing wider than the screen."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Page

from tests.browser.conftest import ARTIFACTS, sign_in
from tests.browser.test_jury_pages import assert_no_horizontal_scroll
from tests.browser.test_pages import ADMIN, axe_violations

pytestmark = pytest.mark.browser

PHONE = {"width": 360, "height": 780}
DESKTOP = {"width": 1366, "height": 900}
TEXTS = {
    "fr": {
        "jobs": "Tâches de fond",
        "outbox": "Boîte d’envoi",
    },
    "en": {
        "jobs": "Background jobs",
        "outbox": "Outbox",
    },
}


def shoot(page: Page, axe_source: str, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"activity-{name}.png"), full_page=True)
    violations = axe_violations(page, axe_source)
    summary = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3]) for v in violations]
    assert summary == [], f"{name}: {summary}"
    assert_no_horizontal_scroll(page)


@pytest.mark.parametrize("language", ["fr", "en"])
@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_jobs_and_outbox_pages(
    browser: Browser, live_server: str, axe_source: str, viewport: dict[str, int], language: str
) -> None:
    name = f"{'phone' if viewport == PHONE else 'desktop'}-{language}"
    text = TEXTS[language]
    context = browser.new_context(viewport=viewport, locale="fr-FR")
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    sign_in(page, live_server, language, ADMIN)

    page.goto(f"{live_server}/admin/jobs")
    assert page.get_by_role("heading", level=1).inner_text() == text["jobs"]
    shoot(page, axe_source, f"jobs-{name}")
    page.get_by_role("link", name=text["outbox"]).first.click()
    page.wait_for_load_state()
    assert page.get_by_role("heading", level=1).inner_text() == text["outbox"]
    shoot(page, axe_source, f"outbox-{name}")
    first = page.locator("table tbody a").first
    if first.count():
        first.click()
        page.wait_for_load_state()
        shoot(page, axe_source, f"message-{name}")
    assert errors == []
    context.close()
