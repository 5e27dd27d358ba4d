"""What goes into a scoring run: approved visits only, valid responses of registered candidates."""

from __future__ import annotations

import uuid

import numpy as np
import pytest
import sqlalchemy as sa
from sqlmodel import Session, col, select

import surveys
from app.authorities.models import Authority
from app.campaigns.models import Campaign
from app.campaigns.repository import pinned_instruments
from app.campaigns.service import withdraw_candidate
from app.collection.models import Response
from app.core.db import row_id
from app.instruments.models import InstrumentVersion
from app.instruments.service import load_published
from app.missions.models import Mission, ReviewState, Visit
from app.results.compute import RankRowData, ScoreRowData, ScoringInputs
from app.results.inputs import gather_inputs, store_missing_visit_scores
from app.results.service import run_scoring
from app.results.visit_scores import scores_key, visit_scores
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


@pytest.mark.parametrize("packed", [True, False], ids=["packed", "older-row"])
@pytest.mark.parametrize("value, expected", [(5, 100.0), (1, 0.0), (3, 50.0), ("na", None)])
def test_item_scores_follow_the_instrument(
    open_campaign: Campaign,
    registry: Session,
    value: object,
    expected: float | None,
    packed: bool,
) -> None:
    rng = np.random.default_rng(1)
    add_responses(registry, campaign=open_campaign, rng=rng, per_candidate=(1, 1), codes=["69123"])
    response = registry.exec(select(Response)).one()
    assert response.item_scores is not None  # packed when it came in
    response.answers = {**response.answers, "courtesy": value}
    # The packed scores follow the answers (repacked), or are absent (a row stored before
    # they existed): scoring reads the answers then.
    response.item_scores = (
        surveys.pack_item_scores(_survey(registry, open_campaign), response.answers)
        if packed
        else None
    )
    response.excluded = False
    registry.add(response)
    registry.flush()
    inputs = gather_inputs(registry, campaign=open_campaign)
    courtesy = [item.key for item in inputs.survey_items].index("courtesy")
    score = inputs.item_scores[0, courtesy]
    assert (np.isnan(score) and expected is None) or score == expected


def _survey(session: Session, campaign: Campaign) -> surveys.Instrument:
    version = next(
        version
        for _pin, version in pinned_instruments(session, row_id(campaign))
        if version.kind == "survey"
    )
    return load_published(version)


def _set_packed(session: Session, values: dict[uuid.UUID, bytes | None]) -> None:
    table = Response.__table__  # type: ignore[attr-defined]
    for response_id, packed in values.items():
        session.execute(
            sa.update(table).where(table.c.id == response_id).values(item_scores=packed)
        )
    session.flush()


def test_packed_and_older_rows_give_the_same_inputs_bit_for_bit(
    open_campaign: Campaign, registry: Session
) -> None:
    add_responses(
        registry, campaign=open_campaign, rng=np.random.default_rng(7), per_candidate=(25, 40)
    )
    registry.commit()
    responses = registry.exec(select(Response)).all()
    assert all(r.item_scores is not None for r in responses)
    packed = gather_inputs(registry, campaign=open_campaign)
    assert packed.n_responses > 0

    def by_response(inputs: ScoringInputs) -> list[tuple[str, bytes]]:
        # The two reads may give the rows in another order: compare them as sorted lists.
        rows = zip(inputs.response_candidate, inputs.item_scores, strict=True)
        return sorted((inputs.codes[c], scores.tobytes()) for c, scores in rows)

    # Half of the rows lose their packed scores (as rows stored before them), or carry scores
    # of another width (another version's item list): both are read from their answers.
    older = {r.id: None for r in responses[::2]}
    older.update({r.id: b"\x00" * 8 for r in responses[1::7]})
    _set_packed(registry, older)
    mixed = gather_inputs(registry, campaign=open_campaign)
    assert mixed.inputs_sha256 == packed.inputs_sha256
    assert by_response(mixed) == by_response(packed)

    _set_packed(registry, {r.id: None for r in responses})
    unpacked = gather_inputs(registry, campaign=open_campaign)
    assert unpacked.inputs_sha256 == packed.inputs_sha256

    # A packed score that changes changes the inputs' hash.
    instrument = _survey(registry, open_campaign)
    used = next(r for r in responses if not r.excluded)
    changed = dict(used.answers)
    changed["courtesy"] = 1 if changed.get("courtesy") != 1 else 5
    _set_packed(registry, {r.id: r.item_scores for r in responses})
    _set_packed(registry, {used.id: surveys.pack_item_scores(instrument, changed)})
    assert gather_inputs(registry, campaign=open_campaign).inputs_sha256 != packed.inputs_sha256


def test_visits_scored_in_a_worker_process_give_the_same_inputs(
    open_campaign: Campaign, registry: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.results import inputs as inputs_module

    add_visits(registry, campaign=open_campaign, rng=np.random.default_rng(9))
    registry.commit()
    stored = gather_inputs(registry, campaign=open_campaign)
    _set_visit_scores(registry, open_campaign, None)  # as visits approved before they were
    inline = gather_inputs(registry, campaign=open_campaign)
    _assert_same_visits(inline, stored)
    monkeypatch.setattr(inputs_module, "PARALLEL_VISITS", 1)
    worker = gather_inputs(registry, campaign=open_campaign)
    assert worker.inputs_sha256 == inline.inputs_sha256
    np.testing.assert_array_equal(worker.visits.score, inline.visits.score)
    assert worker.visits.items.keys() == inline.visits.items.keys()
    for key, values in inline.visits.items.items():
        np.testing.assert_array_equal(worker.visits.items[key], values)


# --- stored visit scores ------------------------------------------------------------------


def _approved_visits(session: Session, campaign: Campaign) -> list[tuple[Visit, Mission]]:
    rows = session.exec(
        select(Visit, Mission)
        .join(Mission, col(Mission.id) == col(Visit.mission_id))
        .where(Mission.campaign_id == campaign.id, Visit.review_state == ReviewState.approved)
        .order_by(col(Visit.id))
    ).all()
    return [(visit, mission) for visit, mission in rows]


def _set_visit_scores(
    session: Session, campaign: Campaign, scores: bytes | None, key: str | None = None
) -> None:
    """Overwrite the stored scores of the campaign's approved visits (None: remove them)."""
    table = Visit.__table__  # type: ignore[attr-defined]
    ids = [visit.id for visit, _mission in _approved_visits(session, campaign)]
    session.execute(
        sa.update(table).where(table.c.id.in_(ids)).values(scores=scores, scores_key=key)
    )
    session.flush()
    session.expire_all()


def _assert_same_visits(one: ScoringInputs, other: ScoringInputs) -> None:
    assert one.inputs_sha256 == other.inputs_sha256
    assert one.visits.ids == other.visits.ids
    np.testing.assert_array_equal(one.visits.candidate, other.visits.candidate)
    np.testing.assert_array_equal(one.visits.channel, other.visits.channel)
    np.testing.assert_array_equal(one.visits.score, other.visits.score)
    np.testing.assert_array_equal(one.visits.knocked_out, other.visits.knocked_out)
    for name in ("themes", "items"):
        mine, theirs = getattr(one.visits, name), getattr(other.visits, name)
        assert list(mine) == list(theirs)
        for key, values in mine.items():
            np.testing.assert_array_equal(values, theirs[key])


def test_approval_stores_the_visit_scores_with_their_key(
    open_campaign: Campaign, registry: Session
) -> None:
    add_visits(registry, campaign=open_campaign, rng=np.random.default_rng(11), codes=["69123"])
    add_visits(
        registry,
        campaign=open_campaign,
        rng=np.random.default_rng(12),
        codes=["01001"],
        review_state=ReviewState.received,
    )
    registry.commit()
    approved = _approved_visits(registry, open_campaign)
    assert approved
    for visit, mission in approved:  # scored by the review service when it approved them
        version = registry.get(InstrumentVersion, visit.instrument_version_id)
        assert version is not None
        departement = registry.get(Authority, mission.authority_code).departement  # type: ignore[union-attr]
        subdivision = surveys.holiday_subdivision(departement)
        assert visit.scores == visit_scores(
            load_published(version), visit.answers, subdivision=subdivision
        )
        assert visit.scores_key == scores_key(
            version_sha256=version.sha256,
            content_sha256=visit.content_sha256,
            subdivision=subdivision,
        )
    waiting = registry.exec(select(Visit).where(Visit.review_state == ReviewState.received)).all()
    assert waiting and all(visit.scores is None for visit in waiting)


def test_stored_visit_scores_are_read_and_the_rest_scored_from_the_answers(
    open_campaign: Campaign, registry: Session
) -> None:
    add_visits(registry, campaign=open_campaign, rng=np.random.default_rng(13))
    registry.commit()
    stored = gather_inputs(registry, campaign=open_campaign)
    assert len(stored.visits.ids) > 10

    # Missing for some, stale for others (another content, another key): scored at read time,
    # with the same numbers.
    visits = [visit for visit, _mission in _approved_visits(registry, open_campaign)]
    approved_scores = {visit.id: visit.scores for visit in visits}
    assert all(approved_scores.values())
    table = Visit.__table__  # type: ignore[attr-defined]
    for visit in visits[::3]:
        registry.execute(
            sa.update(table).where(table.c.id == visit.id).values(scores=None, scores_key=None)
        )
    for visit in visits[1::3]:
        registry.execute(
            sa.update(table)
            .where(table.c.id == visit.id)
            .values(scores=b"\x00" * len(visit.scores or b""), scores_key="0" * 64)
        )
    registry.flush()
    _assert_same_visits(gather_inputs(registry, campaign=open_campaign), stored)
    _set_visit_scores(registry, open_campaign, None)
    _assert_same_visits(gather_inputs(registry, campaign=open_campaign), stored)

    # The backfill stores them again, as the approval did.
    assert store_missing_visit_scores(registry, campaign_id=row_id(open_campaign)) == len(visits)
    assert store_missing_visit_scores(registry, campaign_id=row_id(open_campaign)) == 0
    registry.expire_all()
    assert {v.id: v.scores for v, _m in _approved_visits(registry, open_campaign)} == (
        approved_scores
    )
    _assert_same_visits(gather_inputs(registry, campaign=open_campaign), stored)

    # A run reads what is stored while its key matches: a forged total is what it sees.
    first = visits[0]
    assert first.scores is not None
    forged = np.frombuffer(first.scores, dtype="<f8").copy()
    forged[0] = 100.0
    registry.execute(sa.update(table).where(table.c.id == first.id).values(scores=forged.tobytes()))
    registry.flush()
    forged_inputs = gather_inputs(registry, campaign=open_campaign)
    position = forged_inputs.visits.ids.index(first.id.hex)
    assert forged_inputs.visits.score[position] == 100.0


def test_a_run_gives_the_same_results_with_and_without_stored_visit_scores(
    open_campaign: Campaign, registry: Session
) -> None:
    rng = np.random.default_rng(17)
    add_responses(registry, campaign=open_campaign, rng=rng, per_candidate=(30, 40))
    add_visits(registry, campaign=open_campaign, rng=rng)
    registry.commit()

    def preview() -> tuple[str, list[ScoreRowData], list[RankRowData]]:
        result = run_scoring(
            registry, campaign=open_campaign, actor=None, preview=True, n_draws=200
        )
        return result.inputs_sha256, result.score_rows, result.rank_rows

    with_stored = preview()
    _set_visit_scores(registry, open_campaign, None)
    without = preview()
    assert with_stored[0] == without[0]
    assert with_stored[1] == without[1]
    assert with_stored[2] == without[2]
