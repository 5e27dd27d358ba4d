"""Instruments in real Chromium: upload a Kobo-style XLSForm → preview → publish → pin, and the
"new version" form, on a phone and a desktop, in French and English, with no serious or critical
axe violation. Screenshots go to tests/artifacts/."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page
from sqlmodel import Session, select

from app.campaigns.models import Campaign
from app.campaigns.schemas import CampaignCreate
from app.campaigns.service import create_campaign
from app.core.db import create_db_engine
from tests.app.test_instruments_browser import kobo_workbook
from tests.browser.conftest import ARTIFACTS
from tests.browser.test_pages import ADMIN, axe_violations

pytestmark = pytest.mark.browser

PHONE = {"width": 360, "height": 780}
DESKTOP = {"width": 1366, "height": 900}
DRAFT_YEAR = 2032
WORDS = {
    "fr": {
        "email": "Adresse électronique",
        "password": "Mot de passe",
        "sign_in": "Se connecter",
        "file": "Classeur XLSForm (.xlsx)",
        "read": "Lire le classeur",
        "publish": "Publier comme nouvelle version",
        "pin": "Épingler à",
        "edit": "Nouvelle version à partir de celle-ci",
        "question": "L'agent a-t-il été courtois ?",
        "published": "publié en version 1",
    },
    "en": {
        "email": "Adresse électronique",
        "password": "Mot de passe",
        "sign_in": "Se connecter",
        "file": "XLSForm workbook (.xlsx)",
        "read": "Read the workbook",
        "publish": "Publish as the next version",
        "pin": "Pin to",
        "edit": "New version from this one",
        "question": "Was the agent courteous?",
        "published": "published as version 1",
    },
}


@pytest.fixture(scope="module")
def draft_campaign(live_database_url: str) -> int:
    """A draft edition to pin to (the demo's editions have all left the draft state)."""
    engine = create_db_engine(live_database_url)
    with Session(engine) as session:
        found = session.exec(select(Campaign).where(Campaign.year == DRAFT_YEAR)).first()
        if found is None:
            found = create_campaign(
                session,
                data=CampaignCreate(
                    year=DRAFT_YEAR,
                    name=f"Baromètre {DRAFT_YEAR}",
                    opens_at=f"{DRAFT_YEAR}-01-05",  # type: ignore[arg-type]
                    closes_at=f"{DRAFT_YEAR}-06-30",  # type: ignore[arg-type]
                ),
                organiser="Baromètre",
                actor=None,
            )
            session.commit()
        campaign_id = found.id or 0
    engine.dispose()
    return campaign_id


def shoot(page: Page, axe_source: str, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"instrument-{name}.png"), full_page=True)
    violations = axe_violations(page, axe_source)
    summary = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3]) for v in violations]
    assert summary == [], f"{name}: {summary}"


@pytest.mark.parametrize("language", ["fr", "en"])
@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_upload_preview_publish_pin_and_edit(
    browser: Browser,
    live_server: str,
    axe_source: str,
    draft_campaign: int,
    tmp_path: Path,
    viewport: dict[str, int],
    language: str,
) -> None:
    size = "phone" if viewport == PHONE else "desktop"
    words = WORDS[language]
    context = browser.new_context(viewport=viewport, locale="fr-FR")
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

    page.goto(live_server + "/login")
    page.get_by_label(words["email"]).fill(ADMIN[0])
    page.get_by_label(words["password"]).fill(ADMIN[1])
    page.get_by_role("button", name=words["sign_in"]).click()
    page.wait_for_load_state()
    page.goto(f"{live_server}/lang/{language}?next=/admin/instruments")
    page.wait_for_selector("h1")
    shoot(page, axe_source, f"list-{size}-{language}")

    # Each run publishes its own instrument: the server's database lives for the whole session.
    key = f"accueil-{size}-{language}"
    workbook = tmp_path / f"{key}.xlsx"
    workbook.write_bytes(kobo_workbook(key=key))
    page.get_by_label(words["file"]).set_input_files(str(workbook))
    page.get_by_role("button", name=words["read"]).click()
    page.wait_for_selector(".preview-questionnaire")
    assert words["question"] in page.inner_text("main")
    assert not page.locator("details.item-details").first.evaluate("d => d.open")
    shoot(page, axe_source, f"upload-preview-{size}-{language}")

    page.get_by_role("button", name=words["publish"]).click()
    page.wait_for_selector(".preview-questionnaire")
    assert words["published"] in page.inner_text("main")
    version_url = page.url
    page.locator("details.item-details").first.locator("summary").click()
    shoot(page, axe_source, f"version-{size}-{language}")

    page.get_by_role("button", name=f"{words['pin']} Baromètre {DRAFT_YEAR}").click()
    page.wait_for_url(f"**/campaigns/{draft_campaign}#instruments")
    assert key in page.inner_text("main")

    page.goto(version_url)
    page.get_by_role("link", name=words["edit"]).click()
    page.wait_for_selector("form[novalidate]")
    page.locator("#field-item-courtois-weight").fill("-1")
    page.get_by_role("button", name=words["publish"]).click()
    page.wait_for_selector("#error-summary")
    shoot(page, axe_source, f"edit-error-{size}-{language}")

    # The refused form answers 400 on purpose; anything else in the console is a fault.
    assert [e for e in errors if "status of 400" not in e] == []
    context.close()


def test_a_refused_workbook_in_the_browser(
    browser: Browser, live_server: str, axe_source: str, tmp_path: Path
) -> None:
    context = browser.new_context(viewport=PHONE, locale="fr-FR")
    page = context.new_page()
    page.goto(live_server + "/login")
    page.get_by_label("Adresse électronique").fill(ADMIN[0])
    page.get_by_label("Mot de passe").fill(ADMIN[1])
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_load_state()
    page.goto(f"{live_server}/lang/fr?next=/admin/instruments")
    workbook = tmp_path / "refused.xlsx"
    workbook.write_bytes(kobo_workbook(kobo_columns=False, broken=True, key="refused"))
    page.get_by_label("Classeur XLSForm (.xlsx)").set_input_files(str(workbook))
    page.get_by_role("button", name="Lire le classeur").click()
    page.wait_for_selector("#error-summary")
    assert "geopoint" in page.inner_text("table.problems")
    shoot(page, axe_source, "upload-refused-phone-fr")
    context.close()
