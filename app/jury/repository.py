"""Queries of the jury's workspace."""

from __future__ import annotations

from sqlmodel import Session, col, select

from app.accounts.models import Role, User
from app.audit.models import AuditEvent
from app.core.db import row_id
from app.jury.models import AwardDecision, JuryComment, JuryConflict, JuryVote

PRESIDENT_ACTION = "jury.president"


def jurors(session: Session) -> list[User]:
    return list(
        session.exec(
            select(User)
            .where(User.role == Role.jury, col(User.is_active).is_(True))
            .order_by(col(User.display_name))
        ).all()
    )


def president_id(session: Session, campaign_id: int) -> int | None:
    """The jury president of a campaign: the latest designation in the audit trail.

    There is no membership table (the schema of issue #7 has none), so the organiser's
    designation is an audited event, and the latest one is in force.
    """
    event = session.exec(
        select(AuditEvent)
        .where(
            AuditEvent.action == PRESIDENT_ACTION,
            AuditEvent.object_type == "campaign",
            AuditEvent.object_id == str(campaign_id),
        )
        .order_by(col(AuditEvent.id).desc())
        .limit(1)
    ).first()
    if event is None or not event.after:
        return None
    value = event.after.get("user_id")
    return int(value) if value is not None else None


def conflicts(
    session: Session, campaign_id: int, juror_id: int | None = None
) -> list[JuryConflict]:
    query = select(JuryConflict).where(JuryConflict.campaign_id == campaign_id)
    if juror_id is not None:
        query = query.where(JuryConflict.juror_id == juror_id)
    return list(session.exec(query.order_by(col(JuryConflict.declared_at))).all())


def has_conflict(session: Session, campaign_id: int, juror_id: int, code: str) -> bool:
    return (
        session.exec(
            select(JuryConflict.id).where(
                JuryConflict.campaign_id == campaign_id,
                JuryConflict.juror_id == juror_id,
                JuryConflict.authority_code == code,
            )
        ).first()
        is not None
    )


def votes(session: Session, run_id: int, category: str) -> list[JuryVote]:
    return list(
        session.exec(
            select(JuryVote).where(JuryVote.run_id == run_id, JuryVote.category == category)
        ).all()
    )


def vote_of(session: Session, run_id: int, category: str, juror_id: int) -> JuryVote | None:
    return session.exec(
        select(JuryVote).where(
            JuryVote.run_id == run_id,
            JuryVote.category == category,
            JuryVote.juror_id == juror_id,
        )
    ).first()


def comments(session: Session, run_id: int, category: str) -> list[JuryComment]:
    return list(
        session.exec(
            select(JuryComment)
            .where(JuryComment.run_id == run_id, JuryComment.category == category)
            .order_by(col(JuryComment.created_at), col(JuryComment.id))
        ).all()
    )


def decision(session: Session, campaign_id: int, category: str) -> AwardDecision | None:
    return session.exec(
        select(AwardDecision).where(
            AwardDecision.campaign_id == campaign_id, AwardDecision.category == category
        )
    ).first()


def decisions(session: Session, campaign_id: int) -> list[AwardDecision]:
    return list(
        session.exec(select(AwardDecision).where(AwardDecision.campaign_id == campaign_id)).all()
    )


def users_by_id(session: Session, ids: set[int]) -> dict[int, User]:
    if not ids:
        return {}
    return {
        row_id(user): user
        for user in session.exec(select(User).where(col(User.id).in_(sorted(ids)))).all()
    }
