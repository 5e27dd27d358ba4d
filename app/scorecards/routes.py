"""An authority's scorecard: page, PDF, CSV and JSON.

An authority contact sees only their own (any other code is a 404, on every format); admins and
the jury see all. URL names: ``scorecard``, ``scorecard_pdf``, ``scorecard_csv``,
``api_scorecard``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from app.accounts.dependencies import RequireRole
from app.accounts.models import Role, User
from app.campaigns import repository as campaigns_repository
from app.campaigns.service import get_campaign
from app.core.config import SettingsDep
from app.core.db import SessionDep, row_id
from app.core.errors import NotFound
from app.core.i18n import _
from app.core.spreadsheet import CsvDialect
from app.core.templating import render
from app.scorecards import exports, pdf, svg, views
from app.scorecards.schemas import (
    CategoryStatsOut,
    ChangeOut,
    ItemGapOut,
    PositionOut,
    ScorecardOut,
    ScoreOut,
)

router = APIRouter()
api_router = APIRouter(prefix="/api/v1", tags=["results"])

ScorecardUser = Annotated[User, Depends(RequireRole(Role.admin, Role.jury, Role.authority))]


def _card(session: SessionDep, user: ScorecardUser, campaign_id: int, code: str) -> views.Scorecard:
    campaign = get_campaign(session, campaign_id=campaign_id)
    return views.get_scorecard(session, campaign=campaign, code=code, user=user)


CardDep = Annotated[views.Scorecard, Depends(_card)]


def _context(card: views.Scorecard) -> dict[str, Any]:
    return {
        "card": card,
        "profile_svg": svg.scorecard_profile_svg(card, plot_id="profile"),
        "position_svg": svg.scorecard_position_svg(card, plot_id="position"),
    }


# The file routes come first: "{code}" alone would also match "69123.pdf".
@router.get("/campaigns/{campaign_id}/scorecards/{code}.pdf", name="scorecard_pdf")
def scorecard_pdf(request: Request, card: CardDep) -> Response:
    """The scorecard as an A4 PDF in the reader's language."""
    # A PDF leaves the site: its links to the methodology must be absolute.
    context = {**_context(card), "site_url": str(request.base_url).rstrip("/")}
    filename = exports.scorecard_filename(card, "pdf")
    return Response(
        pdf.render_pdf(context),
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get("/campaigns/{campaign_id}/scorecards/{code}.csv", name="scorecard_csv")
def scorecard_csv(
    session: SessionDep,
    card: CardDep,
    dialect: Annotated[CsvDialect | None, Query()] = None,
) -> Response:
    """The scorecard's scores as CSV, in the dialect of the reader's language unless
    ``?dialect=international|french`` chooses (any other value is a 422 naming it)."""
    filename = exports.scorecard_filename(card, "csv")
    return Response(
        exports.scorecard_csv(session, card, dialect).encode("utf-8"),
        media_type=exports.CSV_MEDIA_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get("/campaigns/{campaign_id}/scorecards/{code}", name="scorecard")
def scorecard_page(request: Request, card: CardDep) -> Response:
    return render(request, "scorecards/scorecard.html", _context(card))


def _score(row: Any) -> ScoreOut:
    return ScoreOut(
        level=row.level,
        key=row.key,
        estimate=row.estimate,
        se=row.se,
        ci_low=row.ci_low,
        ci_high=row.ci_high,
        n=row.n,
        n_eff=row.n_eff,
        flags=list(row.flags),
    )


@api_router.get("/campaigns/{year}/scorecards/{code}", name="api_scorecard")
def api_scorecard(
    session: SessionDep, settings: SettingsDep, user: ScorecardUser, year: int, code: str
) -> ScorecardOut:
    """An authority's scorecard on the campaign's current frozen run (same access as the page).

    Its position carries the authority's own MARGINAL rank interval; the award table's
    simultaneous intervals and top sets are in the rankings API.
    """
    campaign = campaigns_repository.get_by_year(session, organiser=settings.organiser, year=year)
    if campaign is None:
        raise NotFound(_("No campaign for %(year)d.") % {"year": year})
    card = views.get_scorecard(session, campaign=campaign, code=code, user=user)
    rank = card.rank
    return ScorecardOut(
        year=campaign.year,
        run_id=row_id(card.run),
        authority_code=card.code,
        authority_name=card.name,
        overall=_score(card.overall) if card.overall else None,
        position=PositionOut(
            category=rank.category,
            eligible=rank.eligible,
            ineligible_reason=rank.ineligible_reason,
            rank=rank.rank,
            marginal_rank_low=rank.marginal_low,
            marginal_rank_high=rank.marginal_high,
            percentile=rank.percentile,
            p_best=rank.p_best,
        )
        if rank
        else None,
        category=CategoryStatsOut(
            ranked=card.stats.count,
            median=card.stats.median,
            q1=card.stats.q1,
            q3=card.stats.q3,
            best=card.stats.best,
        ),
        components=[_score(row) for row in card.components],
        channels=[_score(row) for row in card.channels],
        themes=[_score(row) for row in card.themes],
        change=ChangeOut(
            previous_year=card.change.previous_year,
            previous=card.change.previous,
            difference=card.change.difference,
            ci_low=card.change.ci_low,
            ci_high=card.change.ci_high,
            significant=card.change.significant,
        )
        if card.change
        else None,
        strengths=[ItemGapOut(**_gap(gap)) for gap in card.strengths],
        irritants=[ItemGapOut(**_gap(gap)) for gap in card.irritants],
        respondents=card.respondents,
        comments=card.comments,
    )


def _gap(gap: views.ItemGap) -> dict[str, Any]:
    return {
        "key": gap.key,
        "label": gap.label,
        "estimate": gap.estimate,
        "category_mean": gap.category_mean,
    }
