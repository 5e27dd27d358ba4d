"""Analyst exports: the page that asks for one and lists them, and the download.

The organiser (admin) exports a whole campaign or one authority; an authority contact its
own rows only. URL names: ``exports_page``, ``exports_request``, ``export_download``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import FileResponse, RedirectResponse, Response

from app.accounts.dependencies import RequireRole
from app.accounts.models import Role, User
from app.campaigns import service as campaigns_service
from app.core.config import SettingsDep
from app.core.db import SessionDep
from app.core.errors import InvalidInput
from app.core.i18n import _, get_locale
from app.core.templating import flash, render
from app.exports import service
from app.exports.models import EXPORT_STATE_LABELS, ExportContent, ExportFormat, ExportState

router = APIRouter(tags=["exports"])

OrganiserOrAuthority = Annotated[User, Depends(RequireRole(Role.admin, Role.authority))]
PENDING = (ExportState.queued, ExportState.running)


def _page(
    request: Request,
    session: SessionDep,
    user: User,
    campaign_id: int,
    *,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    campaign = campaigns_service.get_campaign(session, campaign_id=campaign_id)
    exports = service.exports_page(session, campaign=campaign, user=user)
    context = {
        "campaign": campaign,
        "exports": exports,
        "pending": any(export.state in PENDING for export in exports),
        "contents": [(c.value, service.content_label(c)) for c in ExportContent],
        "formats": [(f.value, service.format_label(f)) for f in ExportFormat],
        "state_labels": EXPORT_STATE_LABELS,
        "content_label": service.content_label,
        "format_label": service.format_label,
        "is_organiser": user.role == Role.admin,
        "errors": errors or {},
    }
    return render(
        request,
        "exports/page.html",
        context,
        fragment="exports/_list.html",
        status_code=status_code,
    )


@router.get("/campaigns/{campaign_id}/exports", name="exports_page")
def exports_page(
    request: Request, session: SessionDep, user: OrganiserOrAuthority, campaign_id: int
) -> Response:
    """The export form and the exports already asked for (an authority sees its own)."""
    return _page(request, session, user, campaign_id)


@router.post("/campaigns/{campaign_id}/exports", name="exports_request")
def exports_request(
    request: Request,
    session: SessionDep,
    user: OrganiserOrAuthority,
    campaign_id: int,
    content: Annotated[str, Form(max_length=20)] = "",
    format: Annotated[str, Form(max_length=20)] = "",
    authority_code: Annotated[str, Form(max_length=12)] = "",
    shopper_ids: Annotated[str, Form(max_length=5)] = "",
) -> Response:
    """Queue an export; the page lists it, and links its file once the job has built it."""
    campaign = campaigns_service.get_campaign(session, campaign_id=campaign_id)
    errors: dict[str, str] = {}
    if content not in ExportContent.__members__:
        errors["content"] = _("Choose what to export.")
    if format not in ExportFormat.__members__:
        errors["format"] = _("Choose a format.")
    if errors:
        return _page(request, session, user, campaign_id, errors=errors, status_code=422)
    try:
        service.request_export(
            session,
            campaign=campaign,
            user=user,
            request=service.ExportRequest(
                content=ExportContent(content),
                format=ExportFormat(format),
                authority_code=authority_code.strip().upper() or None,
                shopper_ids=shopper_ids == "on",
            ),
            language=get_locale(),
        )
    except InvalidInput as exc:
        errors[exc.field or "content"] = exc.message
        return _page(request, session, user, campaign_id, errors=errors, status_code=422)
    flash(request, _("Export queued: its file appears below when it is ready."))
    return RedirectResponse(
        request.url_for("exports_page", campaign_id=campaign_id), status_code=303
    )


@router.get("/exports/{export_id}/download", name="export_download")
def export_download(
    session: SessionDep, settings: SettingsDep, user: OrganiserOrAuthority, export_id: int
) -> Response:
    export = service.get_for(session, export_id=export_id, user=user)
    path = service.download_path(session, settings=settings, export=export, user=user)
    media = {
        ".zip": "application/zip",
        ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        ".sav": "application/x-spss-sav",
        ".dta": "application/x-stata-dta",
    }.get(path.suffix, "application/octet-stream")
    return FileResponse(path, media_type=media, filename=export.file_name)
