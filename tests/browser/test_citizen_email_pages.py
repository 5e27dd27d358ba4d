"""Invitations by e-mail in real Chromium: the organiser's upload page (form, refused file,
counts) and the citizen's opt-out pages, on phone and desktop, in French and English, with no
serious or critical axe violation and no sideways scrolling."""

from __future__ import annotations

import uuid

import pytest
from playwright.sync_api import Browser, FilePayload, Page, ViewportSize
from sqlmodel import Session, col, select

from app.campaigns.models import Campaign, Candidate, CandidateStatus
from app.collection.email_invitations import optout_token
from app.collection.models import InvitationRecipient
from app.core.db import create_db_engine
from tests.browser.conftest import ARTIFACTS, sign_in
from tests.browser.test_jury_pages import assert_no_horizontal_scroll
from tests.browser.test_pages import ADMIN, axe_violations

pytestmark = pytest.mark.browser

PHONE = ViewportSize(width=360, height=780)
DESKTOP = ViewportSize(width=1366, height=900)
TEXTS = {
    "fr": {
        "title": "Invitations par e-mail",
        "file": "Liste d’adresses (CSV)",
        "days": "Relance après (jours)",
        "send": "Envoyer les invitations",
        "refused": "Ligne 3",
        "sent": "2 citoyens invités par e-mail.",
        "stop": "Ne plus rien recevoir",
        "done": "C’est fait",
        "unknown": "Nous ne reconnaissons pas ce lien",
    },
    "en": {
        "title": "Invitations by e-mail",
        "file": "List of addresses (CSV)",
        "days": "Reminder after (days)",
        "send": "Send the invitations",
        "refused": "Line 3",
        "sent": "2 citizens invited by e-mail.",
        "stop": "Send me nothing more",
        "done": "Done:",
        "unknown": "We do not recognise this link",
    },
}


@pytest.fixture(scope="module")
def open_campaign(live_database_url: str) -> tuple[int, str]:
    """The demo's campaign under way, and one of its registered candidates."""
    engine = create_db_engine(live_database_url)
    with Session(engine) as session:
        campaign = session.exec(select(Campaign).where(Campaign.state == "open")).first()
        assert campaign is not None, "the demo has an edition under way"
        candidate = session.exec(
            select(Candidate).where(
                col(Candidate.campaign_id) == campaign.id,
                col(Candidate.status) == CandidateStatus.registered,
            )
        ).first()
        assert candidate is not None
        found = (campaign.id or 0, candidate.authority_code)
    engine.dispose()
    return found


def _optout_path(database_url: str, address: str) -> str:
    """The opt-out link the e-mail to ``address`` carries (rebuilt from the stored token)."""
    engine = create_db_engine(database_url)
    with Session(engine) as session:
        recipient = session.exec(
            select(InvitationRecipient).where(col(InvitationRecipient.email) == address)
        ).one()
        assert recipient.token is not None
        path = f"/optout/{optout_token(recipient.token)}"
    engine.dispose()
    return path


def shoot(page: Page, axe_source: str, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"citizen-{name}.png"), full_page=True)
    violations = axe_violations(page, axe_source)
    summary = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3]) for v in violations]
    assert summary == [], f"{name}: {summary}"
    assert_no_horizontal_scroll(page)


@pytest.mark.parametrize("language", ["fr", "en"])
@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_upload_and_optout_pages(
    browser: Browser,
    live_server: str,
    live_database_url: str,
    axe_source: str,
    open_campaign: tuple[int, str],
    viewport: ViewportSize,
    language: str,
) -> None:
    campaign_id, code = open_campaign
    name = f"{'phone' if viewport == PHONE else 'desktop'}-{language}"
    text = TEXTS[language]
    context = browser.new_context(viewport=viewport, locale="fr-FR")
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    sign_in(page, live_server, language, ADMIN)

    page.goto(f"{live_server}/campaigns/{campaign_id}/invitations/email")
    assert page.locator("h1").inner_text() == text["title"]
    assert page.get_by_label(text["days"]).input_value() == "7"
    shoot(page, axe_source, f"upload-{name}")

    # A wrong line refuses the whole file, line by line.
    suffix = uuid.uuid4().hex[:8]
    first, second = f"a-{suffix}@example.org", f"b-{suffix}@example.org"
    page.get_by_label(text["file"]).set_input_files(
        files=[
            FilePayload(
                name="adresses.csv",
                mimeType="text/csv",
                buffer=f"email;authority_code\n{first};{code}\nnot-an-address;{code}\n".encode(),
            )
        ]
    )
    page.get_by_role("button", name=text["send"]).click()
    page.wait_for_selector("#error-summary")
    assert text["refused"] in page.locator("#error-summary").inner_text()
    shoot(page, axe_source, f"upload-error-{name}")
    errors.clear()  # the refused form is a 422 page on purpose: Chromium logs its status

    page.get_by_label(text["file"]).set_input_files(
        files=[
            FilePayload(
                name="adresses.csv",
                mimeType="text/csv",
                buffer=(
                    f"email,authority_code,language\n{first},{code},fr\n{second},{code},en\n"
                ).encode(),
            )
        ]
    )
    page.get_by_role("button", name=text["send"]).click()
    page.wait_for_load_state()
    assert text["sent"] in page.locator("main").inner_text()
    shoot(page, axe_source, f"upload-done-{name}")
    assert errors == []

    # The citizen's side: the opt-out page, the button, the confirmation; an unknown link.
    citizen = browser.new_context(viewport=viewport, locale="fr-FR").new_page()
    path = _optout_path(live_database_url, first)
    citizen.goto(f"{live_server}{path}?lang={language}")
    shoot(citizen, axe_source, f"optout-{name}")
    citizen.get_by_role("button", name=text["stop"]).click()
    citizen.wait_for_load_state()
    assert text["done"] in citizen.locator("main").inner_text()
    shoot(citizen, axe_source, f"optout-done-{name}")
    citizen.goto(f"{live_server}/optout/not-a-real-token?lang={language}")
    assert text["unknown"] in citizen.locator("main").inner_text()
    shoot(citizen, axe_source, f"optout-unknown-{name}")
    context.close()
