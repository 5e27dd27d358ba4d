"""The demo's 2025 deliberation: jurors, a conflict, votes, comments, signed decisions, published.

Runs after the results demo has scored 2025; without a complete run (or once 2025 is past the
scored state) it does nothing, so the demo stays idempotent.
"""

from __future__ import annotations

from sqlmodel import Session

from app.accounts import repository as accounts_repository
from app.accounts.models import Role, User
from app.accounts.schemas import UserCreate
from app.accounts.service import create_user
from app.campaigns import repository as campaigns_repository
from app.campaigns import service as campaigns_service
from app.campaigns.models import CampaignState
from app.core.security import hash_password
from app.jury import service
from app.scorecards import repository as results_repository

DEMO_YEAR = 2025
EXTRA_JURORS = ("jury-2", "jury-3")


def _juror(session: Session, local_part: str, domain: str) -> User:
    email = f"{local_part}@{domain}"
    user = accounts_repository.get_by_email(session, email)
    if user is None:
        user = create_user(
            session,
            data=UserCreate(email=email, display_name=f"Démo {local_part}", role=Role.jury),
            created_by=None,
        )
        user.password_hash = hash_password(f"demo-{local_part}-2026")
        session.add(user)
        session.flush()
    return user


def build_jury_demo(
    session: Session, *, organiser: str, domain: str, year: int = DEMO_YEAR
) -> None:
    """Deliberate and publish the demo's 2025 edition (the documented jury@ account presides)."""
    campaign = campaigns_repository.get_by_year(session, organiser=organiser, year=year)
    if campaign is None or campaign.state != CampaignState.scored:
        return
    run = results_repository.current_run(session, campaign.id or 0)
    admin = accounts_repository.get_by_email(session, f"admin@{domain}")
    president = accounts_repository.get_by_email(session, f"jury@{domain}")
    if run is None or admin is None or president is None:
        return
    jurors = [president, *(_juror(session, name, domain) for name in EXTRA_JURORS)]
    service.assign_president(session, campaign=campaign, user_id=president.id or 0, actor=admin)
    categories = sorted(
        key
        for key, (_total, eligible) in results_repository.category_counts(
            session, run.id or 0
        ).items()
        if eligible
    )
    conflicted = jurors[-1]
    for index, category in enumerate(categories):
        ranked = sorted(
            (
                row
                for row in results_repository.rank_rows(session, run.id or 0, category)
                if row.eligible
            ),
            key=lambda row: (row.rank or 10**9, -(row.estimate or 0.0)),
        )
        leader = ranked[0]
        tied = sum(1 for row in ranked if row.in_top1_set) > 1
        if index == 0:
            service.declare_conflict(
                session,
                campaign=campaign,
                juror_id=conflicted.id or 0,
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
            service.cast_vote(
                session,
                campaign=campaign,
                category=category,
                juror=juror,
                code=choice.authority_code,
            )
        service.add_comment(
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
        if service.justification_required(session, run, category, leader.authority_code):
            justification = (
                "Égalité statistique au premier rang : le jury retient le candidat au meilleur "
                "score ponctuel, régulier sur tous les canaux testés."
            )
        service.sign_decision(
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
