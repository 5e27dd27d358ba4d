"""What goes into a scoring run: approved visits only, valid responses of registered candidates."""

from __future__ import annotations

import numpy as np
import pytest
from sqlmodel import Session, col, select

from app.campaigns.models import Campaign
from app.campaigns.service import withdraw_candidate
from app.collection.models import Response
from app.missions.models import Mission, ReviewState, Visit
from app.results.inputs import gather_inputs
from tests.factories.responses import add_responses
from tests.factories.visits import add_visits


def _visit_ids(session: Session, campaign: Campaign, code: str) -> set[str]:
    rows = session.exec(
        select(Visit.id)
        .join(Mission, col(Mission.id) == col(Visit.mission_id))
        .where(Mission.campaign_id == campaign.id, Mission.authority_code == code)
    ).all()
    return {visit_id.hex for visit_id in rows}


def test_only_approved_visits_appear_in_the_scoring_input(
    open_campaign: Campaign, registry: Session
) -> None:
    rng = np.random.default_rng(3)
    # One approved report per channel: 69123 keeps missions for the rejected ones below.
    add_visits(registry, campaign=open_campaign, rng=rng, codes=["69123"], per_channel=1)
    approved = _visit_ids(registry, open_campaign, "69123")
    others: dict[str, set[str]] = {}
    for code, state in (
        ("01001", ReviewState.received),
        ("75056", ReviewState.has_issues),
        ("69123", ReviewState.rejected),
    ):
        before = _visit_ids(registry, open_campaign, code)
        add_visits(registry, campaign=open_campaign, rng=rng, codes=[code], review_state=state)
        others[state] = _visit_ids(registry, open_campaign, code) - before
    registry.commit()
    assert approved and all(others.values())

    inputs = gather_inputs(registry, campaign=open_campaign)
    used = set(inputs.visits.ids)
    assert used == approved
    for state, ids in others.items():
        assert not (used & ids), f"{state} visits must not be scored"
    assert inputs.counts["visits_approved"] == len(approved)
    assert inputs.counts["visits_by_state"] == {
        "approved": len(approved),
        "received": len(others[ReviewState.received]),
        "has_issues": len(others[ReviewState.has_issues]),
        "rejected": len(others[ReviewState.rejected]),
    }
    # Every approved visit carries its candidate, channel and a score.
    assert {inputs.codes[i] for i in inputs.visits.candidate} == {"69123"}
    assert set(inputs.visits.channel) == {
        "guichet",
        "telephone",
        "courriel",
        "courrier",
        "site",
        "reseaux",
    }

    # Approving one more visit changes the input (and its hash).
    visit = registry.exec(select(Visit).where(Visit.review_state == ReviewState.received)).first()
    assert visit is not None
    visit.review_state = ReviewState.approved
    registry.add(visit)
    registry.flush()
    again = gather_inputs(registry, campaign=open_campaign)
    assert visit.id.hex in set(again.visits.ids)
    assert again.inputs_sha256 != inputs.inputs_sha256


def test_excluded_responses_and_withdrawn_candidates_stay_out(
    open_campaign: Campaign, registry: Session
) -> None:
    rng = np.random.default_rng(5)
    add_responses(registry, campaign=open_campaign, rng=rng, per_candidate=(40, 40))
    registry.commit()
    responses = registry.exec(
        select(Response).where(Response.campaign_id == open_campaign.id)
    ).all()
    excluded = sum(1 for r in responses if r.excluded)
    assert excluded >= 1  # a few flagged too-fast responses
    inputs = gather_inputs(registry, campaign=open_campaign)
    assert inputs.n_responses == len(responses) - excluded
    assert inputs.counts["responses_excluded"] == excluded
    # Item scores are 0–100 or missing ("na" never scores 0).
    finite = inputs.item_scores[~np.isnan(inputs.item_scores)]
    assert finite.min() >= 0 and finite.max() <= 100
    na_answers = sum(1 for r in responses if not r.excluded and r.answers.get("trust") == "na")
    trust = [item.key for item in inputs.survey_items].index("trust")
    assert int(np.isnan(inputs.item_scores[:, trust]).sum()) == na_answers

    withdraw_candidate(registry, campaign=open_campaign, code="01001", actor=None)
    registry.flush()
    after = gather_inputs(registry, campaign=open_campaign)
    assert "01001" not in after.codes
    kept = sum(1 for r in responses if not r.excluded and r.authority_code != "01001")
    assert after.n_responses == kept


@pytest.mark.parametrize("value, expected", [(5, 100.0), (1, 0.0), (3, 50.0), ("na", None)])
def test_item_scores_follow_the_instrument(
    open_campaign: Campaign, registry: Session, value: object, expected: float | None
) -> None:
    rng = np.random.default_rng(1)
    add_responses(registry, campaign=open_campaign, rng=rng, per_candidate=(1, 1), codes=["69123"])
    response = registry.exec(select(Response)).one()
    response.answers = {**response.answers, "courtesy": value}
    response.excluded = False
    registry.add(response)
    registry.flush()
    inputs = gather_inputs(registry, campaign=open_campaign)
    courtesy = [item.key for item in inputs.survey_items].index("courtesy")
    score = inputs.item_scores[0, courtesy]
    assert (np.isnan(score) and expected is None) or score == expected


def test_visits_scored_in_a_worker_process_give_the_same_inputs(
    open_campaign: Campaign, registry: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.results import inputs as inputs_module

    add_visits(registry, campaign=open_campaign, rng=np.random.default_rng(9))
    registry.commit()
    inline = gather_inputs(registry, campaign=open_campaign)
    monkeypatch.setattr(inputs_module, "PARALLEL_VISITS", 1)
    worker = gather_inputs(registry, campaign=open_campaign)
    assert worker.inputs_sha256 == inline.inputs_sha256
    np.testing.assert_array_equal(worker.visits.score, inline.visits.score)
    assert worker.visits.items.keys() == inline.visits.items.keys()
    for key, values in inline.visits.items.items():
        np.testing.assert_array_equal(worker.visits.items[key], values)
