"""The shopper's report: the grid page (works without JS), evidence, and the JSON API."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.datastructures import FormData

import surveys
from app.accounts.dependencies import RequireRole
from app.accounts.models import Role, User
from app.core.config import SettingsDep
from app.core.db import SessionDep, row_id
from app.core.errors import DomainError, InvalidInput
from app.core.i18n import _, get_locale
from app.core.security import csrf_token
from app.core.templating import flash, render
from app.core.timeutil import LOCAL_ZONE
from app.missions import repository as missions_repository
from app.missions.models import MissionState, ReviewState
from app.visits import repository, service
from app.visits.evidence import MAX_EVIDENCE_BYTES
from app.visits.schemas import (
    EvidenceAccepted,
    GridScenario,
    MissionGrid,
    MissionSummary,
    VisitAccepted,
    VisitSubmission,
)

router = APIRouter()
api_router = APIRouter(prefix="/api/v1", tags=["mystery shopping"])

ShopperUser = Annotated[User, Depends(RequireRole(Role.shopper))]
EvidenceReader = Annotated[
    User, Depends(RequireRole(Role.admin, Role.reviewer, Role.shopper, Role.jury))
]

SERVICE_WORKER = Path(__file__).resolve().parents[2] / "static" / "sw.js"
CSRF_DOC = {
    "parameters": [
        {
            "name": "X-CSRF-Token",
            "in": "header",
            "required": True,
            "schema": {"type": "string"},
            "description": (
                "The session's CSRF token (response header X-CSRF-Token of "
                "GET /api/v1/me/missions). Required for every POST made with the session "
                "cookie, so another site cannot post on the shopper's behalf."
            ),
        }
    ]
}


def _field_name(field: str) -> str:
    """``answers.wait`` → the form's ``a_wait``."""
    return "a_" + field.removeprefix("answers.") if field.startswith("answers.") else field


def _item_message(target: service.ShopperMission, error: dict[str, str]) -> str:
    key = error["field"].removeprefix("answers.")
    item = next((i for i in target.instrument.items if i.key == key), None)
    code = error.get("code", "")
    if code == "comment_required":
        names = [
            i.label.get(get_locale())
            for i in target.instrument.items
            if i.key in error.get("items", "").split(",")
        ]
        return _("Explain the negative answers here: %(items)s.") % {"items": "; ".join(names)}
    if code == "constraint" and item is not None and item.constraint_message is not None:
        return item.constraint_message.get(get_locale())
    messages = {
        "required": _("Answer this question."),
        "invalid_type": _("Enter a number.")
        if item is not None and item.type in ("count", "duration")
        else _("This answer is not valid."),
        "out_of_range": _("This value is out of range."),
        "invalid_choice": _("Choose one of the options."),
        "too_long": _("This text is too long."),
        "invalid_date": _("Enter a real date."),
        "date_order": _("This date is before the date it follows."),
        "constraint": _("This answer is not accepted."),
    }
    return messages.get(code, error.get("message", _("This answer is not valid.")))


# --- the report page ------------------------------------------------------------------------


def _delays(target: service.ShopperMission, answers: dict[str, Any]) -> dict[str, Any]:
    shown: dict[str, Any] = {}
    for item in target.instrument.items:
        if item.type == "delay":
            try:
                shown[item.key] = surveys.delay_value(item, answers, subdivision=target.subdivision)
            except ValueError:
                shown[item.key] = None
    return shown


def _form_values(answers: dict[str, Any], instrument: surveys.Instrument) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for item in instrument.items:
        value = answers.get(item.key)
        if value is None:
            continue
        if item.type == "duration" and isinstance(value, int | float):
            values[f"a_{item.key}_min"] = int(value) // 60
            values[f"a_{item.key}_sec"] = int(value) % 60
        else:
            values[f"a_{item.key}"] = value
    return values


def _page(
    request: Request,
    session: SessionDep,
    target: service.ShopperMission,
    *,
    form: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    answers: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    mission = target.mission
    visit = repository.visit_of_mission(session, row_id(mission))
    # After a rejection the mission is reported anew; the rejected report's thread says why.
    shown = visit or repository.last_rejected_visit(session, row_id(mission))
    correcting = visit is not None and visit.review_state == ReviewState.has_issues
    can_report = (visit is None and mission.state == MissionState.assigned) or correcting
    if form is None:
        form = _form_values(visit.answers, target.instrument) if correcting and visit else {}
        form["visit_id"] = str(uuid.uuid4())
        form["timings"] = json.dumps(visit.timings if correcting and visit else {})
    if answers is None:
        answers = visit.answers if visit is not None else {}
    evidence = repository.evidence_of_mission(session, row_id(mission))
    context = {
        "target": target,
        "mission": mission,
        "authority": target.authority,
        "scenario": target.scenario,
        "campaign": target.campaign,
        "instrument": target.instrument,
        "visit": visit,
        "correcting": correcting,
        "can_report": can_report,
        "can_upload": mission.state in service.EVIDENCE_STATES and (visit is None or correcting),
        "form": form,
        "errors": errors or {},
        "delays": _delays(target, answers),
        "answers": answers,
        "evidence": evidence,
        "evidence_id": str(uuid.uuid4()),
        "revisions": repository.revisions_of(session, visit.id) if visit else [],
        "thread": repository.review_thread(session, shown.id) if shown else [],
        "redo": visit is None and shown is not None,
        "holidays": [day.isoformat() for day in target.public_holidays()],
        "comment_item": service.comment_item(target.instrument),
        "target_failing": {
            item.key: sorted(service.failing_values(item))
            for item in target.instrument.items
            if item.options
        },
        "target_fail_above": {
            item.key: service.fail_above(item)
            for item in target.instrument.items
            if item.type in ("count", "duration")
        },
        "lang": get_locale(),
        "max_evidence_mb": MAX_EVIDENCE_BYTES // (1024 * 1024),
    }
    return render(request, "visits/report.html", context, status_code=status_code)


@router.get("/me/missions/{mission_id}/report", name="visit_form")
def visit_form(
    request: Request, session: SessionDep, shopper: ShopperUser, mission_id: int
) -> Response:
    target = service.shopper_mission(session, shopper=shopper, mission_id=mission_id)
    return _page(request, session, target)


def _int_or_raw(text: str) -> int | str:
    text = text.strip()
    return int(text) if text.isdigit() else text


def parse_report_form(
    form: FormData, instrument: surveys.Instrument
) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    """Answers, timings and form-level errors from the grid's posted fields."""
    answers: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for item in instrument.items:
        name = f"a_{item.key}"
        if item.type == "duration":
            minutes = str(form.get(f"{name}_min") or "").strip()
            seconds = str(form.get(f"{name}_sec") or "").strip()
            if not minutes and not seconds:
                continue
            parsed = [_int_or_raw(part or "0") for part in (minutes, seconds)]
            if all(isinstance(part, int) for part in parsed):
                answers[item.key] = int(parsed[0]) * 60 + int(parsed[1])
            else:
                answers[item.key] = f"{minutes}:{seconds}"  # refused as not a number
        elif item.type == "choice_many":
            chosen = [str(v) for v in form.getlist(name) if str(v).strip()]
            if chosen:
                answers[item.key] = chosen
        elif item.type not in surveys.schema.UNANSWERED_TYPES:
            value = form.get(name)
            if isinstance(value, str) and value.strip():
                answers[item.key] = value
    timings: dict[str, Any] = {}
    raw_timings = str(form.get("timings") or "").strip()
    if raw_timings:
        try:
            loaded = json.loads(raw_timings)
        except ValueError:
            loaded = None
        if isinstance(loaded, dict):
            timings = loaded
        else:
            errors["timings"] = _("The stopwatch records could not be read.")
    return answers, timings, errors


def _visited_at(text: str) -> datetime | None:
    """A datetime-local of the form, in Paris time, as UTC."""
    text = text.strip()
    if not text:
        return None
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=LOCAL_ZONE)
    return moment.astimezone(UTC)


def _submit_form(
    request: Request,
    session: SessionDep,
    shopper: User,
    mission_id: int,
    form: FormData,
) -> Response:
    target = service.shopper_mission(session, shopper=shopper, mission_id=mission_id)
    answers, timings, errors = parse_report_form(form, target.instrument)
    form_values: dict[str, Any] = {
        key: value for key, value in form.multi_items() if key != "csrf_token"
    }
    for name in {key for key, _value in form.multi_items()}:
        values = form.getlist(name)
        if len(values) > 1:  # multiple choices and cited evidence
            form_values[name] = [str(value) for value in values]
    form_values["evidence"] = [str(value) for value in form.getlist("evidence")]
    try:
        submission_id = uuid.UUID(str(form.get("visit_id") or ""))
    except ValueError:
        submission_id = uuid.uuid4()
        form_values["visit_id"] = str(submission_id)
    try:
        visited_at = _visited_at(str(form.get("visited_at") or ""))
    except ValueError:
        errors["visited_at"] = _("Enter the date and time of the test.")
        visited_at = None
    evidence: list[uuid.UUID] = []
    for value in form.getlist("evidence"):
        try:
            evidence.append(uuid.UUID(str(value)))
        except ValueError:
            errors["evidence"] = _("Choose evidence from the list.")
    if not errors:
        try:
            service.submit_visit(
                session,
                shopper=shopper,
                mission_id=mission_id,
                submission_id=submission_id,
                answers=answers,
                timings=timings,
                visited_at=visited_at,
                evidence=evidence,
            )
        except service.InvalidReport as exc:
            for error in exc.errors:
                errors.setdefault(_field_name(error["field"]), _item_message(target, error))
        except InvalidInput as exc:
            errors[exc.field or "form"] = exc.message
    if errors:
        # The service refuses before writing anything; the 400 page rolls the request back.
        return _page(
            request,
            session,
            target,
            form=form_values,
            errors=errors,
            answers=answers,
            status_code=400,
        )
    flash(request, _("Report received. Thank you!"))
    url = request.url_for("visit_form", mission_id=mission_id).path
    return RedirectResponse(url, status_code=303)


@router.post("/me/missions/{mission_id}/report", name="visit_submit")
async def visit_submit(
    request: Request, session: SessionDep, shopper: ShopperUser, mission_id: int
) -> Response:
    form = await request.form()
    return await run_in_threadpool(_submit_form, request, session, shopper, mission_id, form)


@router.post("/me/missions/{mission_id}/evidence", name="evidence_upload")
async def evidence_upload(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    shopper: ShopperUser,
    mission_id: int,
    file: Annotated[UploadFile, File()],
    evidence_id: Annotated[str, Form(max_length=40)] = "",
    item: Annotated[str, Form(max_length=60)] = "",
) -> Response:
    data = await file.read(MAX_EVIDENCE_BYTES + 1)
    try:
        parsed_id = uuid.UUID(evidence_id)
    except ValueError:
        parsed_id = uuid.uuid4()
    assert settings.evidence_dir is not None
    try:
        await run_in_threadpool(
            lambda: service.upload_evidence(
                session,
                evidence_dir=settings.evidence_dir or Path("."),
                shopper=shopper,
                mission_id=mission_id,
                evidence_id=parsed_id,
                data=data,
                filename=file.filename or "",
                item_key=item or None,
            )
        )
    except DomainError as exc:
        if exc.field != "file":
            raise
        # Refused before anything was stored; the 4xx page rolls the request back.
        target = service.shopper_mission(session, shopper=shopper, mission_id=mission_id)
        return _page(
            request, session, target, errors={"file": exc.message}, status_code=exc.status_code
        )
    flash(request, _("Evidence added."))
    url = request.url_for("visit_form", mission_id=mission_id).path + "#evidence"
    return RedirectResponse(url, status_code=303)


@router.get("/evidence/{evidence_id}", name="evidence_download")
def evidence_download(
    session: SessionDep, settings: SettingsDep, user: EvidenceReader, evidence_id: uuid.UUID
) -> Response:
    row, path = service.evidence_for_download(
        session, evidence_dir=settings.evidence_dir or Path("."), user=user, evidence_id=evidence_id
    )
    extension = path.suffix
    return FileResponse(
        path,
        media_type=row.media_type,
        # Never the uploaded name: a header built from our own id cannot be abused.
        filename=f"evidence-{row.id}{extension}",
        content_disposition_type="attachment",
        headers={"Cache-Control": "private, no-store"},
    )


@router.get("/me/sw.js", name="service_worker", include_in_schema=False)
def service_worker() -> Response:
    """The shopper's service worker, served under /me/ so it may control the mission pages."""
    return Response(
        SERVICE_WORKER.read_bytes(),
        media_type="text/javascript",
        headers={"Cache-Control": "no-cache", "Service-Worker-Allowed": "/me/"},
    )


@router.get("/me/offline", name="shopper_offline")
def shopper_offline(request: Request, shopper: ShopperUser) -> Response:
    return render(request, "visits/offline.html", {})


# --- JSON API -------------------------------------------------------------------------------


@api_router.get("/me/missions", name="api_my_missions", response_model=list[MissionSummary])
def api_my_missions(request: Request, session: SessionDep, shopper: ShopperUser) -> Response:
    """The signed-in shopper's missions by due date; the response carries the CSRF token."""
    rows = missions_repository.missions_of_shopper(session, row_id(shopper))
    states = repository.review_states_of(session, [row_id(m) for m, _a, _c in rows])
    body = [
        MissionSummary(
            id=row_id(mission),
            campaign=campaign.year,
            authority=authority.code,
            authority_name=authority.name,
            channel=mission.channel,
            window_start=mission.window_start,
            window_end=mission.window_end,
            state=mission.state,
            review_state=states.get(row_id(mission)),
        ).model_dump(mode="json")
        for mission, authority, campaign in rows
    ]
    return JSONResponse(body, headers={"X-CSRF-Token": csrf_token(request)})


@api_router.get("/missions/{mission_id}/grid", name="api_mission_grid", response_model=MissionGrid)
def api_mission_grid(session: SessionDep, shopper: ShopperUser, mission_id: int) -> MissionGrid:
    """A mission of the shopper with its scenario and the pinned grid version."""
    target = service.shopper_mission(session, shopper=shopper, mission_id=mission_id)
    mission, authority, scenario = target.mission, target.authority, target.scenario
    visit_states = repository.review_states_of(session, [row_id(mission)])
    return MissionGrid(
        mission=MissionSummary(
            id=row_id(mission),
            campaign=target.campaign.year,
            authority=authority.code,
            authority_name=authority.name,
            channel=mission.channel,
            window_start=mission.window_start,
            window_end=mission.window_end,
            state=mission.state,
            review_state=visit_states.get(row_id(mission)),
        ),
        scenario=GridScenario(
            key=scenario.key,
            title=scenario.title,
            request_text=scenario.request_text,
            answer_sheet=scenario.answer_sheet,
        )
        if scenario is not None
        else None,
        instrument=target.version.content,
        instrument_key=target.version.key,
        instrument_version=target.version.version,
        instrument_sha256=target.version.sha256,
        public_holidays=target.public_holidays(),
    )


@api_router.post(
    "/visits",
    name="api_submit_visit",
    status_code=201,
    response_model=VisitAccepted,
    responses={
        200: {"description": "A replay of a report already received: same body as the 201."},
        404: {"description": "No such mission among the shopper's."},
        409: {
            "description": "The id was already used for other content, or the mission cannot "
            "take this report (already reported, not awaiting a correction)."
        },
        422: {"description": "Invalid answers, one entry per item in `errors`."},
    },
    openapi_extra=CSRF_DOC,
)
def api_submit_visit(session: SessionDep, shopper: ShopperUser, body: VisitSubmission) -> Response:
    """Report a mission (or correct a report a reviewer sent back), exactly once per id."""
    accepted, created = service.submit_visit(
        session,
        shopper=shopper,
        mission_id=body.mission,
        submission_id=body.id,
        answers=body.answers,
        timings=body.timings,
        visited_at=body.visited_at,
        evidence=body.evidence,
    )
    return JSONResponse(accepted.model_dump(mode="json"), status_code=201 if created else 200)


@api_router.post(
    "/missions/{mission_id}/evidence",
    name="api_upload_evidence",
    status_code=201,
    response_model=EvidenceAccepted,
    responses={
        200: {"description": "A replay of the same file under the same id."},
        409: {"description": "The id was already used for another file."},
        413: {"description": "The file is larger than 10 MB."},
        422: {"description": "Not a JPEG, PNG, WebP image or PDF file (sniffed from the bytes)."},
    },
    openapi_extra=CSRF_DOC,
)
async def api_upload_evidence(
    session: SessionDep,
    settings: SettingsDep,
    shopper: ShopperUser,
    mission_id: int,
    id: Annotated[uuid.UUID, Form(description="Client-generated id of this file.")],
    file: Annotated[UploadFile, File(description="JPEG, PNG, WebP or PDF, 10 MB at most.")],
    item: Annotated[str, Form(max_length=60)] = "",
) -> Response:
    """Attach a proof to a mission; images are re-encoded without EXIF or other metadata."""
    data = await file.read(MAX_EVIDENCE_BYTES + 1)
    row, created = await run_in_threadpool(
        lambda: service.upload_evidence(
            session,
            evidence_dir=settings.evidence_dir or Path("."),
            shopper=shopper,
            mission_id=mission_id,
            evidence_id=id,
            data=data,
            filename=file.filename or "",
            item_key=item or None,
        )
    )
    body = EvidenceAccepted(
        id=row.id,
        mission=row.mission_id,
        media_type=row.media_type,
        size_bytes=row.size_bytes,
        sha256=row.sha256,
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=201 if created else 200)
