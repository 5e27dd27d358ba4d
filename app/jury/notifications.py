"""E-mails to jurors when their categories are ready.

The jury deliberates on every category at once, from the moment the campaign is scored (its
frozen run exists; :data:`app.jury.service.DELIBERATION_STATES`): there is no readiness per
category. Entering ``scored`` therefore enqueues one ``notify.jury_ready`` job per campaign,
which queues one ``jury_category_ready`` e-mail per active juror, listing the categories that
have candidates, and never a second one (the outbox is checked for each juror first:
``campaign_user`` / ``"{campaign}:{user}"``).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, col, select

from app.accounts.models import User
from app.campaigns import repository as campaigns_repository
from app.campaigns.models import Campaign, CampaignState
from app.campaigns.service import parse_config
from app.core.urls import public_base
from app.jobs import service as jobs
from app.jobs.worker import JobContext
from app.jury import repository
from app.mail.models import OutboxMessage
from app.mail.service import queue_email
from app.results import repository as results_repository

JOB_KIND = "notify.jury_ready"
TEMPLATE = "jury_category_ready"
OBJECT_TYPE = "campaign_user"
# ``jury_home`` (app/jury/routes.py), written out: the routes module loads the plotting stack.
WORKSPACE_PATH = "/campaigns/{campaign_id}/jury"


@dataclass(frozen=True)
class ReadyCategory:
    label: str
    candidates: int


def notified_user_ids(session: Session, *, campaign_id: int) -> set[int]:
    """The jurors whose e-mail about this campaign is in the outbox already."""
    prefix = f"{campaign_id}:"
    object_ids = session.exec(
        select(OutboxMessage.object_id).where(
            col(OutboxMessage.template) == TEMPLATE,
            col(OutboxMessage.object_type) == OBJECT_TYPE,
            col(OutboxMessage.object_id).startswith(prefix),
        )
    ).all()
    return {int(value.removeprefix(prefix)) for value in object_ids if value}


def candidate_counts(session: Session, campaign: Campaign) -> dict[str, int]:
    """Candidates per category, as the jury home counts them: in the current run (in the
    registrations when there is no run)."""
    campaign_id = int(campaign.id or 0)
    run = results_repository.current_run(session, campaign_id=campaign_id)
    if run is None:
        return campaigns_repository.count_candidates_by_category(session, campaign_id)
    counts = results_repository.category_counts(session, run_id=int(run.id or 0))
    return {key: total for key, (total, _eligible) in counts.items()}


def ready_categories(
    campaign: Campaign, counts: dict[str, int], language: str
) -> list[ReadyCategory]:
    """The categories with candidates, in the campaign's order, named in ``language``."""
    return [
        ReadyCategory(
            label=category.label(language),
            candidates=counts[category.key],
        )
        for category in parse_config(campaign.config).categories
        if counts.get(category.key)
    ]


def campaign_scored(session: Session, *, campaign: Campaign, actor: User | None) -> None:
    """Hook of :data:`app.campaigns.service.ON_ENTER_STATE`: enqueue the jurors' e-mails
    (once per campaign), unless there is no juror to tell."""
    if not repository.jurors(session):
        return
    campaign_id = int(campaign.id or 0)
    jobs.enqueue(
        session,
        JOB_KIND,
        {"campaign_id": campaign_id},
        dedupe_key=f"{JOB_KIND}:{campaign_id}",
        actor=actor,
    )


def notify_jury_ready(context: JobContext) -> None:
    """Queue the ``jury_category_ready`` e-mail to every active juror (job handler)."""
    campaign_id = int(context.payload["campaign_id"])
    base = public_base(context.settings)
    with context.unit_of_work() as session:
        campaign = session.get(Campaign, campaign_id)
        # Once the jury has deliberated, the invitation to deliberate is moot.
        if campaign is None or campaign.state != CampaignState.scored:
            return
        done = notified_user_ids(session, campaign_id=campaign_id)
        counts = candidate_counts(session, campaign)
        by_language: dict[str, list[ReadyCategory]] = {}
        url = base + WORKSPACE_PATH.format(campaign_id=campaign_id)
        for juror in repository.jurors(session):
            if juror.id in done:
                continue
            language = juror.language if juror.language in ("fr", "en") else "fr"
            if language not in by_language:
                by_language[language] = ready_categories(campaign, counts, language)
            queue_email(
                session,
                settings=context.settings,
                to=juror.email,
                language=language,
                template=TEMPLATE,
                context={
                    "name": juror.display_name,
                    "campaign": campaign.name,
                    "year": campaign.year,
                    "categories": by_language[language],
                    "url": url,
                },
                object_type=OBJECT_TYPE,
                object_id=f"{campaign_id}:{juror.id}",
            )
