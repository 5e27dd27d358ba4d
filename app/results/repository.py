"""Queries on scoring runs and their rows."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlmodel import Session, col, select

from app.authorities.models import Authority
from app.results.models import RankRow, RunKind, RunStatus, ScoreRow, ScoringRun


def get_run(session: Session, run_id: int) -> ScoringRun | None:
    return session.get(ScoringRun, run_id)


def current_runs(
    session: Session, *, campaign_id: int, excluding: int | None = None
) -> list[ScoringRun]:
    """Complete final runs not superseded yet (normally one)."""
    query = select(ScoringRun).where(
        col(ScoringRun.campaign_id) == campaign_id,
        col(ScoringRun.kind) == RunKind.final,
        col(ScoringRun.status) == RunStatus.complete,
        col(ScoringRun.superseded_by).is_(None),
    )
    if excluding is not None:
        query = query.where(col(ScoringRun.id) != excluding)
    return list(session.exec(query.order_by(col(ScoringRun.id))).all())


def current_run(session: Session, *, campaign_id: int) -> ScoringRun | None:
    """The frozen run the jury and the public use: the latest complete final run."""
    return session.exec(
        select(ScoringRun)
        .where(
            col(ScoringRun.campaign_id) == campaign_id,
            col(ScoringRun.kind) == RunKind.final,
            col(ScoringRun.status) == RunStatus.complete,
            col(ScoringRun.superseded_by).is_(None),
        )
        .order_by(col(ScoringRun.id).desc())
        .limit(1)
    ).first()


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


def rank_rows(session: Session, *, run_id: int) -> Sequence[RankRow]:
    return session.exec(
        select(RankRow)
        .where(col(RankRow.run_id) == run_id)
        .order_by(col(RankRow.category), col(RankRow.rank), col(RankRow.authority_code))
    ).all()


def score_rows(
    session: Session, *, run_id: int, level: str | None = None, codes: Sequence[str] | None = None
) -> Sequence[ScoreRow]:
    query = select(ScoreRow).where(col(ScoreRow.run_id) == run_id)
    if level is not None:
        query = query.where(col(ScoreRow.level) == level)
    if codes is not None:
        query = query.where(col(ScoreRow.authority_code).in_(list(codes)))
    return session.exec(
        query.order_by(col(ScoreRow.authority_code), col(ScoreRow.level), col(ScoreRow.key))
    ).all()


def authority_names(session: Session, codes: Iterable[str]) -> dict[str, str]:
    wanted = sorted(set(codes))
    if not wanted:
        return {}
    rows = session.exec(
        select(Authority.code, Authority.name).where(col(Authority.code).in_(wanted))
    ).all()
    return {code: name for code, name in rows}
