"""The demo barometer: two editions on the real registry, deterministic, idempotent."""

from __future__ import annotations

from collections import Counter

from sqlmodel import Session, select

import surveys
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
    # 2025 is scored by the results demo, then deliberated and published by the jury demo.
    assert states[2026] == "open"
    assert states[2025] in {"scored", "deliberated", "published"}
    for year in (2025, 2026):
        candidates = _candidates(session, year)
        assert 180 <= len(candidates) <= 220
        assert len(Counter(category for _, category in candidates)) == 8
    returning = {c for c, _ in _candidates(session, 2025)} & {
        c for c, _ in _candidates(session, 2026)
    }
    assert 0.6 < len(returning) / len(_candidates(session, 2026)) < 0.95
    assert {a.role for a in accounts} == {"admin", "reviewer", "shopper", "jury", "authority"}
    # One account per role, and three more shoppers so mission loads can be balanced.
    # (The jury demo, which runs once 2025 is scored, adds jurors of its own.)
    users = session.exec(select(User)).all()
    assert len([user for user in users if user.role != "jury"]) == 7

    first = _candidates(session, 2026)
    build_demo(session, organiser="Démo", seed=11)  # idempotent
    session.commit()
    assert _candidates(session, 2026) == first
    assert len(session.exec(select(Campaign)).all()) == 2


def test_demo_visits_are_valid_and_reviewed(session: Session) -> None:
    """2025: an approved visit for every candidate and channel, authorities of unequal
    quality; 2026: visits in every review state with a thread, a correction and hints."""
    from app.instruments.models import InstrumentVersion
    from app.instruments.service import load_published
    from app.missions.models import Mission, ReviewEvent, Visit, VisitRevision
    from app.reviews import service as reviews_service

    build_demo(session, organiser="Démo", seed=11)
    session.commit()
    campaigns = {c.year: c for c in session.exec(select(Campaign)).all()}
    rows = session.exec(select(Visit, Mission).join(Mission)).all()
    past = [(v, m) for v, m in rows if m.campaign_id == campaigns[2025].id]
    current = [(v, m) for v, m in rows if m.campaign_id == campaigns[2026].id]

    candidates = {code for code, _ in _candidates(session, 2025)}
    assert {v.review_state for v, _m in past} == {"approved"}
    assert {m.state for _v, m in past} == {"approved"}
    covered = {(m.authority_code, m.channel) for _v, m in past}
    channels = {"guichet", "telephone", "courriel", "courrier", "site", "reseaux"}
    assert covered == {(code, channel) for code in candidates for channel in channels}

    versions = {v.id: load_published(v) for v in session.exec(select(InstrumentVersion)).all()}
    for visit, _mission in rows:
        checked = surveys.validate_answers(versions[visit.instrument_version_id], visit.answers)
        assert checked.ok, (visit.id, checked.errors)

    # Authorities differ: the share of "yes" answers spreads across authorities.
    yes_share: dict[str, list[float]] = {}
    for visit, mission in past:
        answers = [value for value in visit.answers.values() if value in ("yes", "no")]
        if answers:
            share = answers.count("yes") / len(answers)
            yes_share.setdefault(mission.authority_code, []).append(share)
    means = sorted(sum(s) / len(s) for s in yes_share.values())
    assert means[-1] - means[0] > 0.3

    states = Counter(v.review_state for v, _m in current)
    assert set(states) == {"received", "has_issues", "approved", "rejected"}
    events = session.exec(select(ReviewEvent)).all()
    commented = {e.visit_id for e in events if e.to_state == "has_issues" and e.comment}
    assert {v.id for v, _m in current if v.review_state == "has_issues"} <= commented
    corrected = [v for v, _m in current if v.revision == 2]
    assert len(corrected) == 1
    revisions = session.exec(
        select(VisitRevision).where(VisitRevision.visit_id == corrected[0].id)
    ).all()
    assert sorted(r.revision for r in revisions) == [1, 2]
    hints = reviews_service.hints_for_visits(session, [(v, m) for v, m in current])
    codes = {hint.code for found in hints.values() for hint in found}
    assert {"outside_window", "implausible_duration", "timing_mismatch", "late_submission"} <= codes
    assert {"burst", "missing_proof"} <= codes
    shopper_missions = session.exec(
        select(Mission)
        .join(User, User.id == Mission.shopper_id)
        .where(User.email == "shopper@demo.barometre.fr", Mission.campaign_id == campaigns[2026].id)
    ).all()
    assert shopper_missions


def test_demo_responses_are_valid_and_2025_arrives_scored(session: Session) -> None:
    """Citizen responses for both editions (valid, a few flagged too fast), and a frozen
    2025 run whose inputs hash is reproducible."""
    import time

    from app.collection.models import Response
    from app.instruments.models import InstrumentVersion
    from app.instruments.service import load_published
    from app.results import repository as results_repository
    from app.results.inputs import gather_inputs

    started = time.perf_counter()
    build_demo(session, organiser="Démo", seed=11)
    session.commit()
    elapsed = time.perf_counter() - started
    campaigns = {c.year: c for c in session.exec(select(Campaign)).all()}
    responses = session.exec(select(Response)).all()
    per_year = Counter(
        next(y for y, c in campaigns.items() if c.id == r.campaign_id) for r in responses
    )
    assert per_year[2025] > 180 * 30 and per_year[2026] > 0
    per_candidate = Counter(
        r.authority_code for r in responses if r.campaign_id == campaigns[2025].id
    )
    assert min(per_candidate.values()) >= 30 and max(per_candidate.values()) <= 150
    flagged = [r for r in responses if r.excluded]
    assert flagged and all(r.quality_flags == ["too_fast"] for r in flagged)
    assert len(flagged) < 0.05 * len(responses)
    versions = {v.id: load_published(v) for v in session.exec(select(InstrumentVersion)).all()}
    for response in responses[::25]:
        checked = surveys.validate_answers(
            versions[response.instrument_version_id], response.answers
        )
        assert checked.ok and dict(checked.answers) == response.answers

    run = results_repository.current_run(session, campaign_id=campaigns[2025].id or 0)
    assert run is not None and run.status == "complete"
    assert run.summary["responses_used"] == per_year[2025] - sum(
        1 for r in flagged if r.campaign_id == campaigns[2025].id
    )
    assert run.summary["visits_approved"] > 0
    assert sum(c["eligible"] for c in run.summary["categories"].values()) > 100
    assert gather_inputs(session, campaign=campaigns[2025]).inputs_sha256 == run.inputs_sha256
    assert elapsed < 120  # the quick start builds it at each server start
