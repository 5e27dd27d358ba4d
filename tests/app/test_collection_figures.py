"""Live collection figures: aggregates for the organiser and for each authority, nothing more."""

from __future__ import annotations

import re
import uuid

from fastapi.testclient import TestClient
from sqlmodel import Session

from app.accounts.models import Role
from app.campaigns.models import Campaign
from tests.conftest import OPEN_YEAR, VALID_ANSWERS, login, make_user


def _submit(client: TestClient, authority: str, channel: str) -> None:
    answers = {**VALID_ANSWERS, "channel": channel, "comment": "Secret détail personnel"}
    response = client.post(
        "/api/v1/responses",
        json={
            "id": str(uuid.uuid4()),
            "campaign": OPEN_YEAR,
            "authority": authority,
            "answers": answers,
        },
    )
    assert response.status_code == 201


def _figure(html: str, label: str) -> str:
    match = re.search(rf"<dt>{label}</dt><dd>([^<]+)</dd>", html)
    assert match, html
    return match.group(1).replace("\u202f", "").replace("\xa0", "").strip()


def test_organiser_and_authority_see_counts_only(
    open_campaign: Campaign, client: TestClient, session: Session
) -> None:
    for authority, channel in [("69123", "guichet"), ("69123", "telephone"), ("01001", "site")]:
        _submit(client, authority, channel)
    # One questionnaire abandoned after its first page.
    page = client.get(f"/s/{OPEN_YEAR}/69123")
    action = re.search(r'<form method="post" action="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    client.post(action, data={"page": "1", "channel": "courrier", "overall": "1"})

    login(client, make_user(session, Role.admin))
    national = client.get(f"/campaigns/{open_campaign.id}/collection")
    assert national.status_code == 200
    assert _figure(national.text, "Réponses reçues") == "3"
    assert _figure(national.text, "Commencés, non terminés") == "1"
    assert "Secret détail" not in national.text
    one = client.get(
        f"/campaigns/{open_campaign.id}/collection?code=69123", headers={"HX-Request": "true"}
    )
    assert "<html" not in one.text and _figure(one.text, "Réponses reçues") == "2"

    client.cookies.clear()
    login(client, make_user(session, Role.authority, authority_code="01001"))
    own = client.get(f"/campaigns/{open_campaign.id}/collection")
    assert own.status_code == 200 and _figure(own.text, "Réponses reçues") == "1"
    other = client.get(f"/campaigns/{open_campaign.id}/collection?code=69123")
    assert other.status_code == 403
    home = client.get("/")
    assert f"/campaigns/{open_campaign.id}/collection" in home.text
