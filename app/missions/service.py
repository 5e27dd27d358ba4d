"""Scenarios, conflicts, mission generation and (re)assignment."""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass

from sqlmodel import Session

from app.accounts import repository as accounts_repository
from app.accounts.models import Role, User
from app.audit.models import record_audit
from app.authorities import repository as authorities_repository
from app.authorities.models import Authority
from app.campaigns import repository as campaigns_repository
from app.campaigns.models import Campaign, CampaignState, CandidateStatus
from app.campaigns.service import parse_config
from app.core.db import row_id
from app.core.errors import Conflict, InvalidInput, NotFound, refuse_file
from app.core.i18n import _
from app.core.timeutil import utcnow
from app.missions import repository
from app.missions.models import (
    UNSUBMITTED_STATES,
    Mission,
    MissionState,
    Scenario,
    ShopperConflict,
)
from app.missions.planning import (
    KeptSlots,
    PlanCandidate,
    PlanningError,
    ReplicatePolicy,
    plan_missions,
)
from app.missions.schemas import ASSIGNMENT_COLUMNS, ScenarioCreate

PLANNING_STATES = {CampaignState.draft, CampaignState.open}


def _require_planning_open(campaign: Campaign) -> None:
    if CampaignState(campaign.state) not in PLANNING_STATES:
        raise Conflict(_("Missions can only be planned while the campaign is draft or open."))


# --- scenarios --------------------------------------------------------------------------------


def add_scenario(
    session: Session, *, campaign: Campaign, data: ScenarioCreate, actor: User | None
) -> Scenario:
    _require_planning_open(campaign)
    campaign_id = row_id(campaign)
    if repository.get_scenario_by_key(session, campaign_id, data.channel.value, data.key):
        raise Conflict(
            _("This campaign already has a scenario %(key)s on that channel.") % {"key": data.key},
            field="key",
        )
    scenario = Scenario(
        campaign_id=campaign_id,
        channel=data.channel.value,
        key=data.key,
        title=data.title,
        request_text=data.request_text,
        answer_sheet=data.answer_sheet,
    )
    session.add(scenario)
    session.flush()
    record_audit(
        session,
        actor=actor,
        action="scenario.create",
        object_type="campaign",
        object_id=campaign_id,
        after={"channel": scenario.channel, "key": scenario.key},
    )
    return scenario


# --- generation -------------------------------------------------------------------------------


@dataclass(frozen=True)
class GenerationReport:
    created: int
    removed: int
    kept: int
    unassigned: int


def generate_missions(
    session: Session, *, campaign: Campaign, regenerate: bool, actor: User | None
) -> GenerationReport:
    """Plan every mission of the campaign; a regeneration replaces only unreported missions."""
    _require_planning_open(campaign)
    campaign_id = row_id(campaign)
    existing = repository.count_missions(session, campaign_id)
    if existing and not regenerate:
        raise Conflict(
            _(
                "Missions were already generated for this campaign; "
                "regenerate to replace the ones not yet reported."
            )
        )
    removed = repository.delete_unsubmitted(session, campaign_id) if existing else 0
    kept_missions = repository.kept_missions(session, campaign_id) if existing else []
    kept: dict[tuple[str, str], KeptSlots] = {}
    for mission in kept_missions:
        key = (mission.authority_code, mission.channel)
        previous = kept.get(key, KeptSlots(0, 0))
        counts = mission.state != MissionState.cancelled
        kept[key] = KeptSlots(
            previous.counted + int(counts), max(previous.last_sequence, mission.sequence)
        )

    config = parse_config(campaign.config)
    candidates = [
        PlanCandidate(code=candidate.authority_code, category=candidate.category)
        for candidate, _authority in campaigns_repository.candidates_with_authorities(
            session, campaign_id
        )
        if candidate.status == CandidateStatus.registered
    ]
    if not candidates:
        raise Conflict(_("Register candidates before generating missions."))
    shoppers = [row_id(user) for user in repository.active_shoppers(session)]
    scenario_ids: dict[str, list[int]] = {}
    for scenario in repository.scenarios(session, campaign_id):
        scenario_ids.setdefault(scenario.channel, []).append(row_id(scenario))
    try:
        planned = plan_missions(
            candidates=candidates,
            tests_per_channel={ch.value: n for ch, n in config.tests_per_channel.items()},
            shoppers=shoppers,
            conflicts=repository.conflicts_by_shopper(session, shoppers),
            scenarios=scenario_ids,
            opens_at=campaign.opens_at,
            closes_at=campaign.closes_at,
            seed=config.seed,
            kept=kept,
            replicates=ReplicatePolicy(
                share=config.replicates.share, minimum=config.replicates.minimum
            ),
        )
    except PlanningError as exc:
        authority = authorities_repository.get(session, exc.authority_code)
        name = authority.name if authority else exc.authority_code
        raise Conflict(
            _(
                "The missions cannot be assigned around %(name)s (%(code)s): too many shoppers "
                "declared a conflict with it for loads to stay balanced within one mission."
            )
            % {"name": name, "code": exc.authority_code}
        ) from exc
    session.add_all(
        Mission(
            campaign_id=campaign_id,
            authority_code=item.authority_code,
            channel=item.channel,
            sequence=item.sequence,
            scenario_id=item.scenario_id,
            shopper_id=item.shopper_id,
            window_start=item.window_start,
            window_end=item.window_end,
            state=MissionState.assigned if item.shopper_id else MissionState.planned,
        )
        for item in planned
    )
    session.flush()
    report = GenerationReport(
        created=len(planned),
        removed=removed,
        kept=len(kept_missions),
        unassigned=sum(1 for item in planned if item.shopper_id is None),
    )
    record_audit(
        session,
        actor=actor,
        action="missions.regenerate" if existing else "missions.generate",
        object_type="campaign",
        object_id=campaign_id,
        after={
            "created": report.created,
            "removed": report.removed,
            "kept": report.kept,
            "seed": config.seed,
            "shoppers": len(shoppers),
        },
    )
    return report


# --- assignment -------------------------------------------------------------------------------


def _set_shopper(mission: Mission, shopper: User | None) -> None:
    mission.shopper_id = shopper.id if shopper else None
    mission.state = MissionState.assigned if shopper else MissionState.planned
    mission.updated_at = utcnow()


def _reassignment_problem(session: Session, mission: Mission, shopper: User | None) -> str | None:
    if MissionState(mission.state) not in UNSUBMITTED_STATES:
        return _("mission %(id)d is %(state)s and can no longer change hands.") % {
            "id": mission.id,
            "state": _(mission.state),
        }
    if shopper is not None and repository.has_conflict(
        session, row_id(shopper), mission.authority_code
    ):
        return _("%(shopper)s declared a conflict with %(code)s.") % {
            "shopper": shopper.email,
            "code": mission.authority_code,
        }
    return None


def _shopper(session: Session, shopper_id: int) -> User:
    user = accounts_repository.get(session, shopper_id)
    if user is None or user.role != Role.shopper or not user.is_active:
        raise InvalidInput(
            _("No active shopper with id %(id)d.") % {"id": shopper_id}, field="shopper_id"
        )
    return user


def reassign_mission(
    session: Session,
    *,
    campaign: Campaign,
    mission_id: int,
    shopper_id: int | None,
    actor: User | None,
) -> Mission:
    """Give a mission to another shopper (None: back to the pool); refused if conflicted."""
    _require_planning_open(campaign)
    mission = repository.get_mission(session, row_id(campaign), mission_id)
    if mission is None:
        raise NotFound(_("No mission %(id)d in this campaign.") % {"id": mission_id})
    shopper = _shopper(session, shopper_id) if shopper_id is not None else None
    problem = _reassignment_problem(session, mission, shopper)
    if problem:
        raise Conflict(problem[0].upper() + problem[1:], field="shopper_id")
    before = {"shopper_id": mission.shopper_id}
    _set_shopper(mission, shopper)
    session.add(mission)
    record_audit(
        session,
        actor=actor,
        action="mission.reassign",
        object_type="mission",
        object_id=mission.id,
        before=before,
        after={"shopper_id": mission.shopper_id},
    )
    return mission


def export_assignments(session: Session, *, campaign: Campaign) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(ASSIGNMENT_COLUMNS)
    for row in repository.mission_rows(session, row_id(campaign)):
        mission = row.mission
        writer.writerow(
            [
                mission.id,
                mission.authority_code,
                row.authority.name,
                mission.channel,
                mission.sequence,
                row.scenario.key if row.scenario else "",
                mission.window_start.isoformat(),
                mission.window_end.isoformat(),
                mission.state,
                row.shopper.email if row.shopper else "",
            ]
        )
    return buffer.getvalue()


def import_reassignments(
    session: Session, *, campaign: Campaign, text: str, actor: User | None
) -> int:
    """Apply a CSV of (mission_id, shopper_email), all or nothing; returns how many changed.

    An empty shopper_email returns the mission to the pool. Problems are reported together,
    each with its line number.
    """
    _require_planning_open(campaign)
    reader = csv.DictReader(io.StringIO(text))
    header = [name.strip().lower() for name in reader.fieldnames or []]
    if "mission_id" not in header or "shopper_email" not in header:
        raise InvalidInput(
            _("The file needs a header line with mission_id and shopper_email columns."),
            field="file",
        )
    reader.fieldnames = header
    rows: list[tuple[int, str, str]] = []
    for row in reader:
        mission_text = (row.get("mission_id") or "").strip()
        email = (row.get("shopper_email") or "").strip().lower()
        if mission_text or email:
            rows.append((reader.line_num, mission_text, email))
    if not rows:
        raise InvalidInput(_("The file contains no assignment."), field="file")
    ids = [int(text) for _line, text, _email in rows if text.isdigit()]
    missions = repository.missions_by_id(session, row_id(campaign), ids)
    errors: list[str] = []
    changes: list[tuple[Mission, User | None]] = []
    seen: Counter[int] = Counter()
    shoppers: dict[str, User | None] = {}
    for line, mission_text, email in rows:
        mission = missions.get(int(mission_text)) if mission_text.isdigit() else None
        if mission is None:
            errors.append(
                _("Line %(line)d: no mission %(id)s in this campaign.")
                % {"line": line, "id": mission_text or "∅"}
            )
            continue
        seen[row_id(mission)] += 1
        if seen[row_id(mission)] > 1:
            errors.append(
                _("Line %(line)d: mission %(id)d appears twice.") % {"line": line, "id": mission.id}
            )
            continue
        shopper = None
        if email:
            if email not in shoppers:
                user = accounts_repository.get_by_email(session, email)
                valid = user is not None and user.role == Role.shopper and user.is_active
                shoppers[email] = user if valid else None
            shopper = shoppers[email]
            if shopper is None:
                errors.append(
                    _("Line %(line)d: no active shopper with e-mail %(email)s.")
                    % {"line": line, "email": email}
                )
                continue
        if (shopper.id if shopper else None) == mission.shopper_id:
            continue
        problem = _reassignment_problem(session, mission, shopper)
        if problem:
            errors.append(_("Line %(line)d: %(problem)s") % {"line": line, "problem": problem})
            continue
        changes.append((mission, shopper))
    refuse_file(errors)
    for mission, shopper in changes:
        _set_shopper(mission, shopper)
        session.add(mission)
    session.flush()
    record_audit(
        session,
        actor=actor,
        action="missions.import_assignments",
        object_type="campaign",
        object_id=campaign.id,
        after={"changed": len(changes)},
    )
    return len(changes)


# --- the shopper's side -----------------------------------------------------------------------


def declare_conflict(session: Session, *, shopper: User, code: str) -> tuple[ShopperConflict, int]:
    """Record a conflict; the shopper's not-yet-reported missions there go back to the pool."""
    code = code.strip().upper()
    authority = authorities_repository.get(session, code)
    if authority is None:
        raise InvalidInput(_("No authority with code %(code)s.") % {"code": code}, field="code")
    if repository.has_conflict(session, row_id(shopper), code):
        raise Conflict(
            _("You already declared a conflict with %(name)s.") % {"name": authority.name},
            field="code",
        )
    conflict = ShopperConflict(user_id=row_id(shopper), authority_code=code)
    session.add(conflict)
    released = repository.open_missions_of_shopper_at(session, row_id(shopper), code)
    for mission in released:
        _set_shopper(mission, None)
        session.add(mission)
    session.flush()
    record_audit(
        session,
        actor=shopper,
        action="shopper.conflict",
        object_type="user",
        object_id=shopper.id,
        after={"authority_code": code, "missions_released": len(released)},
    )
    return conflict, len(released)


def shopper_mission(
    session: Session, *, shopper: User, mission_id: int
) -> tuple[Mission, Authority, Scenario | None, Campaign]:
    found = repository.mission_of_shopper(session, mission_id, row_id(shopper))
    if found is None:
        raise NotFound(_("No mission %(id)d among yours.") % {"id": mission_id})
    return found
