"""Scoring runs (organiser pages, the preview and final-run buttons and their progress).

A button creates a ``running`` row and its durable job (:mod:`app.results.jobs`); the
progress page is polled by htmx every few seconds (a ``Refresh`` header and a plain link do
the same without JavaScript) and links the result once the run is complete.

The rankings API (``api_rankings``) is served by :mod:`app.publication.routes`: what it names
depends on the publication policy and the jury's laureates, which this domain does not read.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from app.accounts.dependencies import AdminUser
from app.campaigns import service as campaigns_service
from app.campaigns.models import Campaign, CampaignState
from app.core.db import SessionDep, row_id
from app.core.errors import NotFound
from app.core.i18n import _, get_locale
from app.core.labels import N_
from app.core.templating import flash, is_fragment_request, render
from app.jobs import service as jobs_service
from app.results import jobs, repository, service
from app.results import labels as _labels  # noqa: F401  (registers the pages' template filters)
from app.results.models import RunKind, RunStatus, ScoringRun

router = APIRouter()

# Seconds between two refreshes of a running run's progress (htmx, or the Refresh header).
REFRESH_SECONDS = 3
# The steps the computation reports (app.results.inputs / compute), in the reader's language.
PROGRESS_STEPS = {
    "queued": N_("waiting to start"),
    "reading candidates and instruments": N_("reading candidates and instruments"),
    "reading responses": N_("reading the responses"),
    "item scores of the responses": N_("scoring the answers"),
    "scoring approved visits": N_("scoring the approved visits"),
    "hashing the inputs": N_("fingerprinting the inputs"),
    "survey estimates": N_("survey estimates"),
    "mystery-shopper estimates": N_("mystery-shopper estimates"),
    "overall scores": N_("overall scores"),
    "eligibility and rankings": N_("eligibility and rankings"),
    "sorting rows": N_("sorting the results"),
    "writing the run": N_("saving the run"),
    "complete": N_("complete"),
    "preview ready": N_("preview ready"),
}


def progress_step(message: str) -> str:
    """A progress message in words of the reader's language ("ranking <category>" included)."""
    if message.startswith("ranking "):
        return _("ranking %(category)s") % {"category": message.removeprefix("ranking ")}
    step = PROGRESS_STEPS.get(message)
    return _(step) if step else message


def _category_labels(campaign: Campaign) -> dict[str, str]:
    return campaigns_service.parse_config(campaign.config).category_labels(get_locale())


def _runs_context(session: SessionDep, campaign_id: int) -> dict[str, Any]:
    campaign = campaigns_service.get_campaign(session, campaign_id=campaign_id)
    runs = repository.list_runs(session, campaign_id=campaign_id)
    current = repository.current_run(session, campaign_id=campaign_id)
    return {
        "campaign": campaign,
        "runs": runs,
        "current": current,
        "running": next((run for run in runs if run.status == RunStatus.running), None),
        "can_score": CampaignState(campaign.state) in service.FINAL_STATES,
        "can_preview": CampaignState(campaign.state) in service.PREVIEW_STATES,
        "decided": CampaignState(campaign.state) in service.DECIDED_STATES,
        "progress_step": progress_step,
        "refresh_seconds": REFRESH_SECONDS,
    }


@router.get("/campaigns/{campaign_id}/runs", name="scoring_runs")
def scoring_runs_page(
    request: Request, session: SessionDep, user: AdminUser, campaign_id: int
) -> Response:
    """Every scoring run of the campaign: time, inputs hash, status, superseded by."""
    context = _runs_context(session, campaign_id)
    # Without JavaScript the browser reloads the page while a run is in progress.
    headers = {"Refresh": str(REFRESH_SECONDS)} if context["running"] else None
    return render(request, "results/runs.html", context, headers=headers)


def _start(
    request: Request,
    session: SessionDep,
    user: AdminUser,
    campaign_id: int,
    *,
    preview: bool,
) -> Response:
    campaign = campaigns_service.get_campaign(session, campaign_id=campaign_id)
    # The run and its durable job commit with this request; a worker picks the job up.
    run = jobs.start_run(session, campaign=campaign, actor=user, preview=preview)
    run_id = row_id(run)
    if preview:
        flash(request, _("Provisional preview %(id)d started.") % {"id": run_id})
    else:
        flash(request, _("Scoring run %(id)d started.") % {"id": run_id})
    return RedirectResponse(
        request.url_for("scoring_run_progress", campaign_id=campaign_id, run_id=run_id).path,
        status_code=303,
    )


@router.post("/campaigns/{campaign_id}/runs", name="scoring_run_start")
def scoring_run_start(
    request: Request,
    session: SessionDep,
    user: AdminUser,
    campaign_id: int,
) -> Response:
    """Start a final scoring run of a closed campaign in the background (409 otherwise)."""
    return _start(request, session, user, campaign_id, preview=False)


@router.post("/campaigns/{campaign_id}/runs/preview", name="scoring_preview_start")
def scoring_preview_start(
    request: Request,
    session: SessionDep,
    user: AdminUser,
    campaign_id: int,
) -> Response:
    """Start a provisional preview of an open campaign in the background (409 otherwise)."""
    return _start(request, session, user, campaign_id, preview=True)


def _get_run(session: SessionDep, campaign_id: int, run_id: int) -> ScoringRun:
    run = repository.get_run(session, run_id)
    if run is None or run.campaign_id != campaign_id:
        raise NotFound(_("No such scoring run."))
    return run


@router.get("/campaigns/{campaign_id}/runs/{run_id}/progress", name="scoring_run_progress")
def scoring_run_progress(
    request: Request, session: SessionDep, user: AdminUser, campaign_id: int, run_id: int
) -> Response:
    """A run's progress: a page, or the fragment htmx polls while the run is running."""
    run = _get_run(session, campaign_id, run_id)
    campaign = campaigns_service.get_campaign(session, campaign_id=campaign_id)
    context = {
        "campaign": campaign,
        "run": run,
        "job": jobs_service.job_by_key(session, jobs.job_key(run_id)),
        "progress_step": progress_step,
        "refresh_seconds": REFRESH_SECONDS,
    }
    reload = run.status == RunStatus.running and not is_fragment_request(request)
    headers = {"Refresh": str(REFRESH_SECONDS)} if reload else None
    return render(
        request,
        "results/progress.html",
        context,
        fragment="results/_progress.html",
        headers=headers,
    )


@router.get("/campaigns/{campaign_id}/runs/{run_id}", name="scoring_run")
def scoring_run_page(
    request: Request, session: SessionDep, user: AdminUser, campaign_id: int, run_id: int
) -> Response:
    """What a run found: responses and visits used, candidates scored and eligible by category."""
    run = _get_run(session, campaign_id, run_id)
    campaign = campaigns_service.get_campaign(session, campaign_id=campaign_id)
    current = repository.current_run(session, campaign_id=campaign_id)
    context = {
        "campaign": campaign,
        "run": run,
        "is_preview": run.kind == RunKind.preview,
        "is_current": current is not None and current.id == run.id,
        "category_labels": _category_labels(campaign),
        "progress_step": progress_step,
        "refresh_seconds": REFRESH_SECONDS,
    }
    return render(request, "results/run.html", context)
