"""Frozen scoring runs: the scores and rankings a jury deliberates on and the public reads.

A score row's ``level`` is one of :class:`app.results.compute.ScoreLevel` (the computation
decides the levels). ``SCORE_ROW_COLUMNS`` / ``RANK_ROW_COLUMNS`` are the stored fields of a
row, read from the tables: the compute rows have the same fields, the bulk insert and the
exports name their columns after them.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from app.core.labels import N_
from app.core.timeutil import UTCDateTime, utcnow


class RunKind(StrEnum):
    final = "final"  # of a closed campaign: the jury and the public use the latest one
    # Previews are computed and shown, never stored; the kind exists so a stored run says
    # explicitly what it is (and the CLI's summary prints it).
    preview = "preview"


class RunStatus(StrEnum):
    running = "running"
    complete = "complete"
    failed = "failed"


RUN_STATUS_LABELS = [N_("running"), N_("complete"), N_("failed")]


class ScoringRun(SQLModel, table=True):
    """One computation of a campaign's scores. Never edited once complete: a later run
    supersedes it (``superseded_by``), and jury decisions point at the run they used.

    While ``status`` is running, ``progress`` (0–100) and ``progress_message`` are the only
    columns that change; the scores and ranks are written in the same transaction that sets
    ``status`` to complete, so a complete run is whole or absent.
    """

    __tablename__ = "scoring_runs"

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaigns.id", index=True)
    kind: str = Field(default=RunKind.final, max_length=20)
    status: str = Field(default=RunStatus.running, max_length=20)
    progress: int = Field(default=0, ge=0, le=100)
    progress_message: str = Field(default="", max_length=200)
    # Everything that decides the numbers: weights, level, draws, eligibility rules…
    params: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    seed: int
    # sha256 over the canonical inputs (responses, visits, instrument versions, candidates).
    inputs_sha256: str = Field(default="", max_length=64)
    code_version: str = Field(max_length=80)
    # Counts of what went in (responses used/excluded, visits approved…), for the summary.
    summary: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    error: str = Field(default="", max_length=2000)
    created_by: int | None = Field(default=None, foreign_key="users.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    completed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    superseded_by: int | None = Field(default=None, foreign_key="scoring_runs.id")


class ScoreRow(SQLModel, table=True):
    """One estimate of one authority in one run (overall, a component, a channel, a theme…)."""

    __tablename__ = "score_rows"
    __table_args__ = (
        sa.UniqueConstraint("run_id", "authority_code", "level", "key", name="uq_score_row"),
        sa.Index("ix_score_rows_run_level_key", "run_id", "level", "key"),
    )

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="scoring_runs.id")
    authority_code: str = Field(foreign_key="authorities.code", max_length=12)
    level: str = Field(max_length=20)
    key: str = Field(default="", max_length=60)  # "" for the overall score
    estimate: float | None = None
    se: float | None = None
    df: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    n: int = 0
    n_eff: float | None = None
    # e.g. ["insufficient_precision", "few_respondents", "borrowed_variance"]
    flags: list[str] = Field(default_factory=list, sa_type=sa.JSON)


class RankRow(SQLModel, table=True):
    """A candidate's place in its category for one run; ineligible ones carry the reason."""

    __tablename__ = "rank_rows"
    __table_args__ = (
        sa.UniqueConstraint("run_id", "authority_code", name="uq_rank_row"),
        sa.Index("ix_rank_rows_run_category", "run_id", "category"),
    )

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="scoring_runs.id")
    category: str = Field(max_length=40)
    authority_code: str = Field(foreign_key="authorities.code", max_length=12)
    eligible: bool = True
    ineligible_reason: str = Field(default="", max_length=200)
    estimate: float | None = None
    se: float | None = None
    rank: int | None = None
    # The award table's family: simultaneous rank interval, τ-best sets read from it
    # (in the top τ ⇔ rank_low ≤ τ). METHODOLOGY.md, "One family per table".
    rank_low: int | None = None
    rank_high: int | None = None
    in_top1_set: bool = False
    in_top3_set: bool = False
    # The scorecard's family: the candidate's own (marginal) rank interval.
    marginal_low: int | None = None
    marginal_high: int | None = None
    # A decision of this row's intervals still lay within the Monte-Carlo band at the cap.
    unstable: bool = False
    p_best: float | None = None
    percentile: float | None = None


def _stored_columns(table: sa.Table) -> tuple[str, ...]:
    return tuple(column.name for column in table.columns if column.name not in ("id", "run_id"))


SCORE_ROW_COLUMNS = _stored_columns(ScoreRow.__table__)  # type: ignore[attr-defined]
RANK_ROW_COLUMNS = _stored_columns(RankRow.__table__)  # type: ignore[attr-defined]
# The groups the exports show together (a test checks they are stored columns).
SCORE_ESTIMATE_COLUMNS = ("estimate", "se", "df", "ci_low", "ci_high")
RANK_POSITION_COLUMNS = ("rank", "rank_low", "rank_high", "in_top1_set", "in_top3_set", "p_best")
