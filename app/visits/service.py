"""The shopper's reporting: the mission's grid, evidence files, and exactly-once visit reports."""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlmodel import Session

import surveys
from app.accounts.models import Role, User
from app.audit.models import record_audit
from app.authorities.models import Authority
from app.campaigns.models import Campaign
from app.core.db import row_id
from app.core.errors import Conflict, DomainError, InvalidInput, NotFound
from app.core.i18n import _
from app.core.timeutil import utcnow
from app.instruments.models import InstrumentVersion
from app.instruments.service import load_published
from app.missions import repository as missions_repository
from app.missions.models import (
    Mission,
    MissionState,
    ReviewState,
    Scenario,
    Visit,
    VisitEvidence,
    VisitRevision,
)
from app.reviews.service import reopen_after_correction
from app.visits import repository
from app.visits.evidence import EvidenceRefused, clean_evidence
from app.visits.schemas import VisitAccepted

MAX_TIMINGS_BYTES = 16 * 1024
# Evidence can be added while the report is being written or corrected, not once it counts.
EVIDENCE_STATES = frozenset({MissionState.assigned, MissionState.submitted})


class PayloadTooLarge(DomainError):
    status_code = 413
    title = "Request too large"


class InvalidReport(InvalidInput):
    """Answers refused item by item; ``errors`` name each item and say what is wrong."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        super().__init__(summary, field=errors[0]["field"] if errors else None)
        self.errors = errors


@dataclass(frozen=True)
class ShopperMission:
    """A mission of the signed-in shopper with everything its report page needs."""

    mission: Mission
    authority: Authority
    scenario: Scenario | None
    campaign: Campaign
    version: InstrumentVersion
    instrument: surveys.Instrument

    @property
    def subdivision(self) -> str | None:
        return surveys.holiday_subdivision(self.authority.departement)

    def public_holidays(self) -> list[date]:
        """Holidays from the year before the window to the year after (delays span years)."""
        years = range(self.mission.window_start.year - 1, self.mission.window_end.year + 2)
        days: set[date] = set()
        for year in years:
            days |= surveys.workdays.public_holidays(year, self.subdivision)
        return sorted(days)


def shopper_mission(session: Session, *, shopper: User, mission_id: int) -> ShopperMission:
    """The shopper's own mission and its pinned grid; another shopper's mission is a 404."""
    found = missions_repository.mission_of_shopper(session, mission_id, row_id(shopper))
    if found is None:
        raise NotFound(_("No mission %(id)d among yours.") % {"id": mission_id})
    mission, authority, scenario, campaign = found
    version = repository.pinned_grid(session, row_id(campaign), mission.channel)
    if version is None:
        raise Conflict(
            _("The campaign has no grid pinned for the %(channel)s channel yet.")
            % {"channel": mission.channel}
        )
    return ShopperMission(mission, authority, scenario, campaign, version, load_published(version))


def comment_item(instrument: surveys.Instrument) -> surveys.Item | None:
    """The grid's free-text remarks, where every negative answer must be explained."""
    return next((item for item in instrument.items if item.type == "text"), None)


def failing_items(
    instrument: surveys.Instrument, answers: dict[str, Any], *, subdivision: str | None
) -> list[surveys.Item]:
    """Scored items whose answer earns nothing or trips a knock-out: they need a comment."""
    failing = []
    for item in instrument.items:
        if not item.scorable and item.knockout is None:
            continue
        if item.type == "delay":
            value: Any = surveys.delay_value(item, answers, subdivision=subdivision)
        else:
            value = answers.get(item.key)
        if value is None:
            continue
        try:
            score = surveys.item_score(item, value)
        except ValueError:
            continue
        # Weight 0 items are recorded, not scored ("the agent refused": "no" is not a failure).
        if (item.weight and score == 0) or _knocked_out(item, value):
            failing.append(item)
    return failing


def _knocked_out(item: surveys.Item, value: Any) -> bool:
    rule = item.knockout
    if rule is None:
        return False
    if rule.fail_if:
        return any(str(value) == str(failing) for failing in rule.fail_if)
    if value == surveys.NEVER:
        return True
    return isinstance(value, int | float) and rule.above is not None and value > rule.above


def _timings_errors(
    timings: dict[str, Any], instrument: surveys.Instrument
) -> list[dict[str, str]]:
    keys = {item.key for item in instrument.items}
    unknown = sorted(key for key in timings if key not in keys)
    if unknown:
        return [
            {
                "field": "timings",
                "code": "unknown_item",
                "message": _("Timings name items the grid does not have: %(keys)s.")
                % {"keys": ", ".join(unknown[:5])},
            }
        ]
    size = len(json.dumps(timings, ensure_ascii=False, default=str))
    if size > MAX_TIMINGS_BYTES:
        return [
            {
                "field": "timings",
                "code": "too_long",
                "message": _("The timings are too long."),
            }
        ]
    return []


def validate_report(
    target: ShopperMission, answers: dict[str, Any], timings: dict[str, Any]
) -> dict[str, Any]:
    """Clean answers of a complete report, or :class:`InvalidReport` with every problem."""
    instrument = target.instrument
    validation = surveys.validate_answers(instrument, answers)
    errors = [
        {"field": f"answers.{error.item}", "code": error.code, "message": error.message}
        for error in validation.errors
    ]
    clean = dict(validation.answers)
    comment = comment_item(instrument)
    if comment is not None and not clean.get(comment.key):
        failing = failing_items(instrument, clean, subdivision=target.subdivision)
        if failing and not any(e["field"] == f"answers.{comment.key}" for e in errors):
            labels = ", ".join(item.label.get("en") for item in failing)
            errors.append(
                {
                    "field": f"answers.{comment.key}",
                    "code": "comment_required",
                    "message": f"explain the negative answers: {labels}",
                    "items": ",".join(item.key for item in failing),
                }
            )
    errors.extend(_timings_errors(timings, instrument))
    if errors:
        raise InvalidReport(errors)
    return clean


def content_sha256(
    mission_id: int,
    answers: dict[str, Any],
    timings: dict[str, Any],
    visited_at: datetime | None,
    evidence: list[uuid.UUID],
) -> str:
    payload = {
        "mission": mission_id,
        "answers": answers,
        "timings": timings,
        "visited_at": visited_at.astimezone(UTC).isoformat() if visited_at else None,
        "evidence": sorted(str(evidence_id) for evidence_id in evidence),
    }
    canonical = json.dumps(
        payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _as_utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def visit_conflict() -> Conflict:
    return Conflict(_("A different report was already received with this id."), field="id")


def _accepted(revision: VisitRevision, mission_id: int) -> VisitAccepted:
    return VisitAccepted(
        id=revision.id,
        visit=revision.visit_id,
        mission=mission_id,
        revision=revision.revision,
        content_sha256=revision.content_sha256,
    )


def _replay(
    session: Session, revision: VisitRevision, sha256: str, mission_id: int
) -> tuple[VisitAccepted, bool]:
    visit = repository.get_visit(session, revision.visit_id)
    if visit is None or visit.mission_id != mission_id or revision.content_sha256 != sha256:
        raise visit_conflict()
    return _accepted(revision, mission_id), False


def _cited_evidence(
    session: Session, target: ShopperMission, shopper: User, evidence: list[uuid.UUID]
) -> list[uuid.UUID]:
    cited = list(dict.fromkeys(evidence))
    for evidence_id in cited:
        row = repository.get_evidence(session, evidence_id)
        if row is None or row.mission_id != target.mission.id or row.uploaded_by != shopper.id:
            raise InvalidInput(
                _("Evidence %(id)s was not uploaded for this mission.") % {"id": evidence_id},
                field="evidence",
            )
    return cited


def submit_visit(
    session: Session,
    *,
    shopper: User,
    mission_id: int,
    submission_id: uuid.UUID,
    answers: dict[str, Any],
    timings: dict[str, Any],
    visited_at: datetime | None,
    evidence: list[uuid.UUID],
    submitted_at: datetime | None = None,
) -> tuple[VisitAccepted, bool]:
    """Store a report exactly once, in the caller's transaction. Returns (accepted, created).

    A first report needs an assigned mission; a correction (a new id) needs a visit in
    has_issues. A replay of an id with the same content returns the same answer; the same id
    with other content is a conflict. Concurrent reports are settled by conditional updates of
    the mission (or the visit), never by a read-then-write race. ``submitted_at`` (default:
    now) dates a report received in the past (the demo's editions).
    """
    target = shopper_mission(session, shopper=shopper, mission_id=mission_id)
    mission = target.mission
    clean = validate_report(target, answers, timings)
    cited = _cited_evidence(session, target, shopper, evidence)
    moment = _as_utc(visited_at)
    sha256 = content_sha256(row_id(mission), clean, timings, moment, cited)

    existing = repository.get_revision(session, submission_id)
    if existing is not None:
        return _replay(session, existing, sha256, row_id(mission))

    visit = repository.visit_of_mission(session, row_id(mission))
    now = submitted_at or utcnow()
    if visit is None:
        if mission.state != MissionState.assigned or not repository.claim_mission(
            session, row_id(mission)
        ):
            return _lost_race(session, submission_id, sha256, mission)
        session.refresh(mission)
        visit = Visit(
            id=submission_id,
            mission_id=row_id(mission),
            instrument_version_id=row_id(target.version),
            answers=clean,
            timings=timings,
            content_sha256=sha256,
            submitted_at=now,
            shopper_id=shopper.id,
            visited_at=moment,
            updated_at=now,
        )
        revision = VisitRevision(
            id=submission_id,
            visit_id=submission_id,
            revision=1,
            answers=clean,
            timings=timings,
            content_sha256=sha256,
            visited_at=moment,
            submitted_at=now,
        )
        session.add(visit)
        session.flush()
        session.add(revision)
    else:
        if visit.review_state != ReviewState.has_issues or not repository.claim_correction(
            session,
            visit.id,
            visit.revision,
            {
                "answers": clean,
                "timings": timings,
                "content_sha256": sha256,
                "visited_at": moment,
                "updated_at": now,
            },
        ):
            return _lost_race(session, submission_id, sha256, mission)
        session.refresh(visit)
        revision = VisitRevision(
            id=submission_id,
            visit_id=visit.id,
            revision=visit.revision,
            answers=clean,
            timings=timings,
            content_sha256=sha256,
            visited_at=moment,
            submitted_at=now,
        )
        session.add(revision)
        session.flush()
        # has_issues → received through the review state machine (its event and audit row).
        reopen_after_correction(session, visit=visit, actor=shopper, at=now)
    session.flush()
    repository.link_evidence(session, visit.id, cited)
    record_audit(
        session,
        actor=shopper,
        action="visit.submit" if revision.revision == 1 else "visit.revise",
        object_type="visit",
        object_id=visit.id,
        after={"mission": mission.id, "revision": revision.revision, "sha256": sha256},
    )
    return _accepted(revision, row_id(mission)), True


def _lost_race(
    session: Session, submission_id: uuid.UUID, sha256: str, mission: Mission
) -> tuple[VisitAccepted, bool]:
    """Someone else changed the mission first: our own replay, or a real conflict."""
    existing = repository.get_revision(session, submission_id)
    if existing is not None:
        return _replay(session, existing, sha256, row_id(mission))
    visit = repository.visit_of_mission(session, row_id(mission))
    if visit is None:
        raise Conflict(
            _("This mission cannot take a report in its current state (%(state)s).")
            % {"state": _(mission.state)},
            field="mission",
        )
    raise Conflict(
        _("This mission was already reported; it can be corrected only when a reviewer asks."),
        field="mission",
    )


# --- evidence -------------------------------------------------------------------------------


def _refusal_message(refusal: EvidenceRefused) -> str:
    messages = {
        "empty": _("The file is empty."),
        "too_large": _("The file is larger than 10 MB: send a smaller photo or PDF."),
        "unsupported_type": _(
            "This kind of file is not accepted: send a JPEG, PNG or WebP image, or a PDF."
        ),
        "invalid_image": _("The image cannot be read: it is damaged or not what it claims."),
        "too_many_pixels": _("The image has too many pixels: send a smaller photo."),
        "invalid_pdf": _("The PDF file is incomplete or damaged."),
    }
    return messages.get(refusal.code, str(refusal))


def _store_file(evidence_dir: Path, relative: str, content: bytes) -> None:
    target = evidence_dir / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    temporary.write_bytes(content)
    os.replace(temporary, target)


def upload_evidence(
    session: Session,
    *,
    evidence_dir: Path,
    shopper: User,
    mission_id: int,
    evidence_id: uuid.UUID,
    data: bytes,
    filename: str,
    item_key: str | None,
) -> tuple[VisitEvidence, bool]:
    """Check, clean and store one proof; a replay of the same id and file is harmless."""
    target = shopper_mission(session, shopper=shopper, mission_id=mission_id)
    mission = target.mission
    if mission.state not in EVIDENCE_STATES:
        raise Conflict(
            _("Evidence cannot be added to a mission in the state %(state)s.")
            % {"state": _(mission.state)},
            field="file",
        )
    if item_key and item_key not in {item.key for item in target.instrument.items}:
        raise InvalidInput(_("The grid has no item %(key)s.") % {"key": item_key}, field="item")
    try:
        clean = clean_evidence(data)
    except EvidenceRefused as refusal:
        if refusal.code == "too_large":
            raise PayloadTooLarge(_refusal_message(refusal), field="file") from refusal
        raise InvalidInput(_refusal_message(refusal), field="file") from refusal

    def settle(existing: VisitEvidence) -> tuple[VisitEvidence, bool]:
        same = (
            existing.mission_id == mission.id
            and existing.uploaded_by == shopper.id
            and existing.sha256 == clean.sha256
        )
        if not same:
            raise Conflict(_("A different file was already received with this id."), field="id")
        return existing, False

    existing = repository.get_evidence(session, evidence_id)
    if existing is not None:
        return settle(existing)
    # Built from our own ids only: nothing the client sent reaches the path. The content's
    # hash in the name keeps a concurrent upload of another file under the same id (refused
    # with 409 below) from overwriting the file the stored row describes.
    relative = f"{mission.id}/{evidence_id}-{clean.sha256[:16]}.{clean.extension}"
    _store_file(evidence_dir, relative, clean.content)
    values = {
        "id": evidence_id,
        "mission_id": mission.id,
        "visit_id": None,
        "item_key": item_key or None,
        "uploaded_by": shopper.id,
        "media_type": clean.media_type,
        "size_bytes": len(clean.content),
        "sha256": clean.sha256,
        "storage_path": relative,
        "original_name": Path(filename or "").name[:200],
        "uploaded_at": utcnow(),
    }
    if not repository.insert_evidence_once(session, values):
        found = repository.get_evidence(session, evidence_id)
        assert found is not None
        return settle(found)
    record_audit(
        session,
        actor=shopper,
        action="evidence.upload",
        object_type="visit_evidence",
        object_id=evidence_id,
        after={"mission": mission.id, "media_type": clean.media_type, "sha256": clean.sha256},
    )
    stored = repository.get_evidence(session, evidence_id)
    assert stored is not None
    return stored, True


def evidence_for_download(
    session: Session, *, evidence_dir: Path, user: User, evidence_id: uuid.UUID
) -> tuple[VisitEvidence, Path]:
    """A proof for a reviewer, an admin, the shopper who sent it, or the jury once its visit
    is approved (what the jury deliberates on); others: 404."""
    row = repository.get_evidence(session, evidence_id)
    if row is None or (user.role == Role.shopper and row.uploaded_by != user.id):
        raise NotFound(_("No such evidence."))
    if user.role == Role.jury and not repository.evidence_of_approved_visit(session, row):
        raise NotFound(_("No such evidence."))
    base = evidence_dir.resolve()
    path = (base / row.storage_path).resolve()
    if not path.is_relative_to(base) or not path.is_file():
        raise NotFound(_("The evidence file is missing."))
    return row, path


def failing_values(item: surveys.Item) -> set[str]:
    """The options of a closed item that need a comment (as text, for the page's script)."""
    values: set[str] = set()
    for option in item.options:
        if option.value in (surveys.NOT_APPLICABLE, surveys.DONT_KNOW):
            continue
        try:
            score = surveys.item_score(item, option.value)
        except ValueError:
            continue
        if (item.weight and score == 0) or _knocked_out(item, option.value):
            values.add(str(option.value))
    return values


def fail_above(item: surveys.Item) -> float | None:
    """The count or duration beyond which the item earns nothing (then it needs a comment)."""
    limits = []
    if item.weight and item.thresholds is not None:
        limits.append(item.thresholds.partial or item.thresholds.full)
    if item.knockout is not None and item.knockout.above is not None:
        limits.append(item.knockout.above)
    return min(limits) if limits else None
