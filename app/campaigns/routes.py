"""Campaign pages and API: list, create, configure, move through the cycle, candidates."""

from __future__ import annotations

import json
from datetime import date
from typing import Annotated, Any

import yaml
from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from app.accounts import repository as accounts_repository
from app.accounts.dependencies import AdminUser, StaffUser
from app.campaigns import forms, planner, repository, service
from app.campaigns.models import NEXT_STATE, Campaign, CampaignState
from app.campaigns.schemas import CampaignCreate, CampaignPublic, TransitionRequest
from app.core.config import SettingsDep
from app.core.db import SessionDep
from app.core.errors import InvalidInput
from app.core.forms import field_errors
from app.core.i18n import _, get_locale
from app.core.templating import flash, render
from app.instruments import repository as instruments_repository

router = APIRouter()
api_router = APIRouter(prefix="/api/v1", tags=["campaigns"])

MAX_CSV_BYTES = 2 * 1024 * 1024
STATES = list(CampaignState)


def _detail_context(session: SessionDep, campaign_id: int) -> dict[str, Any]:
    campaign = service.get_campaign(session, campaign_id=campaign_id)
    transitions = repository.transitions(session, campaign_id)
    actors = {
        t.actor_id: accounts_repository.get(session, t.actor_id) for t in transitions if t.actor_id
    }
    config = service.parse_config(campaign.config)
    missing = service.missing_instruments(session, campaign=campaign)
    return {
        "campaign": campaign,
        "config": config,
        "states": STATES,
        "next_state": NEXT_STATE.get(CampaignState(campaign.state)),
        "transitions": transitions,
        "actors": actors,
        "candidates": repository.candidates_with_authorities(session, campaign_id),
        "counts": repository.count_candidates_by_category(session, campaign_id),
        "pinned": repository.pinned_instruments(session, campaign_id),
        "missing_instruments": missing,
        "missing_instruments_text": service.describe_instruments(missing),
        "published_versions": instruments_repository.list_versions(session),
        "errors": {},
    }


@router.get("/campaigns", name="campaigns")
def campaigns_page(request: Request, session: SessionDep, user: StaffUser) -> Response:
    return render(request, "campaigns/list.html", {"campaigns": repository.list_campaigns(session)})


@router.get("/campaigns/new", name="campaign_new")
def campaign_new_page(request: Request, admin: AdminUser) -> Response:
    year = date.today().year + 1
    form = {
        "year": year,
        "name": f"Baromètre {year}",
        "opens_at": f"{year}-01-15",
        "closes_at": f"{year}-10-31",
    }
    return render(request, "campaigns/new.html", {"form": form, "errors": {}})


@router.post("/campaigns", name="campaign_create")
def campaign_create(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    admin: AdminUser,
    year: Annotated[str, Form(max_length=4)] = "",
    name: Annotated[str, Form(max_length=200)] = "",
    opens_at: Annotated[str, Form(max_length=10)] = "",
    closes_at: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    form = {"year": year, "name": name, "opens_at": opens_at, "closes_at": closes_at}
    try:
        data = CampaignCreate.model_validate(form)
    except ValidationError as exc:
        return render(
            request,
            "campaigns/new.html",
            {"form": form, "errors": field_errors(exc)},
            status_code=400,
        )
    campaign = service.create_campaign(
        session, data=data, organiser=settings.organiser, actor=admin
    )
    flash(request, _("Campaign %(year)d created as a draft.") % {"year": campaign.year})
    return RedirectResponse(
        request.url_for("campaign", campaign_id=campaign.id).path, status_code=303
    )


@router.get("/campaigns/{campaign_id}", name="campaign")
def campaign_page(
    request: Request, session: SessionDep, user: StaffUser, campaign_id: int
) -> Response:
    return render(request, "campaigns/detail.html", _detail_context(session, campaign_id))


@router.get("/campaigns/{campaign_id}/transition", name="campaign_transition_confirm")
def campaign_transition_confirm(
    request: Request,
    session: SessionDep,
    admin: AdminUser,
    campaign_id: int,
    to_state: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    """What the next step will do, in words, before the organiser takes it."""
    campaign = service.get_campaign(session, campaign_id=campaign_id)
    next_state = NEXT_STATE.get(CampaignState(campaign.state))
    if next_state is None or to_state != next_state.value:
        return RedirectResponse(
            request.url_for("campaign", campaign_id=campaign_id).path, status_code=303
        )
    context = {
        "campaign": campaign,
        "next_state": next_state,
        "consequences": service.transition_consequences(campaign, next_state),
        "blockers": service.transition_blockers(session, campaign=campaign, target=next_state),
    }
    return render(request, "campaigns/confirm_transition.html", context)


@router.post("/campaigns/{campaign_id}/transition", name="campaign_transition")
def campaign_transition(
    request: Request,
    session: SessionDep,
    admin: AdminUser,
    campaign_id: int,
    to_state: Annotated[str, Form(max_length=20)] = "",
    comment: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    campaign = service.get_campaign(session, campaign_id=campaign_id)
    record = service.transition(
        session, campaign=campaign, to_state=to_state, actor=admin, comment=comment
    )
    flash(request, _("The campaign is now %(state)s.") % {"state": _(record.to_state)})
    return RedirectResponse(
        request.url_for("campaign", campaign_id=campaign_id).path, status_code=303
    )


def _planner_context(
    session: SessionDep, campaign: Campaign, respondents_text: str
) -> dict[str, Any]:
    """The precision planner of the saved configuration, for a planned number of respondents.

    An unusable planned figure is reported beside its field and the eligibility minimum is
    used instead (the page still renders: the figure only changes a forecast).
    """
    requested: int | None = None
    unusable = False
    if respondents_text.strip():
        try:
            requested = int(respondents_text.strip())
        except ValueError:
            requested = None
        if requested is None or not (
            planner.MIN_PLANNED_RESPONDENTS <= requested <= planner.MAX_PLANNED_RESPONDENTS
        ):
            requested, unusable = None, True
    forecast = planner.plan_campaign(
        session,
        campaign=campaign,
        config=service.parse_config(campaign.config),
        registered=repository.count_candidates_by_category(session, campaign.id or 0),
        respondents=requested,
    )
    return {
        "planner": forecast,
        "respondents_text": respondents_text,
        # The template words it, with the bounds in the reader's number format.
        "respondents_error": unusable,
        "respondents_bounds": (planner.MIN_PLANNED_RESPONDENTS, planner.MAX_PLANNED_RESPONDENTS),
    }


async def posted_form(request: Request) -> FormData:
    """The posted fields, read before the (synchronous) route runs off the event loop."""
    return await request.form()


PostedForm = Annotated[FormData, Depends(posted_form)]


def _config_context(
    session: SessionDep,
    campaign: Campaign,
    form: forms.ConfigForm,
    *,
    errors: dict[str, str] | None = None,
    respondents_text: str = "",
    import_text: str = "",
    import_errors: list[str] | None = None,
) -> dict[str, Any]:
    counts, unplaced = forms.count_by_row(
        form.categories, service.registered_profiles(session, campaign=campaign)
    )
    context: dict[str, Any] = {
        "campaign": campaign,
        "form": form,
        "errors": errors or {},
        "field_label": forms.field_label,
        "error_anchor": forms.error_anchor,
        "row_counts": counts,
        "unplaced": unplaced,
        "editable": service.config_editable(campaign),
        "kinds": forms.kind_choices(),
        "channels": forms.channel_choices(),
        "missing_channel_choices": forms.missing_channel_choices(),
        "publication_choices": forms.publication_choices(),
        "import_text": import_text,
        "import_errors": import_errors or [],
    }
    context.update(_planner_context(session, campaign, respondents_text))
    return context


def _saved_form(campaign: Campaign) -> forms.ConfigForm:
    return forms.form_from_config(service.parse_config(campaign.config), locale=get_locale())


@router.get("/campaigns/{campaign_id}/config", name="campaign_config")
def campaign_config_page(
    request: Request,
    session: SessionDep,
    admin: AdminUser,
    campaign_id: int,
    respondents: Annotated[str, Query(max_length=12)] = "",
) -> Response:
    campaign = service.get_campaign(session, campaign_id=campaign_id)
    context = _config_context(
        session, campaign, _saved_form(campaign), respondents_text=respondents
    )
    return render(request, "campaigns/config.html", context)


@router.post("/campaigns/{campaign_id}/config", name="campaign_config_submit")
def campaign_config_submit(
    request: Request,
    session: SessionDep,
    admin: AdminUser,
    campaign_id: int,
    posted: PostedForm,
) -> Response:
    """Save the form; "add a category" and "recount" re-render it with the input, unsaved."""
    campaign = service.get_campaign(session, campaign_id=campaign_id)
    parsed = forms.parse_form(posted)
    if parsed.action != "save":
        if parsed.action == "add_category" and len(parsed.form.categories) < forms.MAX_CATEGORIES:
            parsed.form.categories.append(forms.CategoryRow())
        context = _config_context(session, campaign, parsed.form)
        return render(request, "campaigns/config.html", context)
    errors = parsed.errors
    if parsed.config is not None:
        try:
            service.save_config(session, campaign=campaign, config=parsed.config, actor=admin)
        except InvalidInput as exc:
            errors = {exc.field or "form": exc.message}
    if errors or parsed.config is None:
        context = _config_context(session, campaign, parsed.form, errors=errors)
        return render(request, "campaigns/config.html", context, status_code=400)
    flash(request, _("Configuration saved."))
    return RedirectResponse(
        request.url_for("campaign", campaign_id=campaign_id).path, status_code=303
    )


@router.post("/campaigns/{campaign_id}/config/import", name="campaign_config_import")
def campaign_config_import(
    request: Request,
    session: SessionDep,
    admin: AdminUser,
    campaign_id: int,
    config_text: Annotated[str, Form(max_length=100_000)] = "",
) -> Response:
    """Replace the whole configuration with a YAML or JSON document (JSON is YAML too)."""
    campaign = service.get_campaign(session, campaign_id=campaign_id)
    try:
        raw = yaml.safe_load(config_text)
        if not isinstance(raw, dict):
            raise InvalidInput(_("config: expected a mapping of settings."), field="config")
        service.update_config(session, campaign=campaign, raw=raw, actor=admin)
    except (yaml.YAMLError, InvalidInput) as exc:
        message = (
            exc.message if isinstance(exc, InvalidInput) else _("YAML syntax: %(e)s") % {"e": exc}
        )
        context = _config_context(
            session,
            campaign,
            _saved_form(campaign),
            import_text=config_text,
            import_errors=message.splitlines(),
        )
        return render(request, "campaigns/config.html", context, status_code=400)
    flash(request, _("Configuration imported."))
    return RedirectResponse(
        request.url_for("campaign", campaign_id=campaign_id).path, status_code=303
    )


def _config_download(campaign: Campaign, text: str, extension: str, media_type: str) -> Response:
    filename = f"configuration-{campaign.year}.{extension}"
    return Response(
        content=text.encode("utf-8"),
        media_type=f"{media_type}; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get("/campaigns/{campaign_id}/config.yaml", name="campaign_config_yaml")
def campaign_config_yaml(session: SessionDep, admin: AdminUser, campaign_id: int) -> Response:
    campaign = service.get_campaign(session, campaign_id=campaign_id)
    text = yaml.safe_dump(campaign.config, allow_unicode=True, sort_keys=False)
    return _config_download(campaign, text, "yaml", "application/yaml")


@router.get("/campaigns/{campaign_id}/config.json", name="campaign_config_json")
def campaign_config_json(session: SessionDep, admin: AdminUser, campaign_id: int) -> Response:
    campaign = service.get_campaign(session, campaign_id=campaign_id)
    text = json.dumps(campaign.config, ensure_ascii=False, indent=2) + "\n"
    return _config_download(campaign, text, "json", "application/json")


@router.post("/campaigns/{campaign_id}/candidates", name="candidate_register")
def candidate_register(
    request: Request,
    session: SessionDep,
    admin: AdminUser,
    campaign_id: int,
    code: Annotated[str, Form(max_length=12)] = "",
) -> Response:
    campaign = service.get_campaign(session, campaign_id=campaign_id)
    try:
        candidate = service.register_candidate(session, campaign=campaign, code=code, actor=admin)
    except InvalidInput as exc:
        context = _detail_context(session, campaign_id)
        context["errors"] = {"code": exc.message}
        context["code"] = code
        return render(request, "campaigns/detail.html", context, status_code=400)
    flash(
        request,
        _("%(code)s registered in category %(category)s.")
        % {"code": candidate.authority_code, "category": candidate.category},
    )
    return RedirectResponse(
        request.url_for("campaign", campaign_id=campaign_id).path + "#candidates", status_code=303
    )


@router.post("/campaigns/{campaign_id}/candidates/import", name="candidate_import")
async def candidate_import(
    request: Request,
    session: SessionDep,
    admin: AdminUser,
    campaign_id: int,
    file: Annotated[UploadFile, File()],
) -> Response:
    campaign = service.get_campaign(session, campaign_id=campaign_id)
    content = await file.read(MAX_CSV_BYTES + 1)
    if len(content) > MAX_CSV_BYTES:
        raise InvalidInput(_("The file is larger than 2 MB."), field="file")
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(_("The file is not UTF-8 text."), field="file") from exc
    report = service.import_candidates(session, campaign=campaign, text=text, actor=admin)
    flash(
        request,
        _("%(registered)d candidates registered, %(already)d already registered.")
        % {"registered": report.registered, "already": report.already_registered},
    )
    return RedirectResponse(
        request.url_for("campaign", campaign_id=campaign_id).path + "#candidates", status_code=303
    )


@router.post("/campaigns/{campaign_id}/candidates/{code}/withdraw", name="candidate_withdraw")
def candidate_withdraw(
    request: Request, session: SessionDep, admin: AdminUser, campaign_id: int, code: str
) -> Response:
    campaign = service.get_campaign(session, campaign_id=campaign_id)
    service.withdraw_candidate(session, campaign=campaign, code=code, actor=admin)
    flash(request, _("%(code)s withdrawn.") % {"code": code})
    return RedirectResponse(
        request.url_for("campaign", campaign_id=campaign_id).path + "#candidates", status_code=303
    )


@router.post("/campaigns/{campaign_id}/instruments", name="campaign_pin_instrument")
def campaign_pin_instrument(
    request: Request,
    session: SessionDep,
    admin: AdminUser,
    campaign_id: int,
    version_id: Annotated[int, Form()],
) -> Response:
    campaign = service.get_campaign(session, campaign_id=campaign_id)
    pin = service.pin_instrument(session, campaign=campaign, version_id=version_id, actor=admin)
    flash(request, _("Instrument %(key)s pinned.") % {"key": pin.instrument_key})
    return RedirectResponse(
        request.url_for("campaign", campaign_id=campaign_id).path + "#instruments", status_code=303
    )


@router.post("/campaigns/{campaign_id}/instruments/latest", name="campaign_pin_latest")
def campaign_pin_latest(
    request: Request, session: SessionDep, admin: AdminUser, campaign_id: int
) -> Response:
    campaign = service.get_campaign(session, campaign_id=campaign_id)
    count = service.pin_latest_versions(session, campaign=campaign, actor=admin)
    flash(request, _("%(count)d instruments pinned at their latest version.") % {"count": count})
    return RedirectResponse(
        request.url_for("campaign", campaign_id=campaign_id).path + "#instruments", status_code=303
    )


@api_router.get("/campaigns", name="api_campaigns")
def api_campaigns(session: SessionDep, user: StaffUser) -> list[CampaignPublic]:
    return [CampaignPublic.model_validate(c) for c in repository.list_campaigns(session)]


@api_router.get("/campaigns/{campaign_id}", name="api_campaign")
def api_campaign(session: SessionDep, user: StaffUser, campaign_id: int) -> CampaignPublic:
    return CampaignPublic.model_validate(service.get_campaign(session, campaign_id=campaign_id))


@api_router.post("/campaigns/{campaign_id}/transitions", name="api_campaign_transition")
def api_campaign_transition(
    session: SessionDep, admin: AdminUser, campaign_id: int, body: TransitionRequest
) -> dict[str, Any]:
    campaign = service.get_campaign(session, campaign_id=campaign_id)
    record = service.transition(
        session, campaign=campaign, to_state=body.to_state, actor=admin, comment=body.comment
    )
    return {
        "campaign": campaign.id,
        "from_state": record.from_state,
        "to_state": record.to_state,
        "at": record.at.isoformat(),
        "actor_id": record.actor_id,
    }
