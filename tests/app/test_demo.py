"""The demo barometer: two editions on the real registry, built through the services,
deterministic, idempotent; a demo visit replays through the shoppers' API like a real one."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from importlib.metadata import EntryPoint

import pytest
import typer
from alembic import command
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

import surveys
from app import cli as barometre_cli
from app.accounts.models import Role, User
from app.campaigns.models import Campaign, Candidate
from app.cli import add_plugin_commands, alembic_config
from app.core.db import create_db_engine
from app.jury.models import AwardDecision, JuryConflict, JuryVote
from app.missions.models import Mission, Visit, VisitRevision
from demo.accounts import ensure_role_accounts
from demo.editions import build_demo
from demo.jury import deliberate_and_publish
from demo.visits import build_current_visits
from tests.app.test_jury import BIG, SMALL, scored
from tests.conftest import BACKENDS, login, make_user


@dataclass(frozen=True)
class BuiltDemo:
    session: Session
    accounts: list
    seconds: float


@pytest.fixture(scope="module", params=BACKENDS)
def built(request: pytest.FixtureRequest, new_database) -> Iterator[BuiltDemo]:
    """The demo, built once per backend in a database of its own (the tests only read it)."""
    url = new_database(request.param)
    command.upgrade(alembic_config(url), "head")
    engine = create_db_engine(url)
    with Session(engine, expire_on_commit=False) as session:
        started = time.perf_counter()
        accounts = build_demo(session, organiser="Démo", seed=11)
        session.commit()
        yield BuiltDemo(session, accounts, time.perf_counter() - started)
    engine.dispose()


def _candidates(session: Session, year: int) -> list[tuple[str, str]]:
    campaign = session.exec(select(Campaign).where(Campaign.year == year)).one()
    rows = session.exec(select(Candidate).where(Candidate.campaign_id == campaign.id)).all()
    return sorted((row.authority_code, row.category) for row in rows)


def test_demo_builds_two_editions_with_every_category(built: BuiltDemo) -> None:
    session = built.session
    states = {c.year: c.state for c in session.exec(select(Campaign)).all()}
    # 2025 is scored, then deliberated and published by the jury.
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
    assert {a.role for a in built.accounts} == {"admin", "reviewer", "shopper", "jury", "authority"}
    # One account per role, and three more shoppers so mission loads can be balanced.
    # (The deliberation, which runs once 2025 is scored, adds jurors of its own.)
    users = session.exec(select(User)).all()
    assert len([user for user in users if user.role != "jury"]) == 7
    assert all(user.password_hash for user in users)  # each accepted its invitation

    first = _candidates(session, 2026)
    build_demo(session, organiser="Démo", seed=11)  # idempotent
    session.commit()
    assert _candidates(session, 2026) == first
    assert len(session.exec(select(Campaign)).all()) == 2


def test_demo_visits_are_valid_and_reviewed(built: BuiltDemo) -> None:
    """2025: an approved visit for every candidate and channel, authorities of unequal
    quality; 2026: visits in every review state with a thread, a correction and hints."""
    from app.instruments.models import InstrumentVersion
    from app.instruments.service import load_published
    from app.missions.models import ReviewEvent
    from app.reviews import service as reviews_service

    session = built.session
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
    # Reported and reviewed during the 2025 edition, not when the demo was built.
    assert all(v.submitted_at.year == 2025 for v, _m in past)

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
        .join(User, col(User.id) == col(Mission.shopper_id))
        .where(User.email == "shopper@demo.barometre.fr", Mission.campaign_id == campaigns[2026].id)
    ).all()
    assert shopper_missions


def test_demo_responses_are_valid_and_2025_arrives_scored(built: BuiltDemo) -> None:
    """Citizen responses for both editions (valid, a few flagged by the collection's quality
    checks, mostly too fast), and a frozen 2025 run whose inputs hash is reproducible."""
    from app.collection.models import Response
    from app.instruments.models import InstrumentVersion
    from app.instruments.service import load_published
    from app.results import repository as results_repository
    from app.results.inputs import gather_inputs

    session = built.session
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
    reasons = Counter(flag for r in flagged for flag in r.quality_flags)
    assert set(reasons) <= {"too_fast", "straight_lining"}
    assert reasons["too_fast"] > reasons["straight_lining"]
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
    assert built.seconds < 120  # the quick start builds it at each server start


# --- a demo visit is a real visit ---------------------------------------------------------------

REPLAY_DOMAIN = "demo-replay.example.org"


def test_a_demo_visit_replays_through_the_shoppers_api_with_the_same_hash(
    open_campaign: Campaign, registry: Session, client: TestClient
) -> None:
    admin = ensure_role_accounts(registry, domain=REPLAY_DOMAIN)
    report = build_current_visits(
        registry,
        campaign=open_campaign,
        seed=11,
        actor=admin,
        domain=REPLAY_DOMAIN,
        today=date(2030, 11, 1),
    )
    registry.commit()
    assert report.visits > 0
    revisions = registry.exec(
        select(VisitRevision, Visit)
        .join(Visit, col(Visit.id) == col(VisitRevision.visit_id))
        .order_by(col(VisitRevision.revision).desc(), col(VisitRevision.submitted_at))
    ).all()
    # A first report, and the correction of the visit sent back for changes.
    replayed = [revisions[-1], revisions[0]]
    assert [revision.revision for revision, _visit in replayed] == [1, 2]
    for revision, visit in replayed:
        shopper = registry.get(User, visit.shopper_id)
        assert shopper is not None
        client.cookies.clear()
        token = login(client, shopper, password="demo-shopper-2026")
        body = {
            "id": str(revision.id),
            "mission": visit.mission_id,
            "visited_at": revision.visited_at.isoformat() if revision.visited_at else None,
            "answers": revision.answers,
            "timings": revision.timings,
            "evidence": [],
        }
        response = client.post("/api/v1/visits", json=body, headers={"X-CSRF-Token": token})
        assert response.status_code == 200, response.text
        accepted = response.json()
        assert accepted["id"] == str(revision.id)
        assert accepted["content_sha256"] == revision.content_sha256
        assert accepted["revision"] == revision.revision


# --- the deliberation --------------------------------------------------------------------------


def test_demo_deliberation_signs_every_category_and_publishes(
    registry: Session, settings, open_campaign: Campaign
) -> None:
    domain = "demo-jury.example.org"
    deliberate_and_publish(registry, organiser=settings.organiser, domain=domain, year=2030)
    assert open_campaign.state == "open"  # nothing to deliberate on without a scored run
    scored(registry, open_campaign)
    admin = make_user(registry, Role.admin, email=f"admin@{domain}")
    make_user(registry, Role.jury, email=f"jury@{domain}")
    assert admin
    deliberate_and_publish(registry, organiser=settings.organiser, domain=domain, year=2030)
    registry.commit()
    registry.expire_all()
    decisions = {d.category: d for d in registry.exec(select(AwardDecision)).all()}
    assert set(decisions) == {BIG, SMALL}
    assert decisions[BIG].justification  # the tied category is justified
    assert registry.get(Campaign, open_campaign.id).state == "published"  # type: ignore[union-attr]
    assert len(registry.exec(select(JuryVote)).all()) == 5  # the conflicted juror abstains
    assert len(registry.exec(select(JuryConflict)).all()) == 1


# --- the command ---------------------------------------------------------------------------------


def test_the_demo_command_is_a_plugin_of_the_command_line() -> None:
    commands = typer.Typer()
    add_plugin_commands(commands)
    assert [command.name for command in commands.registered_commands] == ["demo"]


def test_a_plugin_whose_package_is_absent_is_left_out(monkeypatch: pytest.MonkeyPatch) -> None:
    """The production image ships without ``demo/``; its other commands must still run."""
    absent = EntryPoint(name="ghost", value="no_such_package.cli:register", group="barometre.cli")
    monkeypatch.setattr(barometre_cli, "entry_points", lambda group: [absent])
    commands = typer.Typer()
    add_plugin_commands(commands)
    assert commands.registered_commands == []
