"""Bulk loading for the benchmarks only: approved visits written straight into the tables.

NOT the demo's path, nor the tests': they report and review visits through the services
(``demo/visits.py``, ``tests/factories/visits.py``). ``bench/results.py`` needs 24,000 approved
visits in seconds to time a national-scale scoring run, which the services (about 10 ms a
report and its review) cannot give; the answers are still valid per the pinned grids
(``demo.answers.clean_answers``), only the review and its audit trail are skipped. The
missions are the planner's counts: the configured tests per channel, plus the second test of
the single-test channels for the planner's replicate draw (``replicate_draw``, the same
candidates ``generate_missions`` would pick).
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

from app.campaigns import repository as campaigns_repository
from app.campaigns.models import Campaign, CandidateStatus
from app.campaigns.schemas import CampaignConfig
from app.core.db import row_id
from app.instruments.service import load_published
from app.missions.models import Mission, MissionState, ReviewState, Visit
from app.missions.planning import PlanCandidate, ReplicatePolicy, replicate_draw
from demo.answers import authority_quality, clean_answers


def add_approved_visits(
    session: Session,
    *,
    campaign: Campaign,
    rng: np.random.Generator,
    codes: list[str],
    quality: dict[str, float] | None = None,
) -> int:
    """Insert, for each of ``codes``, the campaign's missions and an approved visit each."""
    pinned = {
        version.key: version
        for _pin, version in campaigns_repository.pinned_instruments(session, row_id(campaign))
    }
    config = CampaignConfig.model_validate(campaign.config)
    tests = {str(channel): count for channel, count in config.tests_per_channel.items()}
    replicated = replicate_draw(
        [
            PlanCandidate(code=candidate.authority_code, category=candidate.category)
            for candidate, _authority in campaigns_repository.candidates_with_authorities(
                session, row_id(campaign)
            )
            if candidate.status == CandidateStatus.registered
        ],
        tests,
        ReplicatePolicy(share=config.replicates.share, minimum=config.replicates.minimum),
        seed=config.seed,
    )
    quality = quality or authority_quality(codes, campaign.year)
    start = campaign.opens_at
    missions: list[dict[str, Any]] = []
    visits: list[dict[str, Any]] = []
    for code in codes:
        for channel, count in sorted(tests.items()):
            version = pinned.get(f"grid-{channel}")
            if version is None or count <= 0:
                continue
            instrument = load_published(version)
            for sequence in range(1, count + 1 + int((code, channel) in replicated)):
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
                        "sequence": sequence,
                        "window_start": day,
                        "window_end": day + dt.timedelta(days=14),
                        "state": MissionState.approved,
                    }
                )
                visits.append(
                    {
                        "id": uuid.UUID(bytes=rng.bytes(16), version=4),
                        "instrument_version_id": version.id,
                        "answers": answers,
                        "timings": {},
                        "content_sha256": hashlib.sha256(
                            json.dumps(answers, sort_keys=True).encode()
                        ).hexdigest(),
                        "review_state": ReviewState.approved,
                        "visited_at": dt.datetime.combine(day, dt.time(10), tzinfo=dt.UTC),
                    }
                )
    if not missions:
        return 0
    table = Mission.__table__  # type: ignore[attr-defined]
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
