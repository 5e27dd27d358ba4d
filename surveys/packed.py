"""Packed item scores: a submission's scored items as one small binary value. Pure functions.

A national edition has about a million citizen responses; parsing their stored JSON answers
again at every scoring run took most of the run's time. So each response also stores what
scoring reads from it: the scores 0–100 (:func:`surveys.item_score`) of the instrument's
:func:`packed_items`, in the instrument's item order, as little-endian float64, NaN where the
score is missing ("not applicable", "don't know", unanswered or irrelevant).

float64, not float32: float32 would change scores that are not dyadic fractions, such as a
1–4 scale's 33.333… (``scale1_4``) or a choice's own score, and a packed score must be the
very number the answers give (the scoring inputs' hash and the results must not depend on
whether a row was packed). Nine items take 72 bytes.

Delay items are left out: their score needs the authority's public holidays (working days),
which are not part of a submission; scoring computes them from the answers.

A mystery-shopper visit is scored whole (:func:`surveys.submission_scores`: knock-outs, delays
in working days, node coverage) once its content is final, at approval. Its packed scores
(:func:`pack_submission_scores`) are, in the same float64 format: the total (NaN when it has
none), the knock-out flag (1.0 or 0.0), then the scores of :func:`visit_score_layout`'s themes
and items in the instrument's order, NaN where a score is missing. The layout follows from the
instrument alone; the caller keeps what the scores were computed from (the instrument version,
the content and the holiday subdivision) next to them, and :data:`SUBMISSION_SCORES_FORMAT`
changes whenever :func:`surveys.submission_scores` would compute other numbers, so that stored
scores of an older computation are recognised and computed again.
"""

from __future__ import annotations

import math
import struct
import sys
from array import array
from collections.abc import Mapping, Sequence
from typing import Any

from surveys.schema import Instrument, Item
from surveys.scores import SubmissionScores, item_score

__all__ = [
    "ITEM_SCORE_BYTES",
    "SUBMISSION_SCORES_FORMAT",
    "pack_item_scores",
    "pack_submission_scores",
    "packed_items",
    "packed_length",
    "submission_scores_width",
    "unpack_item_scores",
    "visit_score_layout",
]

ITEM_SCORE_BYTES = 8  # one little-endian float64 per item
# Part of what stored submission scores were computed with: bump it when
# ``surveys.submission_scores`` changes the numbers it gives for the same answers.
SUBMISSION_SCORES_FORMAT = "submission-scores/1"


def packed_items(instrument: Instrument) -> list[Item]:
    """The items a packed value holds, in order: scorable, and scored from the answers alone."""
    return [item for item in instrument.items if item.scorable and item.type != "delay"]


def packed_length(instrument: Instrument) -> int:
    """The byte length of ``instrument``'s packed item scores."""
    return ITEM_SCORE_BYTES * len(packed_items(instrument))


def pack_item_scores(instrument: Instrument, answers: Mapping[str, Any]) -> bytes:
    """The packed scores of :func:`packed_items` for clean (validated) ``answers``.

    Raises ``ValueError`` (from :func:`surveys.item_score`) for a value an item cannot have:
    validate the answers first.
    """
    scores = []
    for item in packed_items(instrument):
        score = item_score(item, answers.get(item.key))
        scores.append(math.nan if score is None else score)
    return struct.pack(f"<{len(scores)}d", *scores)


def unpack_item_scores(blobs: Sequence[bytes], n_items: int) -> array:
    """Packed values (one per submission) as one flat, row-major ``array("d")`` of
    ``len(blobs) × n_items`` native floats: ``np.frombuffer(result).reshape(-1, n_items)``
    makes it a (writable) matrix without a copy. One join for a million responses.

    Raises ``ValueError`` when the values do not hold ``n_items`` scores each.
    """
    joined = b"".join(blobs)
    if len(joined) != len(blobs) * n_items * ITEM_SCORE_BYTES:
        raise ValueError(f"packed item scores do not hold {n_items} scores per submission")
    values = array("d")
    values.frombytes(joined)
    if sys.byteorder != "little":
        values.byteswap()
    return values


def visit_score_layout(instrument: Instrument) -> tuple[list[str], list[str]]:
    """The theme keys and the item keys packed submission scores hold, in order after the
    total and the knock-out flag: every theme, every scorable item (delays included)."""
    themes = [theme.key for theme in instrument.themes]
    items = [item.key for item in instrument.items if item.scorable]
    return themes, items


def submission_scores_width(instrument: Instrument) -> int:
    """How many float64 values :func:`pack_submission_scores` writes for ``instrument``."""
    themes, items = visit_score_layout(instrument)
    return 2 + len(themes) + len(items)


def pack_submission_scores(instrument: Instrument, scores: SubmissionScores) -> bytes:
    """The total, the knock-out flag, the theme and the item scores of ``scores`` (computed
    by :func:`surveys.submission_scores` on ``instrument``), NaN where missing."""
    themes, items = visit_score_layout(instrument)

    def value(score: float | None) -> float:
        return math.nan if score is None else score

    values = [value(scores.total.score), 1.0 if scores.knocked_out else 0.0]
    values += [value(scores.themes[key].score) for key in themes]
    values += [value(scores.items[key]) for key in items]
    return struct.pack(f"<{len(values)}d", *values)
