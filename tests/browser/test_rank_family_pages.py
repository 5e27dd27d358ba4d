"""One family per table on the demo, and the pages that show it, in real Chromium.

The walk (rankings API, jury category pages, public category pages, open data) checks that no
output shows a candidate in a τ-best set whose displayed lower rank bound is above τ, on every
demo edition with a frozen run. The pages (methodology, public results, jury, scorecard) are
checked with axe at phone (360 px) and desktop (1366 px) widths, without horizontal scrolling.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page
from sqlmodel import Session, select

from app.campaigns.models import Campaign
from app.core.db import create_db_engine
from app.results import repository as results_repository
from tests.app.test_rank_families import (
    check_jury_page,
    check_open_data,
    check_public_page,
    check_rankings_json,
)
from tests.browser.test_jury_pages import assert_no_horizontal_scroll
from tests.browser.test_pages import check_page, sign_in

pytestmark = pytest.mark.browser

PHONE = {"width": 360, "height": 780}
DESKTOP = {"width": 1366, "height": 900}
# Screenshots for a human to look at, besides the artifacts check_page keeps.
SHOTS = Path(os.environ.get("BAROMETRE_SHOTS_DIR", "tests/artifacts/rank-families"))


def _editions(url: str) -> list[tuple[int, int, str, list[str], str | None]]:
    """(year, campaign id, state, categories with a ranked candidate, a ranked code) of every
    demo edition with a frozen run."""
    engine = create_db_engine(url)
    found = []
    with Session(engine) as session:
        for campaign in session.exec(select(Campaign).order_by(Campaign.year)).all():
            run = results_repository.current_run(session, campaign_id=campaign.id or 0)
            if run is None:
                continue
            ranks = results_repository.rank_rows(session, run_id=run.id or 0)
            categories = sorted({row.category for row in ranks if row.eligible})
            code = next((row.authority_code for row in ranks if row.eligible), None)
            found.append((campaign.year, campaign.id or 0, campaign.state, categories, code))
    engine.dispose()
    return found


@pytest.fixture(scope="module")
def editions(live_database_url: str) -> list[tuple[int, int, str, list[str], str | None]]:
    found = _editions(live_database_url)
    assert found, "the demo has no scored edition"
    return found


def _english(browser: Browser, live_server: str) -> BrowserContext:
    context = browser.new_context(locale="en-GB")
    context.add_cookies([{"name": "lang", "value": "en", "url": live_server}])
    return context


def test_the_demo_never_shows_a_set_member_outside_its_bound(
    browser: Browser, live_server: str, editions: list
) -> None:
    context = _english(browser, live_server)
    page = context.new_page()
    checked = 0
    for year, _campaign_id, state, categories, _code in editions:
        if state == "published":  # the public answer first, anonymous
            checked += check_rankings_json(
                page.request.get(f"{live_server}/api/v1/campaigns/{year}/rankings").json()
            )
            for category in categories:
                html = page.request.get(f"{live_server}/results/{year}/{category}").text()
                checked += check_public_page(html, f"public {year} {category}")
            csv_text = page.request.get(f"{live_server}/results/{year}/open-data/scores.csv")
            checked += check_open_data(csv_text.text())
    context.clear_cookies()  # the sign-in form is read in French
    sign_in(page, live_server)
    context.add_cookies([{"name": "lang", "value": "en", "url": live_server}])
    for year, campaign_id, _state, categories, _code in editions:
        checked += check_rankings_json(
            page.request.get(f"{live_server}/api/v1/campaigns/{year}/rankings").json()
        )
        for category in categories:
            html = page.request.get(f"{live_server}/campaigns/{campaign_id}/jury/{category}")
            checked += check_jury_page(html.text(), f"jury {year} {category}")
    assert checked > 100
    context.close()


def _shoot(page: Page, axe_source: str, name: str) -> None:
    check_page(page, axe_source, name)
    assert_no_horizontal_scroll(page)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_rank_family_pages_are_accessible_at_phone_and_desktop_widths(
    browser: Browser, live_server: str, axe_source: str, editions: list, viewport: dict[str, int]
) -> None:
    size = "360" if viewport == PHONE else "1366"
    context = browser.new_context(viewport=viewport, locale="fr-FR")
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

    page.goto(f"{live_server}/methodologie")
    assert page.locator("script").count() <= 1  # the layout's htmx only: the text needs none
    assert page.locator("#tie").count() == 1 and page.locator("#marginal").count() == 1
    _shoot(page, axe_source, f"methodology-fr-{size}")
    page.get_by_role("link", name="English").click()
    page.wait_for_load_state()
    assert "How the barometer computes" in page.locator("h1").inner_text()
    _shoot(page, axe_source, f"methodology-en-{size}")
    page.get_by_role("link", name="Français").click()
    page.wait_for_load_state()

    published = [e for e in editions if e[2] == "published"]
    for year, _campaign_id, _state, categories, _code in published[-1:]:
        page.goto(f"{live_server}/results/{year}")
        _shoot(page, axe_source, f"results-{year}-{size}")
        page.goto(f"{live_server}/results/{year}/{categories[0]}")
        assert page.locator(".family-note a[href*='methodologie']").count() == 1
        _shoot(page, axe_source, f"results-category-{year}-{size}")

    sign_in(page, live_server)
    year, campaign_id, _state, categories, code = editions[-1]
    category = max(categories, key=lambda key: key.startswith("communes-0"))
    page.goto(f"{live_server}/campaigns/{campaign_id}/jury/{category}")
    assert page.locator(".family-note a[href*='methodologie#simultaneous']").count() == 1
    _shoot(page, axe_source, f"jury-category-{year}-{size}")
    page.locator("table.ranking tbody th a").first.click()
    page.wait_for_load_state()
    _shoot(page, axe_source, f"jury-candidate-{year}-{size}")
    page.goto(f"{live_server}/campaigns/{campaign_id}/scorecards/{code}")
    assert page.locator(".family-note a[href*='methodologie#marginal']").count() == 1
    _shoot(page, axe_source, f"scorecard-{year}-{size}")
    assert errors == []
    context.close()
