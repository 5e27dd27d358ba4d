"""Public pages: home, health probes, language switch, privacy."""

from __future__ import annotations

from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from app.accounts.dependencies import OptionalUser
from app.campaigns import repository as campaigns_repository
from app.core.db import SessionDep
from app.core.i18n import SUPPORTED_LOCALES
from app.core.middleware import LOCALE_COOKIE
from app.core.templating import render

router = APIRouter()


@router.get("/healthz", name="healthz", include_in_schema=False)
def healthz() -> dict[str, str]:
    """Liveness: answers without touching the database."""
    return {"status": "ok"}


@router.get("/readyz", name="readyz", include_in_schema=False)
def readyz(request: Request) -> Response:
    """Readiness: the database answers."""
    try:
        with request.app.state.engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except Exception as exc:  # any failure means "not ready", with the reason for operators
        return JSONResponse({"status": "unavailable", "reason": type(exc).__name__}, 503)
    return JSONResponse({"status": "ready"})


@router.get("/", name="home")
def home(request: Request, session: SessionDep, user: OptionalUser) -> Response:
    campaigns = campaigns_repository.list_campaigns(session)
    return render(request, "home.html", {"campaigns": campaigns})


@router.get("/lang/{locale}", name="set_language")
def set_language(locale: str, next: Annotated[str, Query(max_length=500)] = "/") -> Response:
    target = next if next.startswith("/") and not next.startswith("//") else "/"
    response = RedirectResponse(target, status_code=303)
    if locale in SUPPORTED_LOCALES:
        response.set_cookie(
            LOCALE_COOKIE, locale, max_age=365 * 24 * 3600, httponly=True, samesite="lax"
        )
    return response
