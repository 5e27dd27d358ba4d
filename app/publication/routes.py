"""Public results of a published campaign: laureates, distributions, open data, the rankings
API, and the methodology page that every table links to.

URL names: ``results_public``, ``results_category``, ``open_data_csv``, ``open_data_json``,
``open_data_schema``, ``open_data_package``, ``open_data_dictionary`` (all 404 until the campaign
is published), ``api_rankings``, ``methodology``.

The CSV files and the Table Schema take ``?format=international`` (the default) or
``?format=french`` (see :mod:`app.publication.opendata`); another value is a 422 naming
``format``. Every open-data answer carries the publication date as ``Last-Modified``, and the
described ones (schema, package, dictionary) the language they are written in.
"""

from __future__ import annotations

from email.utils import format_datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from app.accounts.dependencies import OptionalUser
from app.core.config import SettingsDep
from app.core.db import SessionDep
from app.core.i18n import get_locale
from app.core.spreadsheet import CsvDialect
from app.core.templating import render, templates
from app.publication import opendata, service
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


# ``format`` names the dialect in URLs (a reader's word); ``dialect`` in the code.
DialectQuery = Annotated[
    CsvDialect,
    Query(
        alias="format",
        description="international: `,` and `.`, UTF-8; french: `;`, decimal comma, UTF-8 "
        "with BOM (French spreadsheets)",
    ),
]
CSV_MEDIA_TYPE = "text/csv; charset=utf-8"


def _open_data_urls(request: Request, year: int) -> opendata.OpenDataUrls:
    scores_csv = request.url_for("open_data_csv", year=year)
    return opendata.OpenDataUrls(
        results=str(request.url_for("results_public", year=year)),
        scores_csv=str(scores_csv),
        scores_csv_french=str(scores_csv.include_query_params(format=CsvDialect.french.value)),
        scores_json=str(request.url_for("open_data_json", year=year)),
        schema=str(request.url_for("open_data_schema", year=year)),
        data_package=str(request.url_for("open_data_package", year=year)),
        dictionary=str(request.url_for("open_data_dictionary", year=year)),
    )


def _headers(
    published: service.Published, filename: str, *, attachment: bool = False, translated: bool
) -> dict[str, str]:
    headers = {
        "Content-Disposition": f'{"attachment" if attachment else "inline"}; filename="{filename}"',
        # The licence dates the data by its last update: published data never changes again.
        "Last-Modified": format_datetime(published.published_at, usegmt=True),
    }
    if translated:
        headers["Content-Language"] = get_locale()
    return headers


def _suffix(dialect: CsvDialect) -> str:
    return "-fr" if dialect is CsvDialect.french else ""


@router.get("/results/{year}/open-data/scores.csv", name="open_data_csv")
def open_data_csv(
    session: SessionDep,
    settings: SettingsDep,
    year: int,
    dialect: DialectQuery = CsvDialect.international,
) -> Response:
    """Every published score row, in the international or the French spreadsheet dialect."""
    published = service.get_published(session, organiser=settings.organiser, year=year)
    rows = service.open_data_rows(session, published)
    return StreamingResponse(
        opendata.scores_csv_chunks(rows, dialect),
        media_type=CSV_MEDIA_TYPE,
        headers=_headers(
            published,
            f"barometre-{year}-scores{_suffix(dialect)}.csv",
            attachment=True,
            translated=False,
        ),
    )


@router.get("/results/{year}/open-data/scores.json", name="open_data_json")
def open_data_json(
    request: Request, session: SessionDep, settings: SettingsDep, year: int
) -> Response:
    """The same rows as JSON, with the run, the publication policy and the licence."""
    published = service.get_published(session, organiser=settings.organiser, year=year)
    payload = opendata.scores_json(
        published,
        rows=service.open_data_rows(session, published),
        not_named=service.not_named_counts(session, published),
        urls=_open_data_urls(request, year),
    )
    return JSONResponse(
        payload,
        headers=_headers(published, f"barometre-{year}-scores.json", translated=False),
    )


@router.get("/results/{year}/open-data/schema.json", name="open_data_schema")
def open_data_schema(
    session: SessionDep,
    settings: SettingsDep,
    year: int,
    dialect: DialectQuery = CsvDialect.international,
) -> Response:
    """The Table Schema of ``scores.csv`` in the reader's language."""
    published = service.get_published(session, organiser=settings.organiser, year=year)
    return JSONResponse(
        opendata.table_schema(dialect),
        headers=_headers(
            published, f"barometre-{year}-schema{_suffix(dialect)}.json", translated=True
        ),
    )


@router.get("/results/{year}/open-data/datapackage.json", name="open_data_package")
def open_data_package(
    request: Request, session: SessionDep, settings: SettingsDep, year: int
) -> Response:
    """The data package descriptor: licence, source, both CSV resources with their schema."""
    published = service.get_published(session, organiser=settings.organiser, year=year)
    return JSONResponse(
        opendata.data_package(published, _open_data_urls(request, year)),
        headers=_headers(published, "datapackage.json", translated=True),
    )


@router.get("/results/{year}/open-data/dictionary.csv", name="open_data_dictionary")
def open_data_dictionary(
    session: SessionDep,
    settings: SettingsDep,
    year: int,
    dialect: DialectQuery = CsvDialect.international,
) -> Response:
    """The data dictionary of ``scores.csv`` (column, title, type, unit, allowed values)."""
    published = service.get_published(session, organiser=settings.organiser, year=year)
    return Response(
        opendata.dictionary_csv(dialect).encode("utf-8"),
        media_type=CSV_MEDIA_TYPE,
        headers=_headers(
            published,
            f"barometre-{year}-dictionary{_suffix(dialect)}.csv",
            attachment=True,
            translated=True,
        ),
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
            "policy": published.policy,
            "licence": opendata.LICENCE,
            "attribution": opendata.attribution(published),
            "published_on": published.published_on,
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
