"""The citizen's ways in: the public questionnaire (pages) and the JSON API."""

from __future__ import annotations

import csv
import io
import uuid
from dataclasses import asdict, fields
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import RedirectResponse, Response
from markupsafe import Markup
from sqlalchemy.engine import Engine
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

import surveys
from app.accounts.dependencies import AdminUser, RequireRole
from app.accounts.models import Role, User
from app.authorities import service as authorities_service
from app.campaigns import repository as campaigns_repository
from app.campaigns import service as campaigns_service
from app.campaigns.models import Campaign
from app.campaigns.schemas import Channel
from app.collection import email_invitations, ingest, progress, service, submission, targets
from app.collection.models import ResponseSource, SurveyDraft
from app.collection.repository import DraftRow
from app.collection.schemas import (
    CandidateProgressOut,
    ChannelProgressOut,
    ProgressOut,
    ProgressSummaryOut,
    PublishedInstrument,
    ResponseAccepted,
    ResponseSubmission,
)
from app.core.cache import BoundedCache
from app.core.config import Settings, SettingsDep, settings_of
from app.core.db import SessionDep, row_id
from app.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from app.core.i18n import _, get_locale
from app.core.templating import flash, render, templates
from app.core.urls import absolute_url

api_router = APIRouter(prefix="/api/v1", tags=["collection"])


@api_router.get(
    "/campaigns/{year}/survey", name="api_campaign_survey", response_model=PublishedInstrument
)
def api_campaign_survey(
    session: SessionDep, settings: SettingsDep, year: int, authority: str | None = None
) -> PublishedInstrument:
    """The questionnaire pinned by the campaign (open campaigns only)."""
    campaign = campaigns_repository.get_by_year(session, organiser=settings.organiser, year=year)
    if campaign is None:
        raise NotFound(_("There is no %(year)d campaign.") % {"year": year}, field="year")
    if authority is not None:
        target = service.survey_target(
            session, organiser=settings.organiser, year=year, authority_code=authority
        )
        version = target.version
    else:
        pins = campaigns_repository.pinned_instruments(session, row_id(campaign))
        survey = next((v for _p, v in pins if v.kind == "survey"), None)
        if survey is None:
            raise Conflict(_("This campaign has no questionnaire yet."), field="year")
        version = survey
    return PublishedInstrument(
        campaign=year,
        key=version.key,
        version=version.version,
        sha256=version.sha256,
        content=version.content,
    )


@api_router.post(
    "/responses",
    name="api_submit_response",
    status_code=201,
    response_model=ResponseAccepted,
    responses={
        200: {"description": "A replay of a response already received: same body as the 201."},
        409: {"description": "The id was already used for different answers."},
        422: {"description": "Invalid answers: `errors` names each item and what is wrong."},
        429: {"description": "Too many submissions from this client; see Retry-After."},
    },
)
async def api_submit_response(request: Request, body: ResponseSubmission) -> Response:
    """Submit one completed questionnaire. The client's UUID makes a retry safe.

    Acknowledged only once the response is committed (group commit: ``app.collection.ingest``).
    """
    settings = settings_of(request)
    engine = request.app.state.engine
    target = await targets.survey_target(
        engine, organiser=settings.organiser, year=body.campaign, authority_code=body.authority
    )
    invitation_id = await submission.invitation_of_token(
        engine, token=body.invitation, target=target, response_id=body.id
    )
    created = await submission.submit(
        engine,
        settings,
        submission.Submission(
            target=target,
            response_id=body.id,
            answers=body.answers,
            source=ResponseSource.invitation if invitation_id else ResponseSource.api,
            channel=body.channel.value if body.channel else None,
            started_at=body.started_at,
            invitation_id=invitation_id,
        ),
        limit=submission.client_limit(settings, request),
        via=submission.Via.api,
    )
    return Response(
        b'{"id":"' + str(body.id).encode() + b'"}',
        status_code=201 if created else 200,
        media_type="application/json",
    )


# --- the public questionnaire (works without JavaScript; htmx refreshes skip logic live) ----

router = APIRouter()


def _source(src: str) -> ResponseSource:
    return ResponseSource.qr if src == "qr" else ResponseSource.link


def _channel(canal: str | None) -> str | None:
    return canal if canal in {c.value for c in Channel} else None


def _posted_answers(form: FormData, page: surveys.FormPage) -> dict[str, Any]:
    """The answers of one page, as posted (empty means unanswered)."""
    posted: dict[str, Any] = {}
    for item in page.items:
        if not item.answerable:
            continue
        if item.type == "choice_many":
            values = [v for v in form.getlist(item.key) if isinstance(v, str) and v]
            if values:
                posted[item.key] = values
        else:
            value = form.get(item.key)
            if isinstance(value, str) and value.strip():
                posted[item.key] = value.strip() if item.type != "text" else value
    return posted


def _answers_with_posted_page(
    target: service.SurveyTarget, draft: SurveyDraft | DraftRow | None, form: FormData
) -> tuple[dict[str, Any], int]:
    """The draft's answers with the posted page's answers in place of its stored ones.

    The page is found among the pages the stored answers lead to (skip logic), clamped to them.
    """
    try:
        page_number = int(str(form.get("page", "1")))
    except ValueError:
        page_number = 1
    previous = dict(draft.answers) if draft else {}
    pages = surveys.form_pages(target.instrument, previous)
    page_number = max(1, min(page_number, len(pages)))
    return _merge(
        previous, pages[page_number - 1], _posted_answers(form, pages[page_number - 1])
    ), page_number


def _merge(draft_answers: dict[str, Any], page: surveys.FormPage, posted: dict[str, Any]):
    merged = {k: v for k, v in draft_answers.items() if k not in {i.key for i in page.items}}
    merged.update(posted)
    return merged


def _path(request: Request, name: str, **params: Any) -> str:
    """``request.url_for(name, **params).path`` for this module's public routes, found among
    this router's few routes instead of the whole application's (a hot path of the form)."""
    return request.scope.get("root_path", "") + str(router.url_path_for(name, **params))


# The HTML of a question nobody has answered yet, with no error and no live refresh, depends
# only on the published version (immutable), the item and the language: rendered once.
# Never stale: the key holds the version's content hash.
_PRISTINE_ITEMS: BoundedCache[tuple[int, str, str, str], Markup] = BoundedCache(
    "pristine questionnaire items", max_entries=5000
)


def _items_html(
    target: service.SurveyTarget,
    page: surveys.FormPage,
    *,
    answers: dict[str, Any],
    errors: dict[str, str],
    controlling: set[str],
    live_action: str,
) -> list[Markup]:
    """Each item of the page rendered by ``collection/_item.html`` (pristine ones cached)."""
    locale = get_locale()
    template = templates.env.get_template("collection/_item.html")
    rendered = []
    for item in page.items:
        pristine = (
            item.key not in answers and item.key not in errors and item.key not in controlling
        )
        key = (row_id(target.version), target.version.sha256, locale, item.key)
        html = _PRISTINE_ITEMS.get(key) if pristine else None
        if html is None:
            html = Markup(
                template.render(
                    item=item,
                    errors=errors,
                    answers=answers,
                    controlling=controlling,
                    live_action=live_action,
                    locale=locale,
                )
            )
            if pristine:
                _PRISTINE_ITEMS.put(key, html)
        rendered.append(html)
    return rendered


def _page_context(
    request: Request,
    target: service.SurveyTarget,
    *,
    draft_id: uuid.UUID,
    answers: dict[str, Any],
    page_number: int,
    errors: dict[str, str],
    canal: str | None,
    source: str,
) -> dict[str, Any]:
    pages = surveys.form_pages(target.instrument, answers)
    page_number = max(1, min(page_number, len(pages)))
    page = pages[page_number - 1]
    path_params = {"year": target.campaign.year, "code": target.authority.code}
    error_targets = {}
    labels = {}
    for item in page.items:
        error_targets[item.key] = f"item-{item.key}-0" if item.options else f"item-{item.key}"
        labels[item.key] = item.label.get(get_locale())
    section_keys = {item.key for item in page.section.items}
    # Only answers that decide whether another question of this page is asked trigger a live
    # refresh; every other click stays local, so a refresh never races the citizen's input.
    controlling = {
        key
        for item in page.section.items
        if item.relevant
        for key in surveys.parse_expression(item.relevant).keys
        if key in section_keys
    }
    live_action = _path(request, "survey_live", draft_id=draft_id, **path_params)
    return {
        "instrument": target.instrument,
        "authority": target.authority,
        "page": page,
        "items_html": _items_html(
            target,
            page,
            answers=answers,
            errors=errors,
            controlling=controlling,
            live_action=live_action,
        ),
        "controlling": controlling,
        "shown": ",".join(item.key for item in page.items),
        "page_number": page_number,
        "page_count": len(pages),
        "answers": answers,
        "errors": errors,
        "error_targets": error_targets,
        "labels": labels,
        "canal": canal,
        "source": source,
        "action": _path(request, "survey_page_submit", draft_id=draft_id, **path_params),
        "live_action": live_action,
    }


def _target(session: Session, settings: Settings, year: int, code: str) -> service.SurveyTarget:
    return service.survey_target(
        session, organiser=settings.organiser, year=year, authority_code=code
    )


async def _target_of(
    request: Request, settings: Settings, year: int, code: str
) -> service.SurveyTarget:
    """The link's target: from the process's cache, else read in a worker thread."""
    return await targets.survey_target(
        request.app.state.engine, organiser=settings.organiser, year=year, authority_code=code
    )


def _read_form_state(
    engine: Engine, draft_id: uuid.UUID, target: service.SurveyTarget
) -> service.FormState:
    with engine.connect() as connection:  # reads only (plain columns: no ORM session)
        return service.read_form_state(connection, draft_id=draft_id, target=target)


@router.get("/s/{year}/{code}", name="survey_start")
async def survey_start(
    request: Request,
    year: int,
    code: str,
    canal: Annotated[str, Query(max_length=20)] = "",
    src: Annotated[str, Query(max_length=10)] = "link",
) -> Response:
    """The public link (printed as a QR code at the counter): the questionnaire's first page.

    Nothing is read or written here but the (cached) target: the draft is created by the
    first page's POST.
    """
    settings = settings_of(request)  # (not a dependency: one less to solve per page)
    target = await _target_of(request, settings, year, code)
    service.require_public_link_allowed(target)
    channel = _channel(canal)
    channel_item = target.instrument.channel_item
    answers = {channel_item.key: channel} if channel and channel_item else {}
    context = _page_context(
        request,
        target,
        draft_id=uuid.uuid4(),
        answers=answers,
        page_number=1,
        errors={},
        canal=channel,
        source=_source(src).value,
    )
    return render(request, "collection/survey.html", context)


@router.get("/s/{year}/{code}/r/{draft_id}", name="survey_page")
async def survey_page(
    request: Request,
    year: int,
    code: str,
    draft_id: uuid.UUID,
    page: Annotated[int, Query(ge=1, le=100)] = 1,
) -> Response:
    settings = settings_of(request)  # (not a dependency: one less to solve per page)
    target = await _target_of(request, settings, year, code)
    state = await run_in_threadpool(_read_form_state, request.app.state.engine, draft_id, target)
    if state.answered:
        return RedirectResponse(
            _path(request, "survey_thanks", year=year, code=target.authority.code),
            status_code=303,
        )
    draft = state.draft
    if not state.invited:
        service.require_public_link_allowed(target)
    context = _page_context(
        request,
        target,
        draft_id=draft_id,
        answers=draft.answers if draft else {},
        page_number=page,
        errors={},
        canal=draft.channel if draft else None,
        source=draft.source if draft else ResponseSource.link.value,
    )
    return render(request, "collection/survey.html", context)


@router.post("/s/{year}/{code}/r/{draft_id}", name="survey_page_submit")
async def survey_page_submit(
    request: Request,
    year: int,
    code: str,
    draft_id: uuid.UUID,
) -> Response:
    """One page of the form, opened by the public link or by an invitation: its answers join
    the server-side draft (group commit, like the API's responses), then the next page, the page
    again with its errors, or — after the last page — the response through the one submission
    door (``app.collection.submission``) and the thanks.

    Database work never runs on the event loop (reads in a worker thread, writes in the
    writer's).
    """
    settings = settings_of(request)  # (not a dependency: one less to solve per page)
    form = await request.form()
    engine = request.app.state.engine
    target = await _target_of(request, settings, year, code)
    state = await run_in_threadpool(_read_form_state, engine, draft_id, target)
    year, code = target.campaign.year, target.authority.code
    thanks = _path(request, "survey_thanks", year=year, code=code)
    if state.answered:
        return RedirectResponse(thanks, status_code=303)  # a double click or a replayed POST
    if form.get("website"):
        # The honeypot: only robots fill a field people cannot see. Nothing is stored.
        return RedirectResponse(thanks, status_code=303)
    canal = _channel(str(form.get("canal", "")))
    source = _source(str(form.get("src", "")))
    if not state.invited:
        service.require_public_link_allowed(target)
    draft = state.draft
    answers, page_number = _answers_with_posted_page(target, draft, form)
    # Skip logic may add or remove pages once this page's answers are known.
    pages = surveys.form_pages(target.instrument, answers)
    page_number = min(page_number, len(pages))
    current = pages[page_number - 1]
    writer = ingest.public_writer(engine, settings)
    save = ingest.DraftSave(
        service.draft_values(
            draft_id=draft_id,
            target=target,
            draft=draft,
            answers=answers,
            channel=canal,
            source=source,
            invitation_id=state.invitation_id,
        )
    )
    base_url = _path(request, "survey_page", year=year, code=code, draft_id=draft_id)
    if form.get("action") == "back":
        await writer.submit(save)
        return RedirectResponse(f"{base_url}?page={max(1, page_number - 1)}", status_code=303)
    errors = _page_errors(target, current, answers)
    if errors or page_number < len(pages):
        await writer.submit(save)
    refused_or_next = _refused_or_next_page(
        request,
        target,
        draft_id=draft_id,
        answers=answers,
        errors=errors,
        page_number=page_number,
        page_count=len(pages),
        base_url=base_url,
        canal=canal,
        source=source,
    )
    if refused_or_next is not None:
        return refused_or_next
    # The last page: the response, its rate-limit hit, the invitation's use and the draft's
    # deletion in one transaction. Whatever refuses it, the draft keeps this page's answers.
    completed = submission.Submission(
        target=target,
        response_id=draft_id,
        answers=answers,
        source=ResponseSource(save.values["source"]),  # the draft's, the invitation's or the link's
        started_at=draft.started_at if draft else None,
        invitation_id=state.invitation_id,
        discard_draft=True,
    )
    try:
        await submission.submit(
            engine,
            settings,
            completed,
            limit=submission.client_limit(settings, request),
            via=submission.Via.form,
        )
    except service.InvalidAnswers as exc:
        # An earlier page no longer validates (e.g. its answers were edited elsewhere).
        await writer.submit(save)
        first = exc.errors[0]["field"].removeprefix("answers.")
        page_of = next(
            (n for n, p in enumerate(pages, start=1) if first in {i.key for i in p.items}), 1
        )
        return RedirectResponse(f"{base_url}?page={page_of}", status_code=303)
    except Exception:
        await writer.submit(save)
        raise
    return RedirectResponse(thanks, status_code=303)


@router.post("/s/{year}/{code}/r/{draft_id}/live", name="survey_live")
async def survey_live(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    year: int,
    code: str,
    draft_id: uuid.UUID,
) -> Response:
    """htmx: the current page again with skip logic applied to what was just chosen."""
    form = await request.form()
    return await run_in_threadpool(_live, request, session, settings, year, code, draft_id, form)


def _live(
    request: Request,
    session: Session,
    settings: Settings,
    year: int,
    code: str,
    draft_id: uuid.UUID,
    form: FormData,
) -> Response:
    target = _target(session, settings, year, code)
    draft = service.load_draft(session, draft_id=draft_id, target=target)
    answers, page_number = _answers_with_posted_page(target, draft, form)
    context = _page_context(
        request,
        target,
        draft_id=draft_id,
        answers=answers,
        page_number=page_number,
        errors={},
        canal=None,
        source=ResponseSource.link.value,
    )
    if context["shown"] == form.get("shown"):
        return Response(status_code=204)  # the same questions: nothing to swap
    return render(request, "collection/_page_items.html", context)


@router.get("/s/{year}/{code}/merci", name="survey_thanks")
def survey_thanks(
    request: Request, session: SessionDep, settings: SettingsDep, year: int, code: str
) -> Response:
    authority = authorities_service.get_authority(session, code=code.upper())
    return render(request, "collection/thanks.html", {"authority": authority, "year": year})


@router.get("/confidentialite", name="privacy")
def privacy(request: Request) -> Response:
    return render(request, "collection/privacy.html")


def _refused_or_next_page(
    request: Request,
    target: service.SurveyTarget,
    *,
    draft_id: uuid.UUID,
    answers: dict[str, Any],
    errors: dict[str, str],
    page_number: int,
    page_count: int,
    base_url: str,
    canal: str | None,
    source: ResponseSource,
) -> Response | None:
    """This page again with its errors (400), or the next page; ``None`` after the last page."""
    if errors:
        context = _page_context(
            request,
            target,
            draft_id=draft_id,
            answers=answers,
            page_number=page_number,
            errors=errors,
            canal=canal,
            source=source.value,
        )
        return render(request, "collection/survey.html", context, status_code=400)
    if page_number < page_count:
        return RedirectResponse(f"{base_url}?page={page_number + 1}", status_code=303)
    return None


def _page_errors(
    target: service.SurveyTarget, current: surveys.FormPage, answers: dict[str, Any]
) -> dict[str, str]:
    """This page's problems, by item key, in words citizens understand."""
    _clean, problems = service.validate_page(
        target.instrument, answers, section=current.section.key
    )
    page_keys = {item.key for item in current.items}
    errors = {}
    for problem in problems:
        key = problem["field"].removeprefix("answers.")
        if key in page_keys:
            errors[key] = _answer_message(problem)
    return errors


def _answer_message(problem: dict[str, str]) -> str:
    """Messages citizens understand, by error code (the API keeps the technical ones)."""
    messages = {
        "required": _("Please answer this question."),
        "invalid_choice": _("Choose one of the proposed answers."),
        "out_of_range": _("This value is outside the allowed range."),
        "invalid_type": _("This answer is not in the expected format."),
        "too_long": _("This text is too long."),
        "invalid_date": _("Enter a valid date."),
        "markup": _("Plain text only: remove the < > markup."),
    }
    return messages.get(problem["code"], problem["message"])


@router.get("/i/{token}", name="invitation_link")
def invitation_link(
    request: Request, session: SessionDep, settings: SettingsDep, token: str
) -> Response:
    """A single-use invitation: opens (or resumes) its questionnaire."""
    target, draft_id = service.open_invitation(session, token=token, organiser=settings.organiser)
    url = request.url_for(
        "survey_page", year=target.campaign.year, code=target.authority.code, draft_id=draft_id
    ).path
    return RedirectResponse(url, status_code=303)


@router.post("/campaigns/{campaign_id}/invitations", name="invitations_create")
def invitations_create(
    request: Request,
    session: SessionDep,
    admin: AdminUser,
    campaign_id: int,
    code: Annotated[str, Form(max_length=12)] = "",
    count: Annotated[int, Form(ge=1, le=service.MAX_INVITATIONS_PER_BATCH)] = 1,
) -> Response:
    """Generate single-use links for a candidate, as a CSV for a mailing (tokens shown once)."""
    campaign = campaigns_service.get_campaign(session, campaign_id=campaign_id)
    tokens = service.create_invitations(
        session, campaign=campaign, authority_code=code, count=count
    )
    authority = authorities_service.get_authority(session, code=code.strip().upper())
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["authority_code", "authority_name", "link"])
    for token in tokens:
        writer.writerow(
            [authority.code, authority.name, str(request.url_for("invitation_link", token=token))]
        )
    filename = f"invitations-{campaign.year}-{authority.code}.csv"
    return Response(
        buffer.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


# --- invitations by e-mail ------------------------------------------------------------------

MAX_RECIPIENTS_CSV_BYTES = 10 * 1024 * 1024  # 50,000 lines of address, code and language


def _email_invitations_page(
    request: Request,
    session: Session,
    campaign: Campaign,
    *,
    errors: dict[str, str] | None = None,
    remind_after_days: str = "",
    status_code: int = 200,
) -> Response:
    context = {
        "campaign": campaign,
        "figures": email_invitations.figures(session, campaign=campaign),
        "can_upload": campaign.state in email_invitations.UPLOAD_STATES,
        "errors": errors or {},
        # A refused file lists one problem a line (``refuse_file``).
        "file_problems": (errors or {})["file"].split("\n") if "file" in (errors or {}) else [],
        "remind_after_days": remind_after_days or str(email_invitations.DEFAULT_REMINDER_DAYS),
        "min_days": email_invitations.MIN_REMINDER_DAYS,
        "max_days": email_invitations.MAX_REMINDER_DAYS,
        "max_rows": email_invitations.MAX_ROWS,
    }
    return render(request, "collection/email_invitations.html", context, status_code=status_code)


@router.get("/campaigns/{campaign_id}/invitations/email", name="email_invitations")
def email_invitations_page(
    request: Request, session: SessionDep, admin: AdminUser, campaign_id: int
) -> Response:
    """Invitations by e-mail: the upload form and the counts (never an address)."""
    campaign = campaigns_service.get_campaign(session, campaign_id=campaign_id)
    return _email_invitations_page(request, session, campaign)


@router.post("/campaigns/{campaign_id}/invitations/email", name="email_invitations_upload")
def email_invitations_upload(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    admin: AdminUser,
    campaign_id: int,
    file: Annotated[UploadFile | None, File()] = None,
    remind_after_days: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    """Invite a list of citizens by e-mail (all the file or nothing), then one reminder."""
    campaign = campaigns_service.get_campaign(session, campaign_id=campaign_id)
    try:
        days = email_invitations.reminder_days(remind_after_days)
        # A plain ``def`` route (run in a worker thread): reading and inviting block no one.
        content = file.file.read(MAX_RECIPIENTS_CSV_BYTES + 1) if file is not None else b""
        if not content:
            raise InvalidInput(_("Choose a CSV file."), field="file")
        if len(content) > MAX_RECIPIENTS_CSV_BYTES:
            raise InvalidInput(_("The file is larger than 10 MB."), field="file")
        try:
            text = content.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise InvalidInput(_("The file is not UTF-8 text."), field="file") from exc
        report = email_invitations.upload_recipients(
            session,
            settings=settings,
            campaign=campaign,
            text=text,
            remind_after_days=days,
            base_url=absolute_url(request, settings, "/"),
            actor=admin,
        )
    except InvalidInput as exc:
        return _email_invitations_page(
            request,
            session,
            campaign,
            errors={exc.field or "file": exc.message},
            remind_after_days=remind_after_days,
            status_code=422,
        )
    flash(request, email_invitations.upload_message(report))
    return RedirectResponse(
        request.url_for("email_invitations", campaign_id=campaign_id).path, status_code=303
    )


@router.get("/optout/{token}", name="citizen_optout")
def citizen_optout(request: Request, session: SessionDep, token: str) -> Response:
    """The opt-out link of an invitation e-mail: a page with a button (reading changes
    nothing, so a mail scanner that follows links opts nobody out)."""
    state = email_invitations.optout_state(session, token=token)
    return render(request, "collection/optout.html", {"state": state.value, "token": token})


@router.post("/optout/{token}", name="citizen_optout_submit")
def citizen_optout_submit(request: Request, session: SessionDep, token: str) -> Response:
    """Opt out: the page's button, or a mail client's one-click POST (RFC 8058, body
    ``List-Unsubscribe=One-Click``). Honoured at once; the answer is the same either way."""
    state = email_invitations.opt_out(session, token=token)
    return render(
        request, "collection/optout.html", {"state": state.value, "token": token, "done": True}
    )


OrganiserOrAuthority = Annotated[User, Depends(RequireRole(Role.admin, Role.authority))]


@router.get("/campaigns/{campaign_id}/collection", name="collection_figures")
def collection_figures_page(
    request: Request,
    session: SessionDep,
    user: OrganiserOrAuthority,
    campaign_id: int,
    code: Annotated[str, Query(max_length=12)] = "",
) -> Response:
    """Live collection figures: counts only, never an individual answer."""
    campaign = campaigns_service.get_campaign(session, campaign_id=campaign_id)
    authority_code = code.strip().upper() or None
    if user.role == Role.authority:
        # An authority contact sees its own figures and nothing else.
        if authority_code not in (None, user.authority_code):
            raise Forbidden(_("You can only see the figures of your own authority."))
        authority_code = user.authority_code
    authority = (
        authorities_service.get_authority(session, code=authority_code) if authority_code else None
    )
    figures = service.collection_figures(
        session,
        campaign=campaign,
        authority_code=authority_code,
        instrument=service.survey_instrument_of(session, campaign=campaign),
    )
    context = {"campaign": campaign, "authority": authority, "figures": figures, "code": code}
    return render(request, "collection/figures.html", context, fragment="collection/_figures.html")


# --- collection progress against the eligibility rules --------------------------------------


def _progress(
    session: Session,
    *,
    user: User,
    campaign_id: int,
    code: str,
    category: str,
    sort: progress.ProgressSort,
    direction: progress.SortDirection | None,
    page: int,
) -> tuple[Campaign, progress.ProgressPage, str | None]:
    """The page of progress ``user`` may read: an authority contact gets its own row only."""
    campaign = campaigns_service.get_campaign(session, campaign_id=campaign_id)
    authority_code = code.strip().upper() or None
    if user.role == Role.authority:
        # An authority contact sees its own progress and nothing else (the query is limited
        # to its code as well).
        if authority_code not in (None, user.authority_code) or user.authority_code is None:
            raise Forbidden(_("You can only see the progress of your own authority."))
        authority_code = user.authority_code
    found = progress.progress_page(
        session,
        campaign=campaign,
        # One candidate's row is shown whatever the category filter says.
        category=None if authority_code else category.strip() or None,
        authority_code=authority_code,
        sort=sort,
        direction=direction,
        page=page,
    )
    if authority_code is not None and not found.rows:
        raise NotFound(
            _("%(code)s is not a registered candidate of this campaign.") % {"code": authority_code}
        )
    return campaign, found, authority_code


SortParam = Annotated[progress.ProgressSort, Query(description="shortfall, name or respondents")]
DirectionParam = Annotated[
    progress.SortDirection | None,
    Query(alias="dir", description="asc or desc (default: the column's natural order)"),
]
CategoryParam = Annotated[str, Query(max_length=40, description="A category key")]
PageParam = Annotated[int, Query(ge=1, le=10_000)]
CodeParam = Annotated[str, Query(max_length=12, description="One candidate's authority code")]


@router.get("/campaigns/{campaign_id}/progress", name="collection_progress")
def collection_progress_page(
    request: Request,
    session: SessionDep,
    user: OrganiserOrAuthority,
    campaign_id: int,
    sort: SortParam = progress.ProgressSort.shortfall,
    direction: DirectionParam = None,
    category: CategoryParam = "",
    page: PageParam = 1,
    code: CodeParam = "",
) -> Response:
    """Who is still short of the eligibility thresholds (counts only, never an answer)."""
    campaign, found, authority_code = _progress(
        session,
        user=user,
        campaign_id=campaign_id,
        code=code,
        category=category,
        sort=sort,
        direction=direction,
        page=page,
    )
    context = {
        "campaign": campaign,
        "progress": found,
        "code": code.strip().upper(),
        "own_row": user.role == Role.authority,
        "one_row": authority_code is not None,
        # The direction each column sorts in when its header is first chosen.
        "natural": {key.value: value.value for key, value in progress.NATURAL_DIRECTION.items()},
        "counts_ttl": int(progress.COUNTS_TTL_SECONDS),
    }
    return render(
        request, "collection/progress.html", context, fragment="collection/_progress.html"
    )


@api_router.get(
    "/campaigns/{campaign_id}/progress",
    name="api_collection_progress",
    response_model=ProgressOut,
    responses={
        403: {"description": "An authority contact asking for another authority's row"},
        404: {"description": "No such campaign, or the code is not a registered candidate"},
        422: {"description": "An invalid parameter (named in `detail`)"},
    },
)
def api_collection_progress(
    session: SessionDep,
    user: OrganiserOrAuthority,
    campaign_id: int,
    sort: SortParam = progress.ProgressSort.shortfall,
    direction: DirectionParam = None,
    category: CategoryParam = "",
    page: PageParam = 1,
    code: CodeParam = "",
) -> ProgressOut:
    """The progress page's figures: the organiser's, paged; an authority contact's own row."""
    campaign, found, _code = _progress(
        session,
        user=user,
        campaign_id=campaign_id,
        code=code,
        category=category,
        sort=sort,
        direction=direction,
        page=page,
    )
    return ProgressOut(
        campaign_id=row_id(campaign),
        year=campaign.year,
        min_respondents=found.min_respondents,
        min_channels_tested=found.min_channels_tested,
        min_visits_per_tested_channel=found.min_visits_per_tested_channel,
        summary=ProgressSummaryOut(**asdict(found.summary)),
        sort=found.sort.value,
        direction=found.direction.value,
        category=found.category,
        page=found.page,
        pages=found.pages,
        per_page=found.per_page,
        candidates=[
            CandidateProgressOut(
                **{
                    field.name: getattr(row, field.name)
                    for field in fields(row)
                    if field.name != "channels"
                },
                channels=[
                    ChannelProgressOut(
                        channel=channel.channel,
                        label=channel.label,
                        approved_visits=channel.approved,
                        planned_tests=channel.planned,
                        counted_visits=channel.counted,
                        tested=channel.tested,
                    )
                    for channel in row.channels
                ],
            )
            for row in found.rows
        ],
    )
