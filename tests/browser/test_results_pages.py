"""The scoring runs page in real Chromium (phone and desktop, axe), on the demo."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser
from sqlmodel import Session, select

from app.campaigns.models import Campaign
from app.core.db import create_db_engine
from app.results import repository
from tests.browser.test_pages import check_page, sign_in

pytestmark = pytest.mark.browser

PHONE = {"width": 360, "height": 780}
DESKTOP = {"width": 1280, "height": 900}


@pytest.fixture(scope="module")
def demo_runs(live_database_url: str) -> dict[int, tuple[int, str | None]]:
    """Campaign id and current run hash of each demo edition."""
    engine = create_db_engine(live_database_url)
    out = {}
    with Session(engine) as session:
        for campaign in session.exec(select(Campaign)).all():
            run = repository.current_run(session, campaign_id=campaign.id or 0)
            out[campaign.year] = (campaign.id or 0, run.inputs_sha256 if run else None)
    engine.dispose()
    return out


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_runs_pages(
    browser: Browser,
    live_server: str,
    axe_source: str,
    demo_runs: dict[int, tuple[int, str | None]],
    viewport: dict[str, int],
) -> None:
    size = "phone" if viewport == PHONE else "desktop"
    context = browser.new_context(viewport=viewport, locale="fr-FR")
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    sign_in(page, live_server)

    past_id, past_hash = demo_runs[2024]
    assert past_hash is not None  # the demo arrives scored
    page.goto(f"{live_server}/campaigns/{past_id}")
    page.get_by_role("link", name=re.compile("Scoring runs|Calculs", re.I)).click()
    page.wait_for_url(f"{live_server}/campaigns/{past_id}/runs")
    table = page.locator("table")
    assert past_hash[:16] in table.inner_text()
    # Published: the jury's decisions rest on this run, so no button to score it again.
    assert page.get_by_role("button", name=re.compile("supersedes|remplace", re.I)).count() == 0
    assert "décisions signées du jury" in page.locator("main").inner_text()
    check_page(page, axe_source, f"results-runs-2024-{size}")

    current_id, current_hash = demo_runs[2026]
    assert current_hash is None  # still collecting: previews only, from a button
    page.goto(f"{live_server}/campaigns/{current_id}/runs")
    main = page.locator("main").inner_text()
    assert "--preview" not in main and "barometre" not in main  # no page mentions a command
    assert page.get_by_role("button", name=re.compile("aperçu provisoire", re.I)).count() == 1
    assert page.get_by_role("button", name=re.compile("définitif", re.I)).count() == 0
    check_page(page, axe_source, f"results-runs-2026-{size}")

    # The rankings API answers the signed-in organiser with the frozen run.
    response = page.request.get(f"{live_server}/api/v1/campaigns/2024/rankings")
    assert response.status == 200
    body = response.json()
    assert body["run"]["inputs_sha256"] == past_hash
    assert len(body["categories"]) == 8
    assert errors == []
    context.close()
