"""Scoring runs (organiser pages, the run button and its progress).

The rankings API (``api_rankings``) is served by :mod:`app.publication.routes`: what it names
depends on the publication policy and the jury's laureates, which this domain does not read.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.responses import RedirectResponse, Response

from app.accounts.dependencies import AdminUser
from app.campaigns import service as campaigns_service
from app.campaigns.models import CampaignState
from app.core.db import SessionDep, row_id
from app.core.errors import NotFound
from app.core.i18n import _
from app.core.templating import flash, render
from app.results import jobs, repository, service
from app.results import labels as _labels  # noqa: F401  (registers the pages' template filters)
from app.results.models import RunStatus

router = APIRouter()


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
        "decided": CampaignState(campaign.state) in service.DECIDED_STATES,
    }


@router.get("/campaigns/{campaign_id}/runs", name="scoring_runs")
def scoring_runs_page(
    request: Request, session: SessionDep, user: AdminUser, campaign_id: int
) -> Response:
    """Every scoring run of the campaign: time, inputs hash, status, superseded by."""
    context = _runs_context(session, campaign_id)
    return render(request, "results/runs.html", context)


@router.post("/campaigns/{campaign_id}/runs", name="scoring_run_start")
def scoring_run_start(
    request: Request,
    session: SessionDep,
    user: AdminUser,
    campaign_id: int,
    background: BackgroundTasks,
) -> Response:
    """Start a final scoring run in the background; the runs page shows its progress."""
    campaign = campaigns_service.get_campaign(session, campaign_id=campaign_id)
    run = jobs.start_run(session, campaign=campaign, actor=user)
    run_id = row_id(run)
    # Background tasks run after the response, so after the request's unit of work committed
    # the row the job reads from its own session.
    background.add_task(jobs.launch, request.app.state.engine, run_id)
    flash(request, _("Scoring run %(id)d started.") % {"id": run_id})
    return RedirectResponse(
        request.url_for("scoring_runs", campaign_id=campaign_id), status_code=303
    )


@router.get("/campaigns/{campaign_id}/runs/{run_id}/progress", name="scoring_run_progress")
def scoring_run_progress(
    request: Request, session: SessionDep, user: AdminUser, campaign_id: int, run_id: int
) -> Response:
    """The progress fragment (polled by htmx while the run is running)."""
    run = repository.get_run(session, run_id)
    if run is None or run.campaign_id != campaign_id:
        raise NotFound(_("No such scoring run."))
    campaign = campaigns_service.get_campaign(session, campaign_id=campaign_id)
    context = {"campaign": campaign, "run": run}
    return render(request, "results/progress.html", context, fragment="results/_progress.html")
