"""Organiser pages for missions and scenarios; the shopper's missions and conflicts."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from app.accounts.dependencies import AdminUser, RequireRole
from app.accounts.models import Role, User
from app.campaigns.models import CampaignState
from app.campaigns.schemas import Channel
from app.campaigns.service import get_campaign, parse_config
from app.core.db import SessionDep, row_id
from app.core.errors import DomainError, InvalidInput
from app.core.forms import field_errors
from app.core.i18n import _
from app.core.templating import flash, render
from app.missions import repository, service
from app.missions.models import MissionState
from app.missions.schemas import ConflictDeclare, ScenarioCreate

router = APIRouter()

ShopperUser = Annotated[User, Depends(RequireRole(Role.shopper))]

MAX_CSV_BYTES = 2 * 1024 * 1024
MAX_LISTED_MISSIONS = 500


def _missions_context(
    request: Request, session: SessionDep, campaign_id: int, **overrides: Any
) -> dict[str, Any]:
    campaign = get_campaign(session, campaign_id=campaign_id)
    filters = {
        name: request.query_params.get(name, "").strip()
        for name in ("channel", "state", "shopper", "code")
    }
    shopper_filter = int(filters["shopper"]) if filters["shopper"].isdigit() else None
    rows = repository.mission_rows(
        session,
        campaign_id,
        channel=filters["channel"] or None,
        state=filters["state"] or None,
        shopper_id=shopper_filter,
        authority_code=filters["code"].upper() or None,
        limit=MAX_LISTED_MISSIONS + 1,
    )
    context: dict[str, Any] = {
        "campaign": campaign,
        "config": parse_config(campaign.config),
        "channels": list(Channel),
        "states": list(MissionState),
        "filters": filters,
        "total": repository.count_missions(session, campaign_id),
        "by_channel": repository.count_by_channel(session, campaign_id),
        "by_shopper": repository.count_by_shopper(session, campaign_id),
        "rows": rows[:MAX_LISTED_MISSIONS],
        "truncated": len(rows) > MAX_LISTED_MISSIONS,
        "scenarios": repository.scenarios(session, campaign_id),
        "shoppers": repository.active_shoppers(session),
        "planning_open": CampaignState(campaign.state) in service.PLANNING_STATES,
        "scenario_form": {},
        "errors": {},
    }
    context.update(overrides)
    return context


def _back(request: Request, campaign_id: int, anchor: str = "") -> RedirectResponse:
    url = request.url_for("missions", campaign_id=campaign_id).path + anchor
    return RedirectResponse(url, status_code=303)


@router.get("/campaigns/{campaign_id}/missions", name="missions")
def missions_page(
    request: Request, session: SessionDep, admin: AdminUser, campaign_id: int
) -> Response:
    return render(
        request, "missions/campaign.html", _missions_context(request, session, campaign_id)
    )


@router.get("/campaigns/{campaign_id}/missions/regenerate", name="missions_regenerate_confirm")
def missions_regenerate_confirm(
    request: Request, session: SessionDep, admin: AdminUser, campaign_id: int
) -> Response:
    """What a regeneration replaces and keeps, before the organiser confirms it."""
    campaign = get_campaign(session, campaign_id=campaign_id)
    total = repository.count_missions(session, campaign_id)
    if not total or CampaignState(campaign.state) not in service.PLANNING_STATES:
        return _back(request, campaign_id)
    kept = len(repository.kept_missions(session, campaign_id))
    context = {"campaign": campaign, "total": total, "kept": kept, "replaced": total - kept}
    return render(request, "campaigns/confirm_missions.html", context)


@router.post("/campaigns/{campaign_id}/missions/generate", name="missions_generate")
def missions_generate(
    request: Request,
    session: SessionDep,
    admin: AdminUser,
    campaign_id: int,
    regenerate: Annotated[bool, Form()] = False,
) -> Response:
    campaign = get_campaign(session, campaign_id=campaign_id)
    report = service.generate_missions(
        session, campaign=campaign, regenerate=regenerate, actor=admin
    )
    message = _(
        "%(created)d missions generated (%(removed)d replaced, %(kept)d already reported kept)."
    ) % {"created": report.created, "removed": report.removed, "kept": report.kept}
    flash(request, message)
    if report.unassigned:
        flash(
            request,
            _("%(count)d missions have no shopper yet: invite shoppers, then regenerate.")
            % {"count": report.unassigned},
            "error",
        )
    return _back(request, campaign_id)


@router.post("/campaigns/{campaign_id}/scenarios", name="scenario_create")
def scenario_create(
    request: Request,
    session: SessionDep,
    admin: AdminUser,
    campaign_id: int,
    channel: Annotated[str, Form(max_length=20)] = "",
    key: Annotated[str, Form(max_length=40)] = "",
    title: Annotated[str, Form(max_length=200)] = "",
    request_text: Annotated[str, Form(max_length=4000)] = "",
    answer_sheet: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    campaign = get_campaign(session, campaign_id=campaign_id)
    form = {
        "channel": channel,
        "key": key,
        "title": title,
        "request_text": request_text,
        "answer_sheet": answer_sheet,
    }
    try:
        data = ScenarioCreate.model_validate(form)
        scenario = service.add_scenario(session, campaign=campaign, data=data, actor=admin)
    except (ValidationError, DomainError) as exc:
        errors = (
            field_errors(exc)
            if isinstance(exc, ValidationError)
            else {exc.field or "form": exc.message}
        )
        context = _missions_context(
            request, session, campaign_id, scenario_form=form, errors=errors
        )
        return render(request, "missions/campaign.html", context, status_code=400)
    flash(request, _("Scenario %(key)s added.") % {"key": scenario.key})
    return _back(request, campaign_id, "#scenarios")


@router.get("/campaigns/{campaign_id}/missions/export.csv", name="missions_export")
def missions_export(session: SessionDep, admin: AdminUser, campaign_id: int) -> Response:
    campaign = get_campaign(session, campaign_id=campaign_id)
    text = service.export_assignments(session, campaign=campaign)
    filename = f"missions-{campaign.year}.csv"
    return Response(
        content=text.encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.post("/campaigns/{campaign_id}/missions/import", name="missions_import")
async def missions_import(
    request: Request,
    session: SessionDep,
    admin: AdminUser,
    campaign_id: int,
    file: Annotated[UploadFile, File()],
) -> Response:
    campaign = get_campaign(session, campaign_id=campaign_id)
    content = await file.read(MAX_CSV_BYTES + 1)
    if len(content) > MAX_CSV_BYTES:
        raise InvalidInput(_("The file is larger than 2 MB."), field="file")
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(_("The file is not UTF-8 text."), field="file") from exc
    changed = service.import_reassignments(session, campaign=campaign, text=text, actor=admin)
    flash(request, _("%(count)d missions reassigned.") % {"count": changed})
    return _back(request, campaign_id)


@router.post("/campaigns/{campaign_id}/missions/reassign", name="mission_reassign")
def mission_reassign(
    request: Request,
    session: SessionDep,
    admin: AdminUser,
    campaign_id: int,
    mission_id: Annotated[str, Form(max_length=12)] = "",
    shopper_id: Annotated[str, Form(max_length=12)] = "",
) -> Response:
    campaign = get_campaign(session, campaign_id=campaign_id)
    if not mission_id.isdigit():
        raise InvalidInput(_("Give the number of the mission to reassign."), field="mission_id")
    if shopper_id and not shopper_id.isdigit():
        raise InvalidInput(_("Choose a shopper from the list."), field="shopper_id")
    mission = service.reassign_mission(
        session,
        campaign=campaign,
        mission_id=int(mission_id),
        shopper_id=int(shopper_id) if shopper_id else None,
        actor=admin,
    )
    flash(request, _("Mission %(id)d reassigned.") % {"id": mission.id})
    return _back(request, campaign_id)


# --- the shopper ------------------------------------------------------------------------------


@router.get("/me/missions", name="my_missions")
def my_missions(request: Request, session: SessionDep, shopper: ShopperUser) -> Response:
    rows = repository.missions_of_shopper(session, row_id(shopper))
    return render(request, "missions/my_missions.html", {"rows": rows})


@router.get("/me/missions/{mission_id}", name="my_mission")
def my_mission(
    request: Request, session: SessionDep, shopper: ShopperUser, mission_id: int
) -> Response:
    mission, authority, scenario, campaign = service.shopper_mission(
        session, shopper=shopper, mission_id=mission_id
    )
    return render(
        request,
        "missions/my_mission.html",
        {"mission": mission, "authority": authority, "scenario": scenario, "campaign": campaign},
    )


def _conflicts_page(
    request: Request,
    session: SessionDep,
    shopper: User,
    *,
    code: str = "",
    errors: dict[str, str] | None = None,
) -> Response:
    return render(
        request,
        "missions/conflicts.html",
        {
            "conflicts": repository.conflicts_of(session, row_id(shopper)),
            "code": code,
            "errors": errors or {},
        },
        status_code=400 if errors else 200,
    )


@router.get("/me/conflicts", name="my_conflicts")
def my_conflicts(request: Request, session: SessionDep, shopper: ShopperUser) -> Response:
    return _conflicts_page(request, session, shopper)


@router.post("/me/conflicts", name="my_conflicts_submit")
def my_conflicts_submit(
    request: Request,
    session: SessionDep,
    shopper: ShopperUser,
    code: Annotated[str, Form(max_length=12)] = "",
) -> Response:
    try:
        data = ConflictDeclare.model_validate({"code": code})
        conflict, released = service.declare_conflict(session, shopper=shopper, code=data.code)
    except ValidationError as exc:
        return _conflicts_page(request, session, shopper, code=code, errors=field_errors(exc))
    except DomainError as exc:
        return _conflicts_page(
            request, session, shopper, code=code, errors={exc.field or "form": exc.message}
        )
    message = _("Conflict with %(code)s recorded.") % {"code": conflict.authority_code}
    if released:
        message += " " + _("%(count)d of your missions there went back to the organiser.") % {
            "count": released
        }
    flash(request, message)
    return RedirectResponse(request.url_for("my_conflicts").path, status_code=303)
