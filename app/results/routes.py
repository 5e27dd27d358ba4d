"""Scoring runs (organiser pages, the run button and its progress) and the rankings API."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.responses import RedirectResponse, Response

from app.accounts.dependencies import AdminUser, OptionalUser
from app.accounts.models import Role
from app.campaigns import repository as campaigns_repository
from app.campaigns import service as campaigns_service
from app.campaigns.models import CampaignState
from app.core.config import SettingsDep
from app.core.db import SessionDep, row_id
from app.core.errors import Forbidden, NotAuthenticated, NotFound
from app.core.i18n import _
from app.core.templating import flash, render
from app.results import jobs, repository, service
from app.results import labels as _labels  # noqa: F401  (registers the pages' template filters)
from app.results.compute import ScoreLevel
from app.results.models import RunStatus
from app.results.schemas import CategoryRanking, RankingEntry, RankingsResponse, RunInfo

router = APIRouter()
api_router = APIRouter(prefix="/api/v1", tags=["results"])

RANKINGS_ROLES = {Role.admin, Role.jury}


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


def _rankings(session: SessionDep, year: int, organiser: str, user: Any) -> RankingsResponse:
    campaign = campaigns_repository.get_by_year(session, organiser=organiser, year=year)
    if campaign is None:
        raise NotFound(_("There is no %(year)d campaign.") % {"year": year}, field="year")
    if CampaignState(campaign.state) != CampaignState.published:
        if user is None:
            raise NotAuthenticated(_("The rankings are public once the campaign is published."))
        if Role(user.role) not in RANKINGS_ROLES:
            raise Forbidden(_("Before publication, only the organiser and the jury see rankings."))
    run = repository.current_run(session, campaign_id=row_id(campaign))
    if run is None:
        raise NotFound(_("The %(year)d campaign has not been scored yet.") % {"year": year})
    config = campaigns_service.parse_config(campaign.config)
    run_id = row_id(run)
    ranks = repository.rank_rows(session, run_id=run_id)
    overall = {
        row.authority_code: row
        for row in repository.score_rows(session, run_id=run_id, level=ScoreLevel.overall)
    }
    names = repository.authority_names(session, {row.authority_code for row in ranks})
    labels = {category.key: category for category in config.categories}
    by_category: dict[str, list[RankingEntry]] = {}
    for row in ranks:
        score = overall.get(row.authority_code)
        by_category.setdefault(row.category, []).append(
            RankingEntry(
                authority_code=row.authority_code,
                authority_name=names.get(row.authority_code, row.authority_code),
                eligible=row.eligible,
                ineligible_reason=row.ineligible_reason,
                estimate=row.estimate,
                se=row.se,
                ci_low=score.ci_low if score else None,
                ci_high=score.ci_high if score else None,
                rank=row.rank,
                rank_low=row.rank_low,
                rank_high=row.rank_high,
                in_top1_set=row.in_top1_set,
                in_top3_set=row.in_top3_set,
                p_best=row.p_best,
                percentile=row.percentile,
                flags=list(score.flags) if score else [],
            )
        )
    order = [category.key for category in config.categories]
    order += sorted(set(by_category) - set(order))
    categories = []
    for key in order:
        entries = by_category.get(key)
        if not entries:
            continue
        entries.sort(key=lambda e: (e.rank is None, e.rank or 0, -(e.estimate or 0.0)))
        rule = labels.get(key)
        categories.append(
            CategoryRanking(
                key=key,
                label_fr=rule.label_fr if rule else key,
                label_en=rule.label_en if rule else key,
                statistical_tie=sum(1 for e in entries if e.in_top1_set) > 1,
                candidates=entries,
            )
        )
    return RankingsResponse(
        year=campaign.year,
        campaign_state=campaign.state,
        run=RunInfo(
            id=run_id,
            inputs_sha256=run.inputs_sha256,
            seed=run.seed,
            code_version=run.code_version,
            completed_at=run.completed_at,
            confidence_level=config.confidence_level,
        ),
        categories=categories,
    )


@api_router.get(
    "/campaigns/{year}/rankings",
    name="api_rankings",
    response_model=RankingsResponse,
    responses={
        401: {"description": "Not published yet and not signed in"},
        403: {"description": "Not published yet: organiser (admin) and jury only"},
        404: {"description": "No such campaign, or not scored yet"},
    },
)
def api_rankings(
    session: SessionDep, settings: SettingsDep, user: OptionalUser, year: int
) -> RankingsResponse:
    """The current frozen scoring run's rankings, per category.

    Each candidate: overall estimate with SE and confidence interval, point rank and marginal
    rank interval (Mogstad et al. 2024), membership of the top-1 and top-3 sets, P(best)
    (descriptive), percentile in the category, precision flags and eligibility (ineligible
    candidates are listed with the reason and no rank). Public once the campaign is
    published; before that, the organiser (admin) and the jury only.
    """
    return _rankings(session, year, settings.organiser, user)
