"""Fixtures shared by the whole suite: both databases, the app, clients and factories."""

from __future__ import annotations

import csv
import io
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session, SQLModel

import app.models  # noqa: F401  (every table on the metadata)
from app.accounts.models import Role, User
from app.campaigns.models import Campaign
from app.cli import alembic_config
from app.collection import cache as collection_cache
from app.core import cache
from app.core.config import Settings
from app.core.db import create_db_engine
from app.core.i18n import set_locale
from app.core.security import hash_password
from app.jobs.worker import Worker
from app.main import create_app
from app.missions.models import Mission
from tests.support.postgres import PrivateCluster, start_private_cluster
from tests.support.servers import serve_in_thread
from tests.support.smtp import SmtpSink, smtp_server
from tests.support.visits import make_mission

PASSWORD = "correct horse battery staple"
TEST_SECRET_KEY = "test-secret-key-that-is-long-enough-0123456789"
BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(autouse=True)
def english_messages() -> None:
    """Service-level messages in English for assertions; pages choose their own locale."""
    set_locale("en")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """URL of a PostgreSQL server: the configured one, or a private cluster started here."""
    configured = os.environ.get("BAROMETRE_TEST_POSTGRES_URL")
    if configured:
        yield configured
        return
    cluster: PrivateCluster = start_private_cluster()
    try:
        yield cluster.url
    finally:
        cluster.stop()


def _new_postgres_database(server_url: str, name: str) -> str:
    admin_engine = sa.create_engine(
        make_url(server_url).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT"
    )
    with admin_engine.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin_engine.dispose()
    return (
        make_url(server_url)
        .set(drivername="postgresql+psycopg", database=name)
        .render_as_string(hide_password=False)
    )


@pytest.fixture(scope="session")
def new_database(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """Factory of empty databases on either backend (used by migration tests)."""

    def make(backend: str) -> str:
        if backend == "sqlite":
            path = tmp_path_factory.mktemp("db") / f"{uuid.uuid4().hex}.sqlite3"
            return f"sqlite:///{path}"
        server = request.getfixturevalue("postgres_server")
        return _new_postgres_database(server, "t_" + uuid.uuid4().hex[:16])

    return make


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(request: pytest.FixtureRequest, new_database) -> str:
    """A database per backend, its schema built by Alembic (never by create_all)."""
    url = new_database(request.param)
    command.upgrade(alembic_config(url), "head")
    return url


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_db_engine(database_url)
    yield engine
    engine.dispose()


def _empty_all_tables(engine: Engine) -> None:
    tables = [table for table in SQLModel.metadata.sorted_tables]
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            names = ", ".join(f'"{table.name}"' for table in tables)
            connection.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            # Immutability triggers (published instruments) would refuse the clean-up: lift
            # them for the delete and put them back exactly as they were.
            triggers = connection.exec_driver_sql(
                "SELECT name, sql FROM sqlite_master WHERE type = 'trigger'"
            ).all()
            for name, _sql in triggers:
                connection.exec_driver_sql(f'DROP TRIGGER "{name}"')
            for table in reversed(tables):
                connection.execute(table.delete())
            for _name, sql in triggers:
                connection.exec_driver_sql(sql)


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session on a clean database; every table is emptied after the test."""
    with Session(engine, expire_on_commit=False) as db_session:
        yield db_session
    _empty_all_tables(engine)
    # Cached survey targets and known rate-limit counts describe rows that are gone now, and
    # every bounded cache may hold rows whose ids the next test reuses.
    collection_cache.reset()
    cache.clear_all()


@pytest.fixture(scope="session")
def settings(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        environment="test",
        database_url=database_url,
        secret_key=TEST_SECRET_KEY,
        var_dir=tmp_path_factory.mktemp("var"),
        login_max_failures=3,
        login_window_seconds=600,
        public_submissions_per_window=100_000,
        # Tests run jobs themselves (``run_jobs``) or start a worker where they test one.
        in_process_worker=False,
    )


@pytest.fixture(scope="session")
def application(settings: Settings) -> FastAPI:
    return create_app(settings)


@pytest.fixture
def client(application: FastAPI, session: Session) -> Iterator[TestClient]:
    with TestClient(application, base_url="http://testserver", follow_redirects=False) as c:
        yield c


# --- factories and helpers -------------------------------------------------------------------


def make_user(
    session: Session,
    role: Role | str,
    *,
    email: str | None = None,
    authority_code: str | None = None,
) -> User:
    role = Role(role)
    user = User(
        email=email or f"{role.value}-{uuid.uuid4().hex[:8]}@example.org",
        display_name=f"Test {role.value}",
        role=role.value,
        authority_code=authority_code,
        password_hash=hash_password(PASSWORD),
    )
    session.add(user)
    session.commit()
    return user


CSRF_PATTERN = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_from(client: TestClient, path: str = "/login") -> str:
    response = client.get(path)
    match = CSRF_PATTERN.search(response.text)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def login(client: TestClient, user: User, password: str = PASSWORD) -> str:
    """Sign in through the real form; returns the CSRF token of the new session."""
    token = csrf_from(client)
    response = client.post(
        "/login", data={"email": user.email, "password": password, "csrf_token": token}
    )
    assert response.status_code == 303, response.text
    return csrf_from(client, "/")


REGISTRY_FILE = Path(__file__).resolve().parents[1] / "app" / "data" / "collectivites.csv"


def registry_sample_text(per_kind: int = 40) -> str:
    """A deterministic slice of the real registry with every kind and every population band."""
    reader = csv.reader(io.StringIO(REGISTRY_FILE.read_text(encoding="utf-8")))
    header = next(reader)
    rows = list(reader)
    by_kind: dict[str, list[list[str]]] = {}
    for row in rows:
        by_kind.setdefault(row[3], []).append(row)
    chosen: dict[str, list[str]] = {}
    for kind_rows in by_kind.values():
        ordered = sorted(kind_rows, key=lambda r: -int(r[4]))
        step = max(1, len(ordered) // per_kind)
        for row in ordered[::step][:per_kind]:
            chosen[row[0]] = row
    for row in rows:
        if row[0] in {"69123", "75056", "01001", "01004"}:
            chosen[row[0]] = row
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(chosen.values())
    return buffer.getvalue()


@pytest.fixture
def registry(session: Session) -> Session:
    from app.authorities.service import import_registry

    import_registry(session, text=registry_sample_text())
    session.commit()
    return session


@pytest.fixture(scope="session")
def live_server_url(application: FastAPI) -> Iterator[str]:
    """The test application served by a real uvicorn on 127.0.0.1 (real HTTP, real sockets)."""
    with serve_in_thread(application) as url:
        yield url


OPEN_YEAR = 2030
OPEN_CANDIDATES = ("69123", "01001", "75056")


@pytest.fixture
def open_campaign(registry: Session, settings: Settings):
    """An open campaign of the test organiser with three candidates and the default instruments."""
    from datetime import date

    import surveys
    from app.campaigns.schemas import CampaignCreate
    from app.campaigns.service import (
        create_campaign,
        pin_latest_versions,
        register_candidate,
        transition,
    )
    from app.instruments.service import publish

    campaign = create_campaign(
        registry,
        data=CampaignCreate(
            year=OPEN_YEAR, name="Ouverte", opens_at=date(2030, 1, 1), closes_at=date(2030, 12, 1)
        ),
        organiser=settings.organiser,
        actor=None,
    )
    for code in OPEN_CANDIDATES:
        register_candidate(registry, campaign=campaign, code=code, actor=None)
    for instrument in surveys.default_instruments().values():
        publish(registry, instrument=instrument, actor=None)
    pin_latest_versions(registry, campaign=campaign, actor=None)
    transition(registry, campaign=campaign, to_state="open", actor=None)
    registry.commit()
    return campaign


VALID_ANSWERS = {
    "channel": "guichet",
    "overall": 3,
    "satisfied": 4,
    "trust": 3,
    "effective": 5,
    "ease": 4,
    "efficiency": 2,
    "equity": "na",
    "employees": 5,
    "courtesy": 4,
    "clarity": 4,
    "delay_kept": "yes",
    "age_band": "30_44",
    "comment": "Très bon accueil, merci.",
}


# --- shoppers and their missions (visits, evidence, browser tests) -----------------------------


@pytest.fixture
def shopper(registry: Session) -> User:
    return make_user(registry, Role.shopper)


@pytest.fixture
def mission(open_campaign: Campaign, registry: Session, shopper: User) -> Mission:
    return make_mission(registry, open_campaign, shopper)


@pytest.fixture
def shopper_client(client: TestClient, shopper: User) -> tuple[TestClient, str]:
    client.cookies.set("lang", "en")
    return client, login(client, shopper)


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    """A real SMTP server on 127.0.0.1 for this test."""
    with smtp_server() as sink:
        yield sink


@pytest.fixture
def mail_settings(settings: Settings, smtp: SmtpSink) -> Settings:
    """The suite's settings pointing at this test's SMTP server."""
    return settings.model_copy(update=smtp.settings())


def run_jobs(engine: Engine | sa.Connection, settings: Settings | None = None) -> int:
    """Run every job due now in this process (what the worker would do); returns how many.

    Without ``settings``, those of a test instance on ``engine``'s database (no SMTP server:
    e-mails are kept in the outbox)."""
    if isinstance(engine, sa.Connection):
        engine = engine.engine
    if settings is None:
        settings = Settings(
            environment="test",
            database_url=engine.url.render_as_string(hide_password=False),
            secret_key=TEST_SECRET_KEY,
            in_process_worker=False,
        )
    return Worker(engine, settings).drain()
