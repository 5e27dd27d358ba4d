"""A campaign's scoring inputs, read from the database and flattened to arrays in one place.

What goes in (ARCHITECTURE.md, "How scoring runs"):

- the registered candidates (withdrawn ones are left out) with their category;
- the valid citizen responses: those of registered candidates, collected with the pinned
  survey version, and not excluded (responses flagged by the quality checks are stored with
  ``excluded`` set and stay out unless a reviewer reinstates them);
- the **approved** mystery-shopper visits only (``review_state == "approved"``) of the
  campaign's missions; visits received, with issues or rejected never count;
- the pinned instrument versions and the campaign configuration.

Responses are the bulk (a national edition has about a million): they are read with raw SQL
in chunks, only the scored items are extracted by the database (``json_extract`` on SQLite,
``->`` on PostgreSQL) and parsed by numpy, never as one Python dict per response. Item
scores come from ``surveys.item_score`` applied to each distinct answer value of each item.
Visits are few (tens of thousands) and are scored one by one by ``surveys.submission_scores``
(knock-outs, delays in working days, node coverage).

``inputs_sha256`` is a sha256 over a canonical serialisation: configuration, instrument
versions, candidates, then responses and visits sorted by id with their content hashes and
the flattened values actually used.
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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlmodel import Session

import surveys
from app.campaigns.models import Campaign
from app.campaigns.schemas import CampaignConfig
from app.instruments.models import InstrumentVersion
from app.instruments.service import load_published

INPUTS_FORMAT = "barometre-scoring-inputs/1"
CHUNK_ROWS = 100_000
_STRING_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"')

Progress = Callable[[int, str], None]


@dataclass(frozen=True)
class SurveyItem:
    key: str
    weight: float
    theme: str | None


@dataclass(frozen=True)
class VisitTable:
    """Approved visits, one entry per visit, aligned arrays."""

    ids: list[str]
    candidate: np.ndarray  # index into ScoringInputs.codes
    channel: np.ndarray  # channel code (object array)
    score: np.ndarray  # channel score of the visit 0–100 (0 after a knock-out), NaN if missing
    knocked_out: np.ndarray  # bool
    themes: dict[str, np.ndarray]  # theme key → score of the visit's theme node (NaN: absent)
    items: dict[str, np.ndarray]  # "grid-key:item" → item score (NaN: missing)


@dataclass(frozen=True)
class ScoringInputs:
    campaign_id: int
    year: int
    config: CampaignConfig
    # Candidates (sorted by authority code) and their categories.
    codes: list[str]
    categories: list[str]
    # Survey: one row per valid response.
    survey_key: str
    survey_items: list[SurveyItem]
    themes: list[str]  # survey theme keys
    response_candidate: np.ndarray  # int32 index into codes
    item_scores: np.ndarray  # (n responses, n survey items) 0–100, NaN missing
    visits: VisitTable
    instruments: list[dict[str, Any]]  # key, version, sha256 of each pinned version
    counts: dict[str, Any] = field(default_factory=dict)
    inputs_sha256: str = ""

    @property
    def n_responses(self) -> int:
        return int(self.item_scores.shape[0])


def _config_json(config: CampaignConfig) -> str:
    return json.dumps(config.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))


def _is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _pinned(session: Session, campaign_id: int) -> list[InstrumentVersion]:
    from app.campaigns import repository as campaigns_repository

    return [version for _, version in campaigns_repository.pinned_instruments(session, campaign_id)]


def _candidates(session: Session, campaign_id: int) -> list[tuple[int, str, str, str | None]]:
    rows = session.connection().exec_driver_sql(
        "SELECT c.id, c.authority_code, c.category, a.departement FROM candidates c "
        "JOIN authorities a ON a.code = c.authority_code "
        "WHERE c.campaign_id = %(campaign)s AND c.status = 'registered' "
        "ORDER BY c.authority_code"
        if _is_postgres(session)
        else "SELECT c.id, c.authority_code, c.category, a.departement FROM candidates c "
        "JOIN authorities a ON a.code = c.authority_code "
        "WHERE c.campaign_id = ? AND c.status = 'registered' ORDER BY c.authority_code",
        {"campaign": campaign_id} if _is_postgres(session) else (campaign_id,),
    )
    return [(int(r[0]), str(r[1]), str(r[2]), r[3]) for r in rows]


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
    return [
        SurveyItem(key=item.key, weight=float(item.weight), theme=item.theme)
        for item in instrument.items
        if item.scorable and item.type != "delay"
    ]


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
    """Candidate index, identity bytes (id + content sha256) and item scores per response."""
    postgres = _is_postgres(session)
    if postgres:
        extract = "json_build_array(" + ", ".join(f"r.answers -> '{key}'" for key in keys) + ")"
        sql = (
            f"SELECT c.id, replace(r.id::text, '-', ''), r.content_sha256, {extract}::text "
            "FROM responses r JOIN candidates c ON c.campaign_id = r.campaign_id "
            "AND c.authority_code = r.authority_code AND c.status = 'registered' "
            "WHERE r.campaign_id = %(campaign)s AND r.instrument_version_id = %(version)s "
            "AND NOT r.excluded"
        )
        params: Any = {"campaign": campaign_id, "version": survey_version_id}
    else:
        paths = ", ".join(f"'$.\"{key}\"'" for key in keys)
        sql = (
            f"SELECT c.id, r.id, r.content_sha256, json_extract(r.answers, {paths}) "
            "FROM responses r JOIN candidates c ON c.campaign_id = r.campaign_id "
            "AND c.authority_code = r.authority_code AND c.status = 'registered' "
            "WHERE r.campaign_id = ? AND r.instrument_version_id = ? AND NOT r.excluded"
        )
        params = (campaign_id, survey_version_id)
    if len(keys) == 1 and not postgres:
        # json_extract with one path returns the bare value, not an array.
        sql = sql.replace(
            f"json_extract(r.answers, {paths})", f"json_array(json_extract(r.answers, {paths}))"
        )
    if progress is not None:
        progress(5, "reading responses")
    # On PostgreSQL a server-side cursor: a million rows are streamed, not buffered whole.
    options = {"stream_results": True, "max_row_buffer": CHUNK_ROWS} if postgres else {}
    result = session.connection().exec_driver_sql(sql, params, execution_options=options)
    tokens: dict[str, float] = {}
    candidates: list[np.ndarray] = []
    keys_hex: list[str] = []
    raws: list[np.ndarray] = []
    read = 0
    while True:
        rows = result.fetchmany(CHUNK_ROWS)
        if not rows:
            break
        candidates.append(
            np.fromiter((candidate_index[row[0]] for row in rows), dtype=np.int32, count=len(rows))
        )
        # Response id (32 hex) and content sha256 (64 hex): 48 bytes per response once decoded.
        keys_hex.append("".join([f"{row[1]}{row[2]}" for row in rows]))
        raws.append(_decode_chunk([row[3] for row in rows], len(keys), tokens))
        read += len(rows)
        if progress is not None and expected:
            progress(5 + int(35 * min(1.0, read / expected)), "reading responses")
    if not candidates:
        empty = np.empty((0, len(keys)))
        return np.empty(0, np.int32), np.empty((0, 48), np.uint8), empty
    if progress is not None:
        progress(41, "item scores of the responses")
    raw = np.concatenate(raws)
    scores = _score_columns(instrument, keys, raw, tokens)
    identity = np.frombuffer(bytes.fromhex("".join(keys_hex)), dtype=np.uint8).reshape(-1, 48)
    return np.concatenate(candidates), identity, scores


def _count(session: Session, sql_sqlite: str, sql_pg: str, campaign_id: int) -> list[Any]:
    if _is_postgres(session):
        return list(
            session.connection().exec_driver_sql(sql_pg, {"campaign": campaign_id}).fetchall()
        )
    return list(session.connection().exec_driver_sql(sql_sqlite, (campaign_id,)).fetchall())


# Above this many approved visits, they are scored in a worker process while the
# responses are read (both take seconds at national scale; two cores overlap them). The
# worker is a plain ``python -c`` child fed through a pipe: no fork of a threaded server,
# and no re-import of the caller's main module as multiprocessing's spawn would do.
PARALLEL_VISITS = 5_000

VisitScore = tuple[float | None, bool, dict[str, float], dict[str, float]]


def _score_visits(
    contents: dict[int, dict[str, Any]], rows: list[tuple[int, str, str | None]]
) -> list[VisitScore]:
    """Score visits with ``surveys.submission_scores``: (total, knocked out, themes, items).

    Module-level and picklable: it runs in a worker process for large campaigns.
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


_ROOT = Path(__file__).resolve().parents[2]


def _start_worker(
    contents: dict[int, dict[str, Any]], work: list[tuple[int, str, str | None]]
) -> subprocess.Popen[bytes]:
    """A fresh interpreter scoring the visits (``python -c``: no main module re-imported)."""
    path = [str(_ROOT), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(part for part in path if part)}
    process = subprocess.Popen(
        [sys.executable, "-c", "from app.results.inputs import worker_main; worker_main()"],
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


def worker_main() -> None:
    """Entry point of the worker: pickled (contents, rows) in, pickled scores out."""
    contents, work = pickle.loads(sys.stdin.buffer.read())
    sys.stdout.buffer.write(pickle.dumps(_score_visits(contents, work)))
    sys.stdout.buffer.flush()


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
    base = (
        "SELECT c.id, v.id, v.content_sha256, v.instrument_version_id, v.answers, m.channel "
        "FROM visits v JOIN missions m ON m.id = v.mission_id "
        "JOIN candidates c ON c.campaign_id = m.campaign_id "
        "AND c.authority_code = m.authority_code AND c.status = 'registered' "
        "WHERE m.campaign_id = {p} AND v.review_state = 'approved'"
    )
    postgres = _is_postgres(session)
    if postgres:
        sql = base.replace("v.answers", "v.answers::text").format(p="%(campaign)s")
        rows = session.connection().exec_driver_sql(sql, {"campaign": campaign_id}).fetchall()
    else:
        rows = session.connection().exec_driver_sql(base.format(p="?"), (campaign_id,)).fetchall()
    states = _count(
        session,
        "SELECT v.review_state, count(*) FROM visits v JOIN missions m ON m.id = v.mission_id "
        "WHERE m.campaign_id = ? GROUP BY v.review_state",
        "SELECT v.review_state, count(*) FROM visits v JOIN missions m ON m.id = v.mission_id "
        "WHERE m.campaign_id = %(campaign)s GROUP BY v.review_state",
        campaign_id,
    )
    contents: dict[int, dict[str, Any]] = {}
    version_sha: dict[int, str] = {}
    channels: dict[int, str | None] = {}
    work: list[tuple[int, str, str | None]] = []
    kept: list[tuple[int, str, str, int, str]] = []
    for row in rows:
        version_id = int(row[3])
        if version_id not in contents:
            version = session.get(InstrumentVersion, version_id)
            assert version is not None
            contents[version_id] = version.content
            version_sha[version_id] = version.sha256
            channels[version_id] = version.channel
        index = candidate_index[row[0]]
        text = row[4] if isinstance(row[4], str) else json.dumps(row[4])
        work.append((version_id, text, subdivisions[index]))
        kept.append((index, str(row[1]).replace("-", ""), str(row[2]), version_id, row[5] or ""))
    worker: subprocess.Popen[bytes] | None = None
    scores: list[VisitScore] | None = None
    if len(work) >= PARALLEL_VISITS:
        worker = _start_worker(contents, work)
    else:
        scores = _score_visits(contents, work)
    counts = {str(state): int(count) for state, count in states}
    return _PendingVisits(kept, version_sha, channels, counts, worker, scores)


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
            where, values = zip(*pairs, strict=True)
            out[list(where)] = values
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
    from app.campaigns.service import parse_config

    campaign_id = campaign.id or 0
    config = parse_config(campaign.config)
    if progress is not None:
        progress(2, "reading candidates and instruments")
    candidates = _candidates(session, campaign_id)
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
    totals = dict(
        (str(flag), int(count))
        for flag, count in _count(
            session,
            "SELECT excluded, count(*) FROM responses WHERE campaign_id = ? GROUP BY excluded",
            "SELECT excluded, count(*) FROM responses WHERE campaign_id = %(campaign)s "
            "GROUP BY excluded",
            campaign_id,
        )
    )
    total_responses = sum(totals.values())
    pending = _start_visits(
        session, campaign_id=campaign_id, candidate_index=candidate_index, subdivisions=subdivisions
    )
    response_candidate, identity, item_scores = _read_responses(
        session,
        campaign_id=campaign_id,
        survey_version_id=survey_version.id or 0,
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
    words = identity.view(">u8").reshape(-1, 6).astype(np.uint64)
    order = np.argsort(words[:, 0], kind="stable") if len(words) else np.empty(0, np.int64)
    leading = words[order, 0]
    if len(words) > 1 and np.any(leading[1:] == leading[:-1]):  # shared first 8 bytes: rare
        order = np.lexsort(words.T[::-1])
    digest.update(b"\nresponses\n")
    digest.update(np.ascontiguousarray(identity[order]).tobytes())
    code_array = np.asarray(codes, dtype="S12")
    if len(code_array):
        digest.update(np.ascontiguousarray(code_array[response_candidate[order]]).tobytes())
    digest.update(np.ascontiguousarray(item_scores[order]).astype("<f8").tobytes())
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
        "responses_flagged_excluded": totals.get("1", 0) + totals.get("True", 0),
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
