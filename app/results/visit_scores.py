"""Scoring approved visits with ``surveys``, inline or in a worker process.

Kept apart from :mod:`app.results.inputs` so that the worker process a national run starts
imports only this module and ``surveys`` (not the web app, the database layer or the
statistics): it starts in about a second, while the responses are read.
"""

from __future__ import annotations

import json
import pickle
import sys
from typing import Any

import surveys

VisitScore = tuple[float | None, bool, dict[str, float], dict[str, float]]


def score_visits(
    contents: dict[int, dict[str, Any]], rows: list[tuple[int, str, str | None]]
) -> list[VisitScore]:
    """Score visits with ``surveys.submission_scores``: (total, knocked out, themes, items).

    Inline for small campaigns, in the worker process (:func:`worker_main`) for large ones.
    """
    instruments = {vid: surveys.instrument_from_dict(content) for vid, content in contents.items()}
    cache: dict[tuple[int, str, str | None], VisitScore] = {}
    out: list[VisitScore] = []
    for version_id, text, subdivision in rows:
        key = (version_id, text, subdivision)
        scored = cache.get(key)
        if scored is None:
            instrument = instruments[version_id]
            result = surveys.submission_scores(
                instrument, json.loads(text), subdivision=subdivision
            )
            scored = (
                result.total.score,
                result.knocked_out,
                {t: n.score for t, n in result.themes.items() if n.score is not None},
                {
                    f"{instrument.key}:{item}": value
                    for item, value in result.items.items()
                    if value is not None
                },
            )
            cache[key] = scored
        out.append(scored)
    return out


def worker_main() -> None:
    """Entry point of the worker: pickled (contents, rows) in, pickled scores out."""
    contents, work = pickle.loads(sys.stdin.buffer.read())
    sys.stdout.buffer.write(pickle.dumps(score_visits(contents, work)))
    sys.stdout.buffer.flush()
