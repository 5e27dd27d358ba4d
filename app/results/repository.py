"""Every query on scoring runs: the inputs a run reads, the rows it writes, the pages' reads.

- Inputs (:mod:`app.results.inputs`): candidates, responses and approved visits of a
  campaign, written once with SQLAlchemy Core for both databases. Responses are the bulk (a
  national edition has about a million): their packed item scores are read as they are
  stored (:func:`campaign_response_item_scores`); only rows without them (written before they
  existed) have their scored answers extracted, by the database, as one JSON array text per
  response (:func:`answer_values`).
- Writes: a run's score and rank rows in one executemany each, progress of a running job.
- Reads of a frozen run for the jury, the public pages and the scorecards, through a few
  indexed queries (``ix_rank_rows_run_category``, ``uq_score_row`` on run, authority, level,
  key); nothing is scored per request.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator, Sequence
from operator import attrgetter
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlmodel import Session, col, func, select

from app.authorities.models import Authority
from app.campaigns.models import Candidate, CandidateStatus
from app.collection.models import Response
from app.core.timeutil import utcnow
from app.instruments.models import InstrumentVersion
from app.missions.models import Mission, ReviewState, Visit
from app.results.compute import RankRowData, ScoreLevel, ScoreRowData
from app.results.models import (
    RANK_ROW_COLUMNS,
    SCORE_ROW_COLUMNS,
    RankRow,
    RunKind,
    RunStatus,
    ScoreRow,
    ScoringRun,
)

_responses = Response.__table__  # type: ignore[attr-defined]
_candidates = Candidate.__table__  # type: ignore[attr-defined]
_authorities = Authority.__table__  # type: ignore[attr-defined]
_visits = Visit.__table__  # type: ignore[attr-defined]
_missions = Mission.__table__  # type: ignore[attr-defined]
_runs = ScoringRun.__table__  # type: ignore[attr-defined]


# --- the inputs of a run ----------------------------------------------------------------------


class _AnswerValues(FunctionElement[str]):
    """The answers at some keys as the text of one JSON array (null where absent)."""

    type = sa.Text()
    inherit_cache = True


def answer_values(column: Any, keys: Sequence[str]) -> _AnswerValues:
    """``[answers[k1], answers[k2], …]`` as JSON text, built by the database.

    Each key is an item of SQLAlchemy's JSON operator (``column[key]``: a bound path, never
    pasted into the SQL); each dialect renders the array its fastest way.
    """
    return _AnswerValues(*(column[key] for key in keys))


@compiles(_AnswerValues, "sqlite")
def _answer_values_sqlite(element: _AnswerValues, compiler: SQLCompiler, **kw: Any) -> str:
    # One json_extract with several paths parses the document once and returns an array.
    items: list[Any] = list(element.clauses)  # the column[key] items of answer_values
    document = compiler.process(items[0].left, **kw)
    paths = ", ".join(compiler.process(item.right, **kw) for item in items)
    extract = f"json_extract({document}, {paths})"
    return extract if len(items) > 1 else f"json_array({extract})"  # one path: a bare value


@compiles(_AnswerValues, "postgresql")
def _answer_values_postgresql(element: _AnswerValues, compiler: SQLCompiler, **kw: Any) -> str:
    values = ", ".join(compiler.process(item, **kw) for item in element.clauses)
    return f"CAST(json_build_array({values}) AS TEXT)"


def _registered_candidate(campaign: Any, authority_code: Any) -> Any:
    """Join condition: the row's authority is a registered candidate of the campaign."""
    return (
        (_candidates.c.campaign_id == campaign)
        & (_candidates.c.authority_code == authority_code)
        & (_candidates.c.status == CandidateStatus.registered.value)
    )


def registered_candidates(
    session: Session, *, campaign_id: int
) -> list[tuple[int, str, str, str | None]]:
    """(candidate id, authority code, category, département) sorted by authority code."""
    rows = session.connection().execute(
        sa.select(
            _candidates.c.id,
            _candidates.c.authority_code,
            _candidates.c.category,
            _authorities.c.departement,
        )
        .join(_authorities, _authorities.c.code == _candidates.c.authority_code)
        .where(
            _candidates.c.campaign_id == campaign_id,
            _candidates.c.status == CandidateStatus.registered.value,
        )
        .order_by(_candidates.c.authority_code)
    )
    return [(int(r[0]), str(r[1]), str(r[2]), r[3]) for r in rows]


def response_total(session: Session, *, campaign_id: int) -> int:
    """How many responses the campaign has (an index-only count: the progress bar's scale)."""
    count = session.connection().execute(
        sa.select(sa.func.count())
        .select_from(_responses)
        .where(_responses.c.campaign_id == campaign_id)
    )
    return int(count.scalar_one())


def _valid_responses(columns: Sequence[Any], *, campaign_id: int, survey_version_id: int) -> Any:
    """SELECT ``columns`` of the responses a run uses: registered candidates, the pinned
    survey version, not excluded."""
    return (
        sa.select(*columns)
        .select_from(_responses)
        .join(
            _candidates,
            _registered_candidate(_responses.c.campaign_id, _responses.c.authority_code),
        )
        .where(
            _responses.c.campaign_id == campaign_id,
            _responses.c.instrument_version_id == survey_version_id,
            sa.not_(_responses.c.excluded),
        )
    )


def _packed(packed_bytes: int) -> Any:
    """The row's packed item scores hold the pinned version's items (anything else, or none:
    a row written before they existed, is read from its answers)."""
    return sa.func.length(_responses.c.item_scores) == packed_bytes


def _stream(session: Session, statement: Any, chunk_rows: int) -> CursorResult[Any]:
    # A server-side cursor on PostgreSQL: a million rows are streamed, not buffered whole.
    # SQLite's cursor reads lazily anyway, and asking it to stream only adds SQLAlchemy's
    # row buffer (about a second at a million rows).
    connection = session.connection()
    streaming = connection.dialect.supports_server_side_cursors
    options = {"stream_results": True, "max_row_buffer": chunk_rows} if streaming else {}
    return connection.execute(statement, execution_options=options)


def campaign_response_item_scores(
    session: Session,
    *,
    campaign_id: int,
    survey_version_id: int,
    packed_bytes: int,
    chunk_rows: int,
) -> Iterator[Sequence[Any]]:
    """Chunks of rows (candidate id or 0, excluded, use, response id and content sha256 as
    one hex text, packed item scores or None) of **every** response of the campaign, so that
    the counts (total, flagged) come from the same scan instead of a second pass over a
    million rows. ``use`` is 1 for a response a run uses (a registered candidate, the pinned
    survey version, not excluded) with packed scores of ``packed_bytes`` bytes, 2 for one it
    uses without them (a row written before they existed: read its answers with
    :func:`valid_response_answers`, ``unless_packed``), 0 for the others; the packed scores
    are None unless ``use`` is 1. Candidate ids start at 1: 0 is no registered candidate.

    A million rows are read through the driver's own cursor, in the session's transaction:
    SQLAlchemy's result rows cost about 3 µs each, as much as SQLite's reading. The statement
    is built here with SQLAlchemy and has only integer and fixed-string values, rendered as
    literals (no driver-specific parameter style).
    """
    used = (
        _candidates.c.id.is_not(None)
        & (_responses.c.instrument_version_id == survey_version_id)
        & sa.not_(_responses.c.excluded)
    )
    statement = (
        sa.select(
            sa.func.coalesce(_candidates.c.id, 0),
            _responses.c.excluded,
            sa.case((used & _packed(packed_bytes), 1), (used, 2), else_=0),
            # Response id (hex) then content sha256 (hex): one text, one object per row.
            sa.cast(_responses.c.id, sa.Text).concat(_responses.c.content_sha256),
            sa.case((used & _packed(packed_bytes), _responses.c.item_scores), else_=sa.null()),
        )
        .select_from(_responses)
        .join(
            _candidates,
            _registered_candidate(_responses.c.campaign_id, _responses.c.authority_code),
            isouter=True,
        )
        .where(_responses.c.campaign_id == campaign_id)
    )
    connection = session.connection()
    sql = str(statement.compile(dialect=connection.dialect, compile_kwargs={"literal_binds": True}))
    driver = connection.connection.dbapi_connection
    assert driver is not None
    if connection.dialect.name == "postgresql":
        # A server-side (named) cursor: the rows are streamed, not buffered whole.
        cursor = driver.cursor(name="scoring_inputs_responses")
    else:
        cursor = driver.cursor()
    try:
        cursor.execute(sql)
        # Both drivers give plain tuples: passed on as they come.
        while rows := cursor.fetchmany(chunk_rows):
            yield rows
    finally:
        cursor.close()


def valid_response_answers(
    session: Session,
    *,
    campaign_id: int,
    survey_version_id: int,
    keys: Sequence[str],
    chunk_rows: int,
    unless_packed: int | None = None,
) -> CursorResult[int, str, str, str]:
    """Rows (candidate id, response id as text, content sha256, answers at ``keys`` as a JSON
    array text) of the responses a run uses: registered candidates, the pinned survey
    version, not excluded; with ``unless_packed``, only those whose packed item scores are
    missing or not that many bytes long. Fetch them in chunks (``fetchmany(chunk_rows)``)."""
    statement = _valid_responses(
        [
            _candidates.c.id,
            sa.cast(_responses.c.id, sa.Text),
            _responses.c.content_sha256,
            answer_values(_responses.c.answers, keys),
        ],
        campaign_id=campaign_id,
        survey_version_id=survey_version_id,
    )
    if unless_packed is not None:
        statement = statement.where(
            sa.or_(_responses.c.item_scores.is_(None), sa.not_(_packed(unless_packed)))
        )
    return _stream(session, statement, chunk_rows)


def approved_visit_rows(
    session: Session, *, campaign_id: int
) -> list[tuple[int, str, str, int, str | None, bytes | None, str | None]]:
    """(candidate id, visit id as text, content sha256, instrument version id, mission
    channel, stored scores, their key) of the campaign's approved visits of registered
    candidates. The answers are not read: :func:`visit_answers` gives those of the visits
    whose stored scores are missing or stale."""
    rows = session.connection().execute(
        sa.select(
            _candidates.c.id,
            sa.cast(_visits.c.id, sa.Text),
            _visits.c.content_sha256,
            _visits.c.instrument_version_id,
            _missions.c.channel,
            _visits.c.scores,
            _visits.c.scores_key,
        )
        .select_from(_visits)
        .join(_missions, _missions.c.id == _visits.c.mission_id)
        .join(
            _candidates, _registered_candidate(_missions.c.campaign_id, _missions.c.authority_code)
        )
        .where(
            _missions.c.campaign_id == campaign_id,
            _visits.c.review_state == ReviewState.approved.value,
        )
        # A stable order: PostgreSQL returns updated rows in a new physical order.
        .order_by(_visits.c.id)
    )
    return [(int(r[0]), str(r[1]), str(r[2]), int(r[3]), r[4], r[5], r[6]) for r in rows]


_IN_CHUNK = 1_000  # ids per IN list: well under either database's limit on parameters


def visit_answers(session: Session, visit_ids: Sequence[str]) -> dict[str, str]:
    """The answers (JSON text) of visits, by visit id as :func:`approved_visit_rows` gives it."""
    answers: dict[str, str] = {}
    connection = session.connection()
    for start in range(0, len(visit_ids), _IN_CHUNK):
        wanted = [uuid.UUID(visit_id) for visit_id in visit_ids[start : start + _IN_CHUNK]]
        rows = connection.execute(
            sa.select(sa.cast(_visits.c.id, sa.Text), sa.cast(_visits.c.answers, sa.Text)).where(
                _visits.c.id.in_(wanted)
            )
        )
        answers.update((str(visit_id), str(text)) for visit_id, text in rows)
    return answers


def approved_visits_with_departement(
    session: Session, *, campaign_id: int | None = None
) -> list[tuple[Visit, str, str | None]]:
    """(visit, mission's authority code, authority's département) of the approved visits,
    of one campaign or of all, to store their scores (visits approved before they were)."""
    query = (
        select(Visit, Mission.authority_code, Authority.departement)
        .join(Mission, col(Mission.id) == col(Visit.mission_id))
        .join(Authority, col(Authority.code) == col(Mission.authority_code))
        .where(col(Visit.review_state) == ReviewState.approved.value)
        .order_by(col(Visit.id))
    )
    if campaign_id is not None:
        query = query.where(col(Mission.campaign_id) == campaign_id)
    return [(visit, str(code), departement) for visit, code, departement in session.exec(query)]


def authority_departement(session: Session, code: str) -> str | None:
    authority = session.get(Authority, code)
    return authority.departement if authority is not None else None


def visit_state_counts(session: Session, *, campaign_id: int) -> dict[str, int]:
    """The campaign's visits by review state (all of them, not only the approved)."""
    rows = session.connection().execute(
        sa.select(_visits.c.review_state, sa.func.count())
        .join(_missions, _missions.c.id == _visits.c.mission_id)
        .where(_missions.c.campaign_id == campaign_id)
        .group_by(_visits.c.review_state)
    )
    return {str(state): int(count) for state, count in rows}


def instrument_version(session: Session, version_id: int) -> InstrumentVersion | None:
    return session.get(InstrumentVersion, version_id)


# --- writing a run ----------------------------------------------------------------------------


def _insert_many(
    session: Session, table: sa.Table, columns: tuple[str, ...], rows: list[tuple[Any, ...]]
) -> None:
    """One DBAPI executemany of plain tuples: a national run writes ~150,000 score rows, and
    Core's executemany of dicts (a bind processor per value) takes about twice as long."""
    if not rows:
        return
    dialect = session.get_bind().dialect
    quote = dialect.identifier_preparer.quote
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    statement = "INSERT INTO {table} ({names}) VALUES ({marks})".format(
        table=quote(table.name),
        names=", ".join(quote(name) for name in columns),
        marks=", ".join([mark] * len(columns)),
    )
    session.connection().exec_driver_sql(statement, rows)


_score_values = attrgetter(*SCORE_ROW_COLUMNS)
_rank_values = attrgetter(*RANK_ROW_COLUMNS)
_FLAGS = SCORE_ROW_COLUMNS.index("flags")


def insert_score_rows(session: Session, *, run_id: int, rows: Sequence[ScoreRowData]) -> None:
    def values(row: ScoreRowData) -> tuple[Any, ...]:
        fields = _score_values(row)
        return (run_id, *fields[:_FLAGS], json.dumps(list(row.flags)), *fields[_FLAGS + 1 :])

    table = ScoreRow.__table__  # type: ignore[attr-defined]
    _insert_many(session, table, ("run_id", *SCORE_ROW_COLUMNS), [values(row) for row in rows])


def insert_rank_rows(session: Session, *, run_id: int, rows: Sequence[RankRowData]) -> None:
    table = RankRow.__table__  # type: ignore[attr-defined]
    values = [(run_id, *_rank_values(row)) for row in rows]
    _insert_many(session, table, ("run_id", *RANK_ROW_COLUMNS), values)


def set_progress(session: Session, *, run_id: int, percent: int, message: str) -> None:
    """Progress of a running run (no effect once it is no longer running)."""
    session.connection().execute(
        sa.update(_runs)
        .where(_runs.c.id == run_id, _runs.c.status == RunStatus.running.value)
        .values(progress=percent, progress_message=message)
    )


def mark_failed(session: Session, *, run_id: int, error: str) -> None:
    session.connection().execute(
        sa.update(_runs)
        .where(_runs.c.id == run_id)
        .values(status=RunStatus.failed.value, error=error, completed_at=utcnow())
    )


# --- runs -------------------------------------------------------------------------------------


def get_run(session: Session, run_id: int) -> ScoringRun | None:
    return session.get(ScoringRun, run_id)


def _current(campaign_id: int) -> Any:
    """Complete final runs of the campaign not superseded yet."""
    return select(ScoringRun).where(
        col(ScoringRun.campaign_id) == campaign_id,
        col(ScoringRun.kind) == RunKind.final,
        col(ScoringRun.status) == RunStatus.complete,
        col(ScoringRun.superseded_by).is_(None),
    )


def current_runs(
    session: Session, *, campaign_id: int, excluding: int | None = None
) -> list[ScoringRun]:
    """Complete final runs not superseded yet (normally one)."""
    query = _current(campaign_id)
    if excluding is not None:
        query = query.where(col(ScoringRun.id) != excluding)
    return list(session.exec(query.order_by(col(ScoringRun.id))).all())


def current_run(session: Session, *, campaign_id: int) -> ScoringRun | None:
    """The frozen run the jury and the public use: the latest complete final run."""
    return session.exec(_current(campaign_id).order_by(col(ScoringRun.id).desc()).limit(1)).first()


def running_run(session: Session, *, campaign_id: int) -> ScoringRun | None:
    return session.exec(
        select(ScoringRun)
        .where(
            col(ScoringRun.campaign_id) == campaign_id,
            col(ScoringRun.status) == RunStatus.running,
        )
        .order_by(col(ScoringRun.id).desc())
        .limit(1)
    ).first()


def list_runs(session: Session, *, campaign_id: int) -> list[ScoringRun]:
    return list(
        session.exec(
            select(ScoringRun)
            .where(col(ScoringRun.campaign_id) == campaign_id)
            .order_by(col(ScoringRun.id).desc())
        ).all()
    )


# --- reads of a frozen run --------------------------------------------------------------------


def rank_rows(session: Session, *, run_id: int, category: str | None = None) -> list[RankRow]:
    """A run's rank rows (of one category), by category, rank and authority code."""
    query = select(RankRow).where(col(RankRow.run_id) == run_id)
    if category is not None:
        query = query.where(col(RankRow.category) == category)
    return list(
        session.exec(
            query.order_by(col(RankRow.category), col(RankRow.rank), col(RankRow.authority_code))
        ).all()
    )


def rank_row(session: Session, *, run_id: int, code: str) -> RankRow | None:
    return session.exec(
        select(RankRow).where(RankRow.run_id == run_id, RankRow.authority_code == code)
    ).first()


def category_counts(session: Session, *, run_id: int) -> dict[str, tuple[int, int]]:
    """Per category: (candidates, eligible candidates)."""
    rows = session.exec(
        select(RankRow.category, RankRow.eligible, func.count())
        .where(RankRow.run_id == run_id)
        .group_by(col(RankRow.category), col(RankRow.eligible))
    ).all()
    counts: dict[str, list[int]] = {}
    for category, eligible, count in rows:
        entry = counts.setdefault(category, [0, 0])
        entry[0] += count
        if eligible:
            entry[1] += count
    return {key: (total, eligible) for key, (total, eligible) in counts.items()}


def score_rows(
    session: Session, *, run_id: int, level: str | None = None, codes: Sequence[str] | None = None
) -> list[ScoreRow]:
    """A run's score rows (at one level, of some authorities), by authority, level and key."""
    query = select(ScoreRow).where(col(ScoreRow.run_id) == run_id)
    if level is not None:
        query = query.where(col(ScoreRow.level) == level)
    if codes is not None:
        query = query.where(col(ScoreRow.authority_code).in_(list(codes)))
    return list(
        session.exec(
            query.order_by(col(ScoreRow.authority_code), col(ScoreRow.level), col(ScoreRow.key))
        ).all()
    )


def overall_score(session: Session, *, run_id: int, code: str) -> ScoreRow | None:
    return session.exec(
        select(ScoreRow).where(
            ScoreRow.run_id == run_id,
            ScoreRow.authority_code == code,
            ScoreRow.level == ScoreLevel.overall,
            ScoreRow.key == "",
        )
    ).first()


# CROSS JOIN makes SQLite drive the join from the category's rank rows (a few hundred) and
# seek each candidate's item rows through uq_score_row; left to itself, without statistics it
# scans every item row of the run (≈ 400 ms at national scale instead of ≈ 15 ms).
# PostgreSQL plans the same statement from its statistics.
_ITEM_MEANS_SQL = sa.text(
    """
    SELECT s.key, AVG(s.estimate)
    FROM rank_rows r CROSS JOIN score_rows s
    WHERE r.run_id = :run_id AND r.category = :category
      AND s.run_id = r.run_id AND s.authority_code = r.authority_code
      AND s.level = :level AND s.estimate IS NOT NULL
    GROUP BY s.key
    """
)


def item_means(session: Session, *, run_id: int, category: str) -> dict[str, float]:
    """Mean item score over a category's candidates, item key → mean."""
    rows = session.execute(
        _ITEM_MEANS_SQL,
        {"run_id": run_id, "category": category, "level": ScoreLevel.item.value},
    ).all()
    return {key: float(mean) for key, mean in rows if mean is not None}


def _same_run_and_authority() -> Any:
    """Join condition of a score row and a rank row of one authority in one run."""
    return (col(ScoreRow.run_id) == col(RankRow.run_id)) & (
        col(ScoreRow.authority_code) == col(RankRow.authority_code)
    )


def published_scores(
    session: Session, *, run_id: int, levels: Iterable[str]
) -> list[tuple[ScoreRow, RankRow | None, str]]:
    """Score rows of a run at the given levels with the authority's rank row and name."""
    rows = session.exec(
        select(ScoreRow, RankRow, Authority.name)
        .join(RankRow, _same_run_and_authority(), isouter=True)
        .join(Authority, Authority.code == ScoreRow.authority_code)  # type: ignore[arg-type]
        .where(ScoreRow.run_id == run_id, col(ScoreRow.level).in_(list(levels)))
        .order_by(col(ScoreRow.authority_code), col(ScoreRow.level), col(ScoreRow.key))
    ).all()
    return [(score, rank, name) for score, rank, name in rows]


def category_lines(
    session: Session, *, run_id: int, category: str
) -> list[tuple[RankRow, ScoreRow | None, str]]:
    """A category's rank rows with each candidate's overall score row and name, one query."""
    rows = session.exec(
        select(RankRow, ScoreRow, Authority.name)
        .join(
            ScoreRow,
            _same_run_and_authority()
            & (col(ScoreRow.level) == ScoreLevel.overall.value)
            & (col(ScoreRow.key) == ""),
            isouter=True,
        )
        .join(Authority, Authority.code == RankRow.authority_code)  # type: ignore[arg-type]
        .where(RankRow.run_id == run_id, RankRow.category == category)
    ).all()
    return [(rank, score, name) for rank, score, name in rows]


def authority_names(session: Session, codes: Iterable[str]) -> dict[str, str]:
    wanted = sorted(set(codes))
    if not wanted:
        return {}
    rows = session.exec(
        select(Authority.code, Authority.name).where(col(Authority.code).in_(wanted))
    ).all()
    return dict(rows)
