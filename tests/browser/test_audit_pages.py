"""The audit log in real Chromium: phone and desktop, French and English, no serious or
critical axe violation; the filter form works without JavaScript and paging keeps it."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Browser, Page, ViewportSize

from tests.app.test_audit_log import french_audit_words
from tests.browser.conftest import ARTIFACTS, sign_in
from tests.browser.test_jury_pages import assert_no_horizontal_scroll
from tests.browser.test_pages import ADMIN, axe_violations

pytestmark = pytest.mark.browser

PHONE: ViewportSize = {"width": 360, "height": 780}
DESKTOP: ViewportSize = {"width": 1366, "height": 900}
TEXTS = {
    "fr": {
        "title": "Journal d’audit",
        "action": "Action",
        "filter": "Filtrer",
        "next": "Suivant",
        "csv": "Télécharger en CSV",
        "page_2": "Page 2 sur",
    },
    "en": {
        "title": "Audit log",
        "action": "Action",
        "filter": "Filter",
        "next": "Next",
        "csv": "Download as CSV",
        "page_2": "Page 2 of",
    },
}


@pytest.fixture(scope="module", autouse=True)
def audit_words() -> Iterator[None]:
    with french_audit_words():
        yield


def check(page: Page, axe_source: str, name: str | None = None) -> None:
    if name:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    violations = axe_violations(page, axe_source)
    summary = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3]) for v in violations]
    assert summary == [], f"{name or page.url}: {summary}"
    assert_no_horizontal_scroll(page)


@pytest.mark.parametrize("language", ["fr", "en"])
@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_audit_log_page(
    browser: Browser,
    live_server: str,
    axe_source: str,
    viewport: ViewportSize,
    language: str,
) -> None:
    size = "phone" if viewport == PHONE else "desktop"
    text = TEXTS[language]
    context = browser.new_context(viewport=viewport, locale="fr-FR")
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    sign_in(page, live_server, language, ADMIN)

    page.goto(f"{live_server}/admin/audit")
    assert page.get_by_role("heading", level=1).inner_text() == text["title"]
    assert page.locator("tbody tr").count() == 50
    check(page, axe_source, f"audit-log-{size}-{language}")

    # The form filters by a group of actions, then paging keeps the filter.
    page.get_by_label(text["action"], exact=True).select_option("visit.")
    page.get_by_role("button", name=text["filter"]).click()
    page.wait_for_load_state()
    assert parse_qs(urlsplit(page.url).query)["action"] == ["visit."]
    actions = page.locator("tbody tr td:nth-child(2)").all_inner_texts()
    assert len(actions) == 50 and all("isit" in action for action in actions), actions
    page.get_by_role("link", name=text["next"]).click()
    page.wait_for_load_state()
    query = parse_qs(urlsplit(page.url).query)
    assert query["action"] == ["visit."] and query["page"] == ["2"]
    assert text["page_2"] in page.locator(".pagination").inner_text()
    csv_link = page.get_by_role("link", name=text["csv"]).get_attribute("href") or ""
    assert csv_link == "/admin/audit.csv?action=visit."
    check(page, axe_source)

    # A bad value (a hand-edited address) is refused with the field named in the summary.
    page.goto(f"{live_server}/admin/audit?date_from=yesterday")
    assert page.locator("#error-summary a[href='#field-date_from']").count() == 1
    check(page, axe_source)
    errors = [e for e in errors if "422" not in e]  # the refusal is a 422 page on purpose
    assert errors == []
    context.close()
