"""What a scorecard reads besides the run's rows: the previous edition, the citizens'
comments and the approved visits with their evidence.

The run's own rows (ranks, scores, names) are read through :mod:`app.results.repository`.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlmodel import Session, col, func, select

from app.campaigns.models import Campaign
from app.collection.models import Response
from app.instruments.models import InstrumentVersion
from app.missions.models import Mission, Visit, VisitEvidence


def previous_campaign(session: Session, campaign: Campaign) -> Campaign | None:
    """The organiser's latest edition before this one."""
    return session.exec(
        select(Campaign)
        .where(Campaign.organiser == campaign.organiser, Campaign.year < campaign.year)
        .order_by(col(Campaign.year).desc())
        .limit(1)
    ).first()


def count_valid_responses(session: Session, campaign_id: int, code: str) -> int:
    return int(
        session.exec(
            select(func.count())
            .select_from(Response)
            .where(
                Response.campaign_id == campaign_id,
                Response.authority_code == code,
                col(Response.excluded).is_(False),
            )
        ).one()
    )


def response_answers(
    session: Session, campaign_id: int, code: str, *, limit: int
) -> list[tuple[dict[str, object], int]]:
    """The latest valid responses' answers with their instrument version id."""
    rows = session.exec(
        select(Response.answers, Response.instrument_version_id)
        .where(
            Response.campaign_id == campaign_id,
            Response.authority_code == code,
            col(Response.excluded).is_(False),
        )
        .order_by(col(Response.submitted_at).desc())
        .limit(limit)
    ).all()
    return [(dict(answers), version_id) for answers, version_id in rows]


def instrument_versions(session: Session, ids: Iterable[int]) -> list[InstrumentVersion]:
    id_list = sorted(set(ids))
    if not id_list:
        return []
    return list(
        session.exec(select(InstrumentVersion).where(col(InstrumentVersion.id).in_(id_list))).all()
    )


def approved_visits(
    session: Session, campaign_id: int, code: str
) -> list[tuple[Visit, Mission, list[VisitEvidence]]]:
    """Approved visits of an authority in a campaign, with their evidence files."""
    rows = session.exec(
        select(Visit, Mission)
        .join(Mission, Mission.id == Visit.mission_id)  # type: ignore[arg-type]
        .where(
            Mission.campaign_id == campaign_id,
            Mission.authority_code == code,
            Visit.review_state == "approved",
        )
        .order_by(col(Mission.channel), col(Visit.visited_at))
    ).all()
    visit_ids = [visit.id for visit, _ in rows]
    evidence: dict[object, list[VisitEvidence]] = {}
    if visit_ids:
        for item in session.exec(
            select(VisitEvidence).where(col(VisitEvidence.visit_id).in_(visit_ids))
        ).all():
            evidence.setdefault(item.visit_id, []).append(item)
    return [(visit, mission, evidence.get(visit.id, [])) for visit, mission in rows]
