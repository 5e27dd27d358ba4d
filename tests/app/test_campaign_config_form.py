"""The configuration form: saving, per-field errors that change nothing, import/export, and the
confirmation step before irreversible actions."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.accounts.models import Role
from app.campaigns.forms import form_from_config
from app.campaigns.models import Campaign, CampaignTransition, Candidate
from app.campaigns.schemas import CampaignConfig, CampaignCreate
from app.campaigns.service import create_campaign, register_candidate
from tests.conftest import login, make_user

YEAR = 2032


@pytest.fixture
def draft(registry: Session) -> Campaign:
    campaign = create_campaign(
        registry,
        data=CampaignCreate(
            year=YEAR, name="Brouillon", opens_at=date(YEAR, 1, 1), closes_at=date(YEAR, 9, 1)
        ),
        organiser="Baromètre",
        actor=None,
    )
    register_candidate(registry, campaign=campaign, code="69123", actor=None)
    register_candidate(registry, campaign=campaign, code="01001", actor=None)
    registry.commit()
    return campaign


@pytest.fixture
def admin(client: TestClient, registry: Session) -> str:
    return login(client, make_user(registry, Role.admin))


def form_data(config: CampaignConfig, token: str, locale: str = "fr") -> dict[str, Any]:
    """What a browser posts for the form as the page shows it."""
    form = form_from_config(config, locale=locale)
    data: dict[str, Any] = {"csrf_token": token, "action": "save"}
    data["categories-count"] = str(len(form.categories))
    for row, category in enumerate(form.categories):
        prefix = f"cat-{row}-"
        data[prefix + "key"] = category.key
        data[prefix + "label_fr"] = category.label_fr
        data[prefix + "label_en"] = category.label_en
        data[prefix + "kinds"] = list(category.kinds)
        data[prefix + "population_min"] = category.population_min
        data[prefix + "population_max"] = category.population_max
    data.update(form.values)
    data.update({f"weight-{c}": v for c, v in form.channel_weights.items()})
    data.update({f"tests-{c}": v for c, v in form.tests_per_channel.items()})
    if form.invitations_only:
        data["invitations_only"] = "1"
    return data


def _saved(registry: Session, campaign: Campaign) -> dict[str, Any]:
    registry.expire_all()
    stored = registry.get(Campaign, campaign.id)
    assert stored is not None
    return stored.config


def test_the_page_is_a_form_in_words_with_counts_and_advanced_import(
    client: TestClient, admin: str, draft: Campaign
) -> None:
    page = client.get(f"/campaigns/{draft.id}/config")
    assert page.status_code == 200
    text = page.text
    assert 'name="weight-guichet"' in text and 'value="25"' in text
    assert "accueil physique" in text.lower() and "communauté de communes" in text
    assert 'value="95"' in text  # confidence level as a percentage
    assert 'name="component-survey"' in text and 'value="40"' in text
    assert '<details class="panel" id="advanced"' in text and 'name="config_text"' in text
    # Lyon (69123, > 100 000) and L'Abergement-Clémenciat (01001, < 3 500): one each.
    assert text.count("1 candidat inscrit dans cette tranche.") == 2
    assert "Planificateur de précision" in text  # the planner stays
    client.cookies.set("lang", "en")
    english = client.get(f"/campaigns/{draft.id}/config")
    assert "Channel weights, in percent (together 100 %)" in english.text
    assert "1 registered candidate in this band." in english.text


def test_a_valid_submit_saves(
    client: TestClient, admin: str, draft: Campaign, registry: Session
) -> None:
    data = form_data(CampaignConfig(), admin)
    data.update(
        {
            "weight-guichet": "30",
            "weight-reseaux": "0",
            "component-survey": "35,5",
            "component-mystery": "64,5",
            "confidence_level": "90",
            "seed": "7",
            "missing_channel": "unranked",
            "publication_scope": "laureates",
            "replicate_share": "20",
            "invitations_only": "1",
        }
    )
    response = client.post(f"/campaigns/{draft.id}/config", data=data)
    assert response.status_code == 303, response.text
    saved = CampaignConfig.model_validate(_saved(registry, draft))
    assert saved.channel_weights["guichet"] == 30 and saved.channel_weights["reseaux"] == 0
    assert saved.component_weights.survey == pytest.approx(0.355)
    assert saved.confidence_level == pytest.approx(0.9) and saved.seed == 7
    assert saved.missing_channel == "unranked" and saved.publication.scope == "laureates"
    assert saved.replicates.share == pytest.approx(0.2) and saved.invitations_only


def test_moving_a_band_moves_the_registered_candidates(
    client: TestClient, admin: str, draft: Campaign, registry: Session
) -> None:
    data = form_data(CampaignConfig(), admin)
    # Two bands instead of six for communes: under 50 000, and 50 000 or more.
    data["cat-0-population_max"] = "50000"
    data["cat-0-label_fr"] = "Petites communes"
    data["cat-5-population_min"] = "50000"
    for row in (1, 2, 3, 4):
        data[f"cat-{row}-remove"] = "1"
    response = client.post(f"/campaigns/{draft.id}/config", data=data)
    assert response.status_code == 303, response.text
    categories = {c.authority_code: c.category for c in registry.exec(select(Candidate)).all()}
    assert categories == {"01001": "communes-0-3500", "69123": "communes-100000-plus"}
    assert len(_saved(registry, draft)["categories"]) == 4


BAD_SUBMITS = [
    ({"weight-guichet": "40"}, "weight-guichet", "115\u00a0%"),
    ({"component-survey": "50"}, "component-survey", "110\u00a0%"),
    ({"cat-1-population_min": "3000"}, "cat-1-population_min", "chevauche"),
    ({"cat-1-population_min": "5000"}, "cat-1-population_min", "Aucune catégorie"),
    ({"cat-2-population_max": "5"}, "cat-2-population_max", "limite supérieure"),
    ({"cat-0-kinds": []}, "cat-0-kinds-0", "au moins un type"),
    ({"cat-0-label_en": ""}, "cat-0-label_en", "nom"),
    ({"confidence_level": "150"}, "confidence_level", "au-dessus de 50"),
    ({"confidence_level": "abc"}, "confidence_level", "nombre"),
    ({"seed": "-3"}, "seed", "nombre entier"),
    ({"min_channels_tested": "9"}, "min_channels_tested", "de 0 à 6"),
    ({"tests-courrier": "1,5"}, "tests-courrier", "sans décimale"),
]


@pytest.mark.parametrize(("change", "anchor", "words"), BAD_SUBMITS)
def test_each_error_names_its_field_and_changes_nothing(
    client: TestClient,
    admin: str,
    draft: Campaign,
    registry: Session,
    change: dict[str, Any],
    anchor: str,
    words: str,
) -> None:
    before = _saved(registry, draft)
    data = form_data(CampaignConfig(), admin) | change
    response = client.post(f"/campaigns/{draft.id}/config", data=data)
    assert response.status_code == 400, response.text
    text = response.text
    assert f'href="#field-{anchor}"' in text, text[:3000]
    assert f'id="field-{anchor}"' in text
    assert words in text
    assert 'aria-invalid="true"' in text and "aria-describedby=" in text
    # The user's input is shown back as typed.
    for value in change.values():
        if isinstance(value, str) and value:
            assert f'value="{value}"' in text
    assert _saved(registry, draft) == before


def test_errors_in_english(client: TestClient, admin: str, draft: Campaign) -> None:
    client.cookies.set("lang", "en")
    data = form_data(CampaignConfig(), admin, locale="en") | {"weight-site": "10"}
    response = client.post(f"/campaigns/{draft.id}/config", data=data)
    assert response.status_code == 400
    assert "Channel weights: The percentages must add up to 100 %; they add up to 95 %." in (
        response.text
    )


def test_a_band_leaving_a_registered_candidate_out_is_refused(
    client: TestClient, admin: str, draft: Campaign, registry: Session
) -> None:
    before = _saved(registry, draft)
    data = form_data(CampaignConfig(), admin)
    data["cat-0-population_min"] = "1000"  # 01001 has fewer than 1 000 inhabitants
    response = client.post(f"/campaigns/{draft.id}/config", data=data)
    assert response.status_code == 400
    assert "Abergement-Clémenciat" in response.text
    assert _saved(registry, draft) == before


def test_add_remove_and_recount_rerender_without_saving(
    client: TestClient, admin: str, draft: Campaign, registry: Session
) -> None:
    before = _saved(registry, draft)
    data = form_data(CampaignConfig(), admin) | {"action": "add_category", "cat-7-remove": "1"}
    added = client.post(f"/campaigns/{draft.id}/config", data=data)
    assert added.status_code == 200
    assert 'name="categories-count" value="8"' in added.text  # one removed, one added
    assert 'id="field-cat-7-label_fr" name="cat-7-label_fr" value=""' in added.text
    recount = form_data(CampaignConfig(), admin) | {
        "action": "recount",
        "cat-5-population_min": "2000000",
    }
    page = client.post(f"/campaigns/{draft.id}/config", data=recount)
    assert page.status_code == 200
    assert "1 candidat inscrit ne relève d’aucune catégorie avec ces tranches." in page.text
    # The live recount (htmx) keeps the rows ticked for removal, so each count keeps its row.
    live = form_data(CampaignConfig(), admin) | {"action": "count", "cat-0-remove": "1"}
    counted = client.post(
        f"/campaigns/{draft.id}/config", data=live, headers={"HX-Request": "true"}
    )
    assert counted.status_code == 200
    assert 'name="categories-count" value="8"' in counted.text
    assert 'id="count-0"' in counted.text and 'id="unplaced"' in counted.text
    assert _saved(registry, draft) == before


def test_only_editable_states_accept_the_form(
    client: TestClient, admin: str, draft: Campaign, registry: Session
) -> None:
    draft.state = "scored"
    registry.add(draft)
    registry.commit()
    page = client.get(f"/campaigns/{draft.id}/config")
    assert page.status_code == 200 and "disabled" in page.text
    refused = client.post(f"/campaigns/{draft.id}/config", data=form_data(CampaignConfig(), admin))
    assert refused.status_code == 409


def test_yaml_and_json_export_import_round_trip(
    client: TestClient, admin: str, draft: Campaign, registry: Session
) -> None:
    exported = client.get(f"/campaigns/{draft.id}/config.yaml")
    assert exported.status_code == 200
    assert "attachment" in exported.headers["content-disposition"]
    document = yaml.safe_load(exported.text)
    assert document == _saved(registry, draft)
    document["seed"] = 99
    imported = client.post(
        f"/campaigns/{draft.id}/config/import",
        data={"csrf_token": admin, "config_text": yaml.safe_dump(document, allow_unicode=True)},
    )
    assert imported.status_code == 303
    assert _saved(registry, draft) == document
    as_json = client.get(f"/campaigns/{draft.id}/config.json")
    assert json.loads(as_json.text) == document
    again = client.post(
        f"/campaigns/{draft.id}/config/import",
        data={"csrf_token": admin, "config_text": as_json.text},
    )
    assert again.status_code == 303 and _saved(registry, draft) == document
    bad = client.post(
        f"/campaigns/{draft.id}/config/import",
        data={"csrf_token": admin, "config_text": "confidence_level: 2\n"},
    )
    assert bad.status_code == 400 and "confidence_level" in bad.text
    assert '<details class="panel" id="advanced" open>' in bad.text
    assert _saved(registry, draft) == document


def test_a_transition_asks_first_then_posts(
    client: TestClient, admin: str, draft: Campaign, registry: Session
) -> None:
    import surveys
    from app.campaigns.service import pin_latest_versions
    from app.instruments.service import publish

    page = client.get(f"/campaigns/{draft.id}")
    assert f'/campaigns/{draft.id}/transition"' in page.text
    assert 'method="get"' in page.text
    blocked = client.get(f"/campaigns/{draft.id}/transition", params={"to_state": "open"})
    assert blocked.status_code == 200
    assert "Épinglez les instruments" in blocked.text or "Pin the instruments" in blocked.text
    assert 'name="to_state"' not in blocked.text  # nothing to confirm yet
    for instrument in surveys.default_instruments().values():
        publish(registry, instrument=instrument, actor=None)
    pin_latest_versions(registry, campaign=draft, actor=None)
    registry.commit()
    confirm = client.get(f"/campaigns/{draft.id}/transition", params={"to_state": "open"})
    assert confirm.status_code == 200
    assert "lien public du questionnaire" in confirm.text
    assert "ne peut pas être annulée" in confirm.text
    assert 'name="csrf_token"' in confirm.text and 'value="open"' in confirm.text
    registry.expire_all()
    assert registry.get(Campaign, draft.id).state == "draft"  # type: ignore[union-attr]
    skipped = client.get(f"/campaigns/{draft.id}/transition", params={"to_state": "published"})
    assert skipped.status_code == 303
    no_token = client.post(f"/campaigns/{draft.id}/transition", data={"to_state": "open"})
    assert no_token.status_code in (400, 403)
    done = client.post(
        f"/campaigns/{draft.id}/transition",
        data={"to_state": "open", "csrf_token": admin, "comment": "C'est parti"},
    )
    assert done.status_code == 303
    registry.expire_all()
    assert registry.get(Campaign, draft.id).state == "open"  # type: ignore[union-attr]
    assert registry.exec(select(CampaignTransition)).one().comment == "C'est parti"
    client.cookies.set("lang", "en")
    closing = client.get(f"/campaigns/{draft.id}/transition", params={"to_state": "closed"})
    assert "The questionnaire stops accepting answers" in closing.text


def test_regenerating_missions_asks_first(
    client: TestClient, admin: str, open_campaign: Campaign, registry: Session
) -> None:
    make_user(registry, Role.shopper)
    path = f"/campaigns/{open_campaign.id}/missions"
    first = client.post(path + "/generate", data={"csrf_token": admin})
    assert first.status_code == 303
    page = client.get(path)
    assert f'{path}/regenerate"' in page.text
    confirm = client.get(path + "/regenerate")
    assert confirm.status_code == 200
    assert "seront supprimées et planifiées à nouveau" in confirm.text
    assert 'name="regenerate" value="true"' in confirm.text
    done = client.post(path + "/generate", data={"csrf_token": admin, "regenerate": "true"})
    assert done.status_code == 303
