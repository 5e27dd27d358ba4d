"""Posters: who may print which, the URL the QR code carries, the SVG and the PDF."""

from __future__ import annotations

import io
import mimetypes
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlencode, urlsplit

import segno
from sqlmodel import Session
from weasyprint import HTML
from weasyprint.urls import URLFetcher, URLFetcherResponse

from app.accounts.models import Role, User
from app.authorities import repository as authorities_repository
from app.authorities.models import Authority
from app.campaigns import repository as campaigns_repository
from app.campaigns import service as campaigns_service
from app.campaigns.models import Campaign, CampaignState, CandidateStatus
from app.campaigns.schemas import Channel
from app.core.db import row_id
from app.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from app.core.i18n import _
from app.core.templating import templates

# A poster can be printed before collection starts, so counters are ready on the first day.
POSTER_STATES = {CampaignState.draft, CampaignState.open}
STATIC_DIR = Path(__file__).resolve().parents[2] / "static"
STYLESHEET = "css/poster.css"
PRINT_TEMPLATE = "posters/print.html"
# Q (25 % recovery) survives a scuffed or partly covered poster; the URLs are short enough.
QR_ERROR_LEVEL = "q"
QR_BORDER_MODULES = 4
SVG_FILE_SCALE = 10


@dataclass(frozen=True)
class Poster:
    """Everything a poster shows, whatever its format."""

    campaign: Campaign
    authority: Authority
    channel: Channel | None
    survey_url: str
    """Absolute URL the QR code encodes (``src=qr`` marks answers that came through it)."""
    printed_url: str
    """The same link in clear for typing by hand: no scheme, no ``src``."""

    @property
    def filename_stem(self) -> str:
        channel = f"-{self.channel.value}" if self.channel else ""
        return f"affiche-{self.campaign.year}-{self.authority.code}{channel}"


def parse_channel(canal: str) -> Channel | None:
    """The channel chosen for the poster; empty means any channel."""
    if not canal:
        return None
    try:
        return Channel(canal)
    except ValueError:
        raise InvalidInput(
            _("Unknown channel: %(channel)s.") % {"channel": canal}, field="canal"
        ) from None


def _authorise(user: User, code: str) -> None:
    if user.role == Role.admin:
        return
    if user.role == Role.authority and (user.authority_code or "").upper() == code:
        return
    raise Forbidden(_("You may only print the posters of your own authority."))


def survey_links(link: str, channel: Channel | None) -> tuple[str, str]:
    """The URL for the QR code and the one printed in clear, from the survey's absolute link."""
    channel_query = {"canal": channel.value} if channel else {}
    qr_url = f"{link}?{urlencode({**channel_query, 'src': 'qr'})}"
    parts = urlsplit(link)
    printed = parts.netloc + parts.path
    if channel_query:
        printed += "?" + urlencode(channel_query)
    return qr_url, printed


def get_poster(
    session: Session,
    *,
    campaign_id: int,
    code: str,
    canal: str,
    user: User,
    organiser: str,
    survey_link: Callable[[int, str], str],
) -> Poster:
    """The poster of candidate ``code``, for an admin or that authority's own contact.

    ``survey_link(year, code)`` gives the absolute URL of the public survey (a route's
    ``url_for``), so the poster carries exactly the link the collection serves.
    """
    campaign = campaigns_service.get_campaign(session, campaign_id=campaign_id)
    code = code.upper()
    _authorise(user, code)
    if campaign.organiser != organiser:
        # The public link resolves campaigns of this site's organiser only.
        raise NotFound(_("This campaign has no public survey link on this site."))
    candidate = campaigns_repository.get_candidate(session, row_id(campaign), code)
    authority = authorities_repository.get(session, code) if candidate else None
    if candidate is None or authority is None or candidate.status != CandidateStatus.registered:
        raise NotFound(
            _("%(code)s is not a candidate of the %(year)d campaign.")
            % {"code": code, "year": campaign.year},
            field="code",
        )
    if campaign.state not in POSTER_STATES:
        raise Conflict(
            _(
                "Posters are available while the campaign is in draft or open; "
                "the %(year)d campaign is %(state)s."
            )
            % {"year": campaign.year, "state": _(campaign.state)},
            field="campaign",
        )
    channel = parse_channel(canal)
    survey_url, printed_url = survey_links(survey_link(campaign.year, authority.code), channel)
    return Poster(
        campaign=campaign,
        authority=authority,
        channel=channel,
        survey_url=survey_url,
        printed_url=printed_url,
    )


def qr_svg(url: str, *, standalone: bool = False) -> str:
    """The QR code of ``url`` as SVG; the same URL always gives the same bytes.

    Inline (the default), it has no size and no XML declaration, so CSS sizes it; standalone,
    it is a complete file at 10 px a module.
    """
    code = segno.make(url, error=QR_ERROR_LEVEL, micro=False)
    buffer = io.BytesIO()
    code.save(
        buffer,
        kind="svg",
        xmldecl=standalone,
        svgns=True,
        omitsize=not standalone,
        scale=SVG_FILE_SCALE if standalone else 1,
        border=QR_BORDER_MODULES,
        svgclass="qr-code",
        lineclass=None,
    )
    return buffer.getvalue().decode("utf-8")


class StaticFilesOnly(URLFetcher):
    """Serves the print stylesheet (and any static file) from disk; nothing else, no network."""

    def __init__(self) -> None:
        super().__init__(allowed_protocols={"file"}, allow_redirects=False, fail_on_errors=True)

    def fetch(self, url: str, headers: Any = None) -> URLFetcherResponse:
        parts = urlsplit(url)
        path = Path(unquote(parts.path)).resolve()
        if parts.scheme != "file" or not path.is_relative_to(STATIC_DIR) or not path.is_file():
            raise ValueError(f"not a static file: {url}")
        media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return URLFetcherResponse(url, body=path.read_bytes(), headers={"Content-Type": media_type})


def render_pdf(context: dict[str, Any]) -> bytes:
    """The poster as a one-page A4 PDF (same markup and stylesheet as the page)."""
    html = templates.get_template(PRINT_TEMPLATE).render({**context, "stylesheet": STYLESHEET})
    document = HTML(string=html, base_url=STATIC_DIR.as_uri() + "/", url_fetcher=StaticFilesOnly())
    pdf = document.write_pdf()
    assert pdf is not None  # no target given, so WeasyPrint returns the bytes
    return pdf
