"""Instruments in the browser: upload an XLSForm → preview → publish → pin; a new version from a
form; downloads that read back into the same instrument."""

from __future__ import annotations

import html
import io
import json
import re

import pytest
import yaml
from fastapi.testclient import TestClient
from openpyxl import Workbook
from sqlmodel import Session, select

import surveys
from app.accounts.models import Role
from app.audit.models import AuditEvent
from app.campaigns.models import CampaignInstrument
from app.campaigns.schemas import CampaignCreate
from app.campaigns.service import create_campaign
from app.instruments.models import InstrumentVersion
from app.instruments.service import load_published, publish
from tests.conftest import login, make_user

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PENDING = re.compile(r'name="pending" value="([^"]+)"')


def kobo_workbook(
    *, kobo_columns: bool = True, broken: bool = False, key: str = "accueil-kobo"
) -> bytes:
    """A questionnaire written the way KoboToolbox exports it: a plain ``label`` (the form's
    default language, French here) beside ``label::English (en)``, a ``hint``, ``appearance``.

    ``kobo_columns=False`` writes ``label::fr``/``label::en`` instead (what the first XLSForm
    reader already accepted); ``broken`` gives a question a type the platform cannot collect.
    """
    if kobo_columns:
        label_fr, label_en, hint_fr, hint_en = (
            "label",
            "label::English (en)",
            "hint",
            "hint::English (en)",
        )
        title_en = "form_title::English (en)"
    else:
        label_fr, label_en, hint_fr, hint_en = "label::fr", "label::en", "hint::fr", "hint::en"
        title_en = "form_title::en"
    workbook = Workbook()
    survey = workbook.active
    assert survey is not None
    survey.title = "survey"
    survey.append(
        ["type", "name", label_fr, label_en, hint_fr, hint_en, "required", "appearance", "weight"]
    )
    survey.append(
        ["begin_group", "accueil", "Accueil", "Welcome", None, None, None, "field-list", None]
    )
    survey.append(
        [
            "select_one yn",
            "courtois",
            "L'agent a-t-il été courtois ?",
            "Was the agent courteous?",
            "Pensez à votre dernière visite.",
            "Think of your last visit.",
            "yes",
            "horizontal",
            2,
        ]
    )
    survey.append(
        [
            "geopoint" if broken else "integer",
            "attente",
            "Combien de minutes avez-vous attendu ?",
            "How many minutes did you wait?",
            None,
            None,
            "no",
            None,
            0,
        ]
    )
    survey.append(["end_group", None, None, None, None, None, None, None, None])
    choices = workbook.create_sheet("choices")
    choices.append(["list_name", "name", label_fr, label_en, "score"])
    choices.append(["yn", "oui", "Oui", "Yes", 100])
    choices.append(["yn", "non", "Non", "No", 0])
    settings = workbook.create_sheet("settings")
    settings.append(["form_id", "version", "form_title", title_en, "kind"])
    settings.append(
        [
            key,
            "2027-1",
            "Votre visite à la mairie",
            "Your visit to the town hall",
            "survey",
        ]
    )
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def upload(client: TestClient, token: str, content: bytes, name: str = "accueil.xlsx"):
    return client.post(
        "/admin/instruments/upload",
        data={"csrf_token": token},
        files={"file": (name, content, XLSX)},
    )


def french(client: TestClient) -> None:
    client.get("/lang/fr")


@pytest.mark.parametrize("kobo_columns", [True, False], ids=["kobo", "label-fr-en"])
def test_upload_preview_publish_list_and_pin(
    session: Session, client: TestClient, kobo_columns: bool
) -> None:
    campaign = create_campaign(
        session,
        data=CampaignCreate(
            year=2027, name="Baromètre 2027", opens_at="2027-01-04", closes_at="2027-06-30"
        ),  # type: ignore[arg-type]
        organiser="Test",
        actor=None,
    )
    session.commit()
    token = login(client, make_user(session, Role.admin))
    french(client)

    preview = upload(client, token, kobo_workbook(kobo_columns=kobo_columns))
    assert preview.status_code == 200, preview.text
    text = html.unescape(preview.text)
    # Reads like the citizen's questionnaire, in the page's language, hint included.
    assert "L'agent a-t-il été courtois ?" in text and "Pensez à votre dernière visite." in text
    assert "Was the agent courteous?" not in text
    assert "Publier comme nouvelle version" in text and "version 1" in text
    assert "<details" in text and "<summary>Détails" in text
    assert session.exec(select(InstrumentVersion)).all() == []  # nothing stored before publish

    pending = PENDING.search(preview.text)
    assert pending
    published = client.post(
        "/admin/instruments/publish", data={"csrf_token": token, "pending": pending.group(1)}
    )
    assert published.status_code == 303
    version = session.exec(select(InstrumentVersion)).one()
    assert (version.key, version.version) == ("accueil-kobo", 1)
    assert published.headers["location"] == f"/admin/instruments/{version.id}"
    listing = client.get("/admin/instruments")
    assert "Votre visite à la mairie" in listing.text

    # Publishing the same upload again adds nothing.
    again = client.post(
        "/admin/instruments/publish", data={"csrf_token": token, "pending": pending.group(1)}
    )
    assert again.status_code == 303
    assert len(session.exec(select(InstrumentVersion)).all()) == 1

    # From the published version, pin it to the draft campaign.
    page = client.get(f"/admin/instruments/{version.id}")
    action = f"/campaigns/{campaign.id}/instruments"
    assert f'{action}"' in page.text
    pinned = client.post(action, data={"csrf_token": token, "version_id": str(version.id)})
    assert pinned.status_code == 303
    pin = session.exec(select(CampaignInstrument)).one()
    assert pin.instrument_version_id == version.id
    assert "épingle cette version" in client.get(f"/admin/instruments/{version.id}").text


def test_kobo_columns_become_languages_and_warnings(session: Session, client: TestClient) -> None:
    """Needs the new XLSForm reader: plain ``label`` is the default (French) language and the
    unused ``appearance`` column is a warning naming its sheet, row and column."""
    token = login(client, make_user(session, Role.admin))
    client.get("/lang/en")
    preview = upload(client, token, kobo_workbook(kobo_columns=True))
    assert preview.status_code == 200, preview.text
    assert "Was the agent courteous?" in html.unescape(preview.text)
    assert "appearance" in preview.text
    assert re.search(r"<td>sheet survey, row \d+, column H[^<]*</td>", preview.text)


def test_a_refused_workbook_names_sheet_row_and_column_and_stores_nothing(
    session: Session, client: TestClient
) -> None:
    token = login(client, make_user(session, Role.admin))
    french(client)
    refused = upload(client, token, kobo_workbook(kobo_columns=False, broken=True))
    assert refused.status_code == 422
    text = html.unescape(refused.text)
    assert "Rien n'a été enregistré" in text
    assert re.search(r"<td>feuille survey, ligne 4, colonne A[^<]*</td>", text), text
    assert "geopoint" in text
    assert session.exec(select(InstrumentVersion)).all() == []

    not_xlsx = upload(client, token, b"name,label\n", name="accueil.csv")
    assert not_xlsx.status_code == 422 and 'aria-invalid="true"' in not_xlsx.text
    fake = upload(client, token, b"not a zip", name="accueil.xlsx")
    assert fake.status_code == 422
    assert session.exec(select(InstrumentVersion)).all() == []


def test_a_tampered_or_foreign_pending_upload_is_refused(
    session: Session, client: TestClient
) -> None:
    first_admin = make_user(session, Role.admin)
    token = login(client, first_admin)
    preview = upload(client, token, kobo_workbook(kobo_columns=False))
    pending = PENDING.search(preview.text)
    assert pending
    tampered = pending.group(1)[:-4] + "AAAA"
    refused = client.post(
        "/admin/instruments/publish", data={"csrf_token": token, "pending": tampered}
    )
    assert refused.status_code == 422
    client.cookies.clear()
    other = login(client, make_user(session, Role.admin))
    foreign = client.post(
        "/admin/instruments/publish", data={"csrf_token": other, "pending": pending.group(1)}
    )
    assert foreign.status_code == 422
    assert session.exec(select(InstrumentVersion)).all() == []


@pytest.mark.parametrize("role", [Role.reviewer, Role.shopper, Role.jury, Role.authority])
def test_only_admins_upload_edit_and_download(
    session: Session, client: TestClient, role: Role
) -> None:
    version = publish(
        session, instrument=surveys.default_instruments()["grid-site"], actor=None
    ).version
    session.commit()
    token = login(client, make_user(session, role))
    assert upload(client, token, kobo_workbook(kobo_columns=False)).status_code == 403
    assert client.get(f"/admin/instruments/{version.id}/edit").status_code == 403
    assert client.get(f"/admin/instruments/{version.id}/download.xlsx").status_code == 403
    assert session.exec(select(InstrumentVersion)).all() == [version]


def test_upload_needs_a_csrf_token(session: Session, client: TestClient) -> None:
    login(client, make_user(session, Role.admin))
    response = client.post(
        "/admin/instruments/upload",
        files={"file": ("a.xlsx", kobo_workbook(kobo_columns=False), XLSX)},
    )
    assert response.status_code == 403


@pytest.mark.parametrize("key", sorted(surveys.default_instruments()))
def test_downloads_read_back_into_the_stored_instrument(
    session: Session, client: TestClient, key: str
) -> None:
    version = publish(session, instrument=surveys.default_instruments()[key], actor=None).version
    session.commit()
    login(client, make_user(session, Role.admin))
    stored = load_published(version)

    xlsx = client.get(f"/admin/instruments/{version.id}/download.xlsx")
    assert xlsx.status_code == 200 and xlsx.headers["content-type"] == XLSX
    assert f'filename="{key}-v1.xlsx"' in xlsx.headers["content-disposition"]
    assert surveys.from_xlsform(io.BytesIO(xlsx.content)) == stored

    as_yaml = client.get(f"/admin/instruments/{version.id}/download.yaml")
    assert surveys.instrument_from_dict(yaml.safe_load(as_yaml.text)) == stored
    as_json = client.get(f"/admin/instruments/{version.id}/download.json")
    assert surveys.instrument_from_dict(json.loads(as_json.text)) == stored


def test_preview_reads_like_the_questionnaire_and_hides_sources(
    session: Session, client: TestClient
) -> None:
    citizen = surveys.default_instruments()["citizen"]
    grid = surveys.default_instruments()["grid-guichet"]
    versions = [publish(session, instrument=i, actor=None).version for i in (citizen, grid)]
    session.commit()
    login(client, make_user(session, Role.admin))
    for instrument, version in zip((citizen, grid), versions, strict=True):
        for language in ("fr", "en"):
            client.get(f"/lang/{language}")
            page = html.unescape(client.get(f"/admin/instruments/{version.id}").text)
            item = next(i for i in instrument.items if i.options)
            assert item.label.get(language) in page
            assert item.options[0].label.get(language) in page
            # Every source is inside a <details> toggle, none in the questionnaire itself.
            outside = re.sub(r"<details.*?</details>", "", page, flags=re.S)
            for sourced in [instrument, *instrument.items]:
                if sourced.source:
                    assert sourced.source not in outside, sourced.source
                    assert sourced.source in page


def _edit_form(client: TestClient, version_id: int) -> dict[str, str]:
    page = client.get(f"/admin/instruments/{version_id}/edit")
    assert page.status_code == 200
    fields: dict[str, str] = {}
    for match in re.finditer(r"<input ([^>]*)>", page.text):
        attributes = dict(re.findall(r'([\w-]+)="([^"]*)"', match.group(1)))
        name = attributes.get("name")
        if not name or (attributes.get("type") == "checkbox" and "checked" not in match.group(1)):
            continue
        fields[name] = html.unescape(attributes.get("value", "on"))
    return fields


def test_new_version_form_saves_a_changed_label_and_order(
    session: Session, client: TestClient
) -> None:
    citizen = surveys.default_instruments()["citizen"]
    version = publish(session, instrument=citizen, actor=None).version
    session.commit()
    login(client, make_user(session, Role.admin))
    form = _edit_form(client, version.id or 0)
    section = citizen.sections[0]
    first, second = section.items[0], section.items[1]
    assert form[f"item-{first.key}-label_fr"] == first.label.fr
    form[f"item-{first.key}-label_fr"] = "Votre démarche, en un mot"
    form[f"item-{first.key}-position"] = "2"
    form[f"item-{second.key}-position"] = "1"
    saved = client.post(f"/admin/instruments/{version.id}/edit", data=form)
    assert saved.status_code == 303, saved.text
    new = session.exec(select(InstrumentVersion).where(InstrumentVersion.version == 2)).one()
    changed = load_published(new)
    assert changed.item(first.key).label.fr == "Votre démarche, en un mot"
    assert [i.key for i in changed.sections[0].items[:2]] == [second.key, first.key]
    assert load_published(version) == citizen  # the copied version never changes
    assert session.exec(select(AuditEvent).where(AuditEvent.action == "instrument.publish")).all()


def test_new_version_form_refuses_a_negative_weight_naming_the_field(
    session: Session, client: TestClient
) -> None:
    grid = surveys.default_instruments()["grid-guichet"]
    version = publish(session, instrument=grid, actor=None).version
    session.commit()
    login(client, make_user(session, Role.admin))
    french(client)
    form = _edit_form(client, version.id or 0)
    weighted = next(item for item in grid.items if item.weight)
    name = f"item-{weighted.key}-weight"
    form[name] = "-3"
    refused = client.post(f"/admin/instruments/{version.id}/edit", data=form)
    assert refused.status_code == 400
    text = html.unescape(refused.text)
    summary = re.search(rf'<a href="#field-{name}">([^<]*)</a>', text)
    assert summary, text
    assert summary.group(1) == (
        f"{weighted.label.fr} — Poids\u00a0: Le poids doit être positif ou nul."
    )
    assert f'id="error-{name}"' in text and 'aria-invalid="true"' in text
    assert 'value="-3"' in text  # what was typed is kept
    form[name] = "trois"
    assert (
        "Saisissez un nombre."
        in client.post(f"/admin/instruments/{version.id}/edit", data=form).text
    )
    assert len(session.exec(select(InstrumentVersion)).all()) == 1


def test_unchanged_new_version_publishes_nothing(session: Session, client: TestClient) -> None:
    version = publish(
        session, instrument=surveys.default_instruments()["grid-site"], actor=None
    ).version
    session.commit()
    login(client, make_user(session, Role.admin))
    saved = client.post(
        f"/admin/instruments/{version.id}/edit", data=_edit_form(client, version.id or 0)
    )
    assert (
        saved.status_code == 303 and saved.headers["location"] == f"/admin/instruments/{version.id}"
    )
    assert len(session.exec(select(InstrumentVersion)).all()) == 1


def test_publish_defaults_button_without_a_command(session: Session, client: TestClient) -> None:
    token = login(client, make_user(session, Role.admin))
    french(client)
    empty = client.get("/admin/instruments")
    assert "barometre " not in empty.text and "Publier les instruments par défaut" in empty.text
    assert client.post("/admin/instruments/defaults", data={"csrf_token": token}).status_code == 303
    assert client.post("/admin/instruments/defaults", data={"csrf_token": token}).status_code == 303
    assert len(session.exec(select(InstrumentVersion)).all()) == len(surveys.default_instruments())


def test_an_oversized_upload_is_refused(session: Session, client: TestClient) -> None:
    token = login(client, make_user(session, Role.admin))
    padding = b"PK\x03\x04" + b"0" * (1024 * 1024 + 10)
    response = upload(client, token, padding)
    # 413 while the body-size middleware keeps /admin/ at its form limit, 422 from the upload's
    # own 1 MB check once the upload path gets the upload allowance.
    assert response.status_code in (413, 422)
    assert session.exec(select(InstrumentVersion)).all() == []


def test_new_version_form_edits_thresholds_and_knock_outs(
    session: Session, client: TestClient
) -> None:
    grid = surveys.default_instruments()["grid-courrier"]
    version = publish(session, instrument=grid, actor=None).version
    session.commit()
    login(client, make_user(session, Role.admin))
    french(client)
    form = _edit_form(client, version.id or 0)
    assert form["item-answer_delay-knockout_above"] == "2"
    form["item-answer_delay-threshold_full"] = "12,5"  # decimal comma
    form["item-answer_delay-threshold_partial"] = "20"
    form["item-answer_delay-knockout_above"] = "3"
    assert client.post(f"/admin/instruments/{version.id}/edit", data=form).status_code == 303
    changed = load_published(
        session.exec(select(InstrumentVersion).where(InstrumentVersion.version == 2)).one()
    )
    delay = changed.item("answer_delay")
    assert delay.thresholds == surveys.Thresholds(full=12.5, partial=20)
    assert delay.knockout == surveys.KnockOut(above=3, unit="months")

    form["item-answer_delay-threshold_partial"] = "10"  # below full credit
    refused = client.post(f"/admin/instruments/{version.id}/edit", data=form)
    assert refused.status_code == 400
    assert 'id="error-item-answer_delay-threshold_full"' in refused.text
