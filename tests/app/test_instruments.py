"""Publishing instruments: versioned by content, immutable, previewed as forms."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import Session, select
from typer.testing import CliRunner

import surveys
from app.accounts.models import Role
from app.cli import cli
from app.core.config import get_settings
from app.instruments.models import InstrumentVersion
from app.instruments.service import load_published, publish
from tests.conftest import login, make_user


def test_same_content_same_version_changed_content_next(session: Session) -> None:
    citizen = surveys.default_instruments()["citizen"]
    first = publish(session, instrument=citizen, actor=None)
    again = publish(session, instrument=citizen, actor=None)
    session.commit()
    assert first.created and not again.created
    assert again.version.id == first.version.id and first.version.version == 1

    changed = citizen.model_copy(
        update={"title": citizen.title.model_copy(update={"fr": "Votre avis compte"})}
    )
    second = publish(session, instrument=changed, actor=None)
    session.commit()
    assert second.created and second.version.version == 2
    assert second.version.sha256 != first.version.sha256
    assert load_published(first.version) == citizen
    assert surveys.instrument_sha256(load_published(second.version)) == second.version.sha256


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE instrument_versions SET title_fr = 'changed'",
        "UPDATE instrument_versions SET content = '{}'",
        "DELETE FROM instrument_versions",
    ],
)
def test_database_refuses_to_change_a_published_version(
    session: Session, engine: sa.Engine, statement: str
) -> None:
    publish(session, instrument=surveys.default_instruments()["grid-site"], actor=None)
    session.commit()
    with pytest.raises(sa.exc.DatabaseError, match="immutable"), engine.begin() as connection:
        connection.exec_driver_sql(statement)
    row = session.exec(select(InstrumentVersion)).one()
    session.refresh(row)
    assert row.title_fr != "changed" and row.content


def test_cli_publishes_defaults_once(
    database_url: str, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BAROMETRE_DATABASE_URL", database_url)
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        first = runner.invoke(cli, ["instruments", "publish", "--defaults"])
        second = runner.invoke(cli, ["instruments", "publish", "--defaults"])
        listing = runner.invoke(cli, ["instruments", "list"])
    finally:
        get_settings.cache_clear()
    assert first.exit_code == 0 and first.output.count("published version 1") == 7
    assert second.exit_code == 0 and second.output.count("unchanged, already version 1") == 7
    assert "grid-guichet" in listing.output
    assert len(session.exec(select(InstrumentVersion)).all()) == 7


def test_admin_lists_and_previews_every_default(session: Session, client: TestClient) -> None:
    for instrument in surveys.default_instruments().values():
        publish(session, instrument=instrument, actor=None)
    session.commit()
    login(client, make_user(session, Role.admin))
    listing = client.get("/admin/instruments")
    assert listing.status_code == 200
    for version in session.exec(select(InstrumentVersion)).all():
        page = client.get(f"/admin/instruments/{version.id}")
        assert page.status_code == 200, version.key
        assert "<fieldset" in page.text and "<legend>" in page.text
    assert client.get("/admin/instruments/999999").status_code == 404


def test_orm_changes_to_a_published_version_are_refused(session: Session) -> None:
    row = publish(session, instrument=surveys.default_instruments()["citizen"], actor=None).version
    session.commit()
    row.title_fr = "Réécrit en douce"
    session.add(row)
    with pytest.raises(sa.exc.DatabaseError, match="immutable"):
        session.commit()
    session.rollback()
    session.refresh(row)
    assert row.title_fr != "Réécrit en douce"
