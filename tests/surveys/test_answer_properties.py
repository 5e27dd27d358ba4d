"""Property tests: random answers never crash validation, invalid answers get per-item errors,
valid answers give scores within 0–100. Run on every default definition and the kitchen sink."""

from __future__ import annotations

import datetime as dt
import math
import string
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import surveys
from surveys import Instrument, Item, item_score, submission_scores, validate_answers

KITCHEN_SINK = Path(__file__).parent / "fixtures" / "kitchen-sink.yaml"

INSTRUMENTS: dict[str, Instrument] = {
    **surveys.default_instruments(),
    "kitchen-sink": surveys.load_instrument(KITCHEN_SINK),
}
KEYS = sorted(INSTRUMENTS)

PROPERTY = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**12), max_value=10**12)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
    | st.sampled_from(["yes", "no", "na", "dk", "2024-05-02", "2024-02-30", "1", "0.5", "a b"])
    | st.dates()
)
anything = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)


@PROPERTY
@given(st.sampled_from(KEYS), st.data())
def test_random_answers_never_crash(key: str, data: st.DataObject) -> None:
    instrument = INSTRUMENTS[key]
    item_keys = [item.key for item in instrument.items]
    answer_keys = st.sampled_from(item_keys) | st.text(max_size=8) | st.integers()
    answers = data.draw(st.dictionaries(answer_keys, anything, max_size=len(item_keys) + 2))
    result = validate_answers(instrument, answers)
    known = set(item_keys)
    for error in result.errors:
        assert error.code and error.message
        assert error.item in known or error.code == "unknown_item"
    assert set(result.answers) <= set(result.relevant)
    assert set(result.dropped).isdisjoint(result.answers)
    # clean answers are a fixed point: only "required" may remain to complain about
    again = validate_answers(instrument, result.answers)
    assert again.answers == result.answers
    assert {error.code for error in again.errors} <= {"required"}


def _delay_ends(instrument: Instrument) -> dict[str, str]:
    return {
        item.end: item.start
        for item in instrument.items
        if item.type == "delay"
        if item.end and item.start
    }


def _valid_value(
    data: st.DataObject, item: Item, answers: dict[str, Any], ends: dict[str, str]
) -> Any:
    kind = item.type
    if kind == "choice_many":
        values = [choice.value for choice in item.options]
        return data.draw(st.lists(st.sampled_from(values), min_size=1, unique=True))
    if item.options:
        return data.draw(st.sampled_from([choice.value for choice in item.options]))
    if kind == "count":
        low = int(item.min or 0)
        high = int(item.max if item.max is not None else 1000)
        return data.draw(st.integers(min_value=low, max_value=high))
    if kind == "duration":
        high = item.max if item.max is not None else 100_000
        return data.draw(
            st.floats(min_value=item.min or 0, max_value=high) | st.integers(0, int(high))
        )
    if kind == "date":
        start = answers.get(ends.get(item.key, ""))
        low = dt.date.fromisoformat(start) if start else dt.date(2023, 1, 1)
        day = data.draw(st.dates(min_value=low, max_value=low + dt.timedelta(days=120)))
        return day.isoformat()
    if kind == "text":
        return data.draw(st.text(min_size=1, max_size=min(item.text_max_length, 60)))
    raise AssertionError(kind)


def _draw_valid(data: st.DataObject, instrument: Instrument) -> dict[str, Any]:
    """Valid answers, drawn item by item so that skip logic sees the earlier answers."""
    answers: dict[str, Any] = {}
    ends = _delay_ends(instrument)
    for section in instrument.sections:
        expression = section.relevant_expression
        if expression is not None and not expression.evaluate(answers):
            continue
        for item in section.items:
            relevant = item.relevant_expression
            if not item.answerable or (relevant is not None and not relevant.evaluate(answers)):
                continue
            if not item.required and data.draw(st.integers(0, 4)) == 0:
                continue  # leave some optional items unanswered
            value = _valid_value(data, item, answers, ends)
            constraint = item.constraint_expression
            if constraint is not None and not constraint.evaluate(answers, value):
                assume(not item.required)
                continue
            if isinstance(value, str) and value.strip() == "":
                assume(not item.required)
                continue
            answers[item.key] = value
    return answers


@PROPERTY
@given(st.sampled_from(KEYS), st.data())
def test_valid_answers_score_within_0_and_100(key: str, data: st.DataObject) -> None:
    instrument = INSTRUMENTS[key]
    answers = _draw_valid(data, instrument)
    result = validate_answers(instrument, answers)
    assert result.ok, result.errors
    scores = submission_scores(instrument, answers)
    for item_key, score in scores.items.items():
        assert score is None or 0 <= score <= 100, (item_key, score)
    nodes = [scores.total, *scores.sections.values(), *scores.themes.values()]
    for node in nodes:
        assert 0 <= node.coverage <= 1 + 1e-12
        assert node.score is None or 0 <= node.score <= 100 + 1e-9
        if node is not scores.total or not scores.knockouts:
            assert node.score is None or node.coverage >= 0.5 - 1e-12
    if scores.knockouts:
        assert scores.total.score == 0  # whatever the coverage
    for item_key, value in result.answers.items():
        item = instrument.item(item_key)
        score = item_score(item, value)
        assert score is None or (0 <= score <= 100 and not math.isnan(score))


def _invalid_value(item: Item) -> st.SearchStrategy[Any]:
    kind = item.type
    garbage = st.sampled_from([["x"], {"v": 1}]) if kind != "choice_many" else st.just({"v": 1})
    if kind in ("count", "duration"):
        high = item.max if item.max is not None else None
        bad = st.integers(max_value=-1) | st.sampled_from(["abc", float("nan"), True])
        if high is not None:
            bad |= st.integers(min_value=int(high) + 1, max_value=int(high) + 1000)
        if kind == "count":
            bad |= st.just(2.5)
        return bad | garbage
    if kind == "date":
        return st.sampled_from(["2024-02-30", "yesterday", "02/05/2024", 20240502]) | garbage
    if kind == "text":
        return st.text(
            min_size=item.text_max_length + 1, max_size=item.text_max_length + 20
        ) | st.just(42)
    if kind == "choice_many":
        return st.just(["definitely-not-a-choice"]) | garbage
    # closed single answers
    values = {str(choice.value) for choice in item.options}
    words = st.text(alphabet=string.ascii_letters + "é ", min_size=1, max_size=12)
    return (
        words.filter(lambda text: text.strip() not in values)
        | st.integers(min_value=11, max_value=10**6)
        | garbage
    )


@PROPERTY
@given(st.sampled_from(KEYS), st.data())
def test_invalid_answers_get_per_item_errors(key: str, data: st.DataObject) -> None:
    instrument = INSTRUMENTS[key]
    answers = _draw_valid(data, instrument)
    relevant = [item for item in surveys.relevant_items(instrument, answers) if item.answerable]
    target = data.draw(st.sampled_from(relevant))
    bad = data.draw(_invalid_value(target))
    if isinstance(bad, str):
        assume(bad.strip())  # an empty text is "no answer", not an invalid one
    result = validate_answers(instrument, {**answers, target.key: bad})
    assert not result.ok
    codes = {error.code for error in result.errors if error.item == target.key}
    assert codes, result.errors
    assert target.key not in result.answers
    with pytest.raises(surveys.InvalidAnswersError):
        submission_scores(instrument, {**answers, target.key: bad})
