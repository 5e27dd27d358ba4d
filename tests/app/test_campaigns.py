"""Campaign configuration, the state machine and candidate registration."""

from __future__ import annotations

from datetime import date

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlmodel import Session, select

import surveys
from app.accounts.models import Role
from app.campaigns.models import Campaign, CampaignInstrument, CampaignTransition, Candidate
from app.campaigns.schemas import CampaignConfig, CampaignCreate
from app.campaigns.service import (
    create_campaign,
    missing_instruments,
    parse_config,
    pin_instrument,
    pin_latest_versions,
    register_candidate,
)
from app.core.errors import Conflict, InvalidInput
from app.instruments.service import publish
from tests.conftest import login, make_user

STATES = ["open", "closed", "scored", "deliberated", "published"]


def _campaign(session: Session, year: int = 2030) -> Campaign:
    campaign = create_campaign(
        session,
        data=CampaignCreate(
            year=year,
            name=f"Baromètre {year}",
            opens_at=date(year, 1, 1),
            closes_at=date(year, 6, 1),
        ),
        organiser="Baromètre",
        actor=None,
    )
    session.commit()
    return campaign


def _publish_and_pin(session: Session, campaign: Campaign) -> None:
    for instrument in surveys.default_instruments().values():
        publish(session, instrument=instrument, actor=None)
    pin_latest_versions(session, campaign=campaign, actor=None)
    session.commit()


def test_default_config_is_valid_and_has_eight_categories() -> None:
    config = CampaignConfig()
    assert len(config.categories) == 8
    assert sum(config.channel_weights.values()) == 100
    assert config.category_for("commune", 3_499).key == "communes-0-3500"  # type: ignore[union-attr]
    assert config.category_for("commune", 3_500).key == "communes-3500-10000"  # type: ignore[union-attr]
    assert config.category_for("epci-metro", 10**6).key == "intercommunalites"  # type: ignore[union-attr]
    assert config.category_for("region", 10**7).key == "departements-regions"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"channel_weights": {"guichet": -1, "site": 5}}, "channel_weights"),
        ({"channel_weights": {"guichet": 0}}, "channel_weights"),
        ({"channel_weights": {"fax": 10}}, "channel_weights.fax"),
        ({"confidence_level": 1.5}, "confidence_level"),
        ({"component_weights": {"survey": 0, "mystery": 0}}, "component_weights"),
        ({"seed": -3}, "seed"),
        ({"eligibility": {"min_respondents": -1}}, "eligibility.min_respondents"),
        ({"unknown_setting": 1}, "unknown_setting"),
    ],
)
def test_invalid_config_names_the_field(change: dict, field: str) -> None:
    raw = CampaignConfig().model_dump(mode="json") | change
    with pytest.raises(InvalidInput) as error:
        parse_config(raw)
    assert error.value.message.startswith(field), error.value.message


def test_category_errors_name_the_category() -> None:
    raw = CampaignConfig().model_dump(mode="json")
    raw["categories"][2]["population_max"] = 5
    with pytest.raises(InvalidInput, match=r"^categories\.2: .*population_max"):
        parse_config(raw)
    overlapping = CampaignConfig().model_dump(mode="json")
    overlapping["categories"][1]["population_min"] = 3000
    with pytest.raises(InvalidInput, match="overlap"):
        parse_config(overlapping)


def test_campaign_dates_must_be_in_order() -> None:
    with pytest.raises(ValidationError, match="closes_at"):
        CampaignCreate(year=2030, name="X", opens_at=date(2030, 5, 1), closes_at=date(2030, 1, 1))


def test_full_cycle_records_each_transition(registry: Session, client: TestClient) -> None:
    admin = make_user(registry, Role.admin)
    token = login(client, admin)
    campaign = _campaign(registry)
    register_candidate(registry, campaign=campaign, code="69123", actor=admin)
    _publish_and_pin(registry, campaign)
    for state in STATES:
        response = client.post(
            f"/campaigns/{campaign.id}/transition", data={"to_state": state, "csrf_token": token}
        )
        assert response.status_code == 303, response.text
    transitions = registry.exec(
        select(CampaignTransition).where(CampaignTransition.campaign_id == campaign.id)
    ).all()
    assert [(t.from_state, t.to_state) for t in transitions] == list(
        zip(["draft", *STATES[:-1]], STATES, strict=True)
    )
    assert all(t.actor_id == admin.id and t.at is not None for t in transitions)
    page = client.get(f"/campaigns/{campaign.id}")
    assert "Historique" in page.text and admin.display_name in page.text


def test_invalid_transition_gets_409_and_changes_nothing(
    registry: Session, client: TestClient
) -> None:
    admin = make_user(registry, Role.admin)
    token = login(client, admin)
    campaign = _campaign(registry)
    skipped = client.post(
        f"/campaigns/{campaign.id}/transition", data={"to_state": "scored", "csrf_token": token}
    )
    assert skipped.status_code == 409
    assert "brouillon" in skipped.text or "draft" in skipped.text
    empty = client.post(
        f"/campaigns/{campaign.id}/transition", data={"to_state": "open", "csrf_token": token}
    )
    assert empty.status_code == 409  # no candidate yet
    api = client.post(
        f"/api/v1/campaigns/{campaign.id}/transitions",
        json={"to_state": "published"},
        headers={"X-CSRF-Token": token},
    )
    assert api.status_code == 409
    assert "draft" in api.json()["detail"] and "published" in api.json()["detail"]
    registry.refresh(campaign)
    assert campaign.state == "draft"
    assert registry.exec(select(CampaignTransition)).all() == []


def test_api_transition_and_backwards_refused(registry: Session, client: TestClient) -> None:
    admin = make_user(registry, Role.admin)
    token = login(client, admin)
    campaign = _campaign(registry)
    register_candidate(registry, campaign=campaign, code="01001", actor=admin)
    _publish_and_pin(registry, campaign)
    ok = client.post(
        f"/api/v1/campaigns/{campaign.id}/transitions",
        json={"to_state": "open", "comment": "go"},
        headers={"X-CSRF-Token": token},
    )
    assert ok.status_code == 200 and ok.json()["to_state"] == "open"
    back = client.post(
        f"/api/v1/campaigns/{campaign.id}/transitions",
        json={"to_state": "draft"},
        headers={"X-CSRF-Token": token},
    )
    assert back.status_code == 409


def test_candidates_get_their_category(registry: Session) -> None:
    campaign = _campaign(registry)
    lyon = register_candidate(registry, campaign=campaign, code="69123", actor=None)
    small = register_candidate(registry, campaign=campaign, code="01001", actor=None)
    assert lyon.category == "communes-100000-plus"
    assert small.category == "communes-0-3500"
    with pytest.raises(Exception, match="already a candidate"):
        register_candidate(registry, campaign=campaign, code="69123", actor=None)
    with pytest.raises(InvalidInput, match="No authority"):
        register_candidate(registry, campaign=campaign, code="00000", actor=None)


def test_candidate_csv_is_all_or_nothing(registry: Session, client: TestClient) -> None:
    token = login(client, make_user(registry, Role.admin))
    campaign = _campaign(registry)
    bad = client.post(
        f"/campaigns/{campaign.id}/candidates/import",
        data={"csrf_token": token},
        files={"file": ("codes.csv", "code\n69123\n01001\nZZZZZ\n")},
    )
    assert bad.status_code == 422
    assert "Ligne 4" in bad.text and "ZZZZZ" in bad.text
    assert registry.exec(select(Candidate)).all() == []
    good = client.post(
        f"/campaigns/{campaign.id}/candidates/import",
        data={"csrf_token": token},
        files={"file": ("codes.csv", "code\n69123\n01001\n69123\n")},
    )
    assert good.status_code == 303
    again = client.post(
        f"/campaigns/{campaign.id}/candidates/import",
        data={"csrf_token": token},
        files={"file": ("codes.csv", "69123\n75056\n")},
    )
    assert again.status_code == 303
    codes = sorted(c.authority_code for c in registry.exec(select(Candidate)).all())
    assert codes == ["01001", "69123", "75056"]


def test_campaign_form_errors_and_config_editor(registry: Session, client: TestClient) -> None:
    token = login(client, make_user(registry, Role.admin))
    bad = client.post(
        "/campaigns",
        data={
            "csrf_token": token,
            "year": "20x",
            "name": "",
            "opens_at": "2030-01-01",
            "closes_at": "2029-01-01",
        },
    )
    assert bad.status_code == 400 and 'href="#field-year"' in bad.text
    created = client.post(
        "/campaigns",
        data={
            "csrf_token": token,
            "year": "2030",
            "name": "B 2030",
            "opens_at": "2030-01-01",
            "closes_at": "2030-06-01",
        },
    )
    assert created.status_code == 303
    duplicate = client.post(
        "/campaigns",
        data={
            "csrf_token": token,
            "year": "2030",
            "name": "B 2030",
            "opens_at": "2030-01-01",
            "closes_at": "2030-06-01",
        },
    )
    assert duplicate.status_code == 409
    campaign_path = created.headers["location"]
    invalid = client.post(
        campaign_path + "/config/import",
        data={"csrf_token": token, "config_text": "confidence_level: 2\n"},
    )
    assert invalid.status_code == 400 and "confidence_level" in invalid.text
    valid = client.post(
        campaign_path + "/config/import",
        data={"csrf_token": token, "config_text": "confidence_level: 0.9\nseed: 7\n"},
    )
    assert valid.status_code == 303
    campaign = registry.exec(select(Campaign).where(Campaign.year == 2030)).one()
    registry.refresh(campaign)
    assert campaign.config["confidence_level"] == 0.9 and campaign.config["seed"] == 7


def test_opening_needs_the_survey_and_every_weighted_grid_pinned(
    registry: Session, client: TestClient
) -> None:
    admin = make_user(registry, Role.admin)
    token = login(client, admin)
    campaign = _campaign(registry)
    register_candidate(registry, campaign=campaign, code="69123", actor=admin)
    versions = {
        instrument.key: publish(registry, instrument=instrument, actor=None).version
        for instrument in surveys.default_instruments().values()
    }
    pin_instrument(registry, campaign=campaign, version_id=versions["citizen"].id, actor=admin)
    registry.commit()
    assert "grid-guichet" in missing_instruments(registry, campaign=campaign)
    refused = client.post(
        f"/campaigns/{campaign.id}/transition", data={"to_state": "open", "csrf_token": token}
    )
    assert refused.status_code == 409 and "la grille « accueil physique »" in refused.text
    pinned = client.post(f"/campaigns/{campaign.id}/instruments/latest", data={"csrf_token": token})
    assert pinned.status_code == 303
    assert missing_instruments(registry, campaign=campaign) == []
    page = client.get(f"/campaigns/{campaign.id}")
    assert "grid-reseaux" in page.text and versions["grid-reseaux"].sha256[:12] in page.text
    opened = client.post(
        f"/campaigns/{campaign.id}/transition", data={"to_state": "open", "csrf_token": token}
    )
    assert opened.status_code == 303


def test_pins_change_only_in_draft_and_keep_one_version_per_key(
    registry: Session, client: TestClient
) -> None:
    admin = make_user(registry, Role.admin)
    token = login(client, admin)
    campaign = _campaign(registry)
    register_candidate(registry, campaign=campaign, code="69123", actor=admin)
    citizen = surveys.default_instruments()["citizen"]
    first = publish(registry, instrument=citizen, actor=None).version
    changed = citizen.model_copy(
        update={"title": citizen.title.model_copy(update={"fr": "Votre avis compte"})}
    )
    second = publish(registry, instrument=changed, actor=None).version
    registry.commit()
    for version in (first, second):
        response = client.post(
            f"/campaigns/{campaign.id}/instruments",
            data={"csrf_token": token, "version_id": str(version.id)},
        )
        assert response.status_code == 303
    pins = registry.exec(select(CampaignInstrument)).all()
    assert [(p.instrument_key, p.instrument_version_id) for p in pins] == [("citizen", second.id)]
    unknown = client.post(
        f"/campaigns/{campaign.id}/instruments", data={"csrf_token": token, "version_id": "999999"}
    )
    assert unknown.status_code == 422
    _publish_and_pin(registry, campaign)
    opened_response = client.post(
        f"/campaigns/{campaign.id}/transition", data={"to_state": "open", "csrf_token": token}
    )
    assert opened_response.status_code == 303
    registry.refresh(campaign)
    assert campaign.state == "open"
    with pytest.raises(Conflict):
        pin_instrument(registry, campaign=campaign, version_id=first.id or 0, actor=admin)


def test_a_campaign_pins_one_questionnaire_and_one_grid_per_channel(registry: Session) -> None:
    """Pinning a second questionnaire replaces the first (the public link serves one), and
    "pin the latest versions" keeps the organiser's choice of questionnaire."""
    campaign = _campaign(registry)
    _publish_and_pin(registry, campaign)
    citizen = surveys.default_instruments()["citizen"]
    own = citizen.model_copy(
        update={
            "key": "accueil-mairie",
            "title": citizen.title.model_copy(update={"fr": "Votre avis sur la mairie"}),
        }
    )
    mine = publish(registry, instrument=own, actor=None).version
    pin_instrument(registry, campaign=campaign, version_id=mine.id or 0, actor=None)
    registry.commit()
    surveys_pinned = [
        pin.instrument_key
        for pin in registry.exec(select(CampaignInstrument)).all()
        if not pin.instrument_key.startswith("grid-")
    ]
    assert surveys_pinned == ["accueil-mairie"]
    assert pin_latest_versions(registry, campaign=campaign, actor=None) == 7
    registry.commit()
    keys = sorted(pin.instrument_key for pin in registry.exec(select(CampaignInstrument)).all())
    assert keys == ["accueil-mairie", *sorted(k for k in keys if k.startswith("grid-"))]
    assert len(keys) == 7 and missing_instruments(registry, campaign=campaign) == []
