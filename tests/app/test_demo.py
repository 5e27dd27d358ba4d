"""The demo barometer: two editions on the real registry, deterministic, idempotent."""

from __future__ import annotations

from collections import Counter

from sqlmodel import Session, select

from app.accounts.models import User
from app.campaigns.models import Campaign, Candidate
from app.demo import build_demo


def _candidates(session: Session, year: int) -> list[tuple[str, str]]:
    campaign = session.exec(select(Campaign).where(Campaign.year == year)).one()
    rows = session.exec(select(Candidate).where(Candidate.campaign_id == campaign.id)).all()
    return sorted((row.authority_code, row.category) for row in rows)


def test_demo_builds_two_editions_with_every_category(session: Session) -> None:
    accounts = build_demo(session, organiser="Démo", seed=11)
    session.commit()
    states = {c.year: c.state for c in session.exec(select(Campaign)).all()}
    assert states == {2025: "closed", 2026: "open"}
    for year in (2025, 2026):
        candidates = _candidates(session, year)
        assert 180 <= len(candidates) <= 220
        assert len(Counter(category for _, category in candidates)) == 8
    returning = {c for c, _ in _candidates(session, 2025)} & {
        c for c, _ in _candidates(session, 2026)
    }
    assert 0.6 < len(returning) / len(_candidates(session, 2026)) < 0.95
    assert {a.role for a in accounts} == {"admin", "reviewer", "shopper", "jury", "authority"}
    assert len(session.exec(select(User)).all()) == 5

    first = _candidates(session, 2026)
    build_demo(session, organiser="Démo", seed=11)  # idempotent
    session.commit()
    assert _candidates(session, 2026) == first
    assert len(session.exec(select(Campaign)).all()) == 2
