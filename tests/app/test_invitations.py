"""Single-use invitations: hashed tokens, resume, refused once used, invitations-only mode."""

from __future__ import annotations

import csv
import io
import re
import uuid

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.accounts.models import Role
from app.campaigns.models import Campaign
from app.collection.models import Invitation, Response
from tests.conftest import OPEN_YEAR, VALID_ANSWERS, login, make_user


def _links(client: TestClient, session: Session, campaign: Campaign, count: int = 3) -> list[str]:
    token = login(client, make_user(session, Role.admin))
    response = client.post(
        f"/campaigns/{campaign.id}/invitations",
        data={"csrf_token": token, "code": "69123", "count": str(count)},
    )
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    client.post("/logout", data={"csrf_token": token})
    client.cookies.clear()
    return [row["link"].removeprefix("http://testserver") for row in rows]


def test_invitations_are_single_use_and_stored_hashed(
    open_campaign: Campaign, client: TestClient, session: Session
) -> None:
    links = _links(client, session, open_campaign)
    assert len(links) == 3 and len(set(links)) == 3
    stored = {row.token_hash for row in session.exec(select(Invitation)).all()}
    assert all(link.rsplit("/", 1)[1] not in stored for link in links)

    opened = client.get(links[0])
    assert opened.status_code == 303 and "/r/" in opened.headers["location"]
    action = opened.headers["location"].split("?")[0]
    client.post(action, data={"page": "1", "action": "next", "channel": "site", "overall": "3"})
    # Leaving and coming back through the same link resumes the same answers.
    again = client.get(links[0])
    assert again.headers["location"].split("?")[0] == action
    assert re.search(r'value="site" checked', client.get(again.headers["location"]).text)
    for page in range(2, 6):
        result = client.post(action, data={"page": str(page), "action": "next"})
    assert result.headers["location"].endswith("/merci")
    [row] = session.exec(select(Response)).all()
    assert row.source == "invitation"
    used = client.get(links[0])
    assert used.status_code == 410 and "déjà répondu" in used.text
    assert client.get("/i/not-a-token").status_code == 404


def test_invitations_only_campaign_refuses_the_public_link(
    open_campaign: Campaign, client: TestClient, session: Session
) -> None:
    links = _links(client, session, open_campaign, count=1)
    campaign = session.get(Campaign, open_campaign.id)
    assert campaign is not None
    campaign.config = {**campaign.config, "invitations_only": True}
    session.add(campaign)
    session.commit()
    assert client.get(f"/s/{OPEN_YEAR}/69123").status_code == 403
    body = {
        "id": str(uuid.uuid4()),
        "campaign": OPEN_YEAR,
        "authority": "69123",
        "answers": VALID_ANSWERS,
    }
    refused = client.post("/api/v1/responses", json=body)
    assert refused.status_code == 422 and refused.json()["field"] == "invitation"
    token = links[0].rsplit("/", 1)[1]
    accepted = client.post("/api/v1/responses", json={**body, "invitation": token})
    assert accepted.status_code == 201
    replay = client.post("/api/v1/responses", json={**body, "invitation": token})
    assert replay.status_code == 200
    reused = client.post(
        "/api/v1/responses", json={**body, "id": str(uuid.uuid4()), "invitation": token}
    )
    assert reused.status_code == 410 and reused.json()["field"] == "invitation"
    assert len(session.exec(select(Response)).all()) == 1
    assert client.get(links[0]).status_code == 410


def test_invitation_batch_limits(
    open_campaign: Campaign, client: TestClient, session: Session
) -> None:
    token = login(client, make_user(session, Role.admin))
    too_many = client.post(
        f"/campaigns/{open_campaign.id}/invitations",
        data={"csrf_token": token, "code": "69123", "count": "5001"},
    )
    assert too_many.status_code == 422
    not_candidate = client.post(
        f"/campaigns/{open_campaign.id}/invitations",
        data={"csrf_token": token, "code": "01004", "count": "2"},
    )
    assert not_candidate.status_code == 422
    assert session.exec(select(Invitation)).all() == []
