"""E-mails to each authority's contacts when results are published.

Entering ``published`` enqueues one ``notify.scorecards_published`` job per campaign (the
transition stays quick); the job queues one ``scorecard_published`` e-mail per active contact
of a candidate that has a scorecard, in the contact's language, and never a second one: the
outbox is checked for each contact first (``campaign_user`` / ``"{campaign}:{user}"``).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, col, select

from app.accounts.models import Role, User
from app.audit.models import record_audit
from app.authorities.models import Authority
from app.campaigns.models import Campaign, CampaignState, Candidate, CandidateStatus
from app.campaigns.service import parse_config
from app.core.urls import public_base
from app.jobs import service as jobs
from app.jobs.worker import JobContext
from app.mail.models import OutboxMessage
from app.mail.service import queue_email
from app.results import repository as results_repository

JOB_KIND = "notify.scorecards_published"
TEMPLATE = "scorecard_published"
OBJECT_TYPE = "campaign_user"
# Written out rather than taken from the routers, whose modules load the PDF and plotting
# stacks: ``scorecard`` (app/scorecards/routes.py) and ``results_public``
# (app/publication/routes.py).
SCORECARD_PATH = "/campaigns/{campaign_id}/scorecards/{code}"
RESULTS_PATH = "/results/{year}"


@dataclass(frozen=True)
class Contact:
    user: User
    authority: Authority


def candidate_contacts(session: Session, campaign_id: int) -> list[Contact]:
    """Active authority accounts whose authority is a registered candidate of the campaign."""
    rows = session.exec(
        select(User, Authority)
        .join(Candidate, col(Candidate.authority_code) == col(User.authority_code))
        .join(Authority, col(Authority.code) == col(Candidate.authority_code))
        .where(
            col(Candidate.campaign_id) == campaign_id,
            col(Candidate.status) == CandidateStatus.registered,
            col(User.role) == Role.authority,
            col(User.is_active).is_(True),
        )
        .order_by(col(User.id))
    ).all()
    return [Contact(user, authority) for user, authority in rows]


def notified_user_ids(session: Session, *, template: str, campaign_id: int) -> set[int]:
    """The users whose ``template`` e-mail about this campaign is in the outbox already."""
    prefix = f"{campaign_id}:"
    object_ids = session.exec(
        select(OutboxMessage.object_id).where(
            col(OutboxMessage.template) == template,
            col(OutboxMessage.object_type) == OBJECT_TYPE,
            col(OutboxMessage.object_id).startswith(prefix),
        )
    ).all()
    return {int(value.removeprefix(prefix)) for value in object_ids if value}


def campaign_published(session: Session, *, campaign: Campaign, actor: User | None) -> None:
    """Hook of :data:`app.campaigns.service.ON_ENTER_STATE`: enqueue the e-mails' job (once
    per campaign), unless no authority has an account to tell."""
    campaign_id = int(campaign.id or 0)
    if not candidate_contacts(session, campaign_id):
        return
    jobs.enqueue(
        session,
        JOB_KIND,
        {"campaign_id": campaign_id},
        dedupe_key=f"{JOB_KIND}:{campaign_id}",
        actor=actor,
    )


def notify_scorecards_published(context: JobContext) -> None:
    """Queue the ``scorecard_published`` e-mails of one campaign (job handler)."""
    campaign_id = int(context.payload["campaign_id"])
    base = public_base(context.settings)
    with context.unit_of_work() as session:
        campaign = session.get(Campaign, campaign_id)
        if campaign is None or campaign.state != CampaignState.published:
            return
        run = results_repository.current_run(session, campaign_id=campaign_id)
        if run is None:
            return
        # A scorecard exists for the candidates of the published run (its category there).
        categories = {
            rank.authority_code: rank.category
            for rank in results_repository.rank_rows(session, run_id=int(run.id or 0))
        }
        config = parse_config(campaign.config)
        labels = {
            "fr": {category.key: category.label_fr for category in config.categories},
            "en": {category.key: category.label_en for category in config.categories},
        }
        done = notified_user_ids(session, template=TEMPLATE, campaign_id=campaign_id)
        sent = 0
        for contact in candidate_contacts(session, campaign_id):
            user, authority = contact.user, contact.authority
            category = categories.get(authority.code)
            if category is None or user.id in done:
                continue
            language = user.language if user.language in labels else "fr"
            path = SCORECARD_PATH.format(campaign_id=campaign_id, code=authority.code)
            queue_email(
                session,
                settings=context.settings,
                to=user.email,
                language=language,
                template=TEMPLATE,
                context={
                    "name": user.display_name,
                    "authority": authority.name,
                    "campaign": campaign.name,
                    "year": campaign.year,
                    "category": labels[language].get(category, category),
                    "url": base + path,
                    "results_url": base + RESULTS_PATH.format(year=campaign.year),
                },
                object_type=OBJECT_TYPE,
                object_id=f"{campaign_id}:{user.id}",
            )
            sent += 1
        record_audit(
            session,
            actor=None,
            action="publication.notify",
            object_type="campaign",
            object_id=campaign_id,
            after={"count": sent},
        )
