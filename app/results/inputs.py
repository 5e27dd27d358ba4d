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
in one scan of the campaign's responses that also gives the counts (total, flagged), with the
item scores each response stored when it came in (``Response.item_scores``, packed by
``surveys.pack_item_scores``: one ``np.frombuffer`` per chunk, no JSON parsed). Rows
without them (stored before they existed) fall back to the answers: only the scored items
are extracted by the database (one JSON array text per response, see
:func:`app.results.repository.answer_values`) and parsed by numpy, never as one Python dict
per response, then scored by ``surveys.item_score`` applied to each distinct answer value of
each item. Both give the same numbers, bit for bit.

Visits are scored whole (knock-outs, delays in working days, node coverage) when a reviewer
approves them (:func:`store_visit_scores`, called by the review service), and a run reads
these packed scores (``Visit.scores``) as stored. A visit whose stored scores are missing
(approved before they existed, or written around the review service) or stale (their
``scores_key`` no longer matches its content, instrument version, holiday subdivision or the
scoring format) is scored here from its answers by the same function
(:mod:`app.results.visit_scores`), in a worker process when there are many: the results are
the same either way. ``barometre store-visit-scores`` fills them in for visits
approved before they were stored.

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
from operator import itemgetter
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
from app.missions.models import Visit
from app.results import repository
from app.results.compute import Progress, ScoringInputs, SurveyItem, VisitTable
from app.results.visit_scores import score_visits, scores_key, visit_scores
from surveys.packed import submission_scores_width, visit_score_layout

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


def _pick(values: Sequence[Any], positions: list[int]) -> tuple[Any, ...]:
    """``values`` at ``positions`` (at least one), picked in C."""
    if len(positions) == 1:
        return (values[positions[0]],)
    picked: tuple[Any, ...] = itemgetter(*positions)(values)
    return picked


@dataclass
class _Responses:
    candidate: np.ndarray  # index into the candidates, one per response used
    identity: np.ndarray  # (responses × 48) uint8: id then content sha256
    item_scores: np.ndarray  # (responses × items)
    total: int  # responses of the campaign
    flagged_excluded: int  # of them, excluded by the quality checks


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
) -> _Responses:
    """Candidate index, identity bytes (id + content sha256) and item scores per response
    used, with the campaign's counts, from one scan of its responses.

    The packed item scores are read as stored; the rows without them (older rows) are read
    from their answers and scored here, exactly as :func:`surveys.pack_item_scores` would.
    """
    if progress is not None:
        progress(5, "reading responses")
    packed_bytes = surveys.packed_length(instrument)
    # Candidate id → candidate index through one array (0: not a registered candidate).
    lookup = np.full(max(candidate_index, default=0) + 1, -1, dtype=np.int32)
    for candidate_id, position in candidate_index.items():
        lookup[candidate_id] = position
    candidates: list[np.ndarray] = []
    # Response id (32 hex) and content sha256 (64 hex): 48 bytes per response once decoded
    # (PostgreSQL writes a uuid with dashes).
    identities: list[str] = []
    scores: list[np.ndarray] = []
    total = flagged = unpacked = 0

    for chunk in repository.campaign_response_item_scores(
        session,
        campaign_id=campaign_id,
        survey_version_id=survey_version_id,
        packed_bytes=packed_bytes,
        chunk_rows=CHUNK_ROWS,
    ):
        # Columns, not rows, each taken in C (``zip(*chunk)`` would make an iterator per
        # row: a million tracked objects, and the collector's passes over the whole heap).
        candidate_ids, excluded, use, identity, blobs = (
            list(map(itemgetter(column), chunk)) for column in range(5)
        )
        n = len(chunk)
        total += n
        flagged += int(np.count_nonzero(np.fromiter(excluded, dtype=bool, count=n)))
        uses = np.fromiter(use, dtype=np.int8, count=n)
        packed = uses == 1
        unpacked += int(np.count_nonzero(uses == 2))
        kept = np.flatnonzero(packed).tolist()
        if len(kept) == n:
            candidates.append(lookup[np.fromiter(candidate_ids, dtype=np.intp, count=n)])
            identities.append("".join(identity))
            scores.append(_unpacked(list(blobs), len(keys)))
        elif kept:  # unused rows and older rows (read below, from their answers) left out
            candidates.append(
                lookup[np.fromiter(_pick(candidate_ids, kept), dtype=np.intp, count=len(kept))]
            )
            identities.append("".join(_pick(identity, kept)))
            scores.append(_unpacked(list(_pick(blobs, kept)), len(keys)))
        if progress is not None:
            progress(5 + int(35 * min(1.0, total / max(expected, 1))), "reading responses")

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
            candidates.append(
                np.fromiter(
                    (candidate_index[row[0]] for row in answer_rows), np.int32, len(answer_rows)
                )
            )
            identities.append("".join([f"{row[1]}{row[2]}" for row in answer_rows]))
            raws.append(_decode_chunk([row[3] for row in answer_rows], len(keys), tokens))
        if progress is not None:
            progress(41, "item scores of the responses")
        scores.append(_score_columns(instrument, keys, np.concatenate(raws), tokens))
    if not candidates:
        candidates.append(np.empty(0, np.int32))
        scores.append(np.empty((0, len(keys))))
    identity_bytes = bytes.fromhex("".join(identities).replace("-", ""))
    return _Responses(
        candidate=np.concatenate(candidates).astype(np.int32, copy=False),
        identity=np.frombuffer(identity_bytes, dtype=np.uint8).reshape(-1, 48),
        item_scores=np.concatenate(scores),
        total=total,
        flagged_excluded=flagged,
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


def _worker_result(process: subprocess.Popen[bytes]) -> list[bytes]:
    assert process.stdout is not None
    with process.stdout:
        payload = process.stdout.read()
    if process.wait() != 0 or not payload:
        raise RuntimeError("the visit-scoring worker failed")
    result: list[bytes] = pickle.loads(payload)
    return result


@dataclass(frozen=True)
class _Grid:
    """A pinned grid version as the visit scores use it."""

    key: str
    sha256: str
    channel: str | None
    themes: list[str]
    items: list[str]  # "grid-key:item"
    width: int  # float64 values in a visit's packed scores


def _grid(version: InstrumentVersion) -> _Grid:
    instrument = load_published(version)
    themes, items = visit_score_layout(instrument)
    return _Grid(
        key=instrument.key,
        sha256=version.sha256,
        channel=version.channel,
        themes=themes,
        items=[f"{instrument.key}:{item}" for item in items],
        width=submission_scores_width(instrument),
    )


@dataclass
class _PendingVisits:
    rows: list[tuple[int, str, str, int, str]]  # candidate index, id, sha, version id, channel
    grids: dict[int, _Grid]
    blobs: list[bytes | None]  # packed scores; None until scored here
    stale: list[int]  # positions of the visits scored here
    states: dict[str, int]
    worker: subprocess.Popen[bytes] | None
    scores: list[bytes] | None


def _start_visits(
    session: Session,
    *,
    campaign_id: int,
    candidate_index: dict[int, int],
    subdivisions: list[str | None],
) -> _PendingVisits:
    """Read the approved visits with their stored scores, and start scoring those whose
    stored scores are missing or stale (inline, or in a worker process)."""
    rows = repository.approved_visit_rows(session, campaign_id=campaign_id)
    states = repository.visit_state_counts(session, campaign_id=campaign_id)
    grids: dict[int, _Grid] = {}
    kept: list[tuple[int, str, str, int, str]] = []
    blobs: list[bytes | None] = []
    stale: list[int] = []
    for candidate_id, visit_id, sha, version_id, channel, stored, stored_key in rows:
        grid = grids.get(version_id)
        if grid is None:
            version = repository.instrument_version(session, version_id)
            assert version is not None
            grid = grids[version_id] = _grid(version)
        index = candidate_index[candidate_id]
        key = scores_key(
            version_sha256=grid.sha256, content_sha256=sha, subdivision=subdivisions[index]
        )
        if stored is not None and stored_key == key and len(stored) == 8 * grid.width:
            blobs.append(bytes(stored))
        else:
            stale.append(len(kept))
            blobs.append(None)
        # PostgreSQL writes a uuid with dashes; the hash uses the 32 hex digits.
        kept.append((index, visit_id, sha, version_id, channel or ""))
    worker: subprocess.Popen[bytes] | None = None
    scores: list[bytes] | None = None
    if stale:
        answers = repository.visit_answers(session, [kept[position][1] for position in stale])
        contents: dict[int, dict[str, Any]] = {}
        work: list[tuple[int, str, str | None]] = []
        for position in stale:
            index, visit_id, _sha, version_id, _channel = kept[position]
            if version_id not in contents:
                version = repository.instrument_version(session, version_id)
                assert version is not None
                contents[version_id] = version.content
            work.append((version_id, answers[visit_id], subdivisions[index]))
        if len(work) >= PARALLEL_VISITS:
            worker = _start_worker(contents, work)
        else:
            scores = score_visits(contents, work)
    else:
        scores = []
    kept = [(i, visit_id.replace("-", ""), sha, v, c) for i, visit_id, sha, v, c in kept]
    return _PendingVisits(kept, grids, blobs, stale, states, worker, scores)


def _finish_visits(
    pending: _PendingVisits,
) -> tuple[VisitTable, list[tuple[str, str, str]], dict[str, int]]:
    scores = _worker_result(pending.worker) if pending.worker is not None else pending.scores
    assert scores is not None and len(scores) == len(pending.stale)
    blobs = pending.blobs
    for position, blob in zip(pending.stale, scores, strict=True):
        blobs[position] = blob
    n = len(pending.rows)
    total = np.full(n, np.nan)
    knocked_out = np.zeros(n, dtype=bool)
    columns: dict[str, np.ndarray] = {}  # theme keys and "grid-key:item" keys
    by_version: dict[int, list[int]] = {}
    for position, row in enumerate(pending.rows):
        by_version.setdefault(row[3], []).append(position)
    for version_id, positions in by_version.items():
        grid = pending.grids[version_id]
        # Each visit's packed scores, as one matrix per grid version: no Python per value.
        group = [blobs[position] for position in positions]
        values = _unpacked(group, grid.width)  # type: ignore[arg-type]
        where = np.asarray(positions, dtype=np.intp)
        total[where] = values[:, 0]
        knocked_out[where] = values[:, 1] != 0
        for j, key in enumerate([*grid.themes, *grid.items], start=2):
            column = columns.get(key)
            if column is None:
                column = columns[key] = np.full(n, np.nan)
            column[where] = values[:, j]

    # A theme or item absent from every visit (only missing scores) has no column.
    def present(keys: set[str]) -> dict[str, np.ndarray]:
        return {
            key: columns[key]
            for key in sorted(keys)
            if key in columns and not np.isnan(columns[key]).all()
        }

    themes = {theme for grid in pending.grids.values() for theme in grid.themes}
    items = {item for grid in pending.grids.values() for item in grid.items}
    channel = [str(row[4] or pending.grids[row[3]].channel or "") for row in pending.rows]
    table = VisitTable(
        ids=[row[1] for row in pending.rows],
        candidate=np.asarray([row[0] for row in pending.rows], dtype=np.int32),
        channel=np.asarray(channel, dtype=object),
        score=total,
        knocked_out=knocked_out,
        themes=present(themes),
        items=present(items),
    )
    hashed = [(row[1], row[2], pending.grids[row[3]].sha256) for row in pending.rows]
    return table, hashed, pending.states


def store_visit_scores(
    session: Session,
    *,
    visit: Visit,
    authority_code: str,
    departement: str | None = None,
    unless_current: bool = False,
) -> bool:
    """Compute and set (not flush) ``visit``'s packed scores and their key: what a scoring
    run reads of it instead of scoring it again. Called when a reviewer approves it.

    ``departement``: of the authority (read when not given). ``unless_current``: leave
    stored scores whose key still matches. Returns whether the scores were set; nothing is
    stored when the answers do not validate on the visit's instrument version (a run then
    scores the visit itself and fails as it would have).
    """
    version = repository.instrument_version(session, visit.instrument_version_id)
    assert version is not None
    if departement is None:
        departement = repository.authority_departement(session, authority_code)
    subdivision = surveys.holiday_subdivision(departement)
    key = scores_key(
        version_sha256=version.sha256,
        content_sha256=visit.content_sha256,
        subdivision=subdivision,
    )
    if unless_current and visit.scores is not None and visit.scores_key == key:
        return False
    try:
        packed = visit_scores(load_published(version), visit.answers, subdivision=subdivision)
    except surveys.InvalidAnswersError:
        visit.scores = visit.scores_key = None
        return False
    visit.scores = packed
    visit.scores_key = key
    return True


def store_missing_visit_scores(session: Session, *, campaign_id: int | None = None) -> int:
    """Store the scores of the approved visits (of one campaign, or all) without current
    stored scores; returns how many were stored (flushed)."""
    stored = 0
    for visit, code, departement in repository.approved_visits_with_departement(
        session, campaign_id=campaign_id
    ):
        if store_visit_scores(
            session, visit=visit, authority_code=code, departement=departement, unless_current=True
        ):
            session.add(visit)
            stored += 1
    session.flush()
    return stored


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
    expected = repository.response_total(session, campaign_id=campaign_id)
    pending = _start_visits(
        session, campaign_id=campaign_id, candidate_index=candidate_index, subdivisions=subdivisions
    )
    responses = _read_responses(
        session,
        campaign_id=campaign_id,
        survey_version_id=row_id(survey_version),
        instrument=survey,
        keys=keys,
        candidate_index=candidate_index,
        progress=progress,
        expected=expected,
    )
    response_candidate, identity, item_scores = (
        responses.candidate,
        responses.identity,
        responses.item_scores,
    )
    total_responses = responses.total
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
        "responses_flagged_excluded": responses.flagged_excluded,
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
