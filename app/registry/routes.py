"""The registry pages: search (htmx, paginated), one authority, and the file import (admins)."""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import APIRouter, File, Query, Request, UploadFile
from fastapi.responses import RedirectResponse, Response

from app.accounts.dependencies import AdminUser
from app.authorities import service
from app.authorities.models import AuthorityKind
from app.authorities.schemas import AuthorityPublic
from app.core.db import SessionDep
from app.core.errors import InvalidInput
from app.core.i18n import _
from app.core.templating import flash, render

router = APIRouter()
api_router = APIRouter(prefix="/api/v1", tags=["registry"])

MAX_REGISTRY_UPLOAD_BYTES = 20 * 1024 * 1024


def _kind_or_error(kind: str) -> str | None:
    if not kind:
        return None
    if kind not in {k.value for k in AuthorityKind}:
        raise InvalidInput(_("Unknown kind of authority: %(kind)s.") % {"kind": kind}, field="kind")
    return kind


@router.get("/registry", name="registry")
def registry_page(
    request: Request,
    session: SessionDep,
    admin: AdminUser,
    q: Annotated[str, Query(max_length=100)] = "",
    kind: Annotated[str, Query(max_length=20)] = "",
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
) -> Response:
    # An empty kind means "all kinds": that is what the form's first option sends.
    kind_filter = _kind_or_error(kind)
    authorities, total = service.search_authorities(session, query=q, kind=kind_filter, page=page)
    context = {
        "authorities": authorities,
        "total": total,
        "q": q,
        "kind": kind_filter or "",
        "kinds": list(AuthorityKind),
        "page": page,
        "pages": max(1, math.ceil(total / service.PAGE_SIZE)),
    }
    return render(
        request, "authorities/registry.html", context, fragment="authorities/_results.html"
    )


@router.post("/registry/import", name="registry_import")
async def registry_import(
    request: Request,
    session: SessionDep,
    admin: AdminUser,
    file: Annotated[UploadFile, File()],
) -> Response:
    content = await file.read(MAX_REGISTRY_UPLOAD_BYTES + 1)
    if len(content) > MAX_REGISTRY_UPLOAD_BYTES:
        raise InvalidInput(_("The file is larger than 20 MB."), field="file")
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(_("The file is not UTF-8 text."), field="file") from exc
    report = service.import_registry(session, text=text)
    flash(
        request,
        _("Registry imported: %(created)d added, %(updated)d updated, %(unchanged)d unchanged.")
        % {"created": report.created, "updated": report.updated, "unchanged": report.unchanged},
    )
    return RedirectResponse(request.url_for("registry").path, status_code=303)


@router.get("/registry/{code}", name="authority")
def authority_page(request: Request, session: SessionDep, admin: AdminUser, code: str) -> Response:
    authority = service.get_authority(session, code=code)
    return render(request, "authorities/authority.html", {"authority": authority})


@api_router.get("/authorities", name="api_authorities")
def api_authorities(
    session: SessionDep,
    admin: AdminUser,
    q: Annotated[str, Query(max_length=100)] = "",
    kind: Annotated[str, Query(max_length=20)] = "",
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
) -> dict[str, object]:
    authorities, total = service.search_authorities(
        session, query=q, kind=_kind_or_error(kind), page=page
    )
    return {
        "total": total,
        "page": page,
        "items": [AuthorityPublic.model_validate(a).model_dump() for a in authorities],
    }
