"""Anomaly hints: one pure function, tested rule by rule without a database."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from app.reviews.anomalies import (
    ANOMALY_CODES,
    BURST_MINUTES,
    LATE_AFTER_DAYS,
    MAX_PLAUSIBLE_SECONDS,
    Anomaly,
    VisitFacts,
    stopwatch_span,
    visit_anomalies,
)

VISITED = datetime(2030, 3, 12, 9, 30, tzinfo=UTC)


def _wait(seconds: float, *, measured: float | None = None) -> dict[str, object]:
    stop = VISITED + timedelta(seconds=seconds if measured is None else measured)
    return {"wait": {"started_at": VISITED.isoformat(), "stopped_at": stop.isoformat()}}


CLEAN = VisitFacts(
    channel="guichet",
    window_start=date(2030, 3, 1),
    window_end=date(2030, 3, 31),
    submitted_at=VISITED + timedelta(hours=3),
    visited_at=VISITED,
    answers={"visit_date": "2030-03-12", "wait": 600, "courtesy": 4},
    timings=_wait(600),
    duration_items=("wait",),
    date_items=("visit_date",),
    evidence_count=1,
)


def codes(facts: VisitFacts) -> list[str]:
    return [hint.code for hint in visit_anomalies(facts)]


def test_a_clean_visit_has_no_hint() -> None:
    assert visit_anomalies(CLEAN) == ()


@pytest.mark.parametrize(
    ("visited", "answered", "expected"),
    [
        (datetime(2030, 2, 28, 16, 0, tzinfo=UTC), "2030-03-12", ["outside_window"]),
        (datetime(2030, 4, 1, 8, 0, tzinfo=UTC), "2030-03-12", ["outside_window"]),
        (VISITED, "2030-04-02", ["outside_window"]),  # the grid's date says otherwise
        (datetime(2030, 3, 1, 0, 0, tzinfo=UTC), "2030-03-31", []),  # both ends are inside
    ],
)
def test_outside_the_mission_window(visited: datetime, answered: str, expected: list[str]) -> None:
    facts = replace(
        CLEAN,
        visited_at=visited,
        answers={**CLEAN.answers, "visit_date": answered},
        submitted_at=max(visited, VISITED) + timedelta(hours=1),
        timings={},
    )
    assert codes(facts) == expected


def test_outside_window_names_dates() -> None:
    facts = replace(CLEAN, visited_at=datetime(2030, 4, 3, 10, tzinfo=UTC), timings={})
    (hint,) = visit_anomalies(replace(facts, submitted_at=facts.visited_at))  # type: ignore[arg-type]
    assert hint == Anomaly(
        "outside_window", None, {"date": "2030-04-03", "start": "2030-03-01", "end": "2030-03-31"}
    )


@pytest.mark.parametrize("seconds", [0, -5, MAX_PLAUSIBLE_SECONDS + 1, 5 * 3600])
def test_implausible_stopwatch_answers(seconds: int) -> None:
    facts = replace(CLEAN, answers={**CLEAN.answers, "wait": seconds}, timings={})
    assert codes(facts) == ["implausible_duration"]


def test_plausible_bounds_are_accepted() -> None:
    for seconds in (1, MAX_PLAUSIBLE_SECONDS):
        facts = replace(CLEAN, answers={**CLEAN.answers, "wait": seconds}, timings={})
        assert codes(facts) == []


def test_a_stopwatch_stopped_before_it_started() -> None:
    facts = replace(CLEAN, timings=_wait(600, measured=-30))
    assert codes(facts) == ["implausible_duration"]


def test_timings_that_disagree_with_the_answer() -> None:
    facts = replace(CLEAN, answers={**CLEAN.answers, "wait": 300}, timings=_wait(300, measured=900))
    (hint,) = visit_anomalies(facts)
    assert hint.code == "timing_mismatch"
    assert hint.item == "wait"
    assert hint.values == {"answered": 300, "measured": 900}


def test_small_rounding_between_stopwatch_and_answer_is_fine() -> None:
    # 45 s apart on a 10-minute wait: under both the absolute and the relative tolerance.
    facts = replace(CLEAN, timings=_wait(600, measured=645))
    assert codes(facts) == []
    facts = replace(CLEAN, timings=_wait(600, measured=700))
    assert codes(facts) == ["timing_mismatch"]


def test_stopwatch_shapes() -> None:
    start, stop = VISITED, VISITED + timedelta(seconds=90)
    assert stopwatch_span({"start": start.isoformat(), "end": stop.isoformat()}) == (start, stop)
    assert stopwatch_span([start.isoformat(), stop.isoformat()]) == (start, stop)
    millis = [start.timestamp() * 1000, stop.timestamp() * 1000]
    assert stopwatch_span(millis) == (start, stop)
    assert stopwatch_span({"count": 4}) is None
    assert stopwatch_span({"started_at": "not a time", "stopped_at": 3}) is None


def test_missing_proof_of_a_counter_visit_only() -> None:
    assert codes(replace(CLEAN, evidence_count=0)) == ["missing_proof"]
    phone = replace(
        CLEAN,
        channel="telephone",
        evidence_count=0,
        answers={"call_date": "2030-03-12", "rings": 3},
        duration_items=(),
        timings={},
    )
    assert codes(phone) == []
    # An item that asks for its own proof is checked against the proofs tied to it.
    asked = replace(phone, proof_items=("rings",))
    assert [(h.code, h.item) for h in visit_anomalies(asked)] == [("missing_proof", "rings")]
    assert codes(replace(asked, evidence_count=1, evidence_items=("rings",))) == []


def test_late_submission_counts_from_the_last_observed_date() -> None:
    in_time = replace(CLEAN, submitted_at=VISITED + timedelta(days=LATE_AFTER_DAYS))
    assert codes(in_time) == []
    late = replace(CLEAN, submitted_at=VISITED + timedelta(days=LATE_AFTER_DAYS + 2))
    (hint,) = visit_anomalies(late)
    assert hint.code == "late_submission"
    assert hint.values["days"] == LATE_AFTER_DAYS + 2
    # An e-mail test is sent at the end of the wait: counted from the answer's date.
    email = replace(
        CLEAN,
        channel="courriel",
        visited_at=VISITED,
        answers={"sent_on": "2030-03-12", "answer_received": "yes", "answer_on": "2030-03-30"},
        date_items=("sent_on", "answer_on"),
        duration_items=(),
        timings={},
        submitted_at=datetime(2030, 4, 2, tzinfo=UTC),
    )
    assert codes(email) == []
    # No answer ever came: the grid is filled at the end of the observation period.
    never = replace(
        email,
        answers={"sent_on": "2030-03-12", "answer_received": "no"},
        submitted_at=datetime(2030, 5, 10, tzinfo=UTC),
    )
    assert codes(never) == []


def test_burst_of_visits_by_the_same_shopper() -> None:
    close = [VISITED + timedelta(minutes=4), VISITED - timedelta(minutes=BURST_MINUTES)]
    (hint,) = visit_anomalies(replace(CLEAN, other_visits_of_shopper=close))
    assert hint == Anomaly("burst", None, {"count": 3, "minutes": BURST_MINUTES})
    one_close = [VISITED + timedelta(minutes=4), VISITED + timedelta(hours=2)]
    assert codes(replace(CLEAN, other_visits_of_shopper=one_close)) == []


def test_hints_come_in_a_stable_order() -> None:
    facts = replace(
        CLEAN,
        visited_at=datetime(2030, 4, 5, 10, tzinfo=UTC),
        submitted_at=datetime(2030, 4, 30, tzinfo=UTC),
        answers={**CLEAN.answers, "wait": 0},
        evidence_count=0,
        timings={},
    )
    assert codes(facts) == [
        "outside_window",
        "implausible_duration",
        "missing_proof",
        "late_submission",
    ]
    assert set(codes(facts)) <= set(ANOMALY_CODES)


def test_ring_counter_taps_that_disagree_with_the_count() -> None:
    call = replace(
        CLEAN,
        channel="telephone",
        answers={"call_date": "2030-03-12", "rings": 4},
        duration_items=(),
        count_items=("rings",),
        timings={"rings": {"taps": ["2030-03-12T09:30:00Z"] * 4}},
        evidence_count=0,
    )
    assert codes(call) == []
    tapped_twice = replace(call, timings={"rings": {"taps": ["2030-03-12T09:30:00Z"] * 2}})
    (hint,) = visit_anomalies(tapped_twice)
    assert (hint.code, hint.item, hint.values) == (
        "timing_mismatch",
        "rings",
        {"answered": 4, "measured": 2, "unit": "taps"},
    )
    # A count typed by hand (no taps) is not compared.
    assert codes(replace(call, timings={})) == []
