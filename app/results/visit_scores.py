"""Scoring mystery-shopper visits with ``surveys``: at approval, and at read time for the rest.

A visit's scores are computed once its content is final, when a reviewer approves it
(:func:`app.reviews.service` stores :func:`visit_scores` with its :func:`scores_key`); a
scoring run reads them as they are stored. Visits without valid stored scores (approved
before they existed, or whose key no longer matches: another content, instrument version,
holiday subdivision or :data:`surveys.packed.SUBMISSION_SCORES_FORMAT`) are scored by the run
with :func:`score_visits`, the same function, so both give the same numbers bit for bit.

Kept apart from :mod:`app.results.inputs` so that the worker process a run starts when many
visits need scoring imports only this module and ``surveys`` (not the web app, the database
layer or the statistics): it starts in about a second, while the responses are read.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import sys
from collections.abc import Mapping
from typing import Any

import surveys
from surveys.packed import SUBMISSION_SCORES_FORMAT, pack_submission_scores


def scores_key(*, version_sha256: str, content_sha256: str, subdivision: str | None) -> str:
    """What a visit's stored scores were computed from, as one sha256 hex digest."""
    text = f"{SUBMISSION_SCORES_FORMAT}\n{version_sha256}\n{content_sha256}\n{subdivision or ''}"
    return hashlib.sha256(text.encode()).hexdigest()


def visit_scores(
    instrument: surveys.Instrument, answers: Mapping[str, Any], *, subdivision: str | None
) -> bytes:
    """A visit's packed scores (``surveys.packed.pack_submission_scores``).

    Raises :class:`surveys.InvalidAnswersError` when the answers do not validate.
    """
    result = surveys.submission_scores(instrument, answers, subdivision=subdivision)
    return pack_submission_scores(instrument, result)


def score_visits(
    contents: dict[int, dict[str, Any]], rows: list[tuple[int, str, str | None]]
) -> list[bytes]:
    """Packed scores of visits given as (instrument version id, answers JSON, subdivision).

    Inline for a few visits, in the worker process (:func:`worker_main`) for many.
    """
    instruments = {vid: surveys.instrument_from_dict(content) for vid, content in contents.items()}
    cache: dict[tuple[int, str, str | None], bytes] = {}
    out: list[bytes] = []
    for version_id, text, subdivision in rows:
        key = (version_id, text, subdivision)
        scored = cache.get(key)
        if scored is None:
            scored = visit_scores(
                instruments[version_id], json.loads(text), subdivision=subdivision
            )
            cache[key] = scored
        out.append(scored)
    return out


def worker_main() -> None:
    """Entry point of the worker: pickled (contents, rows) in, pickled scores out."""
    contents, work = pickle.loads(sys.stdin.buffer.read())
    sys.stdout.buffer.write(pickle.dumps(score_visits(contents, work)))
    sys.stdout.buffer.flush()
