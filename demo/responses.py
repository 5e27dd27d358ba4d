"""The demo's citizen responses: what residents answer through a candidate's public link.

Each response is drawn by :func:`demo.answers.raw_answers` from the authority's quality and
stored through the collection's submission door, which validates, flags and hashes it like
any other (a few are answered too fast and excluded).
Responses are only taken while a campaign is open.
"""

from __future__ import annotations

import datetime as dt
import uuid

import numpy as np
from sqlmodel import Session

from app.campaigns import repository as campaigns_repository
from app.campaigns.models import Campaign
from app.collection.models import ResponseSource
from app.collection.service import survey_target
from app.collection.submission import Submission, submit_many_in_session
from app.core.db import row_id
from app.core.timeutil import utcnow
from demo.answers import authority_quality, raw_answers

TOO_FAST_SHARE = 0.02
# How residents reach the questionnaire, in the order of the survey's channel options.
CHANNEL_SHARE = (0.35, 0.25, 0.2, 0.05, 0.1, 0.05)


def submit_citizen_responses(session: Session, submissions: list[Submission]) -> None:
    """The one door the demo's residents go through: the collection's submission door
    (``app.collection.submission``), as one batch of its writer in the demo's transaction.
    Each is dated when the resident sent it during the campaign."""
    submit_many_in_session(session, submissions)


def registered_codes(session: Session, campaign: Campaign) -> list[str]:
    return campaigns_repository.registered_codes(session, campaign_id=row_id(campaign))


def add_responses(
    session: Session,
    *,
    campaign: Campaign,
    rng: np.random.Generator,
    per_candidate: tuple[int, int] = (30, 150),
    quality: dict[str, float] | None = None,
    codes: list[str] | None = None,
) -> int:
    """Citizen responses for the open campaign's registered candidates (or ``codes``), between
    ``per_candidate`` bounds each, spread over the campaign's dates; returns how many."""
    codes = registered_codes(session, campaign) if codes is None else codes
    quality = quality or authority_quality(codes, campaign.year)
    first = dt.datetime.combine(campaign.opens_at, dt.time(0), tzinfo=dt.UTC)
    # Nobody answers in the future: an edition still open has answers up to today's midnight
    # (a whole day, so two builds on one day draw the same dates).
    last_day = min(campaign.closes_at, utcnow().date())
    span = max(1, (last_day - campaign.opens_at).days)
    added = 0
    for code in codes:
        target = survey_target(
            session, organiser=campaign.organiser, year=campaign.year, authority_code=code
        )
        channel_item = target.instrument.channel_item
        channel_codes: list[str | None] = (
            [str(option.value) for option in channel_item.options] if channel_item else [None]
        )
        channel_share = np.array(CHANNEL_SHARE[: len(channel_codes)])
        channel_share = channel_share / channel_share.sum()
        count = int(rng.integers(per_candidate[0], per_candidate[1] + 1))
        level = quality.get(code, 0.6)
        offsets = rng.integers(span * 86_400, size=count)
        channels = rng.choice(len(channel_codes), size=count, p=channel_share)
        persons = np.clip(rng.normal(level, 0.12, size=count), 0, 1)
        too_fast = rng.random(count) < TOO_FAST_SHARE
        durations = np.where(too_fast, rng.integers(8, 20, count), rng.integers(60, 600, count))
        ids = rng.bytes(16 * count)
        submissions = []
        for i in range(count):
            submitted = first + dt.timedelta(seconds=int(offsets[i]))
            channel = channel_codes[int(channels[i])]
            submissions.append(
                Submission(
                    target=target,
                    response_id=uuid.UUID(bytes=ids[16 * i : 16 * i + 16], version=4),
                    answers=raw_answers(
                        target.instrument,
                        float(persons[i]),
                        rng,
                        day=submitted.date(),
                        channel=channel,
                    ),
                    source=ResponseSource.link,
                    channel=channel,
                    started_at=submitted - dt.timedelta(seconds=int(durations[i])),
                    submitted_at=submitted,
                )
            )
        submit_citizen_responses(session, submissions)
        added += count
    return added
