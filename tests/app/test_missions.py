"""Missions: scenarios, generation, assignment files, reassignment and the shopper's pages."""

from __future__ import annotations

import csv
import io
from collections import Counter

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.accounts.models import Role, User
from app.campaigns.models import Campaign
from app.campaigns.service import transition
from app.missions.models import Mission, MissionState, Scenario, ShopperConflict
from tests.conftest import OPEN_CANDIDATES, login, make_user

TESTS_PER_CANDIDATE = 2 + 3 + 2 + 1 + 1 + 1
# The three candidates are each in a category smaller than the replicate minimum (10): each
# gets the second test of every single-test channel (letter, website, social media).
MISSIONS_PER_CANDIDATE = TESTS_PER_CANDIDATE + 3


def _scenario(client: TestClient, token: str, campaign: Campaign, key: str, **extra: str):
    data = {
        "csrf_token": token,
        "channel": "guichet",
        "key": key,
        "title": f"Acte de naissance {key}",
        "request_text": "Comment obtenir un acte de naissance ?",
        "answer_sheet": "En ligne sur service-public.fr ou au guichet, gratuit.",
        **extra,
    }
    return client.post(f"/campaigns/{campaign.id}/scenarios", data=data)


def _missions(session: Session, campaign: Campaign) -> list[Mission]:
    session.expire_all()
    return list(session.exec(select(Mission).where(Mission.campaign_id == campaign.id)).all())


@pytest.fixture
def shoppers(open_campaign: Campaign, registry: Session) -> list[User]:
    people = [make_user(registry, Role.shopper) for _ in range(3)]
    # The first shopper lives in Lyon: they must never test it.
    registry.add(ShopperConflict(user_id=people[0].id or 0, authority_code="69123"))
    registry.commit()
    return people


@pytest.fixture
def admin_client(client: TestClient, registry: Session) -> tuple[TestClient, str]:
    client.cookies.set("lang", "en")  # assertions read the English messages
    return client, login(client, make_user(registry, Role.admin))


def _generate(client: TestClient, token: str, campaign: Campaign, **extra: str):
    return client.post(
        f"/campaigns/{campaign.id}/missions/generate", data={"csrf_token": token, **extra}
    )


def test_organiser_adds_scenarios_and_generates_balanced_conflict_free_missions(
    open_campaign: Campaign,
    registry: Session,
    shoppers: list[User],
    admin_client: tuple[TestClient, str],
) -> None:
    client, token = admin_client
    assert _scenario(client, token, open_campaign, "naissance").status_code == 303
    assert _scenario(client, token, open_campaign, "mariage").status_code == 303

    response = _generate(client, token, open_campaign)
    assert response.status_code == 303, response.text
    missions = _missions(registry, open_campaign)
    assert len(missions) == len(OPEN_CANDIDATES) * MISSIONS_PER_CANDIDATE
    per_candidate = Counter(m.authority_code for m in missions)
    assert set(per_candidate.values()) == {MISSIONS_PER_CANDIDATE}
    loads = Counter(m.shopper_id for m in missions)
    assert sorted(loads) == sorted(s.id for s in shoppers)
    assert max(loads.values()) - min(loads.values()) <= 1
    assert not [
        m for m in missions if m.shopper_id == shoppers[0].id and m.authority_code == "69123"
    ]
    assert {m.state for m in missions} == {MissionState.assigned}
    counters = [m for m in missions if m.channel == "guichet"]
    assert {m.scenario_id for m in counters} == {
        s.id for s in registry.exec(select(Scenario)).all()
    }
    assert all(m.scenario_id is None for m in missions if m.channel == "site")

    page = client.get(f"/campaigns/{open_campaign.id}/missions")
    assert page.status_code == 200
    assert "<caption>Missions per channel</caption>" in page.text
    assert "naissance" in page.text
    fragment = client.get(
        f"/campaigns/{open_campaign.id}/missions?channel=guichet&state=assigned",
        headers={"HX-Request": "true"},
    )
    assert fragment.status_code == 200
    assert "Lyon" in fragment.text

    # A second generation is refused unless it is a regeneration.
    assert _generate(client, token, open_campaign).status_code == 409
    reported = missions[0]
    reported.state = MissionState.submitted
    registry.add(reported)
    registry.commit()
    assert _generate(client, token, open_campaign, regenerate="true").status_code == 303
    again = _missions(registry, open_campaign)
    assert len(again) == len(missions)
    assert reported.id in {m.id for m in again}
    slot = Counter(m.authority_code for m in again)
    assert set(slot.values()) == {MISSIONS_PER_CANDIDATE}


def test_replicates_follow_the_campaign_setting(
    open_campaign: Campaign, registry: Session, admin_client: tuple[TestClient, str]
) -> None:
    make_user(registry, Role.shopper)
    open_campaign.config = {**open_campaign.config, "replicates": {"share": 0, "minimum": 0}}
    registry.add(open_campaign)
    registry.commit()
    client, token = admin_client
    assert _generate(client, token, open_campaign).status_code == 303
    missions = _missions(registry, open_campaign)
    assert set(Counter(m.authority_code for m in missions).values()) == {TESTS_PER_CANDIDATE}

    open_campaign.config = {**open_campaign.config, "replicates": {"share": 0, "minimum": 2}}
    registry.add(open_campaign)
    registry.commit()
    assert _generate(client, token, open_campaign, regenerate="true").status_code == 303
    again = _missions(registry, open_campaign)
    seconds = [m for m in again if m.sequence == 2 and m.channel in ("courrier", "site")]
    # Every candidate is alone in its category: the minimum of 2 takes the whole category.
    assert len(seconds) == 2 * len(OPEN_CANDIDATES)
    assert all(m.window_start > open_campaign.opens_at for m in seconds)


def test_generation_is_refused_once_the_campaign_is_closed(
    open_campaign: Campaign, registry: Session, admin_client: tuple[TestClient, str]
) -> None:
    transition(registry, campaign=open_campaign, to_state="closed", actor=None)
    registry.commit()
    client, token = admin_client
    response = _generate(client, token, open_campaign)
    assert response.status_code == 409
    assert "draft or open" in response.text
    assert _missions(registry, open_campaign) == []


def test_generation_that_conflicts_make_impossible_names_the_authority(
    open_campaign: Campaign, registry: Session, admin_client: tuple[TestClient, str]
) -> None:
    only = make_user(registry, Role.shopper)
    registry.add(ShopperConflict(user_id=only.id or 0, authority_code="01001"))
    registry.commit()
    client, token = admin_client
    response = _generate(client, token, open_campaign)
    assert response.status_code == 409
    assert "01001" in response.text
    assert _missions(registry, open_campaign) == []


def test_invalid_scenario_is_rerendered_with_an_error_summary(
    open_campaign: Campaign, admin_client: tuple[TestClient, str]
) -> None:
    client, token = admin_client
    response = _scenario(client, token, open_campaign, "Pas Une Clé", answer_sheet="")
    assert response.status_code == 400
    assert 'class="error-summary"' in response.text
    assert 'href="#field-key"' in response.text
    assert 'href="#field-answer_sheet"' in response.text
    assert _scenario(client, token, open_campaign, "ok").status_code == 303
    duplicate = _scenario(client, token, open_campaign, "ok")
    assert duplicate.status_code == 400
    assert "already has a scenario ok" in duplicate.text


def _export(client: TestClient, campaign: Campaign) -> list[dict[str, str]]:
    response = client.get(f"/campaigns/{campaign.id}/missions/export.csv")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.text)))


def _import(client: TestClient, token: str, campaign: Campaign, text: str):
    return client.post(
        f"/campaigns/{campaign.id}/missions/import",
        data={"csrf_token": token},
        files={"file": ("assignments.csv", text.encode(), "text/csv")},
    )


def test_assignments_export_and_all_or_nothing_import(
    open_campaign: Campaign,
    registry: Session,
    shoppers: list[User],
    admin_client: tuple[TestClient, str],
) -> None:
    client, token = admin_client
    assert _generate(client, token, open_campaign).status_code == 303
    rows = _export(client, open_campaign)
    assert len(rows) == len(OPEN_CANDIDATES) * MISSIONS_PER_CANDIDATE
    first, second = shoppers[0], shoppers[1]
    lyon = next(r for r in rows if r["authority_code"] == "69123")
    other = next(
        r for r in rows if r["authority_code"] != "69123" and r["shopper_email"] != first.email
    )
    assert lyon["shopper_email"] in {second.email, shoppers[2].email}

    # One good line and three bad ones: nothing changes, every problem has its line number.
    bad = (
        "mission_id,shopper_email\n"
        f"{other['mission_id']},{first.email}\n"
        f"{lyon['mission_id']},{first.email}\n"
        "999999,\n"
        f"{other['mission_id']},nobody@example.org\n"
    )
    response = _import(client, token, open_campaign, bad)
    assert response.status_code == 422
    assert "Line 3:" in response.text and "declared a conflict with 69123" in response.text
    assert "Line 4: no mission 999999" in response.text
    assert "Line 5:" in response.text
    assert _export(client, open_campaign) == rows

    good = f"mission_id,shopper_email\n{other['mission_id']},{first.email}\n{lyon['mission_id']},\n"
    response = _import(client, token, open_campaign, good)
    assert response.status_code == 303, response.text
    registry.expire_all()
    moved = registry.get(Mission, int(other["mission_id"]))
    pooled = registry.get(Mission, int(lyon["mission_id"]))
    assert moved is not None and moved.shopper_id == first.id
    assert pooled is not None and pooled.shopper_id is None and pooled.state == "planned"


def test_reassign_one_mission_refuses_a_conflicted_shopper(
    open_campaign: Campaign,
    registry: Session,
    shoppers: list[User],
    admin_client: tuple[TestClient, str],
) -> None:
    client, token = admin_client
    assert _generate(client, token, open_campaign).status_code == 303
    lyon = next(
        m
        for m in _missions(registry, open_campaign)
        if m.authority_code == "69123" and m.shopper_id != shoppers[0].id
    )
    url = f"/campaigns/{open_campaign.id}/missions/reassign"
    refused = client.post(
        url, data={"csrf_token": token, "mission_id": lyon.id, "shopper_id": shoppers[0].id}
    )
    assert refused.status_code == 409
    other = next(s for s in shoppers[1:] if s.id != lyon.shopper_id)
    done = client.post(
        url, data={"csrf_token": token, "mission_id": lyon.id, "shopper_id": other.id}
    )
    assert done.status_code == 303
    registry.expire_all()
    assert registry.get(Mission, lyon.id).shopper_id == other.id  # type: ignore[union-attr]
    missing = client.post(url, data={"csrf_token": token, "mission_id": 999999, "shopper_id": ""})
    assert missing.status_code == 404


def test_shoppers_see_only_their_own_missions_and_conflicts(
    open_campaign: Campaign,
    registry: Session,
    shoppers: list[User],
    admin_client: tuple[TestClient, str],
) -> None:
    client, token = admin_client
    assert _scenario(client, token, open_campaign, "naissance").status_code == 303
    assert _generate(client, token, open_campaign).status_code == 303
    missions = _missions(registry, open_campaign)
    mine = [m for m in missions if m.shopper_id == shoppers[1].id]
    theirs = next(m for m in missions if m.shopper_id == shoppers[2].id)
    counter = next(m for m in mine if m.channel == "guichet")

    client.cookies.clear()
    client.cookies.set("lang", "en")
    shopper_token = login(client, shoppers[1])
    listing = client.get("/me/missions")
    assert listing.status_code == 200
    assert listing.text.count("/me/missions/") == len(mine)
    assert client.get("/me/missions", headers={"HX-Request": "true"}).status_code == 200
    page = client.get(f"/me/missions/{counter.id}")
    assert page.status_code == 200
    assert "Comment obtenir un acte de naissance ?" in page.text
    assert "service-public.fr" in page.text
    assert client.get(f"/me/missions/{theirs.id}").status_code == 404
    assert client.get("/me/missions/999999").status_code == 404

    # Declaring a conflict takes the shopper off their missions there.
    conflicts = client.get("/me/conflicts")
    assert conflicts.status_code == 200
    assert "69123" not in conflicts.text  # the first shopper's conflict is not shown here
    target = counter.authority_code
    response = client.post("/me/conflicts", data={"csrf_token": shopper_token, "code": target})
    assert response.status_code == 303
    assert target in client.get("/me/conflicts").text
    registry.expire_all()
    assert registry.get(Mission, counter.id).shopper_id is None  # type: ignore[union-attr]
    again = client.post("/me/conflicts", data={"csrf_token": shopper_token, "code": target})
    assert again.status_code == 400
    unknown = client.post("/me/conflicts", data={"csrf_token": shopper_token, "code": "00000"})
    assert unknown.status_code == 400
    assert 'href="#field-code"' in unknown.text
