"""Admin pages: published instruments and a preview of each as its form."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.accounts.dependencies import AdminUser
from app.core.db import SessionDep
from app.core.templating import render
from app.instruments import repository, service

router = APIRouter()


@router.get("/admin/instruments", name="instruments")
def instruments_page(request: Request, session: SessionDep, admin: AdminUser) -> Response:
    return render(request, "instruments/list.html", {"versions": repository.list_versions(session)})


@router.get("/admin/instruments/{version_id}", name="instrument_preview")
def instrument_preview(
    request: Request, session: SessionDep, admin: AdminUser, version_id: int
) -> Response:
    version = service.get_version(session, version_id=version_id)
    instrument = service.load_published(version)
    return render(
        request, "instruments/preview.html", {"version": version, "instrument": instrument}
    )
