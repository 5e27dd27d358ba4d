"""Demo data for results: citizen responses for both editions, and the 2025 scoring run.

Also used by the tests and the benchmark to give a campaign realistic responses and visits
quickly (bulk inserts, answers validated by ``surveys``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlmodel import Session

from app.accounts.models import User
from app.campaigns import repository as campaigns_repository
from app.campaigns.models import Campaign, CampaignState
from app.campaigns.schemas import CampaignConfig
from app.collection.models import Response
from app.instruments.models import InstrumentVersion
from app.instruments.service import load_published
from app.missions.models import Mission, MissionState, ReviewState, Visit
from app.results.synthetic import Cleaner, clean_answers, raw_answers

TOO_FAST_SHARE = 0.02


def _uuid(rng: np.random.Generator) -> uuid.UUID:
    return uuid.UUID(bytes=rng.bytes(16), version=4)


def authority_quality(codes: list[str], seed: int) -> dict[str, float]:
    """A stable quality level (0–1) per authority: the demo's good and weaker candidates."""
    out = {}
    for code in codes:
        digest = hashlib.sha256(f"{seed}:{code}".encode()).digest()
        u = int.from_bytes(digest[:8], "big") / 2**64
        out[code] = float(min(0.95, max(0.2, 0.62 + 0.16 * (u - 0.5) * 2.2)))
    return out


def _pinned(session: Session, campaign: Campaign) -> dict[str, InstrumentVersion]:
    return {
        version.key: version
        for _, version in campaigns_repository.pinned_instruments(session, campaign.id or 0)
    }


def _content_sha256(campaign_id: int, code: str, channel: str | None, answers: Any) -> str:
    payload = {"campaign": campaign_id, "authority": code, "channel": channel, "answers": answers}
    canonical = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def add_responses(
    session: Session,
    *,
    campaign: Campaign,
    rng: np.random.Generator,
    per_candidate: tuple[int, int] = (30, 150),
    quality: dict[str, float] | None = None,
    codes: list[str] | None = None,
    start: dt.datetime | None = None,
) -> int:
    """Insert valid citizen responses (a few flagged too fast and excluded); returns how many."""
    pinned = _pinned(session, campaign)
    version = next(v for v in pinned.values() if v.kind == "survey")
    instrument = load_published(version)
    cleaner = Cleaner(instrument)
    channel_item = instrument.channel_item
    channel_codes: list[str | None] = (
        [str(c.value) for c in channel_item.options] if channel_item else [None]
    )
    channel_share = np.array([0.35, 0.25, 0.2, 0.05, 0.1, 0.05][: len(channel_codes)])
    channel_share = channel_share / channel_share.sum()
    if codes is None:
        codes = sorted(
            candidate.authority_code
            for candidate, _authority in campaigns_repository.candidates_with_authorities(
                session, campaign.id or 0
            )
            if candidate.status == "registered"
        )
    quality = quality or authority_quality(codes, campaign.year)
    first = start or dt.datetime.combine(campaign.opens_at, dt.time(9), tzinfo=dt.UTC)
    span = max(1, (campaign.closes_at - campaign.opens_at).days)
    rows: list[dict[str, Any]] = []
    for code in codes:
        count = int(rng.integers(per_candidate[0], per_candidate[1] + 1))
        level = quality.get(code, 0.6)
        offsets = rng.integers(span * 86_400, size=count)
        channels = rng.choice(len(channel_codes), size=count, p=channel_share)
        persons = np.clip(rng.normal(level, 0.12, size=count), 0, 1)
        too_fast = rng.random(count) < TOO_FAST_SHARE
        durations = np.where(too_fast, rng.integers(8, 20, count), rng.integers(60, 600, count))
        ids = rng.bytes(16 * count)
        for i in range(count):
            submitted = first + dt.timedelta(seconds=int(offsets[i]))
            channel = channel_codes[int(channels[i])]
            answers = cleaner.clean(
                raw_answers(
                    instrument, float(persons[i]), rng, day=submitted.date(), channel=channel
                )
            )
            flagged = bool(too_fast[i])
            rows.append(
                {
                    "id": uuid.UUID(bytes=ids[16 * i : 16 * i + 16], version=4),
                    "campaign_id": campaign.id,
                    "authority_code": code,
                    "instrument_version_id": version.id,
                    "channel": channel,
                    "source": "link",
                    "started_at": submitted - dt.timedelta(seconds=int(durations[i])),
                    "submitted_at": submitted,
                    "answers": answers,
                    "profile": {key: answers[key] for key in ("age_band", "sex") if key in answers}
                    or None,
                    "content_sha256": _content_sha256(campaign.id or 0, code, channel, answers),
                    "quality_flags": ["too_fast"] if flagged else [],
                    "excluded": flagged,
                }
            )
    if rows:
        session.execute(sa.insert(Response.__table__), rows)  # type: ignore[attr-defined]
    return len(rows)


def add_visits(
    session: Session,
    *,
    campaign: Campaign,
    rng: np.random.Generator,
    codes: list[str] | None = None,
    review_state: str = ReviewState.approved,
    quality: dict[str, float] | None = None,
    tests_per_channel: dict[str, int] | None = None,
) -> int:
    """Insert missions and reported visits (``review_state``) for the campaign's candidates."""
    pinned = _pinned(session, campaign)
    config = CampaignConfig.model_validate(campaign.config)
    tests = tests_per_channel or {str(k): v for k, v in config.tests_per_channel.items()}
    if codes is None:
        codes = sorted(
            candidate.authority_code
            for candidate, _authority in campaigns_repository.candidates_with_authorities(
                session, campaign.id or 0
            )
            if candidate.status == "registered"
        )
    quality = quality or authority_quality(codes, campaign.year)
    start = campaign.opens_at
    table = Mission.__table__  # type: ignore[attr-defined]
    highest = sa.select(sa.func.max(table.c.sequence)).where(table.c.campaign_id == campaign.id)
    existing = session.connection().execute(highest).scalar()
    base = int(existing or 0)
    missions: list[dict[str, Any]] = []
    visits: list[dict[str, Any]] = []
    for code in codes:
        for channel, count in sorted(tests.items()):
            version = pinned.get(f"grid-{channel}")
            if version is None or count <= 0:
                continue
            instrument = load_published(version)
            for sequence in range(1, count + 1):
                day = start + dt.timedelta(days=int(rng.integers(0, 60)))
                answers = clean_answers(
                    instrument,
                    float(np.clip(rng.normal(quality.get(code, 0.6), 0.15), 0, 1)),
                    rng,
                    day=day,
                    comment_rate=0.3,
                )
                missions.append(
                    {
                        "campaign_id": campaign.id,
                        "authority_code": code,
                        "channel": channel,
                        "sequence": base + sequence,
                        "window_start": day,
                        "window_end": day + dt.timedelta(days=14),
                        "state": MissionState.approved
                        if review_state == ReviewState.approved
                        else MissionState.submitted,
                    }
                )
                visits.append(
                    {
                        "id": _uuid(rng),
                        "instrument_version_id": version.id,
                        "answers": answers,
                        "timings": {},
                        "content_sha256": hashlib.sha256(
                            json.dumps(answers, sort_keys=True).encode()
                        ).hexdigest(),
                        "review_state": review_state,
                        "visited_at": dt.datetime.combine(day, dt.time(10), tzinfo=dt.UTC),
                    }
                )
    if not missions:
        return 0
    session.execute(sa.insert(table), missions)
    ids = {
        (row.authority_code, row.channel, row.sequence): row.id
        for row in session.connection().execute(
            sa.select(table.c.id, table.c.authority_code, table.c.channel, table.c.sequence).where(
                table.c.campaign_id == campaign.id
            )
        )
    }
    for mission, visit in zip(missions, visits, strict=True):
        visit["mission_id"] = ids[
            (mission["authority_code"], mission["channel"], mission["sequence"])
        ]
    session.execute(sa.insert(Visit.__table__), visits)  # type: ignore[attr-defined]
    return len(visits)


def _approved_visits(session: Session, campaign: Campaign) -> int:
    visit, mission = Visit.__table__, Mission.__table__  # type: ignore[attr-defined]
    return int(
        session.connection()
        .execute(
            sa.select(sa.func.count())
            .select_from(visit.join(mission, mission.c.id == visit.c.mission_id))
            .where(mission.c.campaign_id == campaign.id, visit.c.review_state == "approved")
        )
        .scalar()
        or 0
    )


def build_results_demo(
    session: Session, *, organiser: str, actor: User | None, seed: int = 2026
) -> None:
    """Responses for 2025 and 2026, then the 2025 final run (2025 goes closed → scored).

    The reviews demo adds the 2025 approved visits before this runs; when there are none
    (run alone), a set of approved visits is added here so the run has a mystery component.
    """
    from app.results.service import run_scoring

    rng = np.random.default_rng(seed)
    past = campaigns_repository.get_by_year(session, organiser=organiser, year=2025)
    current = campaigns_repository.get_by_year(session, organiser=organiser, year=2026)
    if past is None or CampaignState(past.state) != CampaignState.closed:
        return
    add_responses(session, campaign=past, rng=rng, per_candidate=(30, 150))
    if _approved_visits(session, past) == 0:
        add_visits(session, campaign=past, rng=rng)
    if current is not None and CampaignState(current.state) == CampaignState.open:
        add_responses(session, campaign=current, rng=rng, per_candidate=(0, 25))
    session.flush()
    run_scoring(session, campaign=past, actor=actor)
