"""Queries on campaigns, their transitions and candidates."""

from __future__ import annotations

from collections.abc import Iterable

from sqlmodel import Session, col, func, select

from app.authorities.models import Authority
from app.campaigns.models import (
    Campaign,
    CampaignInstrument,
    CampaignTransition,
    Candidate,
    CandidateStatus,
)
from app.instruments.models import InstrumentVersion


def get(session: Session, campaign_id: int) -> Campaign | None:
    return session.get(Campaign, campaign_id)


def get_by_year(session: Session, *, organiser: str, year: int) -> Campaign | None:
    return session.exec(
        select(Campaign).where(col(Campaign.organiser) == organiser, col(Campaign.year) == year)
    ).first()


def list_campaigns(session: Session) -> list[Campaign]:
    return list(session.exec(select(Campaign).order_by(col(Campaign.year).desc())).all())


def transitions(session: Session, campaign_id: int) -> list[CampaignTransition]:
    return list(
        session.exec(
            select(CampaignTransition)
            .where(col(CampaignTransition.campaign_id) == campaign_id)
            .order_by(col(CampaignTransition.at), col(CampaignTransition.id))
        ).all()
    )


def candidates_with_authorities(
    session: Session, campaign_id: int
) -> list[tuple[Candidate, Authority]]:
    rows = session.exec(
        select(Candidate, Authority)
        .join(Authority, col(Authority.code) == col(Candidate.authority_code))
        .where(col(Candidate.campaign_id) == campaign_id)
        .order_by(col(Candidate.category), col(Authority.name))
    ).all()
    return [(candidate, authority) for candidate, authority in rows]


def candidate_codes(session: Session, campaign_id: int, codes: Iterable[str]) -> set[str]:
    wanted = list(set(codes))
    found: set[str] = set()
    for start in range(0, len(wanted), 900):
        chunk = wanted[start : start + 900]
        found.update(
            session.exec(
                select(Candidate.authority_code).where(
                    col(Candidate.campaign_id) == campaign_id,
                    col(Candidate.authority_code).in_(chunk),
                )
            ).all()
        )
    return found


def registered_codes(session: Session, *, campaign_id: int) -> list[str]:
    """The codes of the campaign's registered candidates, sorted."""
    return list(
        session.exec(
            select(Candidate.authority_code)
            .where(
                col(Candidate.campaign_id) == campaign_id,
                col(Candidate.status) == CandidateStatus.registered,
            )
            .order_by(col(Candidate.authority_code))
        ).all()
    )


def get_candidate(session: Session, campaign_id: int, authority_code: str) -> Candidate | None:
    return session.exec(
        select(Candidate).where(
            col(Candidate.campaign_id) == campaign_id,
            col(Candidate.authority_code) == authority_code,
        )
    ).first()


def count_candidates_by_category(session: Session, campaign_id: int) -> dict[str, int]:
    rows = session.exec(
        select(Candidate.category, func.count())
        .where(col(Candidate.campaign_id) == campaign_id, col(Candidate.status) == "registered")
        .group_by(col(Candidate.category))
    ).all()
    return {category: int(count) for category, count in rows}


def pinned_instruments(
    session: Session, campaign_id: int
) -> list[tuple[CampaignInstrument, InstrumentVersion]]:
    rows = session.exec(
        select(CampaignInstrument, InstrumentVersion)
        .join(
            InstrumentVersion,
            col(InstrumentVersion.id) == col(CampaignInstrument.instrument_version_id),
        )
        .where(col(CampaignInstrument.campaign_id) == campaign_id)
        .order_by(col(CampaignInstrument.instrument_key))
    ).all()
    return [(pin, version) for pin, version in rows]


def get_pin(session: Session, campaign_id: int, instrument_key: str) -> CampaignInstrument | None:
    return session.exec(
        select(CampaignInstrument).where(
            col(CampaignInstrument.campaign_id) == campaign_id,
            col(CampaignInstrument.instrument_key) == instrument_key,
        )
    ).first()
