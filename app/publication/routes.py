"""Public results of a published campaign: laureates, distributions, open data.

URL names: ``results_public``, ``results_category``, ``open_data_csv``, ``open_data_json``.
All answer 404 until the campaign is published.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from app.core.config import SettingsDep
from app.core.db import SessionDep
from app.core.templating import render
from app.publication import service
from app.scorecards.svg import forest_svg

router = APIRouter()


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
        },
    )


@router.get("/results/{year}/{category}", name="results_category")
def results_category(
    request: Request, session: SessionDep, settings: SettingsDep, year: int, category: str
) -> Response:
    published = service.get_published(session, organiser=settings.organiser, year=year)
    view = service.published_category(session, published, category)
    decision = published.decisions.get(category)
    laureate = decision.laureate_code if decision else None
    return render(
        request,
        "publication/category.html",
        {
            "campaign": published.campaign,
            "view": view,
            "decision": decision,
            "laureate_name": next(
                (line.name for line in view.eligible if line.code == laureate), laureate
            ),
            "forest_svg": forest_svg(view, plot_id="forest", laureate=laureate),
        },
    )
