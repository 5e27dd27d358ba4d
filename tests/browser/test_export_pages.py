"""The exports page in real Chromium: the organiser and an authority ask for an export, the
live server's worker builds it, the page (polling with htmx) links its file; phone and
desktop, French and English, no serious or critical axe violation, no console error."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ViewportSize
from sqlmodel import Session, select

from app.campaigns.models import Campaign
from app.core.db import create_db_engine
from tests.browser.conftest import sign_in
from tests.browser.test_audit_pages import check
from tests.browser.test_pages import ADMIN

pytestmark = pytest.mark.browser

PHONE: ViewportSize = {"width": 360, "height": 780}
DESKTOP: ViewportSize = {"width": 1366, "height": 900}
AUTHORITY = ("authority@demo.barometre.fr", "demo-authority-2026")
TEXTS = {
    "fr": {
        "title": "Exports de données",
        "prepare": "Préparer l’export",
        "download": "Télécharger",
        "ready": "Prêt",
    },
    "en": {
        "title": "Data exports",
        "prepare": "Prepare the export",
        "download": "Download",
        "ready": "Ready",
    },
}


def _campaign_id(url: str, year: int) -> int:
    engine = create_db_engine(url)
    with Session(engine) as session:
        campaign = session.exec(select(Campaign).where(Campaign.year == year)).one()
    engine.dispose()
    assert campaign.id is not None
    return campaign.id


@pytest.mark.parametrize(
    ("who", "viewport", "language"),
    [("organiser", PHONE, "fr"), ("organiser", DESKTOP, "en"), ("authority", PHONE, "fr")],
    ids=["organiser-phone-fr", "organiser-desktop-en", "authority-phone-fr"],
)
def test_an_export_is_asked_for_built_and_downloaded(
    browser: Browser,
    live_server: str,
    live_database_url: str,
    axe_source: str,
    tmp_path: Path,
    who: str,
    viewport: ViewportSize,
    language: str,
) -> None:
    size = "phone" if viewport == PHONE else "desktop"
    text = TEXTS[language]
    email, password = ADMIN if who == "organiser" else AUTHORITY
    campaign_id = _campaign_id(live_database_url, 2025)
    context = browser.new_context(viewport=viewport, locale="fr-FR", accept_downloads=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    sign_in(page, live_server, language, (email, password))

    page.goto(f"{live_server}/campaigns/{campaign_id}/exports")
    assert page.get_by_role("heading", level=1).inner_text() == text["title"]
    check(page, axe_source, f"exports-{who}-{size}-{language}-form")
    page.get_by_role("button", name=text["prepare"]).click()
    page.wait_for_load_state()
    # The worker of the live server builds it; htmx polls the list until the link appears.
    # The newest export is the first row (earlier tests' exports are listed below it).
    link = page.locator("#exports-list li").first.locator("a[download]")
    link.wait_for(timeout=120_000)
    assert text["ready"] in page.locator("#exports-list li").first.inner_text()
    check(page, axe_source, f"exports-{who}-{size}-{language}-ready")
    with page.expect_download() as download_info:
        link.click()
    saved = tmp_path / "export.zip"
    download_info.value.save_as(saved)
    with zipfile.ZipFile(saved) as archive:
        names = archive.namelist()
    assert "README.txt" in names and "responses.csv" in names and "labels.csv" in names
    assert errors == []
    context.close()
