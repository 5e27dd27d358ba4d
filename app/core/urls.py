"""Absolute addresses for links that leave the site (e-mails, posters)."""

from __future__ import annotations

from fastapi import Request

from app.core.config import Settings


def absolute_url(request: Request, settings: Settings, path: str) -> str:
    """``path`` on the platform's public address (``BAROMETRE_PUBLIC_URL``), or on the
    address this request came to when none is configured."""
    base = settings.public_url.rstrip("/") or str(request.base_url).rstrip("/")
    return base + "/" + path.lstrip("/")


# Jobs have no request: their links use the configured address, or the development server's.
DEVELOPMENT_URL = "http://localhost:8000"


def public_base(settings: Settings) -> str:
    """The platform's public address for links written outside a request (job handlers)."""
    return (settings.public_url or DEVELOPMENT_URL).rstrip("/")
