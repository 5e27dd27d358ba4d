"""The e-mail that tells a shopper their report was sent back for correction.

:func:`app.reviews.service.transition` enqueues a ``notify.visit_correction`` job when a
reviewer moves a visit to ``has_issues``; the job queues the ``visit_needs_correction``
e-mail. A job rather than an e-mail queued in the review itself: the e-mail's link is
absolute, and the review service has neither the request nor the settings (the page, the API
and the demo call it), while a job's handler has the settings.
"""

from __future__ import annotations

import uuid

from sqlmodel import Session, col, select

from app.accounts.models import User
from app.authorities.models import Authority
from app.campaigns.models import Campaign
from app.core.urls import public_base
from app.jobs.worker import JobContext
from app.mail.models import OutboxMessage
from app.mail.service import queue_email
from app.missions.models import Mission, ReviewEvent, ReviewState, Visit

TEMPLATE = "visit_needs_correction"
OBJECT_TYPE = "review_event"
# The shopper's report page (``visit_form`` in app/visits/routes.py), where the thread is read
# and the correction filed. Written out: importing app.visits here would be a cycle (app.visits
# calls the review service).
REPORT_PATH = "/me/missions/{mission_id}/report"


def already_queued(session: Session, *, template: str, object_type: str, object_id: str) -> bool:
    """Whether the outbox holds this message already (whatever became of it since)."""
    found = session.exec(
        select(OutboxMessage.id)
        .where(
            col(OutboxMessage.template) == template,
            col(OutboxMessage.object_type) == object_type,
            col(OutboxMessage.object_id) == object_id,
        )
        .limit(1)
    ).first()
    return found is not None


def notify_visit_correction(context: JobContext) -> None:
    """Queue the ``visit_needs_correction`` e-mail to the visit's shopper (job handler).

    Nothing is sent when the shopper is gone or inactive, when the visit was corrected (or
    decided) before the job ran, or when this decision's e-mail is in the outbox already.
    """
    event_id = int(context.payload["event_id"])
    with context.unit_of_work() as session:
        event = session.get(ReviewEvent, event_id)
        visit = session.get(Visit, uuid.UUID(str(context.payload["visit_id"])))
        if event is None or visit is None or event.visit_id != visit.id:
            return
        if visit.review_state != ReviewState.has_issues or visit.revision != event.revision:
            return
        shopper = session.get(User, visit.shopper_id) if visit.shopper_id is not None else None
        if shopper is None or not shopper.is_active:
            return
        if already_queued(
            session, template=TEMPLATE, object_type=OBJECT_TYPE, object_id=str(event_id)
        ):
            return
        mission = session.get(Mission, visit.mission_id)
        assert mission is not None
        authority = session.get(Authority, mission.authority_code)
        campaign = session.get(Campaign, mission.campaign_id)
        assert authority is not None and campaign is not None
        path = REPORT_PATH.format(mission_id=mission.id)
        queue_email(
            session,
            settings=context.settings,
            to=shopper.email,
            language=shopper.language,
            template=TEMPLATE,
            context={
                "name": shopper.display_name,
                "authority": authority.name,
                "campaign": campaign.name,
                "channel": mission.channel,
                "due": mission.window_end,
                "comment": event.comment,
                "url": public_base(context.settings) + path,
            },
            object_type=OBJECT_TYPE,
            object_id=event_id,
        )
