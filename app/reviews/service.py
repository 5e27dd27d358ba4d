"""The review of mystery-shopper visits: a state machine, its thread, and bulk approval.

States are ODK Central's (``received``, ``has_issues``, ``approved``, ``rejected``). The machine:

==============  ============  =====================  ========  ============================
from            to            who                    comment   the mission becomes
==============  ============  =====================  ========  ============================
received        approved      reviewer, admin        optional  approved (it counts)
received        has_issues    reviewer, admin        required  (stays submitted)
received        rejected      reviewer, admin        required  assigned: to be redone
has_issues      rejected      reviewer, admin        required  assigned: to be redone
has_issues      received      the visit's shopper,   optional  (stays submitted)
                              through a correction
                              (:func:`reopen_after_correction`) only
approved        received      admin only             required  submitted (no longer counts)
==============  ============  =====================  ========  ============================

Decisions:

- ``approved`` and ``rejected`` are final for reviewers. An administrator may reopen an
  approved visit (a mistake found later), with a reason, while the campaign is still open or
  closed; once scored, the frozen runs stand and the visit stays as it was. A rejected visit
  is never reopened: its mission goes back to ``assigned`` so the shopper (or another one,
  after reassignment) reports a new visit, under a new id.
- ``has_issues`` → ``approved`` directly is refused: the shopper corrects first (a new
  revision), which puts the visit back to ``received``. A report the shopper cannot fix is
  rejected.
- Reviews happen while the campaign is ``open`` or ``closed`` (reports arrive after the
  close); from ``scored`` on, nothing changes.
- Every transition is a :class:`ReviewEvent` (the thread the shopper reads) and an audit row;
  a transition outside the machine raises :class:`Conflict` (409) before anything changes.
- A page posts the state it saw (``expected_state``) and the revision: if the visit moved on
  meanwhile (another reviewer, a correction), the action is refused rather than applied to
  content nobody read.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

import surveys
from app.accounts.models import Role, User
from app.audit.models import record_audit
from app.campaigns.models import Campaign, CampaignState
from app.core.db import row_id
from app.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from app.core.i18n import _
from app.core.labels import N_
from app.core.timeutil import utcnow
from app.instruments.service import load_published
from app.jobs import service as jobs
from app.missions.models import (
    Mission,
    MissionState,
    ReviewEvent,
    ReviewState,
    Visit,
    VisitEvidence,
    VisitRevision,
)
from app.results.inputs import store_visit_scores
from app.reviews import repository
from app.reviews.anomalies import Anomaly, VisitFacts, visit_anomalies
from app.reviews.sheets import (
    RevisionDiff,
    SheetLine,
    answer_sheet,
    diff_contents,
    timing_lines,
)

REVIEW_ROLES = frozenset({Role.reviewer, Role.admin})
REVIEWABLE_CAMPAIGN_STATES = frozenset({CampaignState.open, CampaignState.closed})
MAX_COMMENT_LENGTH = 4000
MAX_BULK = 500


@dataclass(frozen=True)
class TransitionRule:
    roles: frozenset[Role]
    needs_comment: bool


REVIEW_TRANSITIONS: dict[tuple[ReviewState, ReviewState], TransitionRule] = {
    (ReviewState.received, ReviewState.approved): TransitionRule(REVIEW_ROLES, False),
    (ReviewState.received, ReviewState.has_issues): TransitionRule(REVIEW_ROLES, True),
    (ReviewState.received, ReviewState.rejected): TransitionRule(REVIEW_ROLES, True),
    (ReviewState.has_issues, ReviewState.rejected): TransitionRule(REVIEW_ROLES, True),
    (ReviewState.approved, ReviewState.received): TransitionRule(frozenset({Role.admin}), True),
}
# Only a correction moves has_issues → received; no review button does.
CORRECTION = (ReviewState.has_issues, ReviewState.received)


def allowed_targets(state: str, role: str) -> list[ReviewState]:
    """The states a user of this role may move a visit to from ``state`` (for the buttons)."""
    return [
        target
        for (source, target), rule in REVIEW_TRANSITIONS.items()
        if source == state and role in rule.roles
    ]


def _short(visit: Visit) -> str:
    return str(visit.id)[:8]


def _check_campaign(session: Session, mission: Mission) -> None:
    campaign = session.get(Campaign, mission.campaign_id)
    if campaign is None or CampaignState(campaign.state) not in REVIEWABLE_CAMPAIGN_STATES:
        state = _(campaign.state) if campaign is not None else "?"
        raise Conflict(
            _("The campaign is %(state)s: its visits can no longer be reviewed.") % {"state": state}
        )


def _refuse_outside_machine(visit: Visit, to_state: str) -> None:
    targets = sorted(
        {str(target) for (source, target) in REVIEW_TRANSITIONS if source == visit.review_state}
    )
    allowed = ", ".join(_(target) for target in targets) or _("none (final state)")
    raise Conflict(
        _(
            "Visit %(visit)s is %(state)s: it cannot be moved to %(target)s "
            "(possible from %(state)s: %(allowed)s)."
        )
        % {
            "visit": _short(visit),
            "state": _(visit.review_state),
            "target": _(to_state),
            "allowed": allowed,
        }
    )


def _clean_comment(comment: str) -> str:
    comment = comment.strip()
    if len(comment) > MAX_COMMENT_LENGTH:
        raise InvalidInput(
            _("The comment is longer than %(max)d characters.") % {"max": MAX_COMMENT_LENGTH},
            field="comment",
        )
    return comment


def _mission_after(
    mission: Mission, to_state: ReviewState, from_state: ReviewState, at: datetime
) -> None:
    before = mission.state
    if to_state == ReviewState.approved:
        mission.state = MissionState.approved
    elif to_state == ReviewState.rejected:
        mission.state = MissionState.assigned if mission.shopper_id else MissionState.planned
    elif from_state == ReviewState.approved:
        mission.state = MissionState.submitted
    if mission.state != before:
        mission.updated_at = at


def _apply(
    session: Session,
    *,
    visit: Visit,
    mission: Mission,
    to_state: ReviewState,
    actor: User,
    comment: str,
    action: str = "visit.review",
    at: datetime | None = None,
) -> ReviewEvent:
    from_state = ReviewState(visit.review_state)
    mission_before = mission.state
    moment = at or utcnow()
    visit.review_state = to_state
    visit.updated_at = moment
    if to_state == ReviewState.approved:
        # Its content is final: score it now, once, for every scoring run to read.
        store_visit_scores(session, visit=visit, authority_code=mission.authority_code)
    _mission_after(mission, to_state, from_state, moment)
    event = ReviewEvent(
        visit_id=visit.id,
        revision=visit.revision,
        author_id=row_id(actor),
        from_state=from_state,
        to_state=to_state,
        comment=comment,
        created_at=moment,
    )
    session.add_all([visit, mission, event])
    record_audit(
        session,
        actor=actor,
        action=action,
        object_type="visit",
        object_id=visit.id,
        before={"review_state": from_state.value, "mission_state": mission_before},
        after={
            "review_state": to_state.value,
            "mission_state": mission.state,
            "revision": visit.revision,
            "comment": comment,
        },
    )
    return event


def _check_fresh(visit: Visit, expected_state: str | None, expected_revision: int | None) -> None:
    moved = (expected_state is not None and expected_state != visit.review_state) or (
        expected_revision is not None and expected_revision != visit.revision
    )
    if moved:
        raise Conflict(
            _(
                "Visit %(visit)s changed since you opened it (it is now %(state)s, revision "
                "%(revision)d): read it again before deciding."
            )
            % {"visit": _short(visit), "state": _(visit.review_state), "revision": visit.revision}
        )


def transition(
    session: Session,
    *,
    visit_id: uuid.UUID,
    to_state: str,
    actor: User,
    comment: str = "",
    expected_state: str | None = None,
    expected_revision: int | None = None,
    at: datetime | None = None,
) -> ReviewEvent:
    """Move one visit through the review machine, or refuse with nothing changed.

    ``at`` (default: now) dates a decision taken in the past (the demo's editions).
    """
    visit = repository.get_visit(session, visit_id, for_update=True)
    if visit is None:
        raise NotFound(_("No visit %(id)s.") % {"id": str(visit_id)[:8]})
    if actor.role not in REVIEW_ROLES:
        raise Forbidden(_("Only reviewers and administrators review visits."))
    try:
        target = ReviewState(to_state)
    except ValueError:
        raise InvalidInput(_("Unknown review state."), field="to_state") from None
    _check_fresh(visit, expected_state, expected_revision)
    rule = REVIEW_TRANSITIONS.get((ReviewState(visit.review_state), target))
    if rule is None:
        _refuse_outside_machine(visit, target)
    assert rule is not None
    if actor.role not in rule.roles:
        raise Forbidden(
            _("Only an administrator may move a visit from %(from)s to %(to)s.")
            % {"from": _(visit.review_state), "to": _(target)}
        )
    comment = _clean_comment(comment)
    if rule.needs_comment and not comment:
        raise InvalidInput(_("Say why in the comment: the shopper reads it."), field="comment")
    mission = repository.get_mission(session, visit.mission_id)
    assert mission is not None
    _check_campaign(session, mission)
    action = "visit.reopen" if visit.review_state == ReviewState.approved else "visit.review"
    event = _apply(
        session,
        visit=visit,
        mission=mission,
        to_state=target,
        actor=actor,
        comment=comment,
        action=action,
        at=at,
    )
    session.flush()
    if target == ReviewState.has_issues:
        _announce_correction(session, visit=visit, event=event, actor=actor)
    return event


def _announce_correction(
    session: Session, *, visit: Visit, event: ReviewEvent, actor: User
) -> None:
    """Tell the shopper their report is to be corrected, once this decision is committed.

    A job (``notify.visit_correction``, :mod:`app.reviews.notifications`) rather than the
    e-mail itself: the e-mail carries an absolute link, and this function has no request and
    no settings (the page, the API and the demo call it); the job's handler has them.
    """
    shopper = session.get(User, visit.shopper_id) if visit.shopper_id is not None else None
    if shopper is None or not shopper.is_active:
        return
    event_id = row_id(event)
    jobs.enqueue(
        session,
        "notify.visit_correction",
        {"visit_id": str(visit.id), "event_id": event_id},
        dedupe_key=f"notify.visit_correction:{event_id}",
        actor=actor,
    )


def add_comment(session: Session, *, visit_id: uuid.UUID, actor: User, comment: str) -> ReviewEvent:
    """A comment on the thread without a state change (staff, or the visit's own shopper)."""
    visit = repository.get_visit(session, visit_id)
    if visit is None or (actor.role not in REVIEW_ROLES and visit.shopper_id != actor.id):
        raise NotFound(_("No visit %(id)s.") % {"id": str(visit_id)[:8]})
    comment = _clean_comment(comment)
    if not comment:
        raise InvalidInput(_("Write a comment first."), field="comment")
    event = ReviewEvent(
        visit_id=visit.id, revision=visit.revision, author_id=row_id(actor), comment=comment
    )
    session.add(event)
    record_audit(
        session,
        actor=actor,
        action="visit.comment",
        object_type="visit",
        object_id=visit.id,
        after={"revision": visit.revision},
    )
    session.flush()
    return event


def bulk_approve(
    session: Session,
    *,
    visit_ids: Iterable[uuid.UUID],
    actor: User,
    comment: str = "",
    at: datetime | None = None,
) -> int:
    """Approve several received visits at once: all of them, or none (409 naming the first
    visit that cannot be approved). The caller's transaction holds them together. ``at``
    (default: now) dates a review done in the past (the demo's editions)."""
    wanted = list(dict.fromkeys(visit_ids))
    if not wanted:
        raise InvalidInput(_("Select at least one visit to approve."), field="visit_id")
    if len(wanted) > MAX_BULK:
        raise InvalidInput(
            _("Approve at most %(max)d visits at once.") % {"max": MAX_BULK}, field="visit_id"
        )
    if actor.role not in REVIEW_ROLES:
        raise Forbidden(_("Only reviewers and administrators review visits."))
    comment = _clean_comment(comment)
    visits = repository.visits_by_id(session, wanted, for_update=True)
    for visit_id in wanted:
        visit = visits.get(visit_id)
        if visit is None:
            raise Conflict(_("No visit %(id)s: nothing was approved.") % {"id": str(visit_id)[:8]})
        if visit.review_state != ReviewState.received:
            raise Conflict(
                _(
                    "Visit %(visit)s is %(state)s, not received: nothing was approved. "
                    "Unselect it and try again."
                )
                % {"visit": _short(visit), "state": _(visit.review_state)}
            )
    missions = repository.missions_by_id(session, [visit.mission_id for visit in visits.values()])
    checked: set[int] = set()
    for visit_id in wanted:
        mission = missions[visits[visit_id].mission_id]
        if mission.campaign_id not in checked:
            _check_campaign(session, mission)
            checked.add(mission.campaign_id)
    for visit_id in wanted:
        visit = visits[visit_id]
        _apply(
            session,
            visit=visit,
            mission=missions[visit.mission_id],
            to_state=ReviewState.approved,
            actor=actor,
            comment=comment,
            action="visit.bulk_approve",
            at=at,
        )
    session.flush()
    return len(wanted)


def reopen_after_correction(
    session: Session,
    *,
    visit: Visit,
    actor: User,
    comment: str = "",
    at: datetime | None = None,
) -> ReviewEvent:
    """has_issues → received, after the shopper's correction: the only way back to review.

    For the shopper's side (``app/visits``): call it in the same transaction, *after* storing
    the correction (the new :class:`VisitRevision` row, the visit's new content and
    ``revision`` + 1). It checks the visit is ``has_issues`` (else 409, nothing changed) and
    that ``actor`` is the visit's shopper (or an administrator correcting for them), then
    records the event (about the new revision) and an audit row. It flushes; it does not
    commit.
    """
    if actor.role != Role.admin and visit.shopper_id != actor.id:
        raise Forbidden(_("Only the shopper who reported this visit may correct it."))
    if visit.review_state != ReviewState.has_issues:
        raise Conflict(
            _("Visit %(visit)s is %(state)s: only a visit with issues can be corrected.")
            % {"visit": _short(visit), "state": _(visit.review_state)}
        )
    mission = repository.get_mission(session, visit.mission_id)
    assert mission is not None
    _check_campaign(session, mission)
    event = _apply(
        session,
        visit=visit,
        mission=mission,
        to_state=ReviewState.received,
        actor=actor,
        comment=_clean_comment(comment),
        action="visit.correct",
        at=at,
    )
    session.flush()
    return event


# --- what reviewers read: anomaly hints, the queue and one visit --------------------------------

ANOMALY_LABELS = {
    "outside_window": N_("Outside the window"),
    "implausible_duration": N_("Implausible duration"),
    "timing_mismatch": N_("Timings disagree"),
    "missing_proof": N_("Missing proof"),
    "late_submission": N_("Submitted late"),
    "burst": N_("Many visits in minutes"),
}


def describe_anomaly(anomaly: Anomaly) -> str:
    """The sentence a reviewer reads under a badge."""
    values = dict(anomaly.values)
    if anomaly.code == "outside_window":
        message = _("Visited on %(date)s, outside the mission's window (%(start)s to %(end)s).")
        return message % values
    if anomaly.code == "implausible_duration":
        return _("%(item)s: %(seconds)s s is not a plausible duration.") % {
            "item": anomaly.item,
            "seconds": f"{values['seconds']:g}",
        }
    if anomaly.code == "timing_mismatch" and values.get("unit") == "taps":
        return _("%(item)s: %(answered)s answered, but the counter recorded %(measured)s taps.") % {
            "item": anomaly.item,
            "answered": f"{values['answered']:g}",
            "measured": values["measured"],
        }
    if anomaly.code == "timing_mismatch":
        return _(
            "%(item)s: %(answered)s s answered, but the stopwatch measured %(measured)s s."
        ) % {
            "item": anomaly.item,
            "answered": f"{values['answered']:g}",
            "measured": values["measured"],
        }
    if anomaly.code == "missing_proof":
        if anomaly.item:
            return _("No proof attached to %(item)s.") % {"item": anomaly.item}
        return _("No proof attached, although this channel's grid asks for one.")
    if anomaly.code == "late_submission":
        message = _("Submitted %(days)d days after the last observed date (more than %(allowed)d).")
        return message % values
    if anomaly.code == "burst":
        return _("The shopper reported %(count)d visits within %(minutes)d minutes.") % values
    return anomaly.code


def _grid_keys(instrument: surveys.Instrument) -> dict[str, tuple[str, ...]]:
    return {
        kind: tuple(item.key for item in instrument.items if item.type == kind)
        for kind in ("duration", "count", "date")
    }


def hints_for_visits(
    session: Session, rows: list[tuple[Visit, Mission]]
) -> dict[uuid.UUID, tuple[Anomaly, ...]]:
    """The anomaly hints of each visit (a few queries for the whole list)."""
    if not rows:
        return {}
    versions = repository.instrument_versions(
        session, {visit.instrument_version_id for visit, _mission in rows}
    )
    grid_keys = {
        version_id: _grid_keys(load_published(version)) for version_id, version in versions.items()
    }
    evidence = repository.evidence_summary(session, [visit.id for visit, _mission in rows])
    moments = repository.visit_moments_of_shoppers(
        session, [visit.shopper_id for visit, _mission in rows if visit.shopper_id is not None]
    )
    found: dict[uuid.UUID, tuple[Anomaly, ...]] = {}
    for visit, mission in rows:
        keys = grid_keys.get(visit.instrument_version_id, {})
        proofs = evidence.get(visit.id, [])
        others = [
            moment
            for other_id, moment in moments.get(visit.shopper_id or 0, [])
            if other_id != visit.id
        ]
        facts = VisitFacts(
            channel=mission.channel,
            window_start=mission.window_start,
            window_end=mission.window_end,
            submitted_at=visit.submitted_at,
            visited_at=visit.visited_at,
            answers=visit.answers or {},
            timings=visit.timings or {},
            duration_items=keys.get("duration", ()),
            count_items=keys.get("count", ()),
            date_items=keys.get("date", ()),
            evidence_count=len(proofs),
            evidence_items=[key for key in proofs if key],
            other_visits_of_shopper=others,
        )
        found[visit.id] = visit_anomalies(facts)
    return found


@dataclass(frozen=True)
class QueuePage:
    rows: list[repository.QueueRow]
    hints: dict[uuid.UUID, tuple[Anomaly, ...]]
    total: int
    page: int
    pages: int


QUEUE_PAGE_SIZE = 50
# With "anomalies only", hints are computed over the filtered visits before paging.
MAX_SCANNED_FOR_ANOMALIES = 20000


def review_queue(
    session: Session,
    *,
    filters: repository.QueueFilters,
    anomalies_only: bool,
    page: int,
    page_size: int = QUEUE_PAGE_SIZE,
) -> QueuePage:
    """One page of the queue, oldest submission first."""
    page = max(1, page)
    if anomalies_only:
        candidates = repository.queue_rows(session, filters, limit=MAX_SCANNED_FOR_ANOMALIES)
        hints = hints_for_visits(session, [(row.visit, row.mission) for row in candidates])
        flagged = [row for row in candidates if hints.get(row.visit.id)]
        total = len(flagged)
        pages = max(1, -(-total // page_size))
        page = min(page, pages)
        rows = flagged[(page - 1) * page_size : page * page_size]
        shown = {row.visit.id: hints[row.visit.id] for row in rows}
        return QueuePage(rows, shown, total, page, pages)
    total = repository.count_queue(session, filters)
    pages = max(1, -(-total // page_size))
    page = min(page, pages)
    rows = repository.queue_rows(session, filters, offset=(page - 1) * page_size, limit=page_size)
    hints = hints_for_visits(session, [(row.visit, row.mission) for row in rows])
    return QueuePage(rows, hints, total, page, pages)


@dataclass(frozen=True)
class VisitReview:
    detail: repository.VisitDetail
    instrument: surveys.Instrument
    sheet: list[SheetLine]
    timings: list[tuple[str, str]]

    @property
    def sections(self) -> list[tuple[str, list[SheetLine]]]:
        """The answer sheet grouped by the grid's sections, in form order."""
        grouped: list[tuple[str, list[SheetLine]]] = []
        for line in self.sheet:
            if not grouped or grouped[-1][0] != line.section:
                grouped.append((line.section, []))
            grouped[-1][1].append(line)
        return grouped

    hints: tuple[Anomaly, ...]
    revisions: list[VisitRevision]
    diffs: list[RevisionDiff]
    thread: list[repository.ThreadEntry]
    evidence: list[VisitEvidence]


def visit_review(session: Session, *, visit_id: uuid.UUID) -> VisitReview:
    """Everything the visit page shows (staff only: it names the shopper)."""
    detail = repository.visit_detail(session, visit_id)
    if detail is None:
        raise NotFound(_("No visit %(id)s.") % {"id": str(visit_id)[:8]})
    instrument = load_published(detail.version)
    revisions = repository.revisions(session, visit_id)
    diffs: list[RevisionDiff] = []
    for previous, current in itertools.pairwise(revisions):
        changes = diff_contents(
            instrument,
            (previous.answers or {}, previous.timings or {}, previous.visited_at),
            (current.answers or {}, current.timings or {}, current.visited_at),
        )
        diffs.append(RevisionDiff(current.revision, tuple(changes)))
    hints = hints_for_visits(session, [(detail.visit, detail.mission)])
    return VisitReview(
        detail=detail,
        instrument=instrument,
        sheet=answer_sheet(instrument, detail.visit.answers or {}),
        timings=timing_lines(detail.visit.timings or {}),
        hints=hints.get(visit_id, ()),
        revisions=revisions,
        diffs=diffs,
        thread=repository.thread_for_visit(session, visit_id),
        evidence=repository.evidence_of_visit(session, visit_id),
    )
