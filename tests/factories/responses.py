"""Citizen responses for tests, stored through the collection's submission door like a
resident's answers."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import numpy as np
from sqlmodel import Session

from app.campaigns import repository as campaigns_repository
from app.campaigns.models import Campaign
from app.collection import service as collection_service
from app.collection import submission
from app.collection.models import Response, ResponseSource
from app.core.db import row_id
from app.core.timeutil import utcnow
from demo.answers import authority_quality, raw_answers

# One response in this many is answered too fast (and excluded), so every batch has some.
TOO_FAST_EVERY = 50
TOO_FAST_SECONDS = 10
USUAL_SECONDS = 240


def registered_codes(session: Session, campaign: Campaign) -> list[str]:
    return campaigns_repository.registered_codes(session, campaign_id=row_id(campaign))


def submit_response(
    session: Session,
    *,
    campaign: Campaign,
    code: str,
    answers: dict[str, Any],
    channel: str | None = None,
    seconds: int = USUAL_SECONDS,
    response_id: uuid.UUID | None = None,
) -> Response:
    """One response to the open campaign's public link, answered in ``seconds``."""
    target = collection_service.survey_target(
        session, organiser=campaign.organiser, year=campaign.year, authority_code=code
    )
    given = submission.Submission(
        target=target,
        response_id=response_id or uuid.uuid4(),
        answers=answers,
        source=ResponseSource.link,
        channel=channel,
        started_at=utcnow() - timedelta(seconds=seconds),
    )
    submission.submit_in_session(session, given)
    response = session.get(Response, given.response_id)
    assert response is not None
    return response


def add_responses(
    session: Session,
    *,
    campaign: Campaign,
    rng: np.random.Generator,
    per_candidate: tuple[int, int] = (30, 60),
    codes: list[str] | None = None,
) -> int:
    """Plausible responses for the registered candidates (or ``codes``), between the
    ``per_candidate`` bounds each; one in :data:`TOO_FAST_EVERY` is too fast. Returns how many."""
    codes = registered_codes(session, campaign) if codes is None else codes
    quality = authority_quality(codes, campaign.year)
    added = 0
    for code in codes:
        target = collection_service.survey_target(
            session, organiser=campaign.organiser, year=campaign.year, authority_code=code
        )
        channel_item = target.instrument.channel_item
        channels = [str(option.value) for option in channel_item.options] if channel_item else []
        for _ in range(int(rng.integers(per_candidate[0], per_candidate[1] + 1))):
            channel = channels[int(rng.integers(len(channels)))] if channels else None
            person = float(np.clip(rng.normal(quality[code], 0.12), 0, 1))
            added += 1
            submit_response(
                session,
                campaign=campaign,
                code=code,
                answers=raw_answers(
                    target.instrument, person, rng, day=campaign.opens_at, channel=channel
                ),
                channel=channel,
                seconds=TOO_FAST_SECONDS if added % TOO_FAST_EVERY == 0 else USUAL_SECONDS,
                response_id=uuid.UUID(bytes=rng.bytes(16), version=4),
            )
    session.flush()
    return added
