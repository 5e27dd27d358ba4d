"""The demo's juries: 2024 deliberated and published, 2025 awaiting its jury.

Every step goes through ``app.jury.service`` and the campaign's transition service, as the jury
and the organiser do on their pages. Both run once their edition is scored; without a complete
run (or once the edition is past the scored state, or its jury already at work) they do nothing,
so the demo stays idempotent.

- :func:`deliberate_and_publish`: jurors, a conflict, votes, comments, every decision signed by
  the president (``jury@``), the results published;
- :func:`open_deliberation`: the president designated and the two other jurors' first votes
  and a remark, nothing signed: ``jury@`` can still declare a conflict, vote, comment and sign
  in every category.
"""

from __future__ import annotations

from typing import NamedTuple

from sqlmodel import Session

from app.accounts import repository as accounts_repository
from app.accounts.models import User
from app.campaigns import repository as campaigns_repository
from app.campaigns import service as campaigns_service
from app.campaigns.models import Campaign, CampaignState
from app.core.db import row_id
from app.jury import service as jury_service
from app.results import repository as results_repository
from app.results.models import RankRow, ScoringRun
from demo.accounts import DEMO_DOMAIN, ensure_jurors

PUBLISHED_YEAR = 2024  # deliberated and published: the public results, the laureates
DELIBERATING_YEAR = 2025  # scored, awaiting the jury


class _Jury(NamedTuple):
    campaign: Campaign
    run: ScoringRun
    admin: User
    president: User
    jurors: list[User]  # the president first


def _scored_edition(session: Session, *, organiser: str, domain: str, year: int) -> _Jury | None:
    """The edition's jury, the president designated, if the edition is scored; else None."""
    campaign = campaigns_repository.get_by_year(session, organiser=organiser, year=year)
    if campaign is None or campaign.state != CampaignState.scored:
        return None
    run = results_repository.current_run(session, campaign_id=row_id(campaign))
    admin = accounts_repository.get_by_email(session, f"admin@{domain}")
    president = accounts_repository.get_by_email(session, f"jury@{domain}")
    if run is None or admin is None or president is None:
        return None
    jurors = [president, *ensure_jurors(session, domain=domain, created_by=admin)]
    return _Jury(campaign, run, admin, president, jurors)


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
    session: Session, *, organiser: str, domain: str = DEMO_DOMAIN, year: int = PUBLISHED_YEAR
) -> None:
    """Deliberate and publish the demo's scored edition (the documented jury@ account presides)."""
    jury = _scored_edition(session, organiser=organiser, domain=domain, year=year)
    if jury is None:
        return
    campaign, run, admin, president, jurors = jury
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


def open_deliberation(
    session: Session, *, organiser: str, domain: str = DEMO_DOMAIN, year: int = DELIBERATING_YEAR
) -> None:
    """Start the scored edition's deliberation without deciding anything.

    ``jury@`` presides; the two other jurors have voted for each category's point leader and
    one has remarked on the first category. No conflict, vote or signature of ``jury@``, and no
    category signed: everything a juror and the president do is left to try in the browser.
    Does nothing once a president is designated (the jury is at work).
    """
    jury = _scored_edition(session, organiser=organiser, domain=domain, year=year)
    if jury is None or jury_service.president_id(session, jury.campaign) is not None:
        return
    jury_service.assign_president(
        session, campaign=jury.campaign, user_id=row_id(jury.president), actor=jury.admin
    )
    ranked_by_category = _eligible_by_category(
        list(results_repository.rank_rows(session, run_id=row_id(jury.run)))
    )
    for index, (category, ranked) in enumerate(ranked_by_category.items()):
        for juror in jury.jurors[1:]:
            jury_service.cast_vote(
                session,
                campaign=jury.campaign,
                category=category,
                juror=juror,
                code=ranked[0].authority_code,
            )
        if index == 0:
            tied = sum(1 for row in ranked if row.in_top1_set)
            jury_service.add_comment(
                session,
                campaign=jury.campaign,
                category=category,
                author=jury.jurors[1],
                body=(
                    f"{tied} candidats peuvent être premiers : j'ai voté pour le meilleur score "
                    "ponctuel, mais regardons les canaux avant la signature."
                    if tied > 1
                    else "Le premier se détache nettement ; les intervalles le confirment."
                ),
                code=ranked[0].authority_code,
            )
    session.flush()
