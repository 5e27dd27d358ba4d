"""Packed item scores: what a stored response keeps for scoring, bit for bit its item scores."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

import surveys
from surveys import Instrument, item_score, pack_item_scores, packed_items


def unpack_item_scores(blobs: list[bytes], n_items: int) -> np.ndarray:
    """As scoring reads them: one matrix over the flat array, no copy."""
    values = surveys.unpack_item_scores(blobs, n_items)
    return np.frombuffer(values, dtype=float).reshape(len(blobs), n_items)


def _answers(instrument: Instrument, rng: random.Random) -> dict[str, object]:
    """Some valid value (or nothing) for every packed item."""
    answers: dict[str, object] = {}
    for item in packed_items(instrument):
        if rng.random() < 0.15:
            continue  # unanswered: packs as NaN
        if item.options:
            answers[item.key] = rng.choice(item.options).value
        else:  # durations and counts
            answers[item.key] = rng.choice([0, 1, 3, 4, 6, 7, 61, 60.5])
    return answers


def _expected(instrument: Instrument, answers: dict[str, object]) -> list[float]:
    scores = [item_score(item, answers.get(item.key)) for item in packed_items(instrument)]
    return [math.nan if score is None else score for score in scores]


def test_packed_scores_are_the_item_scores_in_the_instruments_order(
    kitchen_sink: Instrument, defaults: dict[str, Instrument]
) -> None:
    rng = random.Random(4)
    for instrument in [kitchen_sink, *defaults.values()]:
        keys = [item.key for item in packed_items(instrument)]
        assert keys == [i.key for i in instrument.items if i.scorable and i.type != "delay"]
        rows = [_answers(instrument, rng) for _ in range(200)]
        blobs = [pack_item_scores(instrument, answers) for answers in rows]
        assert {len(blob) for blob in blobs} == {surveys.packed_length(instrument)}
        unpacked = unpack_item_scores(blobs, len(keys))
        assert unpacked.shape == (200, len(keys)) and unpacked.dtype == np.float64
        expected = np.array([_expected(instrument, answers) for answers in rows])
        # Bit for bit, NaN where missing.
        np.testing.assert_array_equal(unpacked, expected)
        unpacked[0, 0] = 1.0  # writable: the caller may use it in place


def test_float64_because_float32_would_change_scores(kitchen_sink: Instrument) -> None:
    # A 1–4 scale scores 100/3 and 200/3: float32 would store other numbers.
    blob = pack_item_scores(kitchen_sink, {"four": 2, "agree": "na", "pick": "meh"})
    row = unpack_item_scores([blob], len(packed_items(kitchen_sink)))[0]
    keys = [item.key for item in packed_items(kitchen_sink)]
    four = row[keys.index("four")]
    assert four == item_score(kitchen_sink.item("four"), 2)
    assert four == pytest.approx(100 / 3) and float(np.float32(four)) != four
    assert math.isnan(row[keys.index("agree")])  # not applicable: missing, never 0
    assert row[keys.index("pick")] == 40.0
    assert "took" not in keys  # delays need the authority's holidays: scored from the answers


def test_unpacking_checks_the_width() -> None:
    blob = pack_item_scores(surveys.default_instruments()["citizen"], {})
    n_items = len(blob) // surveys.ITEM_SCORE_BYTES
    assert np.isnan(unpack_item_scores([blob, blob], n_items)).all()
    with pytest.raises(ValueError):
        unpack_item_scores([blob, blob[:-8]], n_items)
    with pytest.raises(ValueError):
        unpack_item_scores([blob], n_items + 1)
    assert unpack_item_scores([], n_items).shape == (0, n_items)
    assert unpack_item_scores([b"", b""], 0).shape == (2, 0)


def test_a_value_the_item_cannot_have_is_refused(kitchen_sink: Instrument) -> None:
    with pytest.raises(ValueError):
        pack_item_scores(kitchen_sink, {"agree": 6})
