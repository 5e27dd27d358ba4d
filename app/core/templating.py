"""One Jinja environment; the choice between a full page and an htmx fragment is made here.

Rules: a 4xx page (:func:`render` with a ``status_code`` of 400-499) refuses the request, so
its unit of work rolls back what the route flushed; a "flash an error and redirect" refusal is
:func:`flash_refusal` (a plain :func:`flash` keeps the changes: it also words warnings after a
success). Core knows no domain: the layout learns who is signed in through the loader the
accounts domain registers with :func:`set_layout_user_loader` (``app.main.create_app``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import jinja2
from babel.dates import format_date, format_datetime
from babel.numbers import format_decimal
from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from app.core.db import mark_refused
from app.core.i18n import LOCALE_NAMES, SUPPORTED_LOCALES, get_locale, gettext, ngettext
from app.core.security import csrf_token
from app.core.timeutil import LOCAL_ZONE

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
        return format_datetime(value, format=style, tzinfo=LOCAL_ZONE, locale=get_locale())
    return format_date(value, format=style, locale=get_locale())


templates.env.filters["number"] = _format_number
templates.env.filters["date"] = _format_date
templates.env.globals["LOCALE_NAMES"] = LOCALE_NAMES
templates.env.globals["SUPPORTED_LOCALES"] = SUPPORTED_LOCALES


FLASH_SESSION_KEY = "flashes"


def flash(request: Request, message: str, category: str = "success") -> None:
    """Queue a one-time message for the next page (after a redirect).

    A warning after a success is ``category="error"``; a refusal is :func:`flash_refusal`.
    """
    request.session.setdefault(FLASH_SESSION_KEY, []).append(
        {"message": message, "category": category}
    )


def flash_refusal(request: Request, message: str) -> None:
    """Refuse the request with a message on the next page: nothing it flushed is kept."""
    mark_refused(request)
    flash(request, message, "error")


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


def remember_layout_user(request: Request, user: Any) -> LayoutUser:
    """Keep what the layout shows of ``user`` (any object with these attributes) for this
    request."""
    layout_user = LayoutUser(
        id=user.id,
        display_name=user.display_name,
        role=user.role,
        authority_code=user.authority_code,
    )
    request.state.layout_user = layout_user
    return layout_user


LayoutUserLoader = Callable[[Request], LayoutUser | None]
_layout_user_loader: LayoutUserLoader | None = None


def set_layout_user_loader(loader: LayoutUserLoader) -> None:
    """Say how to find the signed-in user of a page no route dependency served (an error page).

    The accounts domain owns users and the session key; it registers its loader here so that
    core imports no domain. Without a loader such pages show nobody signed in.
    """
    global _layout_user_loader
    _layout_user_loader = loader


def _layout_user(request: Request) -> LayoutUser | None:
    """The signed-in user for the navigation, also on error pages no route dependency served."""
    user: LayoutUser | None = getattr(request.state, "layout_user", None)
    if user is None and _layout_user_loader is not None:
        user = _layout_user_loader(request)
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
    """Render ``page`` (extends the layout), or ``fragment`` alone for an htmx request.

    A 4xx page refuses the request: its unit of work rolls back what the route flushed.
    """
    if 400 <= status_code < 500:
        mark_refused(request)
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
