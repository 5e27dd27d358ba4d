"""Queries on visits, their revisions, evidence and review threads."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.campaigns.models import CampaignInstrument
from app.core.db import insert_once
from app.core.timeutil import utcnow
from app.instruments.models import InstrumentVersion
from app.missions.models import (
    Mission,
    MissionState,
    ReviewEvent,
    ReviewState,
    Visit,
    VisitEvidence,
    VisitRevision,
)


def pinned_grid(session: Session, campaign_id: int, channel: str) -> InstrumentVersion | None:
    """The grid version the campaign pinned for this channel."""
    return session.exec(
        select(InstrumentVersion)
        .join(
            CampaignInstrument,
            col(CampaignInstrument.instrument_version_id) == col(InstrumentVersion.id),
        )
        .where(
            col(CampaignInstrument.campaign_id) == campaign_id,
            col(InstrumentVersion.kind) == "grid",
            col(InstrumentVersion.channel) == channel,
        )
    ).first()


def get_revision(session: Session, revision_id: uuid.UUID) -> VisitRevision | None:
    return session.exec(select(VisitRevision).where(col(VisitRevision.id) == revision_id)).first()


def get_visit(session: Session, visit_id: uuid.UUID) -> Visit | None:
    return session.exec(select(Visit).where(col(Visit.id) == visit_id)).first()


def visit_of_mission(session: Session, mission_id: int) -> Visit | None:
    """The mission's current report: the latest one not rejected (a rejected one is redone)."""
    return session.exec(
        select(Visit)
        .where(col(Visit.mission_id) == mission_id, col(Visit.review_state) != ReviewState.rejected)
        .order_by(col(Visit.submitted_at).desc(), col(Visit.id))
    ).first()


def last_rejected_visit(session: Session, mission_id: int) -> Visit | None:
    return session.exec(
        select(Visit)
        .where(col(Visit.mission_id) == mission_id, col(Visit.review_state) == ReviewState.rejected)
        .order_by(col(Visit.submitted_at).desc(), col(Visit.id))
    ).first()


def review_states_of(session: Session, mission_ids: Iterable[int]) -> dict[int, str]:
    wanted = list(set(mission_ids))
    found: dict[int, str] = {}
    for start in range(0, len(wanted), 900):
        rows = session.exec(
            select(Visit.mission_id, Visit.review_state)
            .where(col(Visit.mission_id).in_(wanted[start : start + 900]))
            .order_by(col(Visit.submitted_at))
        ).all()
        for mission_id, state in rows:
            found[mission_id] = state
    return found


def claim_mission(session: Session, mission_id: int) -> bool:
    """assigned → submitted, atomically: only one first report of a mission can win."""
    result = session.execute(
        sa.update(Mission)
        .where(col(Mission.id) == mission_id, col(Mission.state) == MissionState.assigned)
        .values(state=MissionState.submitted, updated_at=utcnow())
        # The caller refreshes the mission it claimed; scanning every object of the session
        # to synchronise it costs O(session size) per report.
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0) == 1  # type: ignore[attr-defined]


def claim_correction(
    session: Session, visit_id: uuid.UUID, revision: int, values: dict[str, Any]
) -> bool:
    """The corrected content as revision + 1, only if nobody corrected the visit meanwhile.

    The visit stays has_issues here: the review state machine then moves it back to received.
    """
    result = session.execute(
        sa.update(Visit)
        .where(
            col(Visit.id) == visit_id,
            col(Visit.review_state) == ReviewState.has_issues,
            col(Visit.revision) == revision,
        )
        .values(revision=revision + 1, **values)
        .execution_options(synchronize_session=False)  # the caller refreshes the visit
    )
    return int(result.rowcount or 0) == 1  # type: ignore[attr-defined]


def insert_evidence_once(session: Session, values: dict[str, Any]) -> bool:
    """Insert unless the id exists (atomic on both databases); True when this call inserted."""
    return insert_once(session, VisitEvidence.__table__, values)  # type: ignore[attr-defined]


def get_evidence(session: Session, evidence_id: uuid.UUID) -> VisitEvidence | None:
    return session.exec(select(VisitEvidence).where(col(VisitEvidence.id) == evidence_id)).first()


def evidence_of_approved_visit(session: Session, evidence: VisitEvidence) -> bool:
    if evidence.visit_id is None:
        return False
    state = session.exec(
        select(Visit.review_state).where(col(Visit.id) == evidence.visit_id)
    ).first()
    return state == ReviewState.approved


def evidence_of_mission(session: Session, mission_id: int) -> list[VisitEvidence]:
    return list(
        session.exec(
            select(VisitEvidence)
            .where(col(VisitEvidence.mission_id) == mission_id)
            .order_by(col(VisitEvidence.uploaded_at), col(VisitEvidence.id))
        ).all()
    )


def link_evidence(session: Session, visit_id: uuid.UUID, evidence_ids: list[uuid.UUID]) -> None:
    if evidence_ids:
        session.execute(
            sa.update(VisitEvidence)
            .where(col(VisitEvidence.id).in_(evidence_ids))
            .values(visit_id=visit_id)
        )


def revisions_of(session: Session, visit_id: uuid.UUID) -> list[VisitRevision]:
    return list(
        session.exec(
            select(VisitRevision)
            .where(col(VisitRevision.visit_id) == visit_id)
            .order_by(col(VisitRevision.revision))
        ).all()
    )


def review_thread(session: Session, visit_id: uuid.UUID) -> list[ReviewEvent]:
    return list(
        session.exec(
            select(ReviewEvent)
            .where(col(ReviewEvent.visit_id) == visit_id)
            .order_by(col(ReviewEvent.created_at), col(ReviewEvent.id))
        ).all()
    )
