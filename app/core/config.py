"""The one settings object: nothing else in the application reads the environment."""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from fastapi import Depends, Request
from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_VAR_DIR = PROJECT_ROOT / "var"
PLACEHOLDER_SECRETS = {"", "changeme", "change-me", "secret", "dev"}


def _development_secret_key(var_dir: Path) -> str:
    """Generate a secret key once and keep it, so sessions survive restarts in development."""
    key_file = var_dir / "secret_key"
    if key_file.exists():
        return key_file.read_text().strip()
    var_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    key_file.write_text(key)
    key_file.chmod(0o600)
    return key


class Settings(BaseSettings):
    """Configuration of a Baromètre instance (environment variables prefixed ``BAROMETRE_``)."""

    model_config = SettingsConfigDict(env_prefix="BAROMETRE_", env_file=".env", extra="ignore")

    environment: Literal["development", "production", "test"] = "development"
    var_dir: Path = DEFAULT_VAR_DIR
    database_url: str = ""
    secret_key: str = ""
    default_locale: Literal["fr", "en"] = "fr"
    organiser: str = "Baromètre"
    workers: int = Field(default=1, ge=1, le=64)
    # Login throttling: failures allowed per client address and per account in a window.
    login_max_failures: int = Field(default=5, ge=1)
    login_window_seconds: int = Field(default=900, ge=1)
    # Public survey submissions allowed per client address in a window. Generous: a counter's
    # kiosk tablet or a mobile carrier's shared address sends many honest responses.
    public_submissions_per_window: int = Field(default=120, ge=1)
    public_window_seconds: int = Field(default=600, ge=1)
    session_max_age_seconds: int = Field(default=8 * 3600, ge=60)
    invitation_valid_days: int = Field(default=14, ge=1)
    secure_cookies: bool = False
    # Mystery shoppers' evidence files (photos, screenshots, PDFs); default: <var_dir>/evidence.
    evidence_dir: Path | None = None
    # Analyst exports being built and kept until they expire; default: <var_dir>/exports.
    exports_dir: Path | None = None
    # Exports hold individual answers: their files are deleted after this many days.
    export_retention_days: int = Field(default=7, ge=1, le=90)
    # The address people reach the platform at, for the links in e-mails (the request's own
    # address when empty, e.g. http://127.0.0.1:8000 in development).
    public_url: str = ""
    # Background jobs: the web process runs a worker unless told not to (``barometre serve
    # --no-worker``, when ``barometre worker`` runs elsewhere).
    in_process_worker: bool = True
    job_lease_seconds: float = Field(default=120, gt=0)
    job_poll_seconds: float = Field(default=1.0, gt=0)
    # Outgoing e-mail. Without a host nothing leaves the machine: messages are kept in the
    # outbox, which the organiser reads at /admin/outbox.
    smtp_host: str = ""
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_security: Literal["starttls", "tls", "none"] = "starttls"
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_sender: str = "Baromètre <no-reply@barometre.invalid>"
    smtp_timeout_seconds: float = Field(default=30, gt=0)

    @model_validator(mode="after")
    def _fill_defaults(self) -> Settings:
        if not self.database_url:
            self.var_dir.mkdir(parents=True, exist_ok=True)
            self.database_url = f"sqlite:///{self.var_dir / 'barometre.sqlite3'}"
        if self.secret_key.strip().lower() in PLACEHOLDER_SECRETS:
            if self.environment == "production":
                raise ValueError(
                    "BAROMETRE_SECRET_KEY is required in production (a long random string)"
                )
            self.secret_key = _development_secret_key(self.var_dir)
        if self.evidence_dir is None:
            self.evidence_dir = self.var_dir / "evidence"
        if self.exports_dir is None:
            self.exports_dir = self.var_dir / "exports"
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache
def get_settings() -> Settings:
    return Settings()


def settings_of(request: Request) -> Settings:
    """The running application's settings (tests run apps with their own)."""
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(settings_of)]
