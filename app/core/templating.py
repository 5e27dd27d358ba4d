"""One Jinja environment; the choice between a full page and an htmx fragment is made here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from babel.dates import format_date, format_datetime
from babel.numbers import format_decimal
from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from app.core.i18n import LOCALE_NAMES, SUPPORTED_LOCALES, get_locale, gettext, ngettext
from app.core.security import csrf_token

PARIS = ZoneInfo("Europe/Paris")
TEMPLATES_DIR = Path(__file__).resolve().parents[1] / "templates"

_environment = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
    autoescape=True,
    extensions=["jinja2.ext.i18n"],
    trim_blocks=True,
    lstrip_blocks=True,
)
templates = Jinja2Templates(env=_environment)
templates.env.install_gettext_callables(gettext, ngettext, newstyle=True)  # type: ignore[attr-defined]


def _format_number(value: float | int | None, digits: int = 0) -> str:
    if value is None:
        return "–"
    pattern = "#,##0" + ("." + "0" * digits if digits else "")
    return format_decimal(value, format=pattern, locale=get_locale())


def _format_date(value: date | datetime | None, style: str = "medium") -> str:
    if value is None:
        return "–"
    if isinstance(value, datetime):
        return format_datetime(value, format=style, tzinfo=PARIS, locale=get_locale())
    return format_date(value, format=style, locale=get_locale())


templates.env.filters["number"] = _format_number
templates.env.filters["date"] = _format_date
templates.env.globals["LOCALE_NAMES"] = LOCALE_NAMES
templates.env.globals["SUPPORTED_LOCALES"] = SUPPORTED_LOCALES


FLASH_SESSION_KEY = "flashes"


def flash(request: Request, message: str, category: str = "success") -> None:
    """Queue a one-time message for the next page (after a redirect)."""
    request.session.setdefault(FLASH_SESSION_KEY, []).append(
        {"message": message, "category": category}
    )


def is_fragment_request(request: Request) -> bool:
    """An htmx request that is not a boosted navigation wants only a fragment."""
    return (
        request.headers.get("hx-request") == "true"
        and request.headers.get("hx-boosted") != "true"
        and request.headers.get("hx-history-restore-request") != "true"
    )


@dataclass(frozen=True)
class LayoutUser:
    """What the layout shows of the signed-in user: a plain snapshot, valid after a rollback."""

    id: int
    display_name: str
    role: str
    authority_code: str | None


def remember_layout_user(request: Request, user: Any) -> None:
    request.state.layout_user = LayoutUser(
        id=user.id,
        display_name=user.display_name,
        role=user.role,
        authority_code=user.authority_code,
    )


def _layout_user(request: Request) -> LayoutUser | None:
    """The signed-in user for the navigation, also on error pages no route dependency served."""
    user = getattr(request.state, "layout_user", None)
    if user is None and request.session.get("user_id") is not None:
        from sqlmodel import Session

        from app.accounts.models import User

        with Session(request.app.state.engine) as session:
            row = session.get(User, int(request.session["user_id"]))
            if row is not None and row.is_active:
                remember_layout_user(request, row)
                user = request.state.layout_user
    return user


def render(
    request: Request,
    page: str,
    context: dict[str, Any] | None = None,
    *,
    fragment: str | None = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """Render ``page`` (extends the layout), or ``fragment`` alone for an htmx request."""
    name = fragment if fragment and is_fragment_request(request) else page
    full_context: dict[str, Any] = {
        "current_user": _layout_user(request),
        "flashes": request.session.pop(FLASH_SESSION_KEY, []),
        "csrf_token": csrf_token(request),
        "locale": get_locale(),
        **(context or {}),
    }
    return templates.TemplateResponse(
        request, name, full_context, status_code=status_code, headers=headers
    )
