"""The jury category page and a scorecard in real Chromium, at phone and tablet sizes (axe)."""

from __future__ import annotations

import random

import pytest
from playwright.sync_api import Browser, Page
from sqlmodel import Session, select

from app.campaigns.models import Campaign, Candidate
from app.campaigns.service import transition
from app.core.db import create_db_engine
from app.results import repository as results_repository
from tests.app.test_jury import Spec, make_run
from tests.browser.test_pages import check_page

pytestmark = pytest.mark.browser

JURY = ("jury@demo.barometre.fr", "demo-jury-2026")
PHONE = {"width": 360, "height": 780}
TABLET = {"width": 820, "height": 1180}
CATEGORY = "communes-0-3500"


@pytest.fixture(scope="module")
def scored_2025(live_database_url: str) -> int:
    """The demo's 2025 campaign with a frozen run: the real one when the demo scored it, else
    a hand-made run over its candidates (this file does not depend on the scoring engine)."""
    engine = create_db_engine(live_database_url)
    with Session(engine) as session:
        campaign = session.exec(select(Campaign).where(Campaign.year == 2025)).one()
        if results_repository.current_run(session, campaign_id=campaign.id or 0) is None:
            rng = random.Random(7)
            candidates = session.exec(
                select(Candidate).where(Candidate.campaign_id == campaign.id)
            ).all()
            specs = []
            for candidate in candidates:
                estimate = rng.uniform(48, 82)
                specs.append(
                    Spec(
                        candidate.authority_code,
                        candidate.category,
                        round(estimate, 1),
                        round(rng.uniform(1.5, 4.5), 2),
                        top1=estimate > 76,
                        eligible=rng.random() > 0.1,
                        items=(("citizen:courtesy", rng.uniform(40, 95)),),
                    )
                )
            make_run(session, campaign, tuple(specs))
            if campaign.state == "closed":
                transition(session, campaign=campaign, to_state="scored", actor=None)
            session.commit()
        campaign_id = campaign.id or 0
    engine.dispose()
    return campaign_id


OVERFLOWING = """() => [...document.querySelectorAll('body *')]
  .filter(e => !e.closest('.table-scroll, .plot-scroll'))
  .filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
  .slice(0, 8)
  .map(e => `${e.tagName}.${e.className} ${Math.round(e.getBoundingClientRect().right)}`)"""


def assert_no_horizontal_scroll(page: Page) -> None:
    """Wide content scrolls inside its own box (tables, plots), never the whole page."""
    width = page.evaluate("document.documentElement.scrollWidth")
    viewport = page.viewport_size or {"width": 0}
    assert width <= viewport["width"], page.evaluate(OVERFLOWING)


@pytest.mark.parametrize("viewport", [PHONE, TABLET], ids=["phone", "tablet"])
def test_jury_category_and_scorecard_pages(
    browser: Browser, live_server: str, axe_source: str, scored_2025: int, viewport: dict[str, int]
) -> None:
    size = "phone" if viewport == PHONE else "tablet"
    context = browser.new_context(viewport=viewport, locale="fr-FR")
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    # The public results of the demo's published edition (probed first: a 404 page would log a
    # console error).
    published = [
        year
        for year in (2024, 2025)
        if page.request.get(f"{live_server}/results/{year}").status == 200
    ]
    if published:
        page.goto(f"{live_server}/results/{published[-1]}")
        assert page.locator("svg[role=img]").count() == 1
        check_page(page, axe_source, f"results-public-{size}")
        assert_no_horizontal_scroll(page)
    page.goto(live_server + "/login")
    page.get_by_label("Adresse électronique").fill(JURY[0])
    page.get_by_label("Mot de passe").fill(JURY[1])
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_load_state()

    page.goto(f"{live_server}/campaigns/{scored_2025}/jury")
    assert page.locator("h1").count() == 1
    check_page(page, axe_source, f"jury-home-{size}")

    page.goto(f"{live_server}/campaigns/{scored_2025}/jury/{CATEGORY}")
    assert page.locator("svg[role=img]").count() == 2  # forest and funnel
    assert page.locator("table.ranking tbody tr").count() > 5
    check_page(page, axe_source, f"jury-category-{size}")
    assert_no_horizontal_scroll(page)
    # Server-side sort works by following the header link.
    page.goto(f"{live_server}/campaigns/{scored_2025}/jury/{CATEGORY}?sort=name&dir=asc")
    names = [name.strip() for name in page.locator("table.ranking tbody th a").all_inner_texts()]
    assert len(names) > 5 and names == sorted(names, key=str.lower)

    # A candidate's file: follow the first link of the table (works without JavaScript).
    page.locator("table.ranking tbody th a").first.click()
    page.wait_for_load_state()
    assert "/candidates/" in page.url and page.locator("h1").count() == 1
    check_page(page, axe_source, f"jury-candidate-{size}")
    assert_no_horizontal_scroll(page)
    code = page.url.rsplit("/candidates/", 1)[1].split("?")[0]

    # Signing asks first (what the decision will say, that it cannot be undone), in both
    # languages; nothing is signed by looking at it.
    sign = f"{live_server}/campaigns/{scored_2025}/jury/{CATEGORY}/sign"
    for language in ("fr", "en"):
        page.goto(f"{live_server}/lang/{language}?next=/")
        page.goto(f"{sign}?laureate={code}&justification=Meilleur+accueil+mesur%C3%A9")
        assert page.locator("h1").count() == 1 and page.locator("input[name=confirmed]").count()
        check_page(page, axe_source, f"jury-sign-confirm-{language}-{size}")
        assert_no_horizontal_scroll(page)
    page.goto(f"{live_server}/lang/fr?next=/")

    page.goto(f"{live_server}/campaigns/{scored_2025}/scorecards/69123")
    assert page.locator("svg[role=img]").count() >= 1
    check_page(page, axe_source, f"scorecard-{size}")
    assert_no_horizontal_scroll(page)
    assert errors == []
    context.close()
