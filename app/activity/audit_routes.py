"""The audit log: who did what, when, to which object; filtered, paged, exported as CSV."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import ValidationError

from app.accounts import repository as accounts_repository
from app.accounts.dependencies import AdminUser
from app.audit import service
from app.audit.schemas import AuditFilters, filter_errors, raw_filters
from app.core.db import SessionDep
from app.core.errors import InvalidInput
from app.core.templating import render
from app.core.timeutil import LOCAL_ZONE

router = APIRouter()


def _parse(request: Request) -> tuple[AuditFilters | None, dict[str, str], dict[str, str]]:
    """The filters of the query string, or the per-field errors that refuse them."""
    raw = raw_filters(request.query_params)
    try:
        return AuditFilters.model_validate(raw), raw, {}
    except ValidationError as exc:
        return None, raw, filter_errors(exc)


@router.get("/admin/audit", name="audit_log")
def audit_log(request: Request, session: SessionDep, admin: AdminUser) -> Response:
    """Every audited action, newest first, 50 a page, with filters that survive paging."""
    filters, raw, errors = _parse(request)
    people = sorted(
        accounts_repository.list_users(session), key=lambda user: user.display_name.casefold()
    )
    context: dict[str, Any] = {
        "form": raw,
        "errors": errors,
        "people": people,
        "choices": service.filter_choices(session),
        "log": None,
    }
    if filters is None:
        # Nothing is shown for filters that could not be read: a refusal, not a guess.
        return render(request, "audit/log.html", context, status_code=422)
    query = filters.query()
    base = request.url_for("audit_log").path

    def page_url(number: int) -> str:
        return base + "?" + urlencode({**query, "page": number})

    context.update(
        {
            "form": query,
            "log": service.audit_page(session, filters=filters, actors=service.actors_of(people)),
            "filtered": filters.is_filtered,
            "page_url": page_url,
            "csv_url": request.url_for("audit_log_csv").path
            + ("?" + urlencode(query) if query else ""),
        }
    )
    return render(request, "audit/log.html", context)


@router.get("/admin/audit.csv", name="audit_log_csv")
def audit_log_csv(request: Request, session: SessionDep, admin: AdminUser) -> Response:
    """The matching events of every page as CSV, streamed (the page's filters, no paging)."""
    filters, _raw, errors = _parse(request)
    if filters is None:
        field, message = next(iter(errors.items()))
        raise InvalidInput(" ".join(errors.values()) if len(errors) > 1 else message, field=field)
    actors = service.actors_of(accounts_repository.list_users(session))
    filename = service.csv_filename(datetime.now(LOCAL_ZONE).date())
    return StreamingResponse(
        service.csv_export(request.app.state.engine, filters=filters, actors=actors),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
