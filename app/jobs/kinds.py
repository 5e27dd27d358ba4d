"""Every kind of job, with the function that does it.

Handlers are named as ``module:function`` and imported when a worker first runs one: this
module imports no domain, so enqueueing a job costs nothing at import, and the worker pays
for scipy only when it scores.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.core.labels import N_
from app.jobs.models import Queue


@dataclass(frozen=True)
class JobKind:
    handler: str
    label: str
    queue: Queue = Queue.default
    max_attempts: int = 5
    # Called (``module:function``, with the session and the job) in the transaction that marks
    # the job failed after its last attempt, so the object it worked on can say so.
    on_give_up: str | None = None


KINDS: dict[str, JobKind] = {
    "scoring.run": JobKind(
        handler="app.results.jobs:run_scoring_job",
        label=N_("Scoring run"),
        queue=Queue.long,
        # Scoring errors are written on the run and not retried; attempts are for crashes.
        max_attempts=3,
        on_give_up="app.results.jobs:scoring_job_gave_up",
    ),
    "mail.send": JobKind(
        handler="app.mail.service:send_message_job",
        label=N_("E-mail"),
        max_attempts=8,
        on_give_up="app.mail.service:message_gave_up",
    ),
    # The notices below only queue e-mails (each sent by its own ``mail.send`` job).
    "notify.visit_correction": JobKind(
        handler="app.reviews.notifications:notify_visit_correction",
        label=N_("Notice: report to correct"),
    ),
    "notify.scorecards_published": JobKind(
        handler="app.publication.notifications:notify_scorecards_published",
        label=N_("Notice: scorecards published"),
    ),
    "notify.jury_ready": JobKind(
        handler="app.jury.notifications:notify_jury_ready",
        label=N_("Notice: the jury can deliberate"),
    ),
    # Citizens invited by e-mail (app.collection.email_invitations): the invitations of an
    # uploaded list, a batch at a time, then the one reminder of everyone then due.
    "citizen.invitations": JobKind(
        handler="app.collection.email_invitations:send_invitations",
        label=N_("Invitations to citizens"),
    ),
    "citizen.reminders": JobKind(
        handler="app.collection.email_invitations:send_reminders",
        label=N_("Reminders to invited citizens"),
    ),
    # Analyst exports (app.exports.service): built in the long queue (a million responses take
    # minutes), their files deleted when they expire.
    "exports.build": JobKind(
        handler="app.exports.service:build_export_job",
        label=N_("Data export"),
        queue=Queue.long,
        max_attempts=3,
        on_give_up="app.exports.service:build_gave_up",
    ),
    "exports.expire": JobKind(
        handler="app.exports.service:expire_export_job",
        label=N_("Deletion of an expired export"),
    ),
}
