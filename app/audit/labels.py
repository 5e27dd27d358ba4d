"""Words for the audit trail's codes: actions, object types and action groups.

The values are English msgids marked with ``N_`` so that Babel extracts them; pages translate
them at render time, the CSV export when it starts. A code missing here is shown as it is
(a new action is readable, if not pretty, before it gets its label).
"""

from __future__ import annotations

from app.core.labels import N_

ACTION_LABELS: dict[str, str] = {
    "campaign.config": N_("Campaign settings changed"),
    "campaign.create": N_("Campaign created"),
    "campaign.pin_instrument": N_("Instrument version pinned to the campaign"),
    "campaign.transition": N_("Campaign state changed"),
    "candidate.import": N_("Candidates imported"),
    "candidate.register": N_("Candidate registered"),
    "candidate.withdraw": N_("Candidate withdrawn"),
    "email.queued": N_("E-mail queued for sending"),
    "evidence.upload": N_("Evidence uploaded"),
    "instrument.publish": N_("Instrument version published"),
    "invitation.opt_out": N_("Recipient opted out of invitations"),
    "invitations.email_upload": N_("Invitation addresses uploaded"),
    "invitations.erase_addresses": N_("Invitation addresses erased"),
    "job.enqueued": N_("Background job queued"),
    "job.failed": N_("Background job failed"),
    "jury.comment": N_("Jury comment posted"),
    "jury.conflict": N_("Juror's conflict of interest declared"),
    "jury.president": N_("Jury president designated"),
    "jury.sign": N_("Award decision signed"),
    "jury.vote": N_("Jury vote cast"),
    "mission.reassign": N_("Mission reassigned"),
    "missions.generate": N_("Missions generated"),
    "missions.import_assignments": N_("Mission assignments imported"),
    "missions.regenerate": N_("Missions regenerated"),
    "publication.notify": N_("Publication announced"),
    "exports.downloaded": N_("Data export downloaded"),
    "exports.requested": N_("Data export requested"),
    "results.preview": N_("Provisional preview computed"),
    "results.score": N_("Scores computed"),
    "scenario.create": N_("Scenario created"),
    "shopper.conflict": N_("Shopper's conflict of interest declared"),
    "user.create": N_("Account created"),
    "user.deactivate": N_("Account deactivated"),
    "user.invite": N_("Invitation link created"),
    "user.password_reset": N_("Password reset"),
    "user.password_reset_requested": N_("Password reset requested"),
    "user.reactivate": N_("Account reactivated"),
    "user.set_password": N_("Password chosen"),
    "user.update": N_("Account updated"),
    "visit.bulk_approve": N_("Visit approved with others"),
    "visit.comment": N_("Comment on a visit"),
    "visit.correct": N_("Corrected visit back in review"),
    "visit.reopen": N_("Approved visit reopened"),
    "visit.review": N_("Visit reviewed"),
    "visit.revise": N_("Visit revision submitted"),
    "visit.submit": N_("Visit submitted"),
}

# The first part of an action code ("user" in "user.create"): the filter offers each group.
ACTION_GROUP_LABELS: dict[str, str] = {
    "campaign": N_("Campaigns"),
    "candidate": N_("Candidates"),
    "email": N_("E-mails"),
    "evidence": N_("Evidence"),
    "exports": N_("Data exports"),
    "instrument": N_("Instruments"),
    "invitation": N_("Survey invitations"),
    "invitations": N_("Invitation address lists"),
    "job": N_("Background jobs"),
    "jury": N_("Jury"),
    "mission": N_("Missions"),
    "missions": N_("Mission planning"),
    "publication": N_("Publication"),
    "results": N_("Results"),
    "scenario": N_("Scenarios"),
    "shopper": N_("Shoppers"),
    "user": N_("Accounts"),
    "visit": N_("Visits"),
}

OBJECT_TYPE_LABELS: dict[str, str] = {
    "award_decision": N_("Award decision"),
    "campaign": N_("Campaign"),
    "candidate": N_("Candidate"),
    "email": N_("E-mail"),
    "export": N_("Data export"),
    "instrument_version": N_("Instrument version"),
    "invitation": N_("Survey invitation"),
    "job": N_("Background job"),
    "jury_comment": N_("Jury comment"),
    "jury_conflict": N_("Juror's conflict of interest"),
    "jury_vote": N_("Jury vote"),
    "mission": N_("Mission"),
    "outbox_message": N_("E-mail"),
    "publication": N_("Publication"),
    "scoring_run": N_("Scoring run"),
    "user": N_("Account"),
    "visit": N_("Visit"),
    "visit_evidence": N_("Visit evidence"),
}


def action_label(action: str) -> str:
    """The msgid naming ``action``, or the code itself when it has none yet."""
    return ACTION_LABELS.get(action, action)


def action_group(action: str) -> str:
    return action.split(".", 1)[0]


def action_group_label(group: str) -> str:
    return ACTION_GROUP_LABELS.get(group, group)


def object_type_label(object_type: str) -> str:
    return OBJECT_TYPE_LABELS.get(object_type, object_type)
