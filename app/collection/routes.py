"""The citizen's ways in: the public questionnaire (pages) and the JSON API."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from app.collection import service
from app.collection.models import ResponseSource
from app.collection.schemas import PublishedInstrument, ResponseAccepted, ResponseSubmission
from app.core import ratelimit
from app.core.config import Settings, SettingsDep
from app.core.db import SessionDep
from app.core.i18n import _
from app.core.security import keyed_hash

api_router = APIRouter(prefix="/api/v1", tags=["collection"])


def client_bucket(settings: Settings, request: Request, prefix: str) -> str:
    """A per-client rate-limit bucket from a keyed hash whose salt rotates every day.

    The address itself is never stored, and yesterday's buckets cannot be linked to today's.
    """
    day = datetime.now(UTC).date().isoformat()
    address = request.client.host if request.client else "unknown"
    return prefix + keyed_hash(settings.secret_key + day, address)


def enforce_public_limit(session: SessionDep, settings: Settings, request: Request) -> str:
    bucket = client_bucket(settings, request, "submit:")
    ratelimit.enforce(
        session,
        bucket,
        limit=settings.public_submissions_per_window,
        window_seconds=settings.public_window_seconds,
        message=_("Too many answers from this connection. Please try again in a few minutes."),
    )
    return bucket


@api_router.get(
    "/campaigns/{year}/survey", name="api_campaign_survey", response_model=PublishedInstrument
)
def api_campaign_survey(
    session: SessionDep, settings: SettingsDep, year: int, authority: str | None = None
) -> PublishedInstrument:
    """The questionnaire pinned by the campaign (open campaigns only)."""
    from app.campaigns import repository as campaigns_repository
    from app.core.errors import Conflict, NotFound

    campaign = campaigns_repository.get_by_year(session, organiser=settings.organiser, year=year)
    if campaign is None:
        raise NotFound(_("There is no %(year)d campaign.") % {"year": year}, field="year")
    if authority is not None:
        target = service.survey_target(
            session, organiser=settings.organiser, year=year, authority_code=authority
        )
        version = target.version
    else:
        pins = campaigns_repository.pinned_instruments(session, campaign.id or 0)
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
def api_submit_response(
    request: Request, session: SessionDep, settings: SettingsDep, body: ResponseSubmission
) -> JSONResponse:
    """Submit one completed questionnaire. The client's UUID makes a retry safe."""
    bucket = enforce_public_limit(session, settings, request)
    target = service.survey_target(
        session, organiser=settings.organiser, year=body.campaign, authority_code=body.authority
    )
    response, created = service.submit_response(
        session,
        target=target,
        response_id=body.id,
        answers=body.answers,
        channel=body.channel.value if body.channel else None,
        source=ResponseSource.api,
        started_at=body.started_at,
    )
    if created:
        ratelimit.record_hit(session, bucket, window_seconds=settings.public_window_seconds)
    return JSONResponse({"id": str(response.id)}, status_code=201 if created else 200)
