"""The public questionnaire as a browser without JavaScript uses it (real forms, redirects)."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.campaigns.models import Campaign
from app.collection.models import Response, SurveyDraft
from tests.conftest import OPEN_YEAR

ROOT = Path(__file__).resolve().parents[2]
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


def _action(html: str) -> str:
    match = re.search(r'<form method="post" action="([^"]+)"', html)
    assert match, html[:500]
    return match.group(1)


def _complete(client: TestClient, start: str, *, channel: str = "guichet") -> tuple[str, list[str]]:
    """Answer every page; returns the thank-you location and the page titles seen."""
    page = client.get(start)
    assert page.status_code == 200
    action = _action(page.text)
    titles = []
    answers = {1: {"channel": channel, "overall": "3"}, 2: dict.fromkeys(AGREEMENT, "4")}
    for number in range(1, 10):
        titles.append(re.search(r"<h2>(.*?)</h2>", page.text, re.S).group(1))  # type: ignore[union-attr]
        hidden = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', page.text))
        data = {**hidden, "page": str(number), "action": "next", **answers.get(number, {})}
        if "delay_kept" in page.text:
            data["delay_kept"] = "yes"
        if 'name="reached"' in page.text:
            data["reached"] = "yes"
        result = client.post(action, data=data)
        assert result.status_code == 303, result.text[:2000]
        location = result.headers["location"]
        if location.endswith("/merci"):
            return location, titles
        page = client.get(location)
    raise AssertionError("the questionnaire never ended")


def test_complete_questionnaire_without_javascript(
    open_campaign: Campaign, client: TestClient, session: Session
) -> None:
    thanks, titles = _complete(client, f"/s/{OPEN_YEAR}/69123?canal=guichet&src=qr")
    assert titles[0] == "Votre démarche" and len(titles) == 5
    final = client.get(thanks)
    assert final.status_code == 200 and "Merci, vos réponses ont bien été reçues" in final.text
    [row] = session.exec(select(Response)).all()
    assert row.source == "qr" and row.channel == "guichet" and row.answers["satisfied"] == 4
    assert session.exec(select(SurveyDraft)).all() == []  # answers are never kept twice


def test_skip_logic_asks_reached_only_for_remote_channels(
    open_campaign: Campaign, client: TestClient, session: Session
) -> None:
    _complete(client, f"/s/{OPEN_YEAR}/01001")
    _complete(client, f"/s/{OPEN_YEAR}/01001", channel="telephone")
    rows = {row.channel: row.answers for row in session.exec(select(Response)).all()}
    assert "reached" not in rows["guichet"] and rows["telephone"]["reached"] == "yes"


def test_missing_answers_re_render_with_an_error_summary(
    open_campaign: Campaign, client: TestClient, session: Session
) -> None:
    action = _action(client.get(f"/s/{OPEN_YEAR}/69123").text)
    response = client.post(action, data={"page": "1", "action": "next", "overall": "9"})
    assert response.status_code == 400
    assert 'id="error-summary"' in response.text
    assert 'href="#item-channel-0"' in response.text and 'href="#item-overall-0"' in response.text
    assert "Veuillez répondre à cette question." in response.text
    assert "Choisissez l" in response.text or "en dehors" in response.text
    assert session.exec(select(Response)).all() == []


def test_reload_keeps_answers_and_back_goes_back(
    open_campaign: Campaign, client: TestClient
) -> None:
    action = _action(client.get(f"/s/{OPEN_YEAR}/69123").text)
    client.post(action, data={"page": "1", "action": "next", "channel": "courriel", "overall": "2"})
    back = client.post(action, data={"page": "2", "action": "back", "satisfied": "5"})
    assert back.status_code == 303 and back.headers["location"].endswith("page=1")
    first = client.get(back.headers["location"])
    assert re.search(r'value="courriel" checked', first.text)
    second = client.get(back.headers["location"].replace("page=1", "page=2"))
    assert re.search(r'name="satisfied" value="5" checked', second.text)


def test_honeypot_and_replayed_final_post_store_nothing_more(
    open_campaign: Campaign, client: TestClient, session: Session
) -> None:
    action = _action(client.get(f"/s/{OPEN_YEAR}/69123").text)
    bot = client.post(action, data={"page": "1", "website": "http://spam", "channel": "site"})
    assert bot.status_code == 303 and bot.headers["location"].endswith("/merci")
    assert session.exec(select(SurveyDraft)).all() == []
    thanks, _titles = _complete(client, f"/s/{OPEN_YEAR}/69123")
    rows = session.exec(select(Response)).all()
    assert len(rows) == 1
    replay_action = f"/s/{OPEN_YEAR}/69123/r/{rows[0].id}"
    replay = client.post(replay_action, data={"page": "5", "action": "next"})
    assert replay.status_code == 303 and replay.headers["location"] == thanks
    assert len(session.exec(select(Response)).all()) == 1


def test_unknown_authority_and_closed_campaign(
    open_campaign: Campaign, client: TestClient, session: Session
) -> None:
    assert client.get(f"/s/{OPEN_YEAR}/99999").status_code == 404
    assert client.get("/s/2099/69123").status_code == 404
    from app.campaigns.service import transition

    transition(
        session, campaign=session.get(Campaign, open_campaign.id), to_state="closed", actor=None
    )  # type: ignore[arg-type]
    session.commit()
    closed = client.get(f"/s/{OPEN_YEAR}/69123")
    assert closed.status_code == 409 and "ne recueille pas de réponses" in closed.text


def test_english_questionnaire(open_campaign: Campaign, client: TestClient) -> None:
    page = client.get(f"/s/{OPEN_YEAR}/69123?lang=en")
    assert 'lang="en"' in page.text and "Your request" in page.text and "Step 1 of" in page.text


def _campaign_with_in_page_skip_logic(session: Session, settings) -> None:
    """A 2031 campaign whose questionnaire asks "reached" on the same page as the channel."""
    import json
    from datetime import date

    import surveys
    from app.campaigns.schemas import CampaignCreate
    from app.campaigns.service import (
        create_campaign,
        pin_instrument,
        register_candidate,
        transition,
    )
    from app.instruments.service import publish

    content = json.loads(surveys.canonical_json(surveys.default_instruments()["citizen"]))
    sections = {section["key"]: section for section in content["sections"]}
    reached = next(i for i in sections["access"]["items"] if i["key"] == "reached")
    sections["access"]["items"].remove(reached)
    sections["contact"]["items"].insert(1, reached)
    content["title"]["fr"] = "Questionnaire avec renvoi sur la même page"
    version = publish(session, instrument=surveys.instrument_from_dict(content), actor=None).version
    campaign = create_campaign(
        session,
        data=CampaignCreate(
            year=2031, name="Live", opens_at=date(2031, 1, 1), closes_at=date(2031, 6, 1)
        ),
        organiser=settings.organiser,
        actor=None,
    )
    register_candidate(session, campaign=campaign, code="69123", actor=None)
    for instrument in surveys.default_instruments().values():
        if instrument.kind == "grid":
            publish(session, instrument=instrument, actor=None)
    from app.instruments.repository import list_versions

    for published in list_versions(session):
        if published.kind == "grid" or published.id == version.id:
            pin_instrument(session, campaign=campaign, version_id=published.id or 0, actor=None)
    transition(session, campaign=campaign, to_state="open", actor=None)
    session.commit()


def test_live_skip_logic_refreshes_only_when_questions_change(
    registry: Session, settings, client: TestClient
) -> None:
    _campaign_with_in_page_skip_logic(registry, settings)
    page = client.get("/s/2031/69123")
    live = re.search(r'hx-post="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    assert 'name="reached"' not in page.text and live.endswith("/live")
    shown = re.search(r'name="shown" value="([^"]*)"', page.text).group(1)  # type: ignore[union-attr]
    headers = {"HX-Request": "true"}
    same = client.post(
        live, data={"page": "1", "shown": shown, "channel": "guichet"}, headers=headers
    )
    assert same.status_code == 204
    fragment = client.post(
        live, data={"page": "1", "shown": shown, "channel": "telephone"}, headers=headers
    )
    assert fragment.status_code == 200
    assert (
        fragment.text.lstrip().startswith('<div id="page-items">') and "<html" not in fragment.text
    )
    assert 'name="reached"' in fragment.text and 'value="telephone" checked' in fragment.text


def test_first_page_is_light(open_campaign: Campaign, client: TestClient) -> None:
    page = client.get(f"/s/{OPEN_YEAR}/69123")
    assets = re.findall(
        r'(?:href|src)="(?:https?://[^/"]+)?(/static/[^"]+\.(?:css|js))"', page.text
    )
    assert any(a.endswith(".css") for a in assets) and any(a.endswith(".js") for a in assets)
    total = len(gzip.compress(page.content))
    for asset in assets:
        total += len(gzip.compress(client.get(asset).content))
    assert total <= 60_000, f"{total} bytes gzipped"
