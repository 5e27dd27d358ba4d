"""Frozen scoring runs: determinism, storage, superseding, states, previews and the numbers."""

from __future__ import annotations

import math
from dataclasses import fields

import numpy as np
import pytest
from sqlmodel import Session, col, select

import surveys
from app.audit.models import AuditEvent
from app.authorities.models import Authority
from app.campaigns.models import Campaign, CampaignState
from app.campaigns.service import parse_config, register_candidate, transition
from app.collection.models import Response
from app.core.errors import Conflict
from app.instruments.service import load_published
from app.results import repository
from app.results.compute import RankRowData, ScoreRowData, ineligibility_code
from app.results.inputs import gather_inputs
from app.results.labels import describe_ineligibility
from app.results.models import (
    RANK_POSITION_COLUMNS,
    RANK_ROW_COLUMNS,
    SCORE_ESTIMATE_COLUMNS,
    SCORE_ROW_COLUMNS,
    RankRow,
    RunStatus,
    ScoreRow,
    ScoringRun,
)
from app.results.service import run_scoring
from tests.factories.responses import add_responses
from tests.factories.visits import add_visits

RANKED = "departements-regions"


def _add_departements(session: Session, campaign: Campaign, limit: int = 8) -> list[str]:
    config = parse_config(campaign.config)
    added = []
    for authority in session.exec(select(Authority).order_by(col(Authority.code))).all():
        category = config.category_for(authority.kind, authority.population)
        if category is not None and category.key == RANKED:
            register_candidate(session, campaign=campaign, code=authority.code, actor=None)
            added.append(authority.code)
        if len(added) >= limit:
            break
    return added


@pytest.fixture
def collected(open_campaign: Campaign, registry: Session) -> Campaign:
    """The open campaign, eight more départements or regions, responses and approved visits."""
    _add_departements(registry, open_campaign)
    rng = np.random.default_rng(7)
    add_responses(registry, campaign=open_campaign, rng=rng, per_candidate=(20, 60))
    add_visits(registry, campaign=open_campaign, rng=rng)
    registry.commit()
    return open_campaign


@pytest.fixture
def closed(collected: Campaign, registry: Session) -> Campaign:
    transition(registry, campaign=collected, to_state="closed", actor=None)
    registry.commit()
    return collected


def _rows(session: Session, run_id: int) -> tuple[list[tuple], list[tuple]]:
    scores = session.exec(
        select(ScoreRow).where(ScoreRow.run_id == run_id).order_by(col(ScoreRow.id))
    ).all()
    ranks = session.exec(
        select(RankRow).where(RankRow.run_id == run_id).order_by(col(RankRow.id))
    ).all()
    strip = {"id", "run_id"}
    return (
        [tuple(v for k, v in row.model_dump().items() if k not in strip) for row in scores],
        [tuple(v for k, v in row.model_dump().items() if k not in strip) for row in ranks],
    )


def test_same_inputs_and_seed_give_identical_rows_and_hash(
    closed: Campaign, registry: Session
) -> None:
    first = run_scoring(registry, campaign=closed, actor=None)
    registry.commit()
    second = run_scoring(registry, campaign=closed, actor=None)
    registry.commit()
    assert first.run is not None and second.run is not None
    assert first.run.id != second.run.id
    assert first.inputs_sha256 == second.inputs_sha256
    assert len(first.inputs_sha256) == 64
    scores_1, ranks_1 = _rows(registry, first.run.id or 0)
    scores_2, ranks_2 = _rows(registry, second.run.id or 0)
    assert len(scores_1) > 50 and len(ranks_1) == 11
    assert scores_1 == scores_2
    assert ranks_1 == ranks_2
    # The first run is superseded by the second; only the second is current.
    registry.refresh(first.run)
    assert first.run.superseded_by == second.run.id
    assert repository.current_run(registry, campaign_id=closed.id or 0).id == second.run.id


def test_a_changed_input_changes_the_hash(closed: Campaign, registry: Session) -> None:
    before = gather_inputs(registry, campaign=closed).inputs_sha256
    response = registry.exec(
        select(Response).where(Response.campaign_id == closed.id, Response.excluded == False)  # noqa: E712
    ).first()
    assert response is not None
    response.excluded = True
    registry.add(response)
    registry.flush()
    after = gather_inputs(registry, campaign=closed)
    assert after.inputs_sha256 != before
    assert after.counts["responses_excluded"] >= 1


def test_a_final_run_is_stored_whole_audited_and_scores_the_campaign(
    closed: Campaign, registry: Session
) -> None:
    result = run_scoring(registry, campaign=closed, actor=None)
    registry.commit()
    run = result.run
    assert run is not None and run.status == RunStatus.complete and run.progress == 100
    assert run.completed_at is not None and run.code_version
    assert run.summary["responses_used"] > 0
    assert run.summary["visits_approved"] > 0
    registry.refresh(closed)
    assert closed.state == CampaignState.scored
    events = registry.exec(select(AuditEvent).where(AuditEvent.action == "results.score")).all()
    assert [event.object_id for event in events] == [str(run.id)]
    rows = registry.exec(select(ScoreRow)).all()
    levels = {row.level for row in rows}
    assert levels == {"overall", "component", "channel", "theme", "item"}
    # Intervals stay on the 0–100 scale even where few visits give a huge t quantile.
    bounded = [row for row in rows if row.ci_low is not None and row.ci_high is not None]
    assert bounded and all(0 <= row.ci_low <= row.ci_high <= 100 for row in bounded)  # type: ignore[operator]
    cut = [
        row
        for row in bounded
        if row.estimate is not None
        and abs((row.ci_high - row.estimate) - (row.estimate - row.ci_low)) > 1e-9  # type: ignore[operator]
    ]
    assert cut  # some bounds were cut at the scale's edge
    # A scored campaign can be scored again (superseding), still one current run.
    again = run_scoring(registry, campaign=closed, actor=None)
    registry.commit()
    current = repository.current_runs(registry, campaign_id=closed.id or 0)
    assert [r.id for r in current] == [again.run.id]  # type: ignore[union-attr]


def test_final_run_needs_a_closed_campaign_and_preview_an_open_one(
    collected: Campaign, registry: Session
) -> None:
    with pytest.raises(Conflict):
        run_scoring(registry, campaign=collected, actor=None)
    preview = run_scoring(registry, campaign=collected, actor=None, preview=True)
    assert preview.run is None and preview.score_rows and preview.rank_rows
    assert registry.exec(select(ScoringRun)).all() == []
    transition(registry, campaign=collected, to_state="closed", actor=None)
    with pytest.raises(Conflict):
        run_scoring(registry, campaign=collected, actor=None, preview=True)
    # After deliberation the signed decisions rest on the current run: no new run.
    for state in (CampaignState.deliberated, CampaignState.published):
        collected.state = state
        with pytest.raises(Conflict, match="cannot be scored again"):
            run_scoring(registry, campaign=collected, actor=None)


def test_overall_combines_components_with_the_campaign_weights(
    closed: Campaign, registry: Session
) -> None:
    result = run_scoring(registry, campaign=closed, actor=None)
    config = parse_config(closed.config)
    by = {(r.authority_code, r.level, r.key): r for r in result.score_rows}
    code = "69123"
    survey, mystery = by[(code, "component", "survey")], by[(code, "component", "mystery")]
    overall = by[(code, "overall", "")]
    w_s, w_m = config.component_weights.survey, config.component_weights.mystery
    expected = (w_s * survey.estimate + w_m * mystery.estimate) / (w_s + w_m)
    assert overall.estimate == pytest.approx(expected, rel=1e-12)
    se = math.sqrt(((w_s / (w_s + w_m)) * survey.se) ** 2 + ((w_m / (w_s + w_m)) * mystery.se) ** 2)
    assert overall.se == pytest.approx(se, rel=1e-12)
    assert overall.ci_low < overall.estimate < overall.ci_high


def test_survey_component_is_the_mean_of_each_respondents_index(
    closed: Campaign, registry: Session
) -> None:
    """Cross-check of the vectorised flattening against surveys.submission_scores."""
    inputs = gather_inputs(registry, campaign=closed)
    result = run_scoring(registry, campaign=closed, actor=None, preview=False)
    responses = registry.exec(
        select(Response).where(
            Response.campaign_id == closed.id,
            Response.authority_code == "01001",
            Response.excluded == False,  # noqa: E712
        )
    ).all()
    from app.instruments.models import InstrumentVersion

    version = registry.get(InstrumentVersion, responses[0].instrument_version_id)
    assert version is not None
    instrument = load_published(version)
    totals = [surveys.submission_scores(instrument, r.answers).total.score for r in responses]
    values = np.array([np.nan if t is None else t for t in totals])
    row = next(
        r
        for r in result.score_rows
        if r.authority_code == "01001" and r.level == "component" and r.key == "survey"
    )
    assert row.estimate == pytest.approx(np.nanmean(values), rel=1e-12)
    kept = values[~np.isnan(values)]
    assert row.n == len(kept)
    # R's svyby domain variance (each respondent its own PSU, one stratum of all N rows):
    # N/(N-1) · Σ_domain (y − ȳ)² / n_d².
    big_n = inputs.n_responses
    expected_se = math.sqrt(big_n / (big_n - 1) * np.sum((kept - kept.mean()) ** 2)) / len(kept)
    assert row.se == pytest.approx(expected_se, rel=1e-9)
    assert inputs.n_responses >= len(responses)


def test_rank_rows_are_coherent_and_ineligible_candidates_keep_a_reason(
    closed: Campaign, registry: Session
) -> None:
    config = closed.config
    config["eligibility"] = {"min_respondents": 45, "min_channels_tested": 4}
    closed.config = dict(config)
    registry.add(closed)
    registry.commit()
    result = run_scoring(registry, campaign=closed, actor=None)
    big = [r for r in result.rank_rows if r.category == RANKED]
    assert len(big) == 8
    eligible = [r for r in big if r.eligible]
    ineligible = [r for r in big if not r.eligible]
    assert eligible and ineligible
    for row in ineligible:
        assert row.ineligible_reason.startswith("respondents:")
        assert row.ineligible_reason.split(";")[0].endswith("/45")
        assert row.rank is None and row.estimate is not None
    leader = min(eligible, key=lambda r: r.rank)
    assert leader.in_top1_set and leader.in_top3_set
    assert leader.rank == 1
    assert sum(r.p_best for r in eligible) == pytest.approx(1.0)
    for row in eligible:
        assert row.rank_low <= row.rank <= row.rank_high <= len(eligible)
        assert not row.in_top1_set or row.in_top3_set
        assert 0.0 <= row.percentile <= 100.0


def test_flags_inform_visit_rows_never_carry_the_respondents_rules(
    closed: Campaign, registry: Session
) -> None:
    result = run_scoring(registry, campaign=closed, actor=None)
    visit_levels = {"channel", "mystery"}
    for row in result.score_rows:
        on_visits = row.level == "channel" or (row.level, row.key) == ("component", "mystery")
        if on_visits or row.level in visit_levels:
            assert "fewer_than_5" not in row.flags
        if "ci_cut_low" in row.flags:
            assert row.ci_low == 0.0
        if "ci_cut_high" in row.flags:
            assert row.ci_high == 100.0
    by = {(r.authority_code, r.level, r.key): r for r in result.score_rows}
    for (code, level, _key), row in by.items():
        if level == "overall" and (code, "component", "survey") in by:
            # The overall n is the survey part's: visits are not added to respondents.
            assert row.n == by[(code, "component", "survey")].n
    channels = [r for r in result.score_rows if r.level == "channel"]
    assert channels and all(r.se is not None and r.se > 0 for r in channels)


def test_ineligibility_is_stored_as_a_code_and_described_in_words() -> None:
    code = ineligibility_code(respondents=(12, 30), channels=(1, 3), no_overall=False)
    assert code == "respondents:12/30; channels:1/3"
    described = describe_ineligibility(code)
    assert "12" in described and "30" in described and "(minimum 3)" in described
    assert ":" not in described  # words, not the stored code
    assert describe_ineligibility("written by hand") == "written by hand"
    assert describe_ineligibility("") == ""


def test_stored_row_columns_are_the_computed_rows_fields() -> None:
    """The bulk insert and the exports name their columns after the computed rows' fields."""
    assert tuple(f.name for f in fields(ScoreRowData)) == SCORE_ROW_COLUMNS
    assert tuple(f.name for f in fields(RankRowData)) == RANK_ROW_COLUMNS
    assert set(SCORE_ESTIMATE_COLUMNS) <= set(SCORE_ROW_COLUMNS)
    assert set(RANK_POSITION_COLUMNS) <= set(RANK_ROW_COLUMNS)
