"""Poster pages and downloads: the QR code of a candidate's public survey link.

URL names for links elsewhere: ``poster`` (page), ``poster_svg`` (QR code), ``poster_pdf``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from markupsafe import Markup

from app.accounts.dependencies import RequireRole
from app.accounts.models import Role, User
from app.campaigns.schemas import Channel
from app.core.config import SettingsDep
from app.core.db import SessionDep
from app.core.templating import render
from app.posters import service

router = APIRouter()

PosterUser = Annotated[User, Depends(RequireRole(Role.admin, Role.authority))]
ChannelQuery = Annotated[str, Query(max_length=20)]


def _poster(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    user: PosterUser,
    campaign_id: int,
    code: str,
    canal: ChannelQuery = "",
) -> service.Poster:
    return service.get_poster(
        session,
        campaign_id=campaign_id,
        code=code,
        canal=canal,
        user=user,
        organiser=settings.organiser,
        survey_link=lambda year, authority_code: str(
            request.url_for("survey_start", year=year, code=authority_code)
        ),
    )


PosterDep = Annotated[service.Poster, Depends(_poster)]


def _poster_context(poster: service.Poster) -> dict[str, Any]:
    return {"poster": poster, "qr_svg": Markup(service.qr_svg(poster.survey_url))}


def _download_url(request: Request, name: str, poster: service.Poster) -> str:
    url = request.url_for(
        name, campaign_id=poster.campaign.id, code=poster.authority.code
    ).include_query_params(**({"canal": poster.channel.value} if poster.channel else {}))
    return str(url.path) + (f"?{url.query}" if url.query else "")


# The file routes come first: "{code}" alone would also match "69123.svg".
@router.get("/campaigns/{campaign_id}/posters/{code}.svg", name="poster_svg")
def poster_svg(poster: PosterDep) -> Response:
    return Response(
        service.qr_svg(poster.survey_url, standalone=True),
        media_type="image/svg+xml",
        headers={"Content-Disposition": f'inline; filename="qr-{poster.filename_stem}.svg"'},
    )


@router.get("/campaigns/{campaign_id}/posters/{code}.pdf", name="poster_pdf")
def poster_pdf(poster: PosterDep) -> Response:
    return Response(
        service.render_pdf(_poster_context(poster)),
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{poster.filename_stem}.pdf"'},
    )


@router.get("/campaigns/{campaign_id}/posters/{code}", name="poster")
def poster_page(request: Request, poster: PosterDep) -> Response:
    context = {
        **_poster_context(poster),
        "channels": list(Channel),
        "pdf_url": _download_url(request, "poster_pdf", poster),
        "svg_url": _download_url(request, "poster_svg", poster),
    }
    return render(request, "posters/poster.html", context)
