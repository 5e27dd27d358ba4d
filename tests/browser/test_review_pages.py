"""The reviewer's queue and visit page in real Chromium, on the demo: axe, decisions, no JS."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, Page

from tests.browser.test_pages import DESKTOP, PHONE, check_page

pytestmark = pytest.mark.browser

REVIEWER = ("reviewer@demo.barometre.fr", "demo-reviewer-2026")


def sign_in_reviewer(page: Page, base: str) -> None:
    page.goto(base + "/login")
    page.get_by_label("Adresse électronique").fill(REVIEWER[0])
    page.get_by_label("Mot de passe").fill(REVIEWER[1])
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_load_state()
    page.context.add_cookies([{"name": "lang", "value": "en", "url": base}])


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_queue_and_visit_pages(
    browser: Browser, live_server: str, axe_source: str, viewport: dict[str, int]
) -> None:
    size = "phone" if viewport == PHONE else "desktop"
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    sign_in_reviewer(page, live_server)

    page.goto(live_server + "/review")
    page.wait_for_selector("h1")
    assert page.locator("tbody tr").count() >= 3  # the demo's received visits
    check_page(page, axe_source, f"review-queue-{size}")
    # With JavaScript, one box selects every received visit of the page (not submitted here).
    page.get_by_label("Select every received visit on this page").check()
    boxes = page.locator("input.select-visit")
    assert boxes.count() >= 3
    assert all(boxes.nth(i).is_checked() for i in range(boxes.count()))
    boxes.nth(0).uncheck()
    assert page.evaluate("document.getElementById('select-all').indeterminate")

    page.get_by_label("Review state").select_option("any")
    page.get_by_label("Only visits with an anomaly hint").check()
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(r".*anomalies=1.*"))
    assert page.locator(".badge").count() >= 4
    check_page(page, axe_source, f"review-queue-anomalies-{size}")

    # The corrected visit (two revisions) shows the diff and the thread.
    page.goto(live_server + "/review?state=received")
    links = page.locator("tbody a")
    for index in range(links.count()):
        links.nth(index).click()
        page.wait_for_selector("h1")
        if page.get_by_text("What changed in revision 2").count():
            break
        page.go_back()
    else:
        raise AssertionError("no corrected visit in the demo queue")
    assert page.locator(".thread li").count() == 2
    check_page(page, axe_source, f"review-visit-{size}")

    # A rejection without a comment: the error summary links to the comment field.
    page.get_by_role("button", name="Reject").click()
    page.wait_for_selector("#error-summary")
    check_page(page, axe_source, f"review-visit-error-{size}")
    page.locator("#error-summary a").click()
    assert page.evaluate("document.activeElement.id") == "field-comment"
    assert errors == [] or all("400" in e or "Failed to load" in e for e in errors)
    context.close()


def test_bulk_approval_and_a_decision_without_javascript(
    browser: Browser, live_server: str, axe_source: str
) -> None:
    context = browser.new_context(viewport=PHONE, java_script_enabled=False)
    page = context.new_page()
    sign_in_reviewer(page, live_server)
    page.goto(live_server + "/review?state=received")
    assert page.locator("#select-all").is_hidden()  # the select-all box needs JavaScript
    before = page.locator("tbody tr").count()
    boxes = page.locator("input.select-visit")
    assert boxes.count() >= 2
    boxes.nth(0).check()
    boxes.nth(1).check()
    page.get_by_role("button", name="Approve the selected visits").click()
    page.wait_for_selector("h1")
    assert "2 visits approved." in page.inner_text(".notice")
    assert page.locator("tbody tr").count() == before - 2

    page.locator("tbody a").first.click()
    page.wait_for_selector("h1")
    page.get_by_label("Comment").fill("Merci de préciser le nom de l'agent.")
    page.get_by_role("button", name="Report issues to the shopper").click()
    page.wait_for_selector(".thread")
    assert ": has issues." in page.inner_text(".notice")
    assert "Merci de préciser le nom de l'agent." in page.inner_text(".thread")
    # The visit now waits for the shopper: no review button is left but the comment.
    assert page.get_by_role("button", name="Approve").count() == 0
    page.screenshot(path="tests/artifacts/review-visit-nojs-phone.png", full_page=True)
    context.close()
