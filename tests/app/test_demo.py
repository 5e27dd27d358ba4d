"""The demo barometer: three editions on the real registry, one at each stage of the cycle
(2024 published, 2025 awaiting its jury, 2026 open), built through the services,
deterministic, idempotent; a demo visit replays through the shoppers' API like a real one."""

from __future__ import annotations

import statistics
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest
import typer
from alembic import command
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

import surveys
from app import cli as barometre_cli
from app.accounts.models import Role, User
from app.campaigns.models import Campaign, Candidate
from app.campaigns.schemas import Channel
from app.campaigns.service import parse_config
from app.cli import add_plugin_commands, alembic_config
from app.core.config import Settings
from app.core.db import create_db_engine
from app.jury import service as jury_service
from app.jury.models import AwardDecision, JuryComment, JuryConflict, JuryVote
from app.main import create_app
from app.missions.models import Mission, Visit, VisitRevision
from app.results import repository as results_repository
from app.results.models import ScoreRow
from app.scorecards.views import year_over_year
from demo.accounts import DEMO_AUTHORITY, ensure_role_accounts
from demo.editions import build_demo
from demo.jury import deliberate_and_publish, open_deliberation
from demo.quality import CHANNEL_TARGETS
from demo.visits import build_current_visits
from tests.app.test_jury import BIG, SMALL, scored
from tests.conftest import BACKENDS, TEST_SECRET_KEY, login, make_user

CHANNELS = {"guichet", "telephone", "courriel", "courrier", "site", "reseaux"}
PAST_YEARS = (2024, 2025)


@dataclass(frozen=True)
class BuiltDemo:
    session: Session
    accounts: list
    seconds: float
    url: str


@pytest.fixture(scope="module", params=BACKENDS)
def built(request: pytest.FixtureRequest, new_database) -> Iterator[BuiltDemo]:
    """The demo, built once per backend in a database of its own (the tests only read it, or
    roll back what they try)."""
    url = new_database(request.param)
    command.upgrade(alembic_config(url), "head")
    engine = create_db_engine(url)
    with Session(engine, expire_on_commit=False) as session:
        started = time.perf_counter()
        accounts = build_demo(session, organiser="Démo", seed=11)
        session.commit()
        seconds = time.perf_counter() - started
        print(f"demo built in {seconds:.1f} s ({request.param})")
        yield BuiltDemo(session, accounts, seconds, url)
    engine.dispose()


def _campaigns(session: Session) -> dict[int, Campaign]:
    return {c.year: c for c in session.exec(select(Campaign)).all()}


def _candidates(session: Session, year: int) -> list[tuple[str, str]]:
    campaign = session.exec(select(Campaign).where(Campaign.year == year)).one()
    rows = session.exec(select(Candidate).where(Candidate.campaign_id == campaign.id)).all()
    return sorted((row.authority_code, row.category) for row in rows)


def test_demo_builds_three_editions_at_three_stages(built: BuiltDemo) -> None:
    session = built.session
    states = {year: campaign.state for year, campaign in _campaigns(session).items()}
    # One edition at each stage of the yearly cycle.
    assert states == {2024: "published", 2025: "scored", 2026: "open"}
    for year in (2024, 2025, 2026):
        candidates = _candidates(session, year)
        assert 180 <= len(candidates) <= 220
        assert len(Counter(category for _, category in candidates)) == 8
        assert DEMO_AUTHORITY in {code for code, _ in candidates}  # its scorecard every year
    for before, after in ((2024, 2025), (2025, 2026)):
        returning = {c for c, _ in _candidates(session, before)} & {
            c for c, _ in _candidates(session, after)
        }
        assert 0.6 < len(returning) / len(_candidates(session, after)) < 0.95
    assert {a.role for a in built.accounts} == {"admin", "reviewer", "shopper", "jury", "authority"}
    # One account per role, and three more shoppers so mission loads can be balanced.
    # (The deliberations, which run once an edition is scored, add jurors of their own.)
    users = session.exec(select(User)).all()
    assert len([user for user in users if user.role != "jury"]) == 7
    assert len([user for user in users if user.role == "jury"]) == 3
    assert all(user.password_hash for user in users)  # each accepted its invitation

    first = _candidates(session, 2026)
    build_demo(session, organiser="Démo", seed=11)  # idempotent
    session.commit()
    assert _candidates(session, 2026) == first
    assert len(session.exec(select(Campaign)).all()) == 3
    assert _campaigns(session)[2025].state == "scored"


def test_demo_visits_follow_the_plan_and_are_reviewed(built: BuiltDemo) -> None:
    """Past editions: an approved visit for every mission the planner made (each channel's
    tests per the configuration, and the replicate second tests), authorities of unequal
    quality; 2026: visits in every review state with a thread, a correction and hints."""
    from app.instruments.models import InstrumentVersion
    from app.instruments.service import load_published
    from app.missions.models import ReviewEvent
    from app.reviews import service as reviews_service

    session = built.session
    campaigns = _campaigns(session)
    rows = session.exec(select(Visit, Mission).join(Mission)).all()
    for year in PAST_YEARS:
        campaign = campaigns[year]
        config = parse_config(campaign.config)
        past = [(v, m) for v, m in rows if m.campaign_id == campaign.id]
        missions = session.exec(select(Mission).where(Mission.campaign_id == campaign.id)).all()
        assert {v.review_state for v, _m in past} == {"approved"}
        assert {m.state for m in missions} == {"approved"}  # every mission reported
        planned = Counter((m.authority_code, m.channel) for m in missions)
        visited = Counter((m.authority_code, m.channel) for _v, m in past)
        assert visited == planned
        candidates = {code for code, _ in _candidates(session, year)}
        assert set(visited) == {(code, channel) for code in candidates for channel in CHANNELS}
        # Each candidate gets its channel's configured tests, a subsample one more test.
        for (code, channel), count in visited.items():
            quota = config.tests_per_channel[Channel(channel)]
            assert quota <= count <= quota + 1, (code, channel, count)
        if config.replicates.share > 0:
            for channel, quota in config.tests_per_channel.items():
                if quota == 1:
                    seconds = [key for key, n in visited.items() if key[1] == channel and n == 2]
                    assert len(seconds) >= config.replicates.share * len(candidates)
        # Reported and reviewed during their edition, not when the demo was built.
        assert all(v.submitted_at.year == year for v, _m in past)

    versions = {v.id: load_published(v) for v in session.exec(select(InstrumentVersion)).all()}
    for visit, _mission in rows:
        checked = surveys.validate_answers(versions[visit.instrument_version_id], visit.answers)
        assert checked.ok, (visit.id, checked.errors)

    # Authorities differ: the share of "yes" answers spreads across authorities.
    yes_share: dict[str, list[float]] = {}
    for visit, mission in rows:
        if mission.campaign_id != campaigns[2025].id:
            continue
        answers = [value for value in visit.answers.values() if value in ("yes", "no")]
        if answers:
            share = answers.count("yes") / len(answers)
            yes_share.setdefault(mission.authority_code, []).append(share)
    means = sorted(sum(s) / len(s) for s in yes_share.values())
    assert means[-1] - means[0] > 0.3

    current = [(v, m) for v, m in rows if m.campaign_id == campaigns[2026].id]
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


def _channel_rows(session: Session, campaign: Campaign) -> dict[str, list[ScoreRow]]:
    run = results_repository.current_run(session, campaign_id=campaign.id or 0)
    assert run is not None
    rows = session.exec(
        select(ScoreRow).where(ScoreRow.run_id == run.id, ScoreRow.level == "channel")
    ).all()
    by_channel: dict[str, list[ScoreRow]] = {}
    for row in rows:
        if row.estimate is not None:
            by_channel.setdefault(row.key, []).append(row)
    return by_channel


def test_demo_quality_spreads_like_real_barometers(built: BuiltDemo) -> None:
    """Channel means ordered like AFNOR's published averages (letters lowest, the phone
    highest), authorities apart within a channel, one authority's visits apart, scores capped
    at 100 on the grids' steps."""
    session = built.session
    for year in PAST_YEARS:
        by_channel = _channel_rows(session, _campaigns(session)[year])
        means = {
            channel: statistics.mean(row.estimate or 0.0 for row in rows)
            for channel, rows in by_channel.items()
        }
        assert set(means) == CHANNELS
        assert min(means, key=means.__getitem__) == "courrier"
        assert max(means, key=means.__getitem__) == "telephone"
        for channel, target in CHANNEL_TARGETS.items():
            assert abs(means[channel] - target) < 5, (year, channel, means[channel])
        # Authorities differ within a channel (between-candidate spread).
        spread = statistics.pstdev(row.estimate or 0.0 for row in by_channel["guichet"])
        assert 5 < spread < 25

    from app.instruments.models import InstrumentVersion
    from app.instruments.service import load_published

    campaign = _campaigns(session)[2025]
    versions = {v.id: load_published(v) for v in session.exec(select(InstrumentVersion)).all()}
    scores_of: dict[tuple[str, str], list[float]] = {}
    for visit, mission in session.exec(
        select(Visit, Mission).join(Mission).where(Mission.campaign_id == campaign.id)
    ).all():
        result = surveys.submission_scores(versions[visit.instrument_version_id], visit.answers)
        scores_of.setdefault((mission.authority_code, mission.channel), []).append(
            result.total.score or 0.0
        )
    scores = [score for found in scores_of.values() for score in found]
    assert max(scores) == 100 and min(scores) >= 0
    assert sum(score == 100 for score in scores) > 0.02 * len(scores)  # the ceiling is reached
    # One authority's visits differ (within-candidate spread): repeated tests rarely agree.
    repeated = [found for found in scores_of.values() if len(found) > 1]
    differing = sum(len(set(found)) > 1 for found in repeated)
    assert differing > 0.5 * len(repeated)


def test_demo_responses_are_valid_and_past_editions_arrive_scored(built: BuiltDemo) -> None:
    """Citizen responses for every edition (valid, a few flagged by the collection's quality
    checks, mostly too fast), and frozen runs whose inputs hash is reproducible."""
    from app.collection.models import Response
    from app.instruments.models import InstrumentVersion
    from app.instruments.service import load_published
    from app.results.inputs import gather_inputs

    session = built.session
    campaigns = _campaigns(session)
    responses = session.exec(select(Response)).all()
    per_year = Counter(
        next(y for y, c in campaigns.items() if c.id == r.campaign_id) for r in responses
    )
    assert per_year[2026] > 0
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

    for year in PAST_YEARS:
        campaign = campaigns[year]
        assert per_year[year] > 180 * 30
        per_candidate = Counter(r.authority_code for r in responses if r.campaign_id == campaign.id)
        assert min(per_candidate.values()) >= 30 and max(per_candidate.values()) <= 150
        run = results_repository.current_run(session, campaign_id=campaign.id or 0)
        assert run is not None and run.status == "complete"
        assert run.summary["responses_used"] == per_year[year] - sum(
            1 for r in flagged if r.campaign_id == campaign.id
        )
        assert run.summary["visits_approved"] > 0
        assert sum(c["eligible"] for c in run.summary["categories"].values()) > 100
        assert gather_inputs(session, campaign=campaign).inputs_sha256 == run.inputs_sha256


def test_2024_is_published_with_every_decision_signed(built: BuiltDemo) -> None:
    session = built.session
    campaign = _campaigns(session)[2024]
    decisions = session.exec(
        select(AwardDecision).where(AwardDecision.campaign_id == campaign.id)
    ).all()
    assert len(decisions) == 8
    assert jury_service.unsigned_categories(session, campaign) == []


def test_2025_awaits_its_jury_with_every_category_open(built: BuiltDemo) -> None:
    """2025 is scored, ranked and deliberated on by nobody yet: jury@ presides, and can
    declare a conflict, vote, comment and sign in any category (tried, then rolled back)."""
    session = built.session
    campaign = _campaigns(session)[2025]
    run = results_repository.current_run(session, campaign_id=campaign.id or 0)
    assert run is not None
    ranks = list(results_repository.rank_rows(session, run_id=run.id or 0))
    assert sum(row.eligible for row in ranks) > 100
    assert not session.exec(
        select(AwardDecision).where(AwardDecision.campaign_id == campaign.id)
    ).all()
    assert len(jury_service.unsigned_categories(session, campaign)) == 8
    president = session.exec(select(User).where(User.email == "jury@demo.barometre.fr")).one()
    assert jury_service.president_id(session, campaign) == president.id
    # The other jurors have started: votes to see, and a remark, but nothing of jury@'s.
    votes = session.exec(select(JuryVote).where(JuryVote.run_id == run.id)).all()
    assert votes and all(vote.juror_id != president.id for vote in votes)
    assert session.exec(select(JuryComment).where(JuryComment.run_id == run.id)).all()
    assert not session.exec(
        select(JuryConflict).where(JuryConflict.campaign_id == campaign.id)
    ).all()

    category = "communes-0-3500"
    ranked = sorted(
        (row for row in ranks if row.category == category and row.eligible),
        key=lambda row: row.rank or 10**9,
    )
    leader, runner_up = ranked[0], ranked[1]
    try:
        jury_service.declare_conflict(
            session,
            campaign=campaign,
            juror_id=president.id or 0,
            code=runner_up.authority_code,
            reason="Ancien agent de cette commune",
            actor=president,
        )
        jury_service.cast_vote(
            session,
            campaign=campaign,
            category=category,
            juror=president,
            code=leader.authority_code,
        )
        jury_service.add_comment(
            session, campaign=campaign, category=category, author=president, body="D'accord."
        )
        decision = jury_service.sign_decision(
            session,
            campaign=campaign,
            category=category,
            president=president,
            laureate=leader.authority_code,
            justification="Égalité statistique : le meilleur score ponctuel, régulier partout.",
        )
        assert decision.laureate_code == leader.authority_code
        assert category not in jury_service.unsigned_categories(session, campaign)
    finally:
        session.rollback()
    assert len(jury_service.unsigned_categories(session, campaign)) == 8


def test_2025_jury_pages_offer_every_action_to_the_demo_juror(
    built: BuiltDemo, tmp_path: Path
) -> None:
    """Signed in with the documented account, the jury sees the conflict form, and in a
    category the vote, comment and signature forms (a GET only: the demo stays as built)."""
    session = built.session
    campaign = _campaigns(session)[2025]
    settings = Settings(
        environment="test", database_url=built.url, secret_key=TEST_SECRET_KEY, var_dir=tmp_path
    )
    president = session.exec(select(User).where(User.email == "jury@demo.barometre.fr")).one()
    with TestClient(create_app(settings), follow_redirects=False) as client:
        login(client, president, password="demo-jury-2026")
        home = client.get(f"/campaigns/{campaign.id}/jury")
        assert home.status_code == 200
        assert f"/campaigns/{campaign.id}/jury/conflicts" in home.text
        page = client.get(f"/campaigns/{campaign.id}/jury/communes-0-3500")
        assert page.status_code == 200
        for action in ("vote", "comments", "sign"):
            assert f"/campaigns/{campaign.id}/jury/communes-0-3500/{action}" in page.text
    session.rollback()  # the sign-in's rows are the app's own; read afresh


def test_2025_scorecards_show_the_change_since_2024(built: BuiltDemo) -> None:
    session = built.session
    campaigns = _campaigns(session)
    run = results_repository.current_run(session, campaign_id=campaigns[2025].id or 0)
    assert run is not None
    overall = {
        row.authority_code: row
        for row in session.exec(
            select(ScoreRow).where(ScoreRow.run_id == run.id, ScoreRow.level == "overall")
        ).all()
    }
    before = {code for code, _ in _candidates(session, 2024)}
    changes = {
        code: year_over_year(session, campaign=campaigns[2025], code=code, overall=row)
        for code, row in overall.items()
    }
    returning = [code for code in changes if code in before]
    assert len(returning) > 0.6 * len(changes)
    shown = [change for code in returning if (change := changes[code]) is not None]
    assert len(shown) > 0.9 * len(returning)
    assert all(change.previous_year == 2024 for change in shown)
    # Some improve, some slip: the editions differ by more than rounding.
    differences = [change.difference for change in shown]
    assert min(differences) < -2 and max(differences) > 2
    assert changes[DEMO_AUTHORITY] is not None  # the demo contact's own scorecard
    assert all(changes[code] is None for code in changes if code not in before)


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


def test_demo_open_deliberation_leaves_every_category_to_the_jury(
    registry: Session, settings, open_campaign: Campaign
) -> None:
    domain = "demo-jury-open.example.org"
    scored(registry, open_campaign)
    admin = make_user(registry, Role.admin, email=f"admin@{domain}")
    president = make_user(registry, Role.jury, email=f"jury@{domain}")
    assert admin
    open_deliberation(registry, organiser=settings.organiser, domain=domain, year=2030)
    registry.commit()
    open_deliberation(registry, organiser=settings.organiser, domain=domain, year=2030)  # once
    registry.commit()
    assert registry.get(Campaign, open_campaign.id).state == "scored"  # type: ignore[union-attr]
    assert jury_service.president_id(registry, open_campaign) == president.id
    assert registry.exec(select(AwardDecision)).all() == []
    assert jury_service.unsigned_categories(registry, open_campaign) == sorted([BIG, SMALL])
    votes = registry.exec(select(JuryVote)).all()
    assert len(votes) == 4  # the two other jurors, in both categories; none of the president's
    assert president.id not in {vote.juror_id for vote in votes}
    assert len(registry.exec(select(JuryComment)).all()) == 1


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


# --- collection progress -------------------------------------------------------------------------


def test_progress_figures_match_the_eligibility_rules_used_by_scoring(built: BuiltDemo) -> None:
    """2025 (closed and scored): for every candidate, progress's respondents, tested channels
    and "eligible so far" are what the stored run decided (its rank row's eligibility and
    reason, its overall score row's ``n``); 2026 (open): the counts are those of direct
    queries, each response's index scored on its own by ``surveys``."""
    from app.campaigns import repository as campaigns_repository
    from app.collection import progress
    from app.collection.models import Response
    from app.instruments.service import load_published
    from app.missions.models import ReviewState
    from app.results.models import RankRow

    session = built.session
    campaigns = _campaigns(session)
    campaign = campaigns[2025]
    run = results_repository.current_run(session, campaign_id=campaign.id or 0)
    assert run is not None
    ranks = {
        row.authority_code: row
        for row in session.exec(select(RankRow).where(RankRow.run_id == run.id)).all()
    }
    n = {
        row.authority_code: row.n
        for row in session.exec(
            select(ScoreRow).where(ScoreRow.run_id == run.id, ScoreRow.level == "overall")
        ).all()
    }
    rows = progress.campaign_progress(session, campaign=campaign)
    assert {row.code for row in rows} == set(ranks)
    for row in rows:
        rank = ranks[row.code]
        assert row.respondents == n.get(row.code, 0), row.code
        decided = [
            part
            for part in rank.ineligible_reason.split("; ")
            if part.startswith(("respondents:", "channels:"))
        ]
        shown = []
        if row.respondents_short:
            shown.append(f"respondents:{row.respondents}/{row.respondents_needed}")
        if row.channels_short:
            shown.append(f"channels:{row.channels_tested}/{row.channels_needed}")
        assert decided == shown, row.code
        # Eligible in the run ⇒ eligible so far; the converse fails only for the run's own
        # reasons (no overall score with an SE, a missing weighted channel left unranked).
        assert rank.eligible <= row.eligible_so_far, row.code
        if row.eligible_so_far and not rank.eligible:
            assert not decided and rank.ineligible_reason, row.code
    assert sum(row.eligible_so_far for row in rows) >= sum(r.eligible for r in ranks.values())
    assert any(not row.eligible_so_far for row in rows)  # the demo has candidates short too

    campaign = campaigns[2026]
    rows = progress.campaign_progress(session, campaign=campaign)
    registered = {
        candidate.authority_code
        for candidate in session.exec(
            select(Candidate).where(
                Candidate.campaign_id == campaign.id, Candidate.status == "registered"
            )
        ).all()
    }
    assert {row.code for row in rows} == registered
    survey = next(
        version
        for _pin, version in campaigns_repository.pinned_instruments(session, campaign.id or 0)
        if version.kind == "survey"
    )
    instrument = load_published(survey)
    respondents: Counter[str] = Counter()
    for response in session.exec(
        select(Response).where(
            Response.campaign_id == campaign.id,
            Response.instrument_version_id == survey.id,
            col(Response.excluded).is_(False),
            col(Response.authority_code).in_(registered),
        )
    ).all():
        if surveys.submission_scores(instrument, response.answers).total.score is not None:
            respondents[response.authority_code] += 1
    assert sum(respondents.values()) > 0
    visits = Counter(
        (mission.authority_code, mission.channel)
        for _visit, mission in session.exec(
            select(Visit, Mission)
            .join(Mission)
            .where(Mission.campaign_id == campaign.id, Visit.review_state == ReviewState.approved)
        ).all()
        if mission.authority_code in registered
    )
    for row in rows:
        assert row.respondents == respondents[row.code], row.code
        for channel in row.channels:
            assert channel.approved == visits[(row.code, channel.channel)], (row.code, channel)
    assert sum(channel.approved for row in rows for channel in row.channels) == sum(visits.values())
    lyon = next(row for row in rows if row.code == DEMO_AUTHORITY)
    assert lyon.respondents_short == max(0, lyon.respondents_needed - lyon.respondents)
