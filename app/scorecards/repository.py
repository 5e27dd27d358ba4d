"""Reads of frozen scoring runs for the jury, the public pages and the scorecards.

Every page reads one run through a few indexed queries (``ix_rank_rows_run_category``,
``uq_score_row`` on run, authority, level, key); nothing is scored per request.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from app.authorities.models import Authority
from app.campaigns.models import Campaign
from app.collection.models import Response
from app.instruments.models import InstrumentVersion
from app.missions.models import Mission, Visit, VisitEvidence
from app.results import repository as results_repository
from app.results.models import RankRow, ScoreLevel, ScoreRow, ScoringRun


def current_run(session: Session, campaign_id: int) -> ScoringRun | None:
    """The campaign's current run (the results engineer's query: latest complete final run)."""
    return results_repository.current_run(session, campaign_id=campaign_id)


def previous_campaign(session: Session, campaign: Campaign) -> Campaign | None:
    """The organiser's latest edition before this one."""
    return session.exec(
        select(Campaign)
        .where(Campaign.organiser == campaign.organiser, Campaign.year < campaign.year)
        .order_by(col(Campaign.year).desc())
        .limit(1)
    ).first()


def rank_rows(session: Session, run_id: int, category: str | None = None) -> list[RankRow]:
    query = select(RankRow).where(RankRow.run_id == run_id)
    if category is not None:
        query = query.where(RankRow.category == category)
    return list(session.exec(query).all())


def rank_row(session: Session, run_id: int, code: str) -> RankRow | None:
    return session.exec(
        select(RankRow).where(RankRow.run_id == run_id, RankRow.authority_code == code)
    ).first()


def category_counts(session: Session, run_id: int) -> dict[str, tuple[int, int]]:
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


def authority_scores(session: Session, run_id: int, code: str) -> list[ScoreRow]:
    """Every score row of one authority in a run (overall, components, channels, themes, items)."""
    return list(
        session.exec(
            select(ScoreRow).where(ScoreRow.run_id == run_id, ScoreRow.authority_code == code)
        ).all()
    )


def overall_score(session: Session, run_id: int, code: str) -> ScoreRow | None:
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


def item_means(session: Session, run_id: int, category: str) -> dict[str, float]:
    """Mean item score over a category's candidates, item key → mean."""
    rows = session.execute(
        _ITEM_MEANS_SQL,
        {"run_id": run_id, "category": category, "level": ScoreLevel.item.value},
    ).all()
    return {key: float(mean) for key, mean in rows if mean is not None}


def published_scores(
    session: Session, run_id: int, levels: Iterable[str]
) -> list[tuple[ScoreRow, RankRow | None, str]]:
    """Score rows of a run at the given levels with the authority's rank row and name."""
    rows = session.exec(
        select(ScoreRow, RankRow, Authority.name)
        .join(
            RankRow,
            (RankRow.run_id == ScoreRow.run_id)  # type: ignore[arg-type]
            & (RankRow.authority_code == ScoreRow.authority_code),
            isouter=True,
        )
        .join(Authority, Authority.code == ScoreRow.authority_code)  # type: ignore[arg-type]
        .where(ScoreRow.run_id == run_id, col(ScoreRow.level).in_(list(levels)))
        .order_by(col(ScoreRow.authority_code), col(ScoreRow.level), col(ScoreRow.key))
    ).all()
    return [(score, rank, name) for score, rank, name in rows]


def authority_names(session: Session, codes: Iterable[str]) -> dict[str, str]:
    code_list = sorted(set(codes))
    if not code_list:
        return {}
    rows = session.exec(
        select(Authority.code, Authority.name).where(col(Authority.code).in_(code_list))
    ).all()
    return dict(rows)


def count_valid_responses(session: Session, campaign_id: int, code: str) -> int:
    return int(
        session.exec(
            select(func.count())
            .select_from(Response)
            .where(
                Response.campaign_id == campaign_id,
                Response.authority_code == code,
                col(Response.excluded).is_(False),
            )
        ).one()
    )


def response_answers(
    session: Session, campaign_id: int, code: str, *, limit: int
) -> list[tuple[dict[str, object], int]]:
    """The latest valid responses' answers with their instrument version id."""
    rows = session.exec(
        select(Response.answers, Response.instrument_version_id)
        .where(
            Response.campaign_id == campaign_id,
            Response.authority_code == code,
            col(Response.excluded).is_(False),
        )
        .order_by(col(Response.submitted_at).desc())
        .limit(limit)
    ).all()
    return [(dict(answers), version_id) for answers, version_id in rows]


def instrument_versions(session: Session, ids: Iterable[int]) -> list[InstrumentVersion]:
    id_list = sorted(set(ids))
    if not id_list:
        return []
    return list(
        session.exec(select(InstrumentVersion).where(col(InstrumentVersion.id).in_(id_list))).all()
    )


def approved_visits(
    session: Session, campaign_id: int, code: str
) -> list[tuple[Visit, Mission, list[VisitEvidence]]]:
    """Approved visits of an authority in a campaign, with their evidence files."""
    rows = session.exec(
        select(Visit, Mission)
        .join(Mission, Mission.id == Visit.mission_id)  # type: ignore[arg-type]
        .where(
            Mission.campaign_id == campaign_id,
            Mission.authority_code == code,
            Visit.review_state == "approved",
        )
        .order_by(col(Mission.channel), col(Visit.visited_at))
    ).all()
    visit_ids = [visit.id for visit, _ in rows]
    evidence: dict[object, list[VisitEvidence]] = {}
    if visit_ids:
        for item in session.exec(
            select(VisitEvidence).where(col(VisitEvidence.visit_id).in_(visit_ids))
        ).all():
            evidence.setdefault(item.visit_id, []).append(item)
    return [(visit, mission, evidence.get(visit.id, [])) for visit, mission in rows]


def category_lines(
    session: Session, run_id: int, category: str
) -> list[tuple[RankRow, ScoreRow | None, str]]:
    """A category's rank rows with each candidate's overall score row and name, one query."""
    rows = session.exec(
        select(RankRow, ScoreRow, Authority.name)
        .join(
            ScoreRow,
            (ScoreRow.run_id == RankRow.run_id)  # type: ignore[arg-type]
            & (ScoreRow.authority_code == RankRow.authority_code)
            & (ScoreRow.level == ScoreLevel.overall.value)
            & (ScoreRow.key == ""),
            isouter=True,
        )
        .join(Authority, Authority.code == RankRow.authority_code)  # type: ignore[arg-type]
        .where(RankRow.run_id == run_id, RankRow.category == category)
    ).all()
    return [(rank, score, name) for rank, score, name in rows]
