"""A campaign's scoring inputs, read from the database and flattened to arrays in one place.

What goes in (ARCHITECTURE.md, "How scoring runs"):

- the registered candidates (withdrawn ones are left out) with their category;
- the valid citizen responses: those of registered candidates, collected with the pinned
  survey version, and not excluded (responses flagged by the quality checks are stored with
  ``excluded`` set and stay out unless a reviewer reinstates them);
- the **approved** mystery-shopper visits only (``review_state == "approved"``) of the
  campaign's missions; visits received, with issues or rejected never count;
- the pinned instrument versions and the campaign configuration.

Responses are the bulk (a national edition has about a million): they are read in chunks,
with the item scores each response stored when it came in (``Response.item_scores``, packed
by ``surveys.pack_item_scores``: one ``np.frombuffer`` per chunk, no JSON parsed). Rows
without them (stored before they existed) fall back to the answers: only the scored items
are extracted by the database (one JSON array text per response, see
:func:`app.results.repository.answer_values`) and parsed by numpy, never as one Python dict
per response, then scored by ``surveys.item_score`` applied to each distinct answer value of
each item. Both give the same numbers, bit for bit.
Visits are few (tens of thousands) and are scored one by one by ``surveys.submission_scores``
(knock-outs, delays in working days, node coverage).

``inputs_sha256`` is a sha256 over a canonical serialisation: configuration, instrument
versions, candidates, then responses and visits sorted by id with their content hashes and
the flattened values actually used.

The queries are in :mod:`app.results.repository`; the typed inputs (:class:`ScoringInputs`)
are defined by :mod:`app.results.compute`, which takes them.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlmodel import Session

import surveys
from app.campaigns import repository as campaigns_repository
from app.campaigns.models import Campaign
from app.campaigns.schemas import CampaignConfig
from app.campaigns.service import parse_config
from app.core.db import row_id
from app.instruments.models import InstrumentVersion
from app.instruments.service import load_published
from app.results import repository
from app.results.compute import Progress, ScoringInputs, SurveyItem, VisitTable
from app.results.visit_scores import VisitScore, score_visits

INPUTS_FORMAT = "barometre-scoring-inputs/1"
CHUNK_ROWS = 100_000
_STRING_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"')


def _config_json(config: CampaignConfig) -> str:
    return json.dumps(config.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))


def _pinned(session: Session, campaign_id: int) -> list[InstrumentVersion]:
    pins = campaigns_repository.pinned_instruments(session, campaign_id)
    return [version for _, version in pins]


def _decode_chunk(texts: list[str], n_items: int, tokens: dict[str, float]) -> np.ndarray:
    """Parse ``[v1, v2, …]`` JSON arrays of scalar answers into a float matrix.

    String answers become negative codes (registered in ``tokens``), null becomes NaN.
    """
    if not texts:
        return np.empty((0, n_items))
    text = ",".join(texts)
    for token in set(_STRING_TOKEN.findall(text)) - tokens.keys():
        tokens[token] = -2.0 - len(tokens)
    for token, code in tokens.items():
        if token in text:
            text = text.replace(token, repr(code))
    text = text.replace("[", " ").replace("]", " ").replace("null", "nan")
    text = text.replace("true", "nan").replace("false", "nan")
    # numpy's C text parser: ten million numbers in well under a second.
    values = np.fromstring(text, dtype=float, sep=",") if text.strip() else np.empty(0)
    if values.size != len(texts) * n_items:
        raise ValueError("answers could not be flattened (unexpected value in a scored item)")
    return values.reshape(-1, n_items)


def _score_columns(
    instrument: surveys.Instrument, keys: list[str], raw: np.ndarray, tokens: dict[str, float]
) -> np.ndarray:
    """Item scores 0–100 from raw answer codes, one ``surveys.item_score`` per distinct value."""
    decode = {code: json.loads(token) for token, code in tokens.items()}
    scores = np.full(raw.shape, np.nan)
    for j, key in enumerate(keys):
        item = instrument.item(key)
        column = raw[:, j]
        present = ~np.isnan(column)
        values, inverse = np.unique(column[present], return_inverse=True)
        lookup = np.empty(len(values))
        for index, value in enumerate(values):
            answer: Any = decode[value] if value < 0 else value
            if isinstance(answer, float) and answer.is_integer():
                answer = int(answer)
            score = surveys.item_score(item, answer)
            lookup[index] = np.nan if score is None else score
        scores[present, j] = lookup[inverse]
    return scores


def _survey_items(instrument: surveys.Instrument) -> list[SurveyItem]:
    # The packed items, in their order: a response's packed scores are these columns.
    return [
        SurveyItem(key=item.key, weight=float(item.weight), theme=item.theme)
        for item in surveys.packed_items(instrument)
    ]


def _unpacked(blobs: list[bytes], n_items: int) -> np.ndarray:
    """Packed item scores as a (responses × items) matrix, without a copy."""
    values = surveys.unpack_item_scores(blobs, n_items)
    return np.frombuffer(values, dtype=float).reshape(len(blobs), n_items)


def _read_responses(
    session: Session,
    *,
    campaign_id: int,
    survey_version_id: int,
    instrument: surveys.Instrument,
    keys: list[str],
    candidate_index: dict[int, int],
    progress: Progress | None,
    expected: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Candidate index, identity bytes (id + content sha256) and item scores per response.

    The packed item scores are read as stored; the rows without them (older rows) are read
    from their answers and scored here, exactly as :func:`surveys.pack_item_scores` would.
    """
    if progress is not None:
        progress(5, "reading responses")
    packed_bytes = surveys.packed_length(instrument)
    candidates: list[np.ndarray] = []
    # Response id (32 hex) and content sha256 (64 hex): 48 bytes per response once decoded
    # (PostgreSQL writes a uuid with dashes).
    identities: list[str] = []
    scores: list[np.ndarray] = []
    unpacked = 0
    read = 0

    def add(rows: Sequence[Any]) -> None:
        candidates.append(
            np.fromiter((candidate_index[row[0]] for row in rows), np.int32, count=len(rows))
        )
        identities.append("".join([row[1] for row in rows]))

    for chunk in repository.valid_response_item_scores(
        session,
        campaign_id=campaign_id,
        survey_version_id=survey_version_id,
        packed_bytes=packed_bytes,
        chunk_rows=CHUNK_ROWS,
    ):
        blobs = [row[2] for row in chunk]
        if None in blobs:  # older rows: read below, from their answers
            unpacked += len(chunk)
            chunk = [row for row in chunk if row[2] is not None]
            unpacked -= len(chunk)
            blobs = [row[2] for row in chunk]
        add(chunk)
        scores.append(_unpacked(blobs, len(keys)))
        read += len(chunk)
        if progress is not None and expected:
            progress(5 + int(35 * min(1.0, read / expected)), "reading responses")

    if unpacked:
        tokens: dict[str, float] = {}
        raws: list[np.ndarray] = []
        older = repository.valid_response_answers(
            session,
            campaign_id=campaign_id,
            survey_version_id=survey_version_id,
            keys=keys,
            chunk_rows=CHUNK_ROWS,
            unless_packed=packed_bytes,
        )
        while answer_rows := older.fetchmany(CHUNK_ROWS):
            add([(row[0], f"{row[1]}{row[2]}") for row in answer_rows])
            raws.append(_decode_chunk([row[3] for row in answer_rows], len(keys), tokens))
        if progress is not None:
            progress(41, "item scores of the responses")
        scores.append(_score_columns(instrument, keys, np.concatenate(raws), tokens))
    if not candidates:
        return np.empty(0, np.int32), np.empty((0, 48), np.uint8), np.empty((0, len(keys)))
    identity = bytes.fromhex("".join(identities).replace("-", ""))
    return (
        np.concatenate(candidates),
        np.frombuffer(identity, dtype=np.uint8).reshape(-1, 48),
        np.concatenate(scores),
    )


# Above this many approved visits, they are scored in a worker process while the
# responses are read (both take seconds at national scale; two cores overlap them). The
# worker is a plain ``python -c`` child fed through a pipe: no fork of a threaded server,
# and no re-import of the caller's main module as multiprocessing's spawn would do; it
# imports only app.results.visit_scores (and surveys), so it starts in about a second.
PARALLEL_VISITS = 5_000

_ROOT = Path(__file__).resolve().parents[2]


def _start_worker(
    contents: dict[int, dict[str, Any]], work: list[tuple[int, str, str | None]]
) -> subprocess.Popen[bytes]:
    """A fresh interpreter scoring the visits (``python -c``: no main module re-imported)."""
    path = [str(_ROOT), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(part for part in path if part)}
    process = subprocess.Popen(
        [sys.executable, "-c", "from app.results.visit_scores import worker_main; worker_main()"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
    )
    payload = pickle.dumps((contents, work), protocol=pickle.HIGHEST_PROTOCOL)
    stdin = process.stdin
    assert stdin is not None

    def feed() -> None:  # the child reads once its imports are done: do not wait for it
        with stdin:
            stdin.write(payload)

    threading.Thread(target=feed, daemon=True).start()
    return process


def _worker_result(process: subprocess.Popen[bytes]) -> list[VisitScore]:
    assert process.stdout is not None
    with process.stdout:
        payload = process.stdout.read()
    if process.wait() != 0 or not payload:
        raise RuntimeError("the visit-scoring worker failed")
    result: list[VisitScore] = pickle.loads(payload)
    return result


@dataclass
class _PendingVisits:
    rows: list[tuple[int, str, str, int, str]]  # candidate index, id, sha, version id, channel
    version_sha: dict[int, str]
    channels: dict[int, str | None]
    states: dict[str, int]
    worker: subprocess.Popen[bytes] | None
    scores: list[VisitScore] | None


def _start_visits(
    session: Session,
    *,
    campaign_id: int,
    candidate_index: dict[int, int],
    subdivisions: list[str | None],
) -> _PendingVisits:
    """Read the approved visits and start scoring them (inline, or in a worker process)."""
    rows = repository.approved_visit_rows(session, campaign_id=campaign_id)
    states = repository.visit_state_counts(session, campaign_id=campaign_id)
    contents: dict[int, dict[str, Any]] = {}
    version_sha: dict[int, str] = {}
    channels: dict[int, str | None] = {}
    work: list[tuple[int, str, str | None]] = []
    kept: list[tuple[int, str, str, int, str]] = []
    for candidate_id, visit_id, sha, version_id, answers, channel in rows:
        if version_id not in contents:
            version = repository.instrument_version(session, version_id)
            assert version is not None
            contents[version_id] = version.content
            version_sha[version_id] = version.sha256
            channels[version_id] = version.channel
        index = candidate_index[candidate_id]
        work.append((version_id, answers, subdivisions[index]))
        # PostgreSQL writes a uuid with dashes; the hash uses the 32 hex digits.
        kept.append((index, visit_id.replace("-", ""), sha, version_id, channel or ""))
    worker: subprocess.Popen[bytes] | None = None
    scores: list[VisitScore] | None = None
    if len(work) >= PARALLEL_VISITS:
        worker = _start_worker(contents, work)
    else:
        scores = score_visits(contents, work)
    return _PendingVisits(kept, version_sha, channels, states, worker, scores)


def _finish_visits(
    pending: _PendingVisits,
) -> tuple[VisitTable, list[tuple[str, str, str]], dict[str, int]]:
    scores = _worker_result(pending.worker) if pending.worker is not None else pending.scores
    assert scores is not None
    n = len(pending.rows)
    theme_values: dict[str, list[tuple[int, float]]] = {}
    item_values: dict[str, list[tuple[int, float]]] = {}
    for position, (_total, _knocked, themes, items) in enumerate(scores):
        for theme, value in themes.items():
            theme_values.setdefault(theme, []).append((position, value))
        for key, value in items.items():
            item_values.setdefault(key, []).append((position, value))

    def column(pairs: list[tuple[int, float]]) -> np.ndarray:
        out = np.full(n, np.nan)
        if pairs:
            where = np.fromiter((p for p, _ in pairs), dtype=np.intp, count=len(pairs))
            out[where] = np.fromiter((v for _, v in pairs), dtype=float, count=len(pairs))
        return out

    channel = [str(row[4] or pending.channels.get(row[3]) or "") for row in pending.rows]
    table = VisitTable(
        ids=[row[1] for row in pending.rows],
        candidate=np.asarray([row[0] for row in pending.rows], dtype=np.int32),
        channel=np.asarray(channel, dtype=object),
        score=np.asarray(
            [np.nan if total is None else total for total, _k, _t, _i in scores], dtype=float
        ),
        knocked_out=np.asarray([knocked for _t, knocked, _th, _i in scores], dtype=bool),
        themes={theme: column(pairs) for theme, pairs in sorted(theme_values.items())},
        items={key: column(pairs) for key, pairs in sorted(item_values.items())},
    )
    hashed = [(row[1], row[2], pending.version_sha[row[3]]) for row in pending.rows]
    return table, hashed, pending.states


def gather_inputs(
    session: Session, *, campaign: Campaign, progress: Progress | None = None
) -> ScoringInputs:
    """Read and flatten everything a scoring run of ``campaign`` depends on."""
    campaign_id = row_id(campaign)
    config = parse_config(campaign.config)
    if progress is not None:
        progress(2, "reading candidates and instruments")
    candidates = repository.registered_candidates(session, campaign_id=campaign_id)
    codes = [code for _, code, _, _ in candidates]
    categories = [category for _, _, category, _ in candidates]
    candidate_index = {candidate_id: i for i, (candidate_id, _, _, _) in enumerate(candidates)}
    subdivisions = [surveys.holiday_subdivision(dep) for _, _, _, dep in candidates]
    pinned = _pinned(session, campaign_id)
    survey_versions = [version for version in pinned if version.kind == "survey"]
    if not survey_versions:
        raise ValueError("the campaign has no pinned survey")
    survey_version = survey_versions[0]
    survey = load_published(survey_version)
    items = _survey_items(survey)
    keys = [item.key for item in items]
    totals = repository.response_counts(session, campaign_id=campaign_id)
    total_responses = sum(totals.values())
    pending = _start_visits(
        session, campaign_id=campaign_id, candidate_index=candidate_index, subdivisions=subdivisions
    )
    response_candidate, identity, item_scores = _read_responses(
        session,
        campaign_id=campaign_id,
        survey_version_id=row_id(survey_version),
        instrument=survey,
        keys=keys,
        candidate_index=candidate_index,
        progress=progress,
        expected=total_responses,
    )
    if progress is not None:
        progress(42, "scoring approved visits")
    visits, visit_hashes, visit_states = _finish_visits(pending)
    instruments = sorted(
        (
            {"key": version.key, "version": version.version, "sha256": version.sha256}
            for version in pinned
        ),
        key=lambda entry: str(entry["key"]),
    )
    if progress is not None:
        progress(50, "hashing the inputs")
    digest = hashlib.sha256()
    header = {
        "format": INPUTS_FORMAT,
        "campaign": campaign_id,
        "year": campaign.year,
        "config": json.loads(_config_json(config)),
        "instruments": instruments,
        "candidates": [[code, category] for code, category in zip(codes, categories, strict=True)],
        "survey_items": keys,
    }
    digest.update(json.dumps(header, sort_keys=True, separators=(",", ":")).encode())
    # Canonical order: by response id (then content hash), read as big-endian integers.
    # Sort on the first 8 bytes only (one 8 MB column, not the 48 MB of all six words); the
    # bytes hashed are the same either way, and no copy is made that hashing does not need
    # (``hashlib`` reads a C-contiguous array as it is).
    leading_words = np.ascontiguousarray(identity[:, :8]).view(">u8").ravel().astype(np.uint64)
    order = np.argsort(leading_words, kind="stable")
    leading = leading_words[order]
    if len(leading) > 1 and np.any(leading[1:] == leading[:-1]):  # shared first 8 bytes: rare
        words = identity.view(">u8").reshape(-1, 6).astype(np.uint64)
        order = np.lexsort(words.T[::-1])
    digest.update(b"\nresponses\n")
    digest.update(np.ascontiguousarray(identity[order]).data)
    code_array = np.asarray(codes, dtype="S12")
    if len(code_array):
        digest.update(np.ascontiguousarray(code_array[response_candidate[order]]).data)
    digest.update(np.ascontiguousarray(item_scores[order], dtype="<f8").data)
    digest.update(b"\nvisits\n")
    for position in sorted(range(len(visit_hashes)), key=lambda i: visit_hashes[i][0]):
        visit_id, sha, version_sha = visit_hashes[position]
        line = (
            f"{visit_id} {sha} {version_sha} {codes[visits.candidate[position]]} "
            f"{visits.channel[position]} {visits.score[position]!r}\n"
        )
        digest.update(line.encode())
    counts = {
        "responses_total": total_responses,
        "responses_used": int(item_scores.shape[0]),
        "responses_excluded": total_responses - int(item_scores.shape[0]),
        "responses_flagged_excluded": totals.get(True, 0),
        "visits_by_state": visit_states,
        "visits_approved": len(visits.ids),
        "candidates": len(codes),
    }
    return ScoringInputs(
        campaign_id=campaign_id,
        year=campaign.year,
        config=config,
        codes=codes,
        categories=categories,
        survey_key=survey.key,
        survey_items=items,
        themes=[theme.key for theme in survey.themes],
        response_candidate=response_candidate,
        item_scores=item_scores,
        visits=visits,
        instruments=instruments,
        counts=counts,
        inputs_sha256=digest.hexdigest(),
    )
