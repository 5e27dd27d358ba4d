"""Open data of published results: licence, Table Schema, data package, dictionary, dialects.

Both CSV dialects are validated against their own Table Schema with frictionless (the French one
through ``decimalChar: ","`` and its 1/0 booleans), and against each other by hand.
"""

from __future__ import annotations

import csv
import io
import json
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from frictionless import Dialect, Package, Resource, Schema
from sqlmodel import Session

from app.campaigns import repository as campaigns_repository
from app.campaigns.models import Campaign
from app.campaigns.service import register_candidate
from app.core.spreadsheet import BOM, CsvDialect
from app.publication.opendata import BOOLEAN_TOKENS, FIELDS, PRIMARY_KEY, source_name
from app.publication.service import OPEN_DATA_COLUMNS
from tests.app.test_jury import DEFAULT_SPECS, SMALL, Spec, scored
from tests.app.test_publication import POLICY_SPECS, _with_policy
from tests.app.test_scorecards import publish
from tests.conftest import OPEN_YEAR

BASE = f"/results/{OPEN_YEAR}/open-data"
ETALAB = "etalab-2.0"
DIALECTS = [CsvDialect.international, CsvDialect.french]
# One small authority with fewer than 5 respondents: its rows are published without figures.
SPECS = (*DEFAULT_SPECS[:2], Spec("01001", SMALL, 61.0, flags=("fewer_than_5",)))
NEW_PATHS = [
    f"{BASE}/schema.json",
    f"{BASE}/schema.json?format=french",
    f"{BASE}/datapackage.json",
    f"{BASE}/dictionary.csv",
    f"{BASE}/dictionary.csv?format=french",
    f"{BASE}/scores.csv?format=french",
]


@pytest.fixture
def edition(registry: Session, open_campaign: Campaign) -> Campaign:
    scored(registry, open_campaign, SPECS)
    publish(registry, open_campaign)
    return open_campaign


def _local(url: str) -> str:
    """The path and query of an absolute address the application wrote."""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _rows(text: str, dialect: CsvDialect) -> list[dict[str, str]]:
    delimiter = ";" if dialect is CsvDialect.french else ","
    return list(csv.DictReader(io.StringIO(text.removeprefix(BOM)), delimiter=delimiter))


def _scores(client: TestClient, dialect: CsvDialect) -> bytes:
    response = client.get(f"{BASE}/scores.csv", params={"format": dialect.value})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    return response.content


def _validate_file(tmp_path: Path, content: bytes, schema: dict[str, Any], delimiter: str):
    path = tmp_path / "scores.csv"
    path.write_bytes(content)
    resource = Resource(
        path=path.name,
        basepath=str(tmp_path),
        schema=Schema.from_descriptor(schema),
        dialect=Dialect.from_descriptor({"delimiter": delimiter}),
    )
    return resource.validate()


def _errors(report) -> list[list[Any]]:
    return report.flatten(["rowNumber", "fieldName", "type", "note"])


# --- publication gate and input validation ----------------------------------------------------


def test_every_new_route_is_404_before_publication_and_200_after(
    client: TestClient, registry: Session, open_campaign: Campaign
) -> None:
    for path in NEW_PATHS:
        assert client.get(path).status_code == 404, path
    scored(registry, open_campaign, SPECS)
    for path in NEW_PATHS:
        assert client.get(path).status_code == 404, path  # scored, not published
    publish(registry, open_campaign)
    for path in NEW_PATHS:
        assert client.get(path).status_code == 200, path
    assert client.get(f"/results/{OPEN_YEAR + 1}/open-data/datapackage.json").status_code == 404


@pytest.mark.parametrize("name", ["scores.csv", "schema.json", "dictionary.csv"])
def test_an_unknown_format_is_a_422_naming_the_parameter(
    client: TestClient, edition: Campaign, name: str
) -> None:
    api = client.get(
        f"{BASE}/{name}", params={"format": "bogus"}, headers={"Accept": "application/json"}
    )
    assert api.status_code == 422
    assert [error["field"] for error in api.json()["errors"]] == ["format"]
    client.cookies.set("lang", "en")
    page = client.get(f"{BASE}/{name}?format=bogus")
    assert page.status_code == 422 and "format" in page.text


# --- the licence -------------------------------------------------------------------------------


def test_json_schema_and_package_declare_the_etalab_licence(
    client: TestClient, registry: Session, edition: Campaign
) -> None:
    data = client.get(f"{BASE}/scores.json").json()
    schema = client.get(f"{BASE}/schema.json").json()
    package = client.get(f"{BASE}/datapackage.json").json()
    for descriptor in (data, schema, package):
        assert [licence["name"] for licence in descriptor["licenses"]] == [ETALAB]
        assert descriptor["licenses"][0]["path"].startswith("https://www.etalab.gouv.fr/")
        assert descriptor["licenses"][0]["title"] == "Licence Ouverte / Open Licence 2.0"
    # The attribution the licence asks for names the source and the edition; the date of the
    # data is the publication, also sent as Last-Modified.
    transitions = campaigns_repository.transitions(registry, edition.id or 0)
    published_at = next(t.at for t in transitions if t.to_state == "published")
    english = client.get(f"{BASE}/scores.json?lang=en").json()
    assert english["attribution"] == f"Source: Baromètre, {OPEN_YEAR}"
    assert data["published_at"] == published_at.isoformat(timespec="seconds")
    assert package["created"] == data["published_at"]
    for path in ("scores.csv", "scores.json", "schema.json", "datapackage.json"):
        modified = client.get(f"{BASE}/{path}").headers["last-modified"]
        assert parsedate_to_datetime(modified) == published_at.replace(microsecond=0), path
    # The JSON points at its own description.
    assert _local(data["schema"]) == f"{BASE}/schema.json"
    assert _local(data["datapackage"]) == f"{BASE}/datapackage.json"


def test_attribution_names_the_barometer_once() -> None:
    assert source_name("Baromètre") == "Baromètre"
    assert source_name("Association des maires") == "Baromètre Association des maires"


def test_results_page_lists_every_file_and_the_licence(
    client: TestClient, edition: Campaign
) -> None:
    client.cookies.set("lang", "en")
    page = client.get(f"/results/{OPEN_YEAR}").text
    block = page.split('id="open-data-title"', 1)[1].split("</section>", 1)[0]
    for path in (
        "scores.csv",
        "scores.csv?format=french",
        "scores.json",
        "dictionary.csv",
        "dictionary.csv?format=french",
        "schema.json",
        "datapackage.json",
    ):
        assert f'{BASE}/{path}"' in block, path
    assert 'rel="license">Licence Ouverte / Open Licence 2.0</a>' in block
    assert 'href="https://www.etalab.gouv.fr/licence-ouverte-open-licence/"' in block
    assert f"“Source: Baromètre, {OPEN_YEAR}”, published on " in block


# --- the Table Schema and both dialects --------------------------------------------------------


def test_the_schema_describes_every_column_with_its_constraints(
    client: TestClient, edition: Campaign
) -> None:
    client.cookies.set("lang", "en")
    schema = client.get(f"{BASE}/schema.json").json()
    assert [field["name"] for field in schema["fields"]] == OPEN_DATA_COLUMNS
    assert [field.name for field in FIELDS] == OPEN_DATA_COLUMNS
    assert schema["missingValues"] == [""] and schema["primaryKey"] == list(PRIMARY_KEY)
    by_name = {field["name"]: field for field in schema["fields"]}
    assert all(field["title"] and field["description"] for field in schema["fields"])
    assert by_name["level"]["constraints"]["enum"] == ["overall", "component", "channel", "theme"]
    for name in ("estimate", "ci_low", "ci_high"):
        assert by_name[name]["constraints"] == {"minimum": 0, "maximum": 100}, name
    assert by_name["year"]["type"] == "year" and by_name["n"]["type"] == "integer"
    assert by_name["laureate"]["type"] == "boolean"
    assert by_name["laureate"]["trueValues"] == ["true"]
    assert by_name["authority_code"]["constraints"]["required"] is True
    assert "required" not in by_name["key"].get("constraints", {})  # "" for the overall score
    # Frictionless reads it as a valid Table Schema.
    assert Schema.validate_descriptor(schema).valid
    french = client.get(f"{BASE}/schema.json?format=french").json()
    french_fields = {field["name"]: field for field in french["fields"]}
    assert french_fields["estimate"]["decimalChar"] == ","
    assert french_fields["laureate"]["trueValues"] == ["1"]


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.value)
def test_scores_csv_validates_against_its_own_table_schema(
    client: TestClient, edition: Campaign, tmp_path: Path, dialect: CsvDialect
) -> None:
    content = _scores(client, dialect)
    schema = client.get(f"{BASE}/schema.json", params={"format": dialect.value}).json()
    delimiter = ";" if dialect is CsvDialect.french else ","
    report = _validate_file(tmp_path, content, schema, delimiter)
    assert report.valid, _errors(report)
    rows = _rows(content.decode("utf-8"), dialect)
    assert len(rows) == len(client.get(f"{BASE}/scores.json").json()["rows"]) > 0
    # Suppressed figures are empty cells, which the schema reads as missing values.
    small = next(r for r in rows if r["authority_code"] == "01001" and r["level"] == "overall")
    assert small["estimate"] == "" and small["flags"] == "fewer_than_5"


def test_the_schema_would_catch_a_file_in_the_wrong_dialect(
    client: TestClient, edition: Campaign, tmp_path: Path
) -> None:
    # The French file read with the international schema (and the other way round) fails: the
    # validation above tests something.
    french = _scores(client, CsvDialect.french)
    schema = client.get(f"{BASE}/schema.json").json()
    report = _validate_file(tmp_path, french, schema, ";")
    assert not report.valid
    assert {error[2] for error in _errors(report)} == {"type-error"}
    international = _scores(client, CsvDialect.international)
    french_schema = client.get(f"{BASE}/schema.json?format=french").json()
    assert not _validate_file(tmp_path, international, french_schema, ",").valid


def test_the_french_csv_is_the_international_one_for_french_spreadsheets(
    client: TestClient, edition: Campaign
) -> None:
    french_bytes = _scores(client, CsvDialect.french)
    international_bytes = _scores(client, CsvDialect.international)
    assert french_bytes.startswith(BOM.encode("utf-8"))
    assert not international_bytes.startswith(BOM.encode("utf-8"))
    french_text = french_bytes.decode("utf-8")
    assert french_text.removeprefix(BOM).startswith(";".join(OPEN_DATA_COLUMNS[:3]))
    french = _rows(french_text, CsvDialect.french)
    international = _rows(international_bytes.decode("utf-8"), CsvDialect.international)
    assert len(french) == len(international)
    types = {field.name: field.type.value for field in FIELDS}
    true_fr, false_fr = BOOLEAN_TOKENS[CsvDialect.french]
    true_int, false_int = BOOLEAN_TOKENS[CsvDialect.international]
    # Column by column, by hand: the same values, spelled for a French spreadsheet.
    for french_row, international_row in zip(french, international, strict=True):
        for column in OPEN_DATA_COLUMNS:
            fr, intl = french_row[column], international_row[column]
            kind = types[column]
            if kind == "number" and intl:
                assert "." not in fr and float(fr.replace(",", ".")) == float(intl), column
            elif kind == "boolean":
                assert {fr: True, true_fr: True, false_fr: False}[fr] == {
                    true_int: True,
                    false_int: False,
                }[intl], column
            elif kind in ("integer", "year") and intl:
                assert int(fr) == int(intl), column
            else:
                assert fr == intl, column
    lyon = next(r for r in french if r["authority_code"] == "69123" and r["level"] == "overall")
    assert (lyon["ci_low"], lyon["confidence_level"], lyon["laureate"]) == ("68,95", "0,95", "1")


# --- the data package --------------------------------------------------------------------------


def test_the_data_package_validates_with_both_resources(
    client: TestClient, edition: Campaign, tmp_path: Path
) -> None:
    client.cookies.set("lang", "en")
    package = client.get(f"{BASE}/datapackage.json").json()
    assert package["name"] == f"barometre-{OPEN_YEAR}-scores"
    assert package["profile"] == "tabular-data-package"
    assert package["sources"] and _local(package["sources"][0]["path"]) == f"/results/{OPEN_YEAR}"
    resources = {resource["name"]: resource for resource in package["resources"]}
    assert set(resources) == {"scores", "scores-tableur"}
    assert resources["scores"]["dialect"]["delimiter"] == ","
    assert resources["scores-tableur"]["dialect"]["delimiter"] == ";"
    assert _local(resources["scores-tableur"]["path"]) == f"{BASE}/scores.csv?format=french"
    # The descriptor validates as it is published, with its files fetched beside it.
    for resource in package["resources"]:
        response = client.get(_local(resource["path"]))
        assert response.status_code == 200
        (tmp_path / f"{resource['name']}.csv").write_bytes(response.content)
        resource["path"] = f"{resource['name']}.csv"
    (tmp_path / "datapackage.json").write_text(json.dumps(package), encoding="utf-8")
    report = Package(str(tmp_path / "datapackage.json")).validate()
    assert report.valid, report.flatten(["taskName", "rowNumber", "fieldName", "type", "note"])


def test_descriptions_follow_the_readers_language(client: TestClient, edition: Campaign) -> None:
    french = client.get(f"{BASE}/schema.json")
    assert french.headers["content-language"] == "fr"
    titles = {field["name"]: field["title"] for field in french.json()["fields"]}
    assert (titles["authority_code"], titles["confidence_level"]) == (
        "Code de la collectivité",
        "Niveau de confiance",
    )
    package = client.get(f"{BASE}/datapackage.json").json()
    fields = package["resources"][0]["schema"]["fields"]
    assert fields[OPEN_DATA_COLUMNS.index("authority_code")]["title"] == "Code de la collectivité"
    english = client.get(f"{BASE}/schema.json?lang=en")
    assert english.headers["content-language"] == "en"
    titles = {field["name"]: field["title"] for field in english.json()["fields"]}
    assert (titles["authority_code"], titles["se"]) == ("Authority code", "Standard error")


# --- the data dictionary -----------------------------------------------------------------------


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.value)
def test_the_dictionary_has_one_line_per_column(
    client: TestClient, edition: Campaign, dialect: CsvDialect
) -> None:
    client.cookies.set("lang", "en")
    response = client.get(f"{BASE}/dictionary.csv", params={"format": dialect.value})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert "attachment" in response.headers["content-disposition"]
    text = response.content.decode("utf-8")
    assert text.startswith(BOM) == (dialect is CsvDialect.french)
    rows = _rows(text, dialect)
    assert list(rows[0]) == [
        "column",
        "title",
        "type",
        "required",
        "unit",
        "allowed values",
        "description",
    ]
    assert [row["column"] for row in rows] == OPEN_DATA_COLUMNS
    by_column = {row["column"]: row for row in rows}
    assert by_column["estimate"]["allowed values"] == "0–100"
    assert by_column["estimate"]["unit"] == "points out of 100"
    assert by_column["level"]["allowed values"] == "overall | component | channel | theme"
    assert by_column["n"]["type"] == "whole number (integer)"
    assert by_column["year"]["required"] == "yes" and by_column["df"]["required"] == "no"
    assert all(row["title"] and row["description"] for row in rows)


# --- the publication policy --------------------------------------------------------------------


def test_a_laureates_only_policy_names_only_laureates_in_every_format(
    client: TestClient, registry: Session, open_campaign: Campaign
) -> None:
    for code in ("59112", "01004"):
        register_candidate(registry, campaign=open_campaign, code=code, actor=None)
    scored(registry, open_campaign, POLICY_SPECS)
    _with_policy(registry, open_campaign, "laureates")
    publish(registry, open_campaign)
    laureates = {"69123", "01001"}
    for dialect in DIALECTS:
        rows = _rows(_scores(client, dialect).decode("utf-8"), dialect)
        assert {row["authority_code"] for row in rows} == laureates, dialect
    data = client.get(f"{BASE}/scores.json").json()
    assert {row["authority_code"] for row in data["rows"]} == laureates
    assert data["publication"]["scope"] == "laureates"
    assert all(row["laureate"] for row in data["rows"] if row["level"] == "overall")
