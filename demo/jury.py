"""The demo's 2025 deliberation: jurors, a conflict, votes, comments, signed decisions, and the
publication of the results.

Every step goes through ``app.jury.service`` and the campaign's transition service, as the jury
and the organiser do on their pages. It runs once 2025 is scored; without a complete run (or
once 2025 is past the scored state) it does nothing, so the demo stays idempotent.
"""

from __future__ import annotations

from sqlmodel import Session

from app.accounts import repository as accounts_repository
from app.campaigns import repository as campaigns_repository
from app.campaigns import service as campaigns_service
from app.campaigns.models import CampaignState
from app.core.db import row_id
from app.jury import service as jury_service
from app.results import repository as results_repository
from app.results.models import RankRow
from demo.accounts import DEMO_DOMAIN, ensure_jurors

DEMO_YEAR = 2025


def _eligible_by_category(rows: list[RankRow]) -> dict[str, list[RankRow]]:
    """Each category's eligible candidates, the leader first."""
    by_category: dict[str, list[RankRow]] = {}
    for row in rows:
        if row.eligible:
            by_category.setdefault(row.category, []).append(row)
    return {
        category: sorted(ranked, key=lambda row: (row.rank or 10**9, -(row.estimate or 0.0)))
        for category, ranked in sorted(by_category.items())
    }


def deliberate_and_publish(
    session: Session, *, organiser: str, domain: str = DEMO_DOMAIN, year: int = DEMO_YEAR
) -> None:
    """Deliberate and publish the demo's scored edition (the documented jury@ account presides)."""
    campaign = campaigns_repository.get_by_year(session, organiser=organiser, year=year)
    if campaign is None or campaign.state != CampaignState.scored:
        return
    run = results_repository.current_run(session, campaign_id=row_id(campaign))
    admin = accounts_repository.get_by_email(session, f"admin@{domain}")
    president = accounts_repository.get_by_email(session, f"jury@{domain}")
    if run is None or admin is None or president is None:
        return
    jurors = [president, *ensure_jurors(session, domain=domain, created_by=admin)]
    jury_service.assign_president(
        session, campaign=campaign, user_id=row_id(president), actor=admin
    )
    conflicted = jurors[-1]
    ranked_by_category = _eligible_by_category(
        list(results_repository.rank_rows(session, run_id=row_id(run)))
    )
    for index, (category, ranked) in enumerate(ranked_by_category.items()):
        leader = ranked[0]
        tied = sum(1 for row in ranked if row.in_top1_set) > 1
        if index == 0:
            jury_service.declare_conflict(
                session,
                campaign=campaign,
                juror_id=row_id(conflicted),
                code=leader.authority_code,
                reason="Conseiller municipal de cette commune",
                actor=conflicted,
            )
        for juror in jurors:
            choice = leader
            if index == 0 and juror is conflicted:
                if len(ranked) == 1:
                    continue  # nobody else to vote for: the conflicted juror abstains
                choice = ranked[1]
            jury_service.cast_vote(
                session,
                campaign=campaign,
                category=category,
                juror=juror,
                code=choice.authority_code,
            )
        jury_service.add_comment(
            session,
            campaign=campaign,
            category=category,
            author=jurors[1],
            body=(
                "Égalité statistique : plusieurs candidats peuvent être premiers ; "
                "regardons les canaux et les commentaires."
                if tied
                else "Le premier se détache nettement ; les intervalles le confirment."
            ),
            code=leader.authority_code,
        )
        justification = ""
        if jury_service.justification_required(session, run, category, leader.authority_code):
            justification = (
                "Égalité statistique au premier rang : le jury retient le candidat au meilleur "
                "score ponctuel, régulier sur tous les canaux testés."
            )
        jury_service.sign_decision(
            session,
            campaign=campaign,
            category=category,
            president=president,
            laureate=leader.authority_code,
            justification=justification,
        )
    for state in (CampaignState.deliberated, CampaignState.published):
        campaigns_service.transition(session, campaign=campaign, to_state=state, actor=admin)
    session.flush()
