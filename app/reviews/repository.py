"""Queries of the review side: the queue, one visit with its history, threads and evidence."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from app.accounts.models import Role, User
from app.authorities.models import Authority
from app.campaigns.models import Campaign
from app.core.db import row_id
from app.instruments.models import InstrumentVersion
from app.missions.models import (
    Mission,
    ReviewEvent,
    Scenario,
    Visit,
    VisitEvidence,
    VisitRevision,
)


@dataclass(frozen=True)
class QueueFilters:
    campaign_id: int | None = None
    state: str | None = None
    channel: str | None = None
    authority: str | None = None  # a code, or part of a name
    shopper_id: int | None = None


@dataclass(frozen=True)
class QueueRow:
    visit: Visit
    mission: Mission
    authority: Authority
    campaign: Campaign
    shopper: User | None


@dataclass(frozen=True)
class VisitDetail:
    visit: Visit
    mission: Mission
    authority: Authority
    campaign: Campaign
    scenario: Scenario | None
    shopper: User | None
    version: InstrumentVersion


@dataclass(frozen=True)
class ThreadEntry:
    """One event of a visit's thread with its author's role (and name, for staff pages only)."""

    event: ReviewEvent
    author_role: str
    author_name: str


def _queue_query(
    filters: QueueFilters,
) -> sa.Select[Visit, Mission, Authority, Campaign, User]:
    # sqlalchemy's select: sqlmodel's is typed for four entities at most.
    query = (
        sa.select(Visit, Mission, Authority, Campaign, User)
        .join(Mission, col(Mission.id) == col(Visit.mission_id))
        .join(Authority, col(Authority.code) == col(Mission.authority_code))
        .join(Campaign, col(Campaign.id) == col(Mission.campaign_id))
        .join(User, col(User.id) == col(Visit.shopper_id), isouter=True)
    )
    if filters.campaign_id is not None:
        query = query.where(col(Mission.campaign_id) == filters.campaign_id)
    if filters.state:
        query = query.where(col(Visit.review_state) == filters.state)
    if filters.channel:
        query = query.where(col(Mission.channel) == filters.channel)
    if filters.shopper_id is not None:
        query = query.where(col(Visit.shopper_id) == filters.shopper_id)
    if filters.authority:
        text = filters.authority.strip()
        query = query.where(
            sa.or_(
                col(Mission.authority_code) == text.upper(),
                func.lower(col(Authority.name)).contains(text.lower(), autoescape=True),
            )
        )
    return query


def queue_rows(
    session: Session, filters: QueueFilters, *, offset: int = 0, limit: int | None = None
) -> list[QueueRow]:
    """The visits matching the filters, oldest submission first."""
    query = _queue_query(filters).order_by(col(Visit.submitted_at), col(Visit.id))
    if offset:
        query = query.offset(offset)
    if limit is not None:
        query = query.limit(limit)
    return [
        QueueRow(visit, mission, authority, campaign, shopper)
        for visit, mission, authority, campaign, shopper in session.execute(query).all()
    ]


def count_queue(session: Session, filters: QueueFilters) -> int:
    query = _queue_query(filters).with_only_columns(func.count()).order_by(None)
    return int(session.execute(query).scalar_one())


def count_by_state(session: Session, campaign_id: int | None = None) -> dict[str, int]:
    query = select(Visit.review_state, func.count()).group_by(col(Visit.review_state))
    if campaign_id is not None:
        query = query.join(Mission, col(Mission.id) == col(Visit.mission_id)).where(
            col(Mission.campaign_id) == campaign_id
        )
    return {state: int(count) for state, count in session.exec(query).all()}


def campaigns_with_visits(session: Session) -> list[Campaign]:
    has_visit = (
        select(Visit.id)
        .join(Mission, col(Mission.id) == col(Visit.mission_id))
        .where(col(Mission.campaign_id) == col(Campaign.id))
        .exists()
    )
    return list(session.exec(select(Campaign).where(has_visit).order_by(col(Campaign.year).desc())))


def shoppers(session: Session) -> list[User]:
    return list(
        session.exec(
            select(User)
            .where(col(User.role) == Role.shopper)
            .order_by(col(User.display_name), col(User.id))
        ).all()
    )


def get_visit(session: Session, visit_id: uuid.UUID, *, for_update: bool = False) -> Visit | None:
    query = select(Visit).where(col(Visit.id) == visit_id)
    if for_update:
        query = query.with_for_update()
    return session.exec(query).first()


def visits_by_id(
    session: Session, visit_ids: Iterable[uuid.UUID], *, for_update: bool = False
) -> dict[uuid.UUID, Visit]:
    wanted = list(set(visit_ids))
    found: dict[uuid.UUID, Visit] = {}
    for start in range(0, len(wanted), 900):
        query = select(Visit).where(col(Visit.id).in_(wanted[start : start + 900]))
        if for_update:
            query = query.with_for_update()
        for visit in session.exec(query).all():
            found[visit.id] = visit
    return found


def visit_detail(session: Session, visit_id: uuid.UUID) -> VisitDetail | None:
    row = session.execute(
        sa.select(Visit, Mission, Authority, Campaign, Scenario, User, InstrumentVersion)
        .join(Mission, col(Mission.id) == col(Visit.mission_id))
        .join(Authority, col(Authority.code) == col(Mission.authority_code))
        .join(Campaign, col(Campaign.id) == col(Mission.campaign_id))
        .join(InstrumentVersion, col(InstrumentVersion.id) == col(Visit.instrument_version_id))
        .join(Scenario, col(Scenario.id) == col(Mission.scenario_id), isouter=True)
        .join(User, col(User.id) == col(Visit.shopper_id), isouter=True)
        .where(col(Visit.id) == visit_id)
    ).first()
    return VisitDetail(*row) if row is not None else None


def get_mission(session: Session, mission_id: int) -> Mission | None:
    return session.get(Mission, mission_id)


def missions_by_id(session: Session, mission_ids: Iterable[int]) -> dict[int, Mission]:
    wanted = list(set(mission_ids))
    found: dict[int, Mission] = {}
    for start in range(0, len(wanted), 900):
        for mission in session.exec(
            select(Mission).where(col(Mission.id).in_(wanted[start : start + 900]))
        ).all():
            found[row_id(mission)] = mission
    return found


def revisions(session: Session, visit_id: uuid.UUID) -> list[VisitRevision]:
    return list(
        session.exec(
            select(VisitRevision)
            .where(col(VisitRevision.visit_id) == visit_id)
            .order_by(col(VisitRevision.revision))
        ).all()
    )


def thread_for_visit(session: Session, visit_id: uuid.UUID) -> list[ThreadEntry]:
    """A visit's review thread, oldest first.

    For the shopper's own mission page too: the caller must have checked the visit is theirs
    (or use :func:`shopper_thread`), and shows ``author_role`` only, never ``author_name``.
    """
    rows = session.exec(
        select(ReviewEvent, User.role, User.display_name)
        .join(User, col(User.id) == col(ReviewEvent.author_id))
        .where(col(ReviewEvent.visit_id) == visit_id)
        .order_by(col(ReviewEvent.created_at), col(ReviewEvent.id))
    ).all()
    return [ThreadEntry(event, role, name) for event, role, name in rows]


def shopper_thread(
    session: Session, *, visit_id: uuid.UUID, shopper_id: int
) -> list[ThreadEntry] | None:
    """The thread of a visit only if this shopper reported it (None otherwise, as if absent)."""
    owner = session.exec(
        select(Visit.id).where(col(Visit.id) == visit_id, col(Visit.shopper_id) == shopper_id)
    ).first()
    return thread_for_visit(session, visit_id) if owner is not None else None


def evidence_of_visit(session: Session, visit_id: uuid.UUID) -> list[VisitEvidence]:
    return list(
        session.exec(
            select(VisitEvidence)
            .where(col(VisitEvidence.visit_id) == visit_id)
            .order_by(col(VisitEvidence.uploaded_at), col(VisitEvidence.id))
        ).all()
    )


def evidence_summary(
    session: Session, visit_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, list[str | None]]:
    """For each visit, the item keys of its evidence (None for proof not tied to an item)."""
    wanted = list(set(visit_ids))
    found: dict[uuid.UUID, list[str | None]] = {visit_id: [] for visit_id in wanted}
    for start in range(0, len(wanted), 900):
        rows = session.exec(
            select(VisitEvidence.visit_id, VisitEvidence.item_key).where(
                col(VisitEvidence.visit_id).in_(wanted[start : start + 900])
            )
        ).all()
        for visit_id, item_key in rows:
            if visit_id is not None:
                found[visit_id].append(item_key)
    return found


def visit_moments_of_shoppers(
    session: Session, shopper_ids: Iterable[int]
) -> dict[int, list[tuple[uuid.UUID, datetime]]]:
    """When each shopper's visits happened (visited_at, else submitted_at), for the burst hint."""
    wanted = list({shopper_id for shopper_id in shopper_ids if shopper_id is not None})
    found: dict[int, list[tuple[uuid.UUID, datetime]]] = {shopper_id: [] for shopper_id in wanted}
    for start in range(0, len(wanted), 900):
        rows = session.exec(
            select(Visit.shopper_id, Visit.id, Visit.visited_at, Visit.submitted_at).where(
                col(Visit.shopper_id).in_(wanted[start : start + 900])
            )
        ).all()
        for shopper_id, visit_id, visited_at, submitted_at in rows:
            found[shopper_id or 0].append((visit_id, visited_at or submitted_at))
    return found


def instrument_versions(
    session: Session, version_ids: Iterable[int]
) -> dict[int, InstrumentVersion]:
    wanted = list(set(version_ids))
    if not wanted:
        return {}
    return {
        row_id(version): version
        for version in session.exec(
            select(InstrumentVersion).where(col(InstrumentVersion.id).in_(wanted))
        ).all()
    }
