"""Mystery-shopper visits for tests: missions planned, reported and reviewed by the services.

Missions come from the mission service (a shopper is created when the campaign has none);
each report goes through ``app.visits.service.submit_visit`` as the mission's shopper, and
its review through ``app.reviews.service`` as a reviewer.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, time, timedelta

import numpy as np
from sqlmodel import Session

from app.accounts import repository as accounts_repository
from app.accounts.models import Role, User
from app.accounts.schemas import UserCreate
from app.accounts.service import create_user
from app.campaigns import repository as campaigns_repository
from app.campaigns.models import Campaign
from app.core.db import row_id
from app.instruments.service import load_published
from app.missions import repository as missions_repository
from app.missions import service as missions_service
from app.missions.models import Mission, MissionState, ReviewState
from app.reviews import service as reviews_service
from app.visits import service as visits_service
from demo.answers import authority_quality, grid_answers
from tests.factories.responses import registered_codes

__all__ = ["add_visits", "grid_answers", "reviewer", "shopper"]

REVIEW_COMMENTS = {
    ReviewState.has_issues: "Précisez les réponses négatives dans les observations.",
    ReviewState.rejected: "Le rapport ne suit pas le scénario de la mission.",
}


def _account(session: Session, role: Role, email: str) -> User:
    user = accounts_repository.get_by_email(session, email)
    if user is None:
        user = create_user(
            session,
            data=UserCreate(email=email, display_name=f"Factory {role.value}", role=role),
            created_by=None,
        )
    return user


def shopper(session: Session) -> User:
    """The factories' shopper (created once)."""
    return _account(session, Role.shopper, "factory-shopper@example.org")


def reviewer(session: Session) -> User:
    """The factories' reviewer (created once)."""
    return _account(session, Role.reviewer, "factory-reviewer@example.org")


def _missions(session: Session, campaign: Campaign) -> list[Mission]:
    """The campaign's missions, planned on first use (with the factories' shopper when the
    campaign has no shopper to give them to)."""
    campaign_id = row_id(campaign)
    if missions_repository.count_missions(session, campaign_id) == 0:
        if not missions_repository.active_shoppers(session):
            shopper(session)
        missions_service.generate_missions(session, campaign=campaign, regenerate=False, actor=None)
    return sorted(
        (row.mission for row in missions_repository.mission_rows(session, campaign_id)),
        key=lambda m: (m.authority_code, m.channel, m.sequence),
    )


def add_visits(
    session: Session,
    *,
    campaign: Campaign,
    rng: np.random.Generator,
    codes: list[str] | None = None,
    review_state: str = ReviewState.approved,
    per_channel: int | None = None,
) -> int:
    """Report the assigned missions of the registered candidates (or ``codes``), at most
    ``per_channel`` per candidate and channel, then review every report to ``review_state``
    (``received``: left in the queue). Returns how many visits were reported."""
    wanted = set(registered_codes(session, campaign) if codes is None else codes)
    quality = authority_quality(sorted(wanted), campaign.year)
    grids = {
        version.channel: load_published(version)
        for _pin, version in campaigns_repository.pinned_instruments(session, row_id(campaign))
        if version.kind == "grid" and version.channel
    }
    shoppers: dict[int, User] = {}
    taken: dict[tuple[str, str], int] = {}
    reported: list[uuid.UUID] = []
    for mission in _missions(session, campaign):
        key = (mission.authority_code, mission.channel)
        if (
            mission.authority_code not in wanted
            or mission.channel not in grids
            or mission.state != MissionState.assigned
            or mission.shopper_id is None
            or (per_channel is not None and taken.get(key, 0) >= per_channel)
        ):
            continue
        taken[key] = taken.get(key, 0) + 1
        day = mission.window_start + timedelta(days=int(rng.integers(0, 14)))
        answers = grid_answers(
            grids[mission.channel],
            rng=random.Random(int(rng.integers(2**63))),
            quality=float(np.clip(rng.normal(quality[mission.authority_code], 0.15), 0, 1)),
            day=day,
        )
        if mission.shopper_id not in shoppers:
            found = accounts_repository.get(session, mission.shopper_id)
            assert found is not None
            shoppers[mission.shopper_id] = found
        accepted, _created = visits_service.submit_visit(
            session,
            shopper=shoppers[mission.shopper_id],
            mission_id=row_id(mission),
            submission_id=uuid.UUID(bytes=rng.bytes(16), version=4),
            answers=answers,
            timings={},
            visited_at=datetime.combine(day, time(10), tzinfo=UTC),
            evidence=[],
        )
        reported.append(accepted.visit)
    _review(session, reported, ReviewState(review_state))
    session.flush()
    return len(reported)


def _review(session: Session, visit_ids: list[uuid.UUID], state: ReviewState) -> None:
    if not visit_ids or state == ReviewState.received:
        return
    actor = reviewer(session)
    if state == ReviewState.approved:
        for start in range(0, len(visit_ids), reviews_service.MAX_BULK):
            reviews_service.bulk_approve(
                session, visit_ids=visit_ids[start : start + reviews_service.MAX_BULK], actor=actor
            )
        return
    for visit_id in visit_ids:
        reviews_service.transition(
            session,
            visit_id=visit_id,
            to_state=state,
            actor=actor,
            comment=REVIEW_COMMENTS.get(state, ""),
        )
