"""Registry import: complete, idempotent, all-or-nothing; and the search page."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select
from typer.testing import CliRunner

from app.accounts.models import Role
from app.authorities import repository
from app.authorities.models import Authority
from app.authorities.service import import_registry
from app.cli import cli
from app.core.config import get_settings
from app.core.errors import InvalidInput
from tests.conftest import REGISTRY_FILE, login, make_user, registry_sample_text

# shared/data/README.md says 36,358, but its own breakdown (34,969 communes + 1,255 EPCI + 109
# départements + 26 régions) and the file both give 36,359.
FULL_REGISTRY_ROWS = 36359

HEADER = "code,siren,name,kind,population,departement,region,epci\n"


def test_import_then_reimport_changes_nothing(session: Session) -> None:
    text = registry_sample_text()
    first = import_registry(session, text=text)
    session.commit()
    assert first.created > 200 and first.updated == 0
    before = repository.snapshot(session)

    second = import_registry(session, text=text)
    session.commit()
    assert (second.created, second.updated, second.unchanged) == (0, 0, first.created)
    assert repository.snapshot(session) == before


def test_reimport_updates_changed_rows_only(session: Session) -> None:
    import_registry(
        session,
        text=HEADER + "01001,210100012,L'Abergement-Clémenciat,commune,860,01,84,200069193\n",
    )
    session.commit()
    report = import_registry(
        session,
        text=HEADER
        + "01001,210100012,L'Abergement-Clémenciat,commune,900,01,84,200069193\n"
        + "01002,210100020,L'Abergement-de-Varey,commune,270,01,84,240100883\n",
    )
    session.commit()
    assert (report.created, report.updated, report.unchanged) == (1, 1, 0)
    assert session.get(Authority, "01001").population == 900  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("bad_line", "expected"),
    [
        ("01003,210100038,Somewhere,commune,not-a-number,01,84,", "Line 3: population"),
        ("01003,210100038,Somewhere,village,10,01,84,", "Line 3: kind"),
        ("01003,210100038,,commune,10,01,84,", "Line 3: name"),
        ("01003,210100038,Somewhere,commune,10,01", "Line 3: expected 8 fields, found 6"),
        (
            "01001,210100012,Duplicate,commune,10,01,84,",
            "Line 3: code 01001 already appears on line 2",
        ),
        ("01003,12,Somewhere,commune,10,01,84,", "Line 3: siren"),
    ],
)
def test_malformed_line_is_named_and_nothing_changes(
    session: Session, bad_line: str, expected: str
) -> None:
    import_registry(session, text=HEADER + "01001,210100012,Kept,commune,860,01,84,200069193\n")
    session.commit()
    before = repository.snapshot(session)
    text = HEADER + "01001,210100012,Renamed,commune,999,01,84,200069193\n" + bad_line + "\n"
    with pytest.raises(InvalidInput) as error:
        import_registry(session, text=text)
    session.rollback()
    assert expected in error.value.message
    assert repository.snapshot(session) == before


def test_missing_column_is_refused(session: Session) -> None:
    with pytest.raises(InvalidInput, match="missing column"):
        import_registry(session, text="code,name\n01001,X\n")


def test_cli_imports_the_full_registry_twice(
    database_url: str, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BAROMETRE_DATABASE_URL", database_url)
    monkeypatch.setenv("BAROMETRE_SECRET_KEY", "cli-test-secret-key-0123456789")
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        first = runner.invoke(cli, ["registry", "import", str(REGISTRY_FILE)])
        assert first.exit_code == 0, first.output
        assert f"{FULL_REGISTRY_ROWS} authorities read: {FULL_REGISTRY_ROWS} added" in first.output
        second = runner.invoke(cli, ["registry", "import", str(REGISTRY_FILE)])
        assert second.exit_code == 0, second.output
        assert f"0 added, 0 updated, {FULL_REGISTRY_ROWS} unchanged" in second.output
    finally:
        get_settings.cache_clear()
    assert repository.count(session) == FULL_REGISTRY_ROWS
    kinds = set(session.exec(select(Authority.kind)).all())
    assert kinds == {
        "commune",
        "epci-cc",
        "epci-ca",
        "epci-cu",
        "epci-metro",
        "epci-met69",
        "departement",
        "region",
    }


def test_cli_refuses_malformed_file(
    database_url: str, session: Session, monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + "01001,210100012,A,commune,10,01,84,\n01002,,B,commune,-5,01,84,\n")
    monkeypatch.setenv("BAROMETRE_DATABASE_URL", database_url)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli, ["registry", "import", str(bad)])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 1
    assert "Nothing imported" in result.output and "Line 3: population" in result.output
    assert repository.count(session) == 0


def test_search_by_name_without_accents_and_by_code(registry: Session, client: TestClient) -> None:
    login(client, make_user(registry, Role.admin))
    page = client.get("/registry", params={"q": "lyon"})
    assert page.status_code == 200
    assert "Lyon" in page.text and "<html" in page.text
    fragment = client.get("/registry", params={"q": "69123"}, headers={"HX-Request": "true"})
    assert fragment.status_code == 200
    assert "<html" not in fragment.text and "Lyon" in fragment.text
    paris = client.get("/registry", params={"q": "PARIS"})
    assert "75056" in paris.text


def test_search_paginates(registry: Session, client: TestClient) -> None:
    login(client, make_user(registry, Role.admin))
    first = client.get("/registry", params={"kind": "commune"}, headers={"HX-Request": "true"})
    second = client.get(
        "/registry", params={"kind": "commune", "page": 2}, headers={"HX-Request": "true"}
    )
    assert "Page 1" in first.text and "Page 2" in second.text
    codes_first = set(__import__("re").findall(r"<code>(\w+)</code>", first.text))
    codes_second = set(__import__("re").findall(r"<code>(\w+)</code>", second.text))
    assert len(codes_first) == 20 and codes_first.isdisjoint(codes_second)


def test_upload_through_the_page_is_all_or_nothing(registry: Session, client: TestClient) -> None:
    token = login(client, make_user(registry, Role.admin))
    count = repository.count(registry)
    response = client.post(
        "/registry/import",
        data={"csrf_token": token},
        files={"file": ("bad.csv", HEADER + "99999,,New,commune,5,01,84,\n1,,x,commune,-1,,,\n")},
    )
    assert response.status_code == 422
    assert "Ligne 3" in response.text
    assert repository.count(registry) == count
