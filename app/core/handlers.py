"""Error handlers: one place turns errors into a page inside the layout, or JSON for the API."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.core.errors import DomainError, NotAuthenticated, TooManyRequests
from app.core.i18n import _
from app.core.templating import is_fragment_request, render

logger = logging.getLogger("barometre")


def wants_json(request: Request) -> bool:
    if request.url.path.startswith("/api/"):
        return True
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


def _status_title(status_code: int) -> str:
    titles = {
        400: _("Request refused"),
        401: _("Sign-in required"),
        403: _("Access denied"),
        404: _("Page not found"),
        405: _("Method not allowed"),
        409: _("Conflict"),
        410: _("Already answered"),
        413: _("Request too large"),
        422: _("Invalid input"),
        429: _("Too many requests"),
        500: _("Something went wrong"),
    }
    return titles.get(status_code, _("Error"))


def error_response(
    request: Request,
    *,
    status_code: int,
    message: str,
    field: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    if wants_json(request):
        body: dict[str, Any] = {"detail": message}
        if field:
            body["field"] = field
        if errors:
            body["errors"] = errors
        return JSONResponse(body, status_code=status_code, headers=headers)
    return render(
        request,
        "errors/error.html",
        {
            "status_code": status_code,
            "title": _status_title(status_code),
            "message": message,
            "errors": errors or [],
        },
        fragment="errors/_error.html",
        status_code=status_code,
        headers=headers,
    )


async def domain_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DomainError)
    if isinstance(exc, NotAuthenticated) and not wants_json(request):
        login_url = "/login?next=" + quote(request.url.path, safe="/")
        if is_fragment_request(request):
            return Response(status_code=401, headers={"HX-Redirect": login_url})
        return RedirectResponse(login_url, status_code=303)
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, TooManyRequests) else None
    return error_response(
        request,
        status_code=exc.status_code,
        message=exc.message,
        field=exc.field,
        errors=getattr(exc, "errors", None),
        headers=headers,
    )


async def http_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    messages = {
        404: _("The page you asked for does not exist or has moved."),
        405: _("This address does not accept that kind of request."),
    }
    message = messages.get(exc.status_code) or str(exc.detail)
    return error_response(
        request,
        status_code=exc.status_code,
        message=message,
        headers=getattr(exc, "headers", None),
    )


def _field_name(location: tuple[Any, ...]) -> str:
    parts = [str(part) for part in location if part not in ("body", "query", "path", "form")]
    return ".".join(parts) or "request"


async def validation_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"field": _field_name(tuple(error["loc"])), "message": error["msg"]}
        for error in exc.errors()
    ]
    summary = "; ".join(f"{error['field']}: {error['message']}" for error in errors)
    return error_response(
        request,
        status_code=422,
        message=_("Some fields are invalid: %(summary)s") % {"summary": summary},
        errors=errors,
    )


async def unexpected_error_handler(request: Request, exc: Exception) -> Response:
    logger.exception("Unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(
        request,
        status_code=500,
        message=_("An unexpected error occurred. It has been logged; please try again later."),
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, domain_error_handler)
    app.add_exception_handler(StarletteHTTPException, http_error_handler)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(Exception, unexpected_error_handler)
