"""What a reviewer reads: answers with the grid's labels, and what changed between revisions."""

from __future__ import annotations

import pytest

import surveys
from app.core.i18n import set_locale
from app.reviews.sheets import (
    NOT_ANSWERED,
    answer_sheet,
    diff_contents,
    format_answer,
    format_timing,
)

GRIDS = surveys.default_instruments()


@pytest.fixture(autouse=True)
def english() -> None:
    set_locale("en")


def test_answers_read_with_labels_and_units() -> None:
    grid = GRIDS["grid-guichet"]
    answers = {"wait": 754, "courtesy": 3, "answer_refused": "no", "answer_correct": 0.5}
    assert format_answer(grid.item("wait"), answers, "en") == "12 min 34 s (754 s)"
    assert format_answer(grid.item("courtesy"), answers, "en") == "Friendly"
    assert format_answer(grid.item("courtesy"), answers, "fr") == "Aimable"
    assert format_answer(grid.item("answer_correct"), answers, "en") == "Partly right"
    assert format_answer(grid.item("signage"), answers, "en") == NOT_ANSWERED
    sheet = answer_sheet(grid, answers)
    assert [line.key for line in sheet] == [item.key for item in grid.items]
    wait = next(line for line in sheet if line.key == "wait")
    assert (wait.section, wait.label, wait.answered) == (
        "Waiting",
        "Waiting time before being served (stopwatch)",
        True,
    )


def test_delays_are_computed_in_working_days() -> None:
    grid = GRIDS["grid-courriel"]
    answers = {"sent_on": "2030-03-01", "ack_received": "yes", "ack_on": "2030-03-05"}
    assert format_answer(grid.item("ack_delay"), answers, "en") == "2 working days"
    assert format_answer(grid.item("answer_delay"), answers, "en") == "never"
    assert format_answer(grid.item("answer_delay"), {}, "en") == NOT_ANSWERED


def test_a_diff_lists_changed_items_with_their_labels_and_moved_delays() -> None:
    grid = GRIDS["grid-courriel"]
    before = {"sent_on": "2030-03-01", "ack_received": "yes", "ack_on": "2030-03-05"}
    after = {**before, "ack_on": "2030-03-12"}
    changes = diff_contents(grid, (before, {}, None), (after, {}, None))
    assert [(c.key, c.before, c.after) for c in changes] == [
        ("ack_on", "05/03/2030", "12/03/2030"),
        ("ack_delay", "2 working days", "7 working days"),
    ]
    assert changes[0].label == "Date of the acknowledgement"
    assert diff_contents(grid, (before, {}, None), (dict(before), {}, None)) == []


def test_a_diff_shows_stopwatch_times() -> None:
    grid = GRIDS["grid-guichet"]
    old = {"wait": ["2030-03-12T08:00:00+00:00", "2030-03-12T08:20:00+00:00"]}
    new = {"wait": {"started_at": "2030-03-12T08:05:00Z", "stopped_at": "2030-03-12T08:20:00Z"}}
    (change,) = diff_contents(grid, ({}, old, None), ({}, new, None))
    assert change.before == "12/03/2030 09:00:00 → 09:20:00 (20 min 00 s)"
    assert change.after == "12/03/2030 09:05:00 → 09:20:00 (15 min 00 s)"
    assert format_timing({"taps": 4}) == '{"taps": 4}'
    assert format_timing({"taps": ["2030-03-12T08:05:00Z"] * 3}) == "3 taps on the counter"
