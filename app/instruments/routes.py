"""Admin pages: published instruments, XLSForm upload → preview → publish, new versions from a
form, downloads, and pinning a version to a draft campaign."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import RedirectResponse, Response

import surveys
from app.accounts.dependencies import AdminUser
from app.core.config import SettingsDep
from app.core.db import SessionDep, row_id
from app.core.errors import InvalidInput
from app.core.i18n import _, get_locale
from app.core.templating import flash, render
from app.instruments import forms, repository, service
from app.instruments.models import InstrumentVersion

router = APIRouter()

#: The sealed upload is a few kB; this bounds what the publish form accepts.
MAX_PENDING_CHARS = 512 * 1024


def _list_context(session: SessionDep, **extra: Any) -> dict[str, Any]:
    return {
        "versions": repository.list_versions(session),
        "max_megabytes": service.MAX_XLSFORM_BYTES // (1024 * 1024),
        "errors": {},
        **extra,
    }


@router.get("/admin/instruments", name="instruments")
def instruments_page(request: Request, session: SessionDep, admin: AdminUser) -> Response:
    return render(request, "instruments/list.html", _list_context(session))


@router.post("/admin/instruments/upload", name="instrument_upload")
def instrument_upload(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    admin: AdminUser,
    file: Annotated[UploadFile, File(description="An XLSForm workbook (.xlsx), 1 MB at most.")],
) -> Response:
    filename = file.filename or ""
    content = file.file.read(service.MAX_XLSFORM_BYTES + 1)
    try:
        preview = service.read_upload(session, filename=filename, content=content)
    except InvalidInput as error:
        context = _list_context(session, errors={"file": error.message}, filename=filename)
        return render(request, "instruments/list.html", context, status_code=422)
    except surveys.XLSFormError as error:
        context = _list_context(
            session,
            errors={"file": _("The workbook was refused: correct the problems listed below.")},
            problems=error.problems,
            filename=filename,
        )
        return render(request, "instruments/list.html", context, status_code=422)
    instrument = preview.reading.instrument
    pending = service.seal_pending(
        instrument, secret_key=settings.secret_key, user_id=row_id(admin)
    )
    return render(
        request,
        "instruments/upload_preview.html",
        {"preview": preview, "instrument": instrument, "pending": pending},
    )


@router.post("/admin/instruments/publish", name="instrument_publish_upload")
def instrument_publish_upload(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    admin: AdminUser,
    pending: Annotated[str, Form(max_length=MAX_PENDING_CHARS)],
) -> Response:
    instrument = service.open_pending(
        pending, secret_key=settings.secret_key, user_id=row_id(admin)
    )
    publication = service.publish(session, instrument=instrument, actor=admin)
    return _after_publication(request, publication)


@router.post("/admin/instruments/defaults", name="instruments_publish_defaults")
def instruments_publish_defaults(
    request: Request, session: SessionDep, admin: AdminUser
) -> Response:
    publications = service.publish_defaults(session, actor=admin)
    created = sum(1 for publication in publications if publication.created)
    counts = {"created": created, "total": len(publications)}
    if created == len(publications):
        message = _("The %(total)d default instruments are published.") % counts
    elif created == 0:
        message = _("The default instruments were already published: nothing changed.")
    else:
        message = (
            _(
                "%(created)d of the %(total)d default instruments published; "
                "the others were already."
            )
            % counts
        )
    flash(request, message)
    return RedirectResponse(request.url_for("instruments").path, status_code=303)


def _after_publication(request: Request, publication: service.Publication) -> Response:
    version = publication.version
    names = {"key": version.key, "version": version.version}
    if publication.created:
        flash(request, _("%(key)s published as version %(version)d.") % names)
    else:
        flash(
            request,
            _("Nothing new: this content is already version %(version)d of %(key)s.") % names,
            "error",
        )
    return RedirectResponse(
        request.url_for("instrument_preview", version_id=row_id(version)).path, status_code=303
    )


@router.get("/admin/instruments/{version_id}", name="instrument_preview")
def instrument_preview(
    request: Request, session: SessionDep, admin: AdminUser, version_id: int
) -> Response:
    version = service.get_version(session, version_id=version_id)
    instrument = service.load_published(version)
    return render(
        request,
        "instruments/preview.html",
        {
            "version": version,
            "instrument": instrument,
            "drafts": service.draft_campaigns(session, key=version.key),
            "latest": repository.latest_number(session, version.key),
        },
    )


def _edit_page(
    request: Request,
    version: InstrumentVersion,
    instrument: surveys.Instrument,
    values: dict[str, str],
    errors: dict[str, str],
) -> Response:
    return render(
        request,
        "instruments/edit.html",
        {
            "version": version,
            "instrument": instrument,
            "values": values,
            "errors": errors,
            "threshold_types": forms.THRESHOLD_TYPES,
        },
        status_code=400 if errors else 200,
    )


@router.get("/admin/instruments/{version_id}/edit", name="instrument_edit")
def instrument_edit(
    request: Request, session: SessionDep, admin: AdminUser, version_id: int
) -> Response:
    version = service.get_version(session, version_id=version_id)
    instrument = service.load_published(version)
    return _edit_page(
        request, version, instrument, forms.initial_values(instrument, locale=get_locale()), {}
    )


@router.post("/admin/instruments/{version_id}/edit", name="instrument_edit_submit")
async def instrument_edit_submit(
    request: Request, session: SessionDep, admin: AdminUser, version_id: int
) -> Response:
    version = service.get_version(session, version_id=version_id)
    instrument = service.load_published(version)
    posted = await request.form()
    values = {name: value for name, value in posted.items() if isinstance(value, str)}
    edited = forms.apply_form(instrument, values)
    if edited.errors:
        return _edit_page(request, version, instrument, values, edited.errors)
    try:
        changed = surveys.instrument_from_dict(edited.data)
    except surveys.DefinitionError as error:
        errors = forms.problem_fields(error.problems, instrument)
        return _edit_page(request, version, instrument, values, errors)
    publication = service.publish(session, instrument=changed, actor=admin)
    return _after_publication(request, publication)


def _download(session: SessionDep, version_id: int, fmt: str) -> Response:
    version = service.get_version(session, version_id=version_id)
    download = service.download(version, fmt=fmt)
    return Response(
        download.body,
        media_type=download.media_type,
        headers={"Content-Disposition": f'attachment; filename="{download.filename}"'},
    )


@router.get("/admin/instruments/{version_id}/download.xlsx", name="instrument_download_xlsform")
def instrument_download_xlsform(session: SessionDep, admin: AdminUser, version_id: int) -> Response:
    return _download(session, version_id, "xlsx")


@router.get("/admin/instruments/{version_id}/download.yaml", name="instrument_download_yaml")
def instrument_download_yaml(session: SessionDep, admin: AdminUser, version_id: int) -> Response:
    return _download(session, version_id, "yaml")


@router.get("/admin/instruments/{version_id}/download.json", name="instrument_download_json")
def instrument_download_json(session: SessionDep, admin: AdminUser, version_id: int) -> Response:
    return _download(session, version_id, "json")
