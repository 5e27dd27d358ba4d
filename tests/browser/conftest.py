"""A real server (uvicorn on 127.0.0.1) with the demo, and headless Debian Chromium."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from playwright.sync_api import Browser, Page, sync_playwright
from sqlmodel import Session

from app.cli import alembic_config
from app.core.config import Settings
from app.core.db import create_db_engine
from app.main import create_app
from demo.editions import build_demo
from tests.support.servers import serve_in_thread

ROOT = Path(__file__).resolve().parents[2]
AXE_SCRIPT = ROOT / "tests" / ".assets" / "axe.min.js"
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@pytest.fixture(scope="session")
def live_database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A SQLite database with the demo barometer, built through Alembic."""
    url = f"sqlite:///{tmp_path_factory.mktemp('live') / 'demo.sqlite3'}"
    command.upgrade(alembic_config(url), "head")
    engine = create_db_engine(url)
    with Session(engine) as session:
        build_demo(session, organiser="Baromètre", seed=2026)
        session.commit()
    engine.dispose()
    return url


@pytest.fixture(scope="session")
def live_server(live_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    var_dir = tmp_path_factory.mktemp("live-var")
    url = live_database_url
    settings = Settings(
        environment="test",
        database_url=url,
        secret_key="browser-test-secret-0123456789abcdef",
        var_dir=var_dir,
    )
    with serve_in_thread(create_app(settings)) as base_url:
        yield base_url


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        raise RuntimeError("Chromium is missing: scripts/test.sh installs Debian's chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def axe_source() -> str:
    if not AXE_SCRIPT.exists():
        raise RuntimeError("axe-core is missing: scripts/test.sh fetches it from npm")
    return AXE_SCRIPT.read_text(encoding="utf-8")


# The sign-in form's words in each language (label of the address, of the password, button).
SIGN_IN_WORDS = {
    "fr": ("Adresse électronique", "Mot de passe", "Se connecter"),
    "en": ("E-mail address", "Password", "Sign in"),
}


def sign_in(page: Page, base: str, language: str, account: tuple[str, str]) -> None:
    """Choose ``language``, then sign in through the real form as ``account`` (address,
    password)."""
    email_label, password_label, button = SIGN_IN_WORDS[language]
    page.goto(f"{base}/lang/{language}?next=/login")
    page.get_by_label(email_label).fill(account[0])
    page.get_by_label(password_label).fill(account[1])
    page.get_by_role("button", name=button).click()
    page.wait_for_load_state()
