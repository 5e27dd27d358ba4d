"""Public results of a published campaign: laureates, distributions, open data, the rankings
API, and the methodology page that every table links to.

URL names: ``results_public``, ``results_category``, ``open_data_csv``, ``open_data_json`` (all
404 until the campaign is published), ``api_rankings``, ``methodology``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from app.accounts.dependencies import OptionalUser
from app.core.config import SettingsDep
from app.core.db import SessionDep
from app.core.templating import render, templates
from app.publication import service
from app.results.schemas import RankingsResponse
from app.scorecards.svg import forest_svg

router = APIRouter()
api_router = APIRouter(prefix="/api/v1", tags=["results"])

# Every results table links here (pages and PDFs alike, so a global rather than url_for).
METHODOLOGY_PATH = "/methodologie"
templates.env.globals["methodology_path"] = METHODOLOGY_PATH


@router.get(METHODOLOGY_PATH, name="methodology")
def methodology(request: Request) -> Response:
    """How scores, intervals, rank intervals, top sets and ties are computed, in plain words."""
    return render(request, "publication/methodology.html", {})


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
    """The current frozen scoring run's award table, per category.

    One inferential family: each candidate's overall estimate with SE and confidence interval
    (bounds cut at 0 or 100 are flagged ``ci_cut_low``/``ci_cut_high``), point rank and
    SIMULTANEOUS rank interval (Mogstad, Romano, Shaikh & Wilhelm 2024), membership of the
    top-1 and top-3 sets read from that interval (in the top τ ⇔ ``rank_low`` ≤ τ), P(best)
    (descriptive), percentile in the category, precision flags and eligibility (ineligible
    candidates are listed with the reason and no rank). A candidate's own marginal interval is
    on its scorecard. Public once the campaign is published, naming whom the campaign's
    publication policy names (the others are counted in ``not_named``); before that, and in
    full, the organiser (admin) and the jury.
    """
    return service.rankings(
        session,
        organiser=settings.organiser,
        year=year,
        user=user,
        methodology_url=METHODOLOGY_PATH,
    )


@router.get("/results/{year}/open-data/scores.csv", name="open_data_csv")
def open_data_csv(session: SessionDep, settings: SettingsDep, year: int) -> Response:
    published = service.get_published(session, organiser=settings.organiser, year=year)
    body = service.open_data_csv(service.open_data_rows(session, published))
    return Response(
        body.encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="barometre-{year}-scores.csv"'},
    )


@router.get("/results/{year}/open-data/scores.json", name="open_data_json")
def open_data_json(session: SessionDep, settings: SettingsDep, year: int) -> Response:
    published = service.get_published(session, organiser=settings.organiser, year=year)
    payload: dict[str, Any] = {
        "year": year,
        "run_id": published.run.id,
        "inputs_sha256": published.run.inputs_sha256,
        "columns": service.OPEN_DATA_COLUMNS,
        "rank_interval_family": "simultaneous",
        "publication": {
            "scope": published.policy.scope.value,
            "top_k": published.policy.top_k,
            "not_named": service.not_named_counts(session, published),
        },
        "rows": service.open_data_rows(session, published),
    }
    return JSONResponse(
        payload,
        headers={"Content-Disposition": f'inline; filename="barometre-{year}-scores.json"'},
    )


@router.get("/results/{year}", name="results_public")
def results_public(
    request: Request, session: SessionDep, settings: SettingsDep, year: int
) -> Response:
    published = service.get_published(session, organiser=settings.organiser, year=year)
    boxes, distribution_svg = service.distribution(session, published)
    return render(
        request,
        "publication/results.html",
        {
            "campaign": published.campaign,
            "laureates": service.laureates(session, published),
            "boxes": boxes,
            "distribution_svg": distribution_svg,
            "columns": service.OPEN_DATA_COLUMNS,
            "policy": published.policy,
        },
    )


@router.get("/results/{year}/{category}", name="results_category")
def results_category(
    request: Request, session: SessionDep, settings: SettingsDep, year: int, category: str
) -> Response:
    published = service.get_published(session, organiser=settings.organiser, year=year)
    public = service.published_category(session, published, category)
    view = public.public_view
    decision = published.decisions.get(category)
    laureate = decision.laureate_code if decision else None
    return render(
        request,
        "publication/category.html",
        {
            "campaign": published.campaign,
            "public": public,
            "view": view,
            "decision": decision,
            "laureate_name": next(
                (line.name for line in public.view.eligible if line.code == laureate), laureate
            ),
            "forest_svg": forest_svg(view, plot_id="forest", laureate=laureate),
        },
    )
