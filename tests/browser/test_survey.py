"""A citizen answers on a phone in real Chromium: with and without JavaScript, through skip
logic, and with the keyboard only; axe-core checks every page state in French and English."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser, Page

from tests.browser.conftest import ARTIFACTS
from tests.browser.test_pages import PHONE, check_page

pytestmark = pytest.mark.browser

AGREEMENT = [
    "satisfied",
    "trust",
    "effective",
    "ease",
    "efficiency",
    "equity",
    "employees",
    "courtesy",
    "clarity",
]
START = "/s/2026/69123"
NEXT = {"fr": "Suivant", "en": "Next"}
SEND = {"fr": "Envoyer mes réponses", "en": "Send my answers"}


def _count_responses(database_url: str) -> int:
    engine = sa.create_engine(database_url)
    with engine.connect() as connection:
        count = connection.execute(sa.text("SELECT count(*) FROM responses")).scalar_one()
    engine.dispose()
    return int(count)


def _answer_all(page: Page, lang: str, *, channel_index: int, check_axe=None) -> None:
    """From page 1 to the thank-you page by clicking, as a person does."""
    page.locator(f"#item-channel-{channel_index}").check()
    page.locator("#item-overall-2").check()
    page.get_by_role("button", name=NEXT[lang]).click()
    page.wait_for_selector("#item-satisfied-0")
    for key in AGREEMENT:
        page.locator(f"#item-{key}-3").check()
    page.locator("#item-equity-5").check()  # « Non concerné »
    page.get_by_role("button", name=NEXT[lang]).click()
    page.wait_for_selector("#item-delay_kept-0")
    if page.locator("#item-reached-0").count():
        page.locator("#item-reached-0").check()
    page.locator("#item-delay_kept-2").check()
    page.get_by_role("button", name=NEXT[lang]).click()
    page.wait_for_selector("#item-age_band-0")
    page.get_by_role("button", name=NEXT[lang]).click()
    page.wait_for_selector("#item-comment")
    page.locator("#item-comment").fill("Accueil rapide. Écrivez-moi à jean@example.org")
    page.get_by_role("button", name=SEND[lang]).click()
    page.wait_for_url("**/merci")


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_complete_with_javascript_and_check_every_state(
    browser: Browser, live_server: str, live_database_url: str, axe_source: str, lang: str
) -> None:
    before = _count_responses(live_database_url)
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    page.goto(f"{live_server}{START}?canal=guichet&lang={lang}")
    assert page.locator("#item-channel-0").is_checked()  # the link's channel is pre-filled
    check_page(page, axe_source, f"survey-empty-{lang}")
    page.get_by_role("button", name=NEXT[lang]).click()
    page.wait_for_selector("#error-summary")
    check_page(page, axe_source, f"survey-errors-{lang}")
    # The summary links to the field in error.
    page.locator("#error-summary a").first.click()
    assert page.evaluate("() => location.hash") == "#item-overall-0"
    _answer_all(page, lang, channel_index=0)
    check_page(page, axe_source, f"survey-thanks-{lang}")
    assert _count_responses(live_database_url) == before + 1
    context.close()


def test_complete_without_javascript(
    browser: Browser, live_server: str, live_database_url: str
) -> None:
    before = _count_responses(live_database_url)
    context = browser.new_context(viewport=PHONE, java_script_enabled=False)
    page = context.new_page()
    page.goto(live_server + START + "?src=qr")
    # axe needs JavaScript (evaluating it in a no-JS page never returns); the same HTML is
    # checked by the JavaScript test, so here the pages are only captured.
    page.screenshot(path=str(ARTIFACTS / "survey-nojs-empty.png"), full_page=True)
    _answer_all(page, "fr", channel_index=4)
    page.screenshot(path=str(ARTIFACTS / "survey-nojs-thanks.png"), full_page=True)
    assert _count_responses(live_database_url) == before + 1
    context.close()


def test_skip_logic_live_and_across_pages(
    browser: Browser, live_server: str, live_database_url: str
) -> None:
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    page.goto(live_server + START)
    page.locator("#item-channel-1").check()  # « Par téléphone »
    page.locator("#item-overall-1").check()
    page.get_by_role("button", name="Suivant").click()
    page.wait_for_selector("#item-satisfied-0")
    page.get_by_role("button", name="Suivant").click()
    page.wait_for_selector("#item-delay_kept-0")
    # Reached the authority? asked for the phone, not for a visit at the counter.
    assert page.locator("#item-reached-0").count() == 1
    page.screenshot(path=str(ARTIFACTS / "survey-skip-telephone.png"), full_page=True)
    page.get_by_role("button", name="Précédent").click()
    page.get_by_role("button", name="Précédent").click()
    page.wait_for_selector("#item-channel-0")
    assert page.locator("#item-channel-1").is_checked()  # the server kept the answers
    page.locator("#item-channel-0").check()
    page.get_by_role("button", name="Suivant").click()
    page.get_by_role("button", name="Suivant").click()
    page.wait_for_selector("#item-delay_kept-0")
    assert page.locator("#item-reached-0").count() == 0
    context.close()


def _focused(page: Page) -> dict[str, str]:
    return page.evaluate(
        "() => ({tag: document.activeElement.tagName, name: document.activeElement.name || '',"
        " value: document.activeElement.value || '', text: document.activeElement.innerText || ''})"
    )


def _tab_to(page: Page, predicate, limit: int = 80) -> dict[str, str]:
    for _ in range(limit):
        page.keyboard.press("Tab")
        focused = _focused(page)
        if predicate(focused):
            return focused
    raise AssertionError("keyboard focus never reached the element")


def test_complete_with_the_keyboard_only(
    browser: Browser, live_server: str, live_database_url: str
) -> None:
    before = _count_responses(live_database_url)
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    page.goto(live_server + START)
    for name in ("channel", "overall"):
        _tab_to(page, lambda f, name=name: f["name"] == name)
        page.keyboard.press("Space")  # checks the focused (first) option
        page.keyboard.press("ArrowDown")  # arrows move the choice within the group
    assert (
        page.locator("#item-channel-1").is_checked()
        and page.locator("#item-overall-1").is_checked()
    )
    for _ in range(4):  # pages 1 to 4: the next button is the default one
        _tab_to(page, lambda f: f["tag"] == "BUTTON" and f["value"] == "next")
        with page.expect_navigation():
            page.keyboard.press("Enter")
    page.wait_for_selector("#item-comment")
    _tab_to(page, lambda f: f["name"] == "comment")
    page.keyboard.type("Merci")
    _tab_to(page, lambda f: f["tag"] == "BUTTON" and f["value"] == "next")
    page.screenshot(path=str(ARTIFACTS / "survey-keyboard-last-page.png"), full_page=True)
    page.keyboard.press("Enter")
    page.wait_for_url("**/merci")
    assert _count_responses(live_database_url) == before + 1
    context.close()
