"""Item scores (METHODOLOGY step 1) and a submission's node scores (step 2)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from surveys import (
    NEVER,
    Instrument,
    InvalidAnswersError,
    instrument_from_yaml,
    item_score,
    submission_scores,
)


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("agree", 1, 0.0),
        ("agree", 2, 25.0),
        ("agree", 3, 50.0),
        ("agree", 4, 75.0),
        ("agree", 5, 100.0),
        ("agree", "na", None),  # not applicable is missing, never 0
        ("four", 1, 0.0),
        ("four", 2, 100 / 3),
        ("four", 3, 200 / 3),
        ("four", 4, 100.0),
        ("ten", 0, 0.0),
        ("ten", 7, 70.0),
        ("ten", 10, 100.0),
        ("mood", 1, 0.0),
        ("mood", 2, 50.0),
        ("mood", 3, 100.0),
        ("yn", "yes", 100.0),
        ("yn", "no", 0.0),
        ("yn", "na", None),
        ("ynd", "yes", 100.0),
        ("ynd", "no", 0.0),
        ("ynd", "dk", None),  # don't know is missing
        ("grade", 0, 0.0),
        ("grade", 0.5, 50.0),
        ("grade", 1, 100.0),
        ("pick", "good", 100.0),
        ("pick", "meh", 40.0),
        ("pick", "skip", None),
        ("rings", 0, 100.0),
        ("rings", 3, 100.0),  # at the threshold: full credit
        ("rings", 4, 50.0),
        ("rings", 6, 50.0),  # at the second threshold: partial credit
        ("rings", 7, 0.0),
        ("wait", 60.5, 100.0),
        ("wait", 61, 0.0),  # no second threshold: 0 beyond the first
        ("took", 5, 100.0),
        ("took", 10, 50.0),
        ("took", 11, 0.0),
        ("took", NEVER, 0.0),  # no answer ever came
        ("agree", None, None),
        ("many", ["a"], None),  # not scored
        ("words", "hi", None),
        ("sent", "2024-01-01", None),
    ],
)
def test_item_scores(kitchen_sink: Instrument, key: str, value: object, expected: float) -> None:
    score = item_score(kitchen_sink.item(key), value)
    if expected is None:
        assert score is None
    else:
        assert score == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(
    ("key", "value"),
    [("agree", 6), ("agree", True), ("yn", "maybe"), ("rings", -1), ("rings", "3"), ("took", "x")],
)
def test_item_score_refuses_impossible_values(
    kitchen_sink: Instrument, key: str, value: object
) -> None:
    with pytest.raises(ValueError):
        item_score(kitchen_sink.item(key), value)


TINY = """
key: tiny
version: "1"
kind: grid
channel: site
title: {fr: "Petit", en: "Tiny"}
themes:
  - {key: t1, label: {fr: "Un", en: "One"}}
sections:
  - key: s1
    title: {fr: "A", en: "A"}
    items:
      - {key: a, type: yes_no, weight: 10, theme: t1, label: {fr: "a", en: "a"}}
      - {key: b, type: likert5, not_applicable: true, weight: 30, label: {fr: "b", en: "b"}}
  - key: s2
    title: {fr: "B", en: "B"}
    items:
      - {key: c, type: graded, weight: 60, theme: t1, label: {fr: "c", en: "c"}}
"""


@pytest.fixture(scope="module")
def tiny() -> Instrument:
    return instrument_from_yaml(TINY)


def test_weights_are_renormalised_over_present_items(tiny: Instrument) -> None:
    scores = submission_scores(tiny, {"a": "yes", "b": "na", "c": 0.5})
    # b is not applicable: (10·100 + 60·50) / 70
    assert scores.total.score == pytest.approx(4000 / 70)
    assert scores.total.coverage == pytest.approx(0.7)
    assert scores.total.weight == 100
    assert scores.sections["s1"].score is None  # 10 of its 40 present
    assert scores.sections["s1"].coverage == 0.25
    assert scores.sections["s2"].score == 50
    assert scores.themes["t1"].score == pytest.approx((10 * 100 + 60 * 50) / 70)
    assert scores.items == {"a": 100.0, "b": None, "c": 50.0}
    assert scores.channel == "site" and scores.kind == "grid" and scores.knockouts == ()


def test_coverage_floor_is_half_the_weight(tiny: Instrument) -> None:
    under = submission_scores(tiny, {"a": "no", "b": 5})  # 40 % present
    assert under.total.score is None and under.total.coverage == pytest.approx(0.4)
    assert under.sections["s1"].score == pytest.approx(75.0)  # s1 is fully present
    assert under.sections["s2"].score is None
    assert under.themes["t1"].score is None  # 10 of 70
    at = instrument_from_yaml(
        TINY.replace("weight: 30", "weight: 40").replace("weight: 60", "weight: 50")
    )
    exactly_half = submission_scores(at, {"a": "yes", "b": 1})  # 50 of 100
    assert exactly_half.total.score == pytest.approx((10 * 100 + 40 * 0) / 50)
    assert submission_scores(tiny, {}).total.score is None


def test_knockout_sets_the_channel_score_to_zero(defaults: dict[str, Instrument]) -> None:
    phone = defaults["grid-telephone"]
    answers = {
        "call_date": "2024-06-03",
        "number_found": "yes",
        "connected": "no",
        "out_of_hours_message": "yes",
    }
    scores = submission_scores(phone, answers)
    assert scores.knockouts == ("connected",) and scores.knocked_out
    assert scores.total.score == 0
    assert scores.sections["reach"].score == pytest.approx(100 / 3)  # left as measured
    connected = {
        **answers,
        "connected": "yes",
        "rings": 4,
        "greeting": "yes",
        "transfer": "one",
        "answer_correct": 1,
        "courtesy": 4,
    }
    assert submission_scores(phone, connected).total.score == 100


def test_refused_answer_is_a_knockout(defaults: dict[str, Instrument]) -> None:
    visit = {
        "visit_date": "2024-06-03",
        "hours_match_website": "yes",
        "signage": "yes",
        "step_free": "yes",
        "wait": 600,
        "courtesy": 4,
        "agent_identifiable": "yes",
        "answer_refused": "yes",
        "clean_confidential": "yes",
    }
    scores = submission_scores(defaults["grid-guichet"], visit)
    assert scores.knockouts == ("answer_refused",) and scores.total.score == 0
    answered = {**visit, "answer_refused": "no", "answer_correct": 0.5, "wait": 1000}
    scores = submission_scores(defaults["grid-guichet"], answered)
    # everything full except the wait (half: 15 < 16 min 40 s ≤ 20 min) and the answer (½)
    assert scores.total.score == pytest.approx(100 - 20 * 0.5 - 25 * 0.5)


def _email(**dates: str) -> dict[str, str]:
    answers = {"contact_found": "yes", "sent_on": "2024-04-26", "ack_received": "no"}
    if "answer_on" in dates:
        answers |= {
            "answer_received": "yes",
            "answer_on": dates["answer_on"],
            "answer_correct": "1",
            "agent_named": "yes",
            "clarity": "4",
        }
    else:
        answers["answer_received"] = "no"
    return answers


def test_email_delays_and_the_day_30_knockout(defaults: dict[str, Instrument]) -> None:
    grid = defaults["grid-courriel"]
    never = submission_scores(grid, _email())
    assert never.delays == {"ack_delay": NEVER, "answer_delay": NEVER}
    assert never.items["answer_delay"] == 0 and never.knockouts == ("answer_delay",)
    assert never.total.score == 0
    # sent Friday 26 April 2024; 1 and 8 May are holidays, so Friday 3 May is working day 4
    quick = submission_scores(grid, _email(answer_on="2024-05-03"))
    assert quick.delays["answer_delay"] == 4 and quick.items["answer_delay"] == 100
    assert quick.items["ack_delay"] == 0  # no acknowledgement ever came
    assert quick.total.score == pytest.approx(100 - 15)
    # counted by hand: working day 30 is Thursday 13 June 2024 (holidays 1, 8, 9 and 20 May)
    day_30 = submission_scores(grid, _email(answer_on="2024-06-13"))
    assert day_30.delays["answer_delay"] == 30 and day_30.knockouts == ()
    day_31 = submission_scores(grid, _email(answer_on="2024-06-14"))
    assert day_31.knockouts == ("answer_delay",) and day_31.total.score == 0


def test_letters_knock_out_after_two_calendar_months(defaults: dict[str, Instrument]) -> None:
    grid = defaults["grid-courrier"]
    base = {"sent_on": "2024-01-31", "ack_received": "no", "answer_received": "yes"}
    details = {"agent_named": "yes", "answer_correct": 1, "clarity": 3}
    in_time = submission_scores(grid, {**base, **details, "answer_on": "2024-03-31"})
    assert in_time.knockouts == ()  # 31 January + 2 months = 31 March
    late = submission_scores(grid, {**base, **details, "answer_on": "2024-04-01"})
    assert late.knockouts == ("answer_delay",) and late.total.score == 0


def test_calendar_day_knockout(kitchen_sink: Instrument) -> None:
    answers = {"channel": "guichet", "yn": "yes", "many": ["a"], "sent": "2024-01-01"}
    assert submission_scores(kitchen_sink, answers).knockouts == ("took",)  # never received
    assert submission_scores(kitchen_sink, {**answers, "got": "2024-02-15"}).knockouts == ()
    late = submission_scores(kitchen_sink, {**answers, "got": "2024-02-16"})  # 46 days
    assert late.knockouts == ("took",)


def test_knockouts_of_choices(kitchen_sink: Instrument) -> None:
    answers = {"channel": "guichet", "yn": "yes", "sent": "2024-01-01", "got": "2024-01-02"}
    assert submission_scores(kitchen_sink, {**answers, "many": ["a", "bad"]}).knockouts == ("many",)
    assert submission_scores(kitchen_sink, {**answers, "many": ["a"], "grade": 0}).knockouts == (
        "grade",
    )
    counted = submission_scores(kitchen_sink, {**answers, "many": ["a"], "rings": 21})
    assert counted.knockouts == ("rings",)
    assert submission_scores(kitchen_sink, {**answers, "many": ["a"], "rings": 20}).knockouts == ()


def test_social_network_without_answer(defaults: dict[str, Instrument]) -> None:
    answers = {"network": "facebook", "sent_on": "2024-06-03", "answer_received": "no"}
    scores = submission_scores(defaults["grid-reseaux"], answers)
    assert scores.total.score == 0 and scores.knockouts == ()
    assert scores.delays == {"answer_delay": NEVER}


def test_citizen_satisfaction_index(defaults: dict[str, Instrument]) -> None:
    citizen = defaults["citizen"]
    answers = {
        "channel": "courriel",
        "overall": 1,
        "satisfied": 5,
        "trust": 4,
        "effective": 3,
        "ease": 2,
        "efficiency": 1,
        "equity": "na",
        "reached": "yes",
        "age_band": "no_answer",
    }
    scores = submission_scores(citizen, answers)
    assert scores.channel == "courriel"
    assert scores.total.score == pytest.approx(50.0)  # mean of 100, 75, 50, 25, 0
    assert scores.total.coverage == pytest.approx(5 / 9)
    assert scores.items["overall"] == 0  # recorded, not in the index
    assert scores.themes["outcome"].score == pytest.approx(75.0)
    assert scores.themes["relationship"].score is None
    four = {key: value for key, value in answers.items() if key != "efficiency"}
    assert submission_scores(citizen, four).total.score is None  # 4 of 9 answered


def test_regional_holidays_change_delays(defaults: dict[str, Instrument]) -> None:
    grid = defaults["grid-reseaux"]
    # Thursday 28 March 2024 → Tuesday 2 April: Good Friday is a holiday in Alsace-Moselle only
    answers = {
        "network": "x",
        "sent_on": "2024-03-28",
        "answer_received": "yes",
        "answer_on": "2024-04-02",
        "answer_correct": 1,
    }
    assert submission_scores(grid, answers).delays == {"answer_delay": 2}
    assert submission_scores(grid, answers, subdivision="6AE").delays == {"answer_delay": 1}


def test_invalid_answers_are_not_scored(tiny: Instrument) -> None:
    with pytest.raises(InvalidAnswersError) as caught:
        submission_scores(tiny, {"a": "maybe", "zz": 1})
    assert {error.item for error in caught.value.errors} == {"a", "zz"}


def test_scores_are_frozen(tiny: Instrument) -> None:
    scores = submission_scores(tiny, {"a": "yes"})
    with pytest.raises(ValidationError):
        scores.total = scores.total  # type: ignore[misc]
