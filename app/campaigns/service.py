"""Campaign life cycle: creation, configuration, state transitions and candidates."""

from __future__ import annotations

import csv
import importlib
import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlmodel import Session

from app.accounts.models import User
from app.audit.models import record_audit
from app.authorities import repository as authorities_repository
from app.authorities.models import Authority
from app.campaigns import repository
from app.campaigns.models import (
    NEXT_STATE,
    Campaign,
    CampaignInstrument,
    CampaignState,
    CampaignTransition,
    Candidate,
    CandidateStatus,
)
from app.campaigns.schemas import CampaignConfig, CampaignCreate, PublicationScope
from app.core.db import row_id
from app.core.errors import Conflict, InvalidInput, NotFound, refuse_file
from app.core.i18n import _
from app.core.timeutil import utcnow
from app.instruments import repository as instruments_repository
from app.instruments.models import InstrumentVersion

CONFIG_EDITABLE_STATES = {CampaignState.draft, CampaignState.open, CampaignState.closed}
REGISTRATION_STATES = {CampaignState.draft, CampaignState.open}


def describe_validation_error(error: ValidationError) -> str:
    """One line per problem, each naming its field (``categories.2.population_max: …``)."""
    lines = []
    for item in error.errors():
        location = ".".join(str(part) for part in item["loc"]) or "config"
        message = str(item["msg"]).removeprefix("Value error, ")
        lines.append(f"{location}: {message}")
    return "\n".join(lines)


def parse_config(raw: dict[str, Any]) -> CampaignConfig:
    try:
        return CampaignConfig.model_validate(raw)
    except ValidationError as exc:
        raise InvalidInput(describe_validation_error(exc), field="config") from exc


def registered_profiles(session: Session, *, campaign: Campaign) -> list[tuple[str, int]]:
    """(kind, population) of each registered candidate: what a category's band would hold."""
    return [
        (authority.kind, authority.population)
        for candidate, authority in repository.candidates_with_authorities(
            session, row_id(campaign)
        )
        if candidate.status == CandidateStatus.registered
    ]


def config_editable(campaign: Campaign) -> bool:
    return CampaignState(campaign.state) in CONFIG_EDITABLE_STATES


def get_campaign(session: Session, *, campaign_id: int) -> Campaign:
    campaign = repository.get(session, campaign_id)
    if campaign is None:
        raise NotFound(_("No campaign with id %(id)d.") % {"id": campaign_id})
    return campaign


def create_campaign(
    session: Session,
    *,
    data: CampaignCreate,
    organiser: str,
    actor: User | None,
    config: CampaignConfig | None = None,
) -> Campaign:
    if repository.get_by_year(session, organiser=organiser, year=data.year) is not None:
        raise Conflict(
            _("A campaign for %(year)d already exists.") % {"year": data.year}, field="year"
        )
    campaign = Campaign(
        year=data.year,
        organiser=organiser,
        name=data.name,
        opens_at=data.opens_at,
        closes_at=data.closes_at,
        state=CampaignState.draft,
        config=(config or CampaignConfig()).model_dump(mode="json"),
    )
    session.add(campaign)
    session.flush()
    record_audit(
        session,
        actor=actor,
        action="campaign.create",
        object_type="campaign",
        object_id=campaign.id,
        after={"year": campaign.year, "name": campaign.name},
    )
    return campaign


def update_config(
    session: Session, *, campaign: Campaign, raw: dict[str, Any], actor: User | None
) -> CampaignConfig:
    if CampaignState(campaign.state) not in CONFIG_EDITABLE_STATES:
        raise Conflict(
            _("The configuration is frozen once the campaign is %(state)s.")
            % {"state": campaign.state}
        )
    config = parse_config(raw)
    return save_config(session, campaign=campaign, config=config, actor=actor)


def save_config(
    session: Session, *, campaign: Campaign, config: CampaignConfig, actor: User | None
) -> CampaignConfig:
    """Store a validated configuration and move registered candidates to their new category.

    A candidate keeps exactly one category: if the new bands leave one without any, nothing
    is saved and the error names them.
    """
    if CampaignState(campaign.state) not in CONFIG_EDITABLE_STATES:
        raise Conflict(
            _("The configuration is frozen once the campaign is %(state)s.")
            % {"state": _(campaign.state)}
        )
    rows = repository.candidates_with_authorities(session, row_id(campaign))
    moves: list[tuple[Candidate, str]] = []
    homeless: list[str] = []
    for candidate, authority in rows:
        if candidate.status != CandidateStatus.registered:
            continue
        category = config.category_for(authority.kind, authority.population)
        if category is None:
            homeless.append(authority.name)
        elif category.key != candidate.category:
            moves.append((candidate, category.key))
    if homeless:
        raise InvalidInput(
            _("No category would hold these registered candidates: %(names)s.")
            % {"names": ", ".join(sorted(homeless)[:10])},
            field="categories",
        )
    for candidate, key in moves:
        candidate.category = key
        session.add(candidate)
    before = campaign.config
    campaign.config = config.model_dump(mode="json")
    session.add(campaign)
    record_audit(
        session,
        actor=actor,
        action="campaign.config",
        object_type="campaign",
        object_id=campaign.id,
        before=before,
        after=campaign.config,
    )
    return config


# A guard refuses a transition (raises a DomainError) when the campaign is not ready for it.
# Domains above this one own the rules on their own data (the jury: every category decided
# before deliberation ends) and register them here, so campaigns never imports them.
TransitionGuard = Callable[[Session, Campaign], None]
_GUARDS: dict[CampaignState, list[TransitionGuard]] = {}
# These steps must never be taken unguarded: if the jury's rules were not loaded, refuse loudly.
GUARDED_STATES = frozenset({CampaignState.deliberated, CampaignState.published})


def guard_transition(
    *states: CampaignState,
) -> Callable[[TransitionGuard], TransitionGuard]:
    """Register a function that must accept each move to one of ``states``."""

    def register(guard: TransitionGuard) -> TransitionGuard:
        for state in states:
            if guard not in _GUARDS.setdefault(state, []):
                _GUARDS[state].append(guard)
        return guard

    return register


def _guards_for(target: CampaignState) -> list[TransitionGuard]:
    guards = _GUARDS.get(target, [])
    if target in GUARDED_STATES and not guards:
        raise RuntimeError(f"No guard registered for the move to {target.value} (import app.jury)")
    return guards


def _require_ready(session: Session, *, campaign: Campaign, target: CampaignState) -> None:
    """Refuse (409) the move to ``target`` while the campaign is not ready for it."""
    if target == CampaignState.open:
        registered = sum(
            repository.count_candidates_by_category(session, row_id(campaign)).values()
        )
        if registered == 0:
            raise Conflict(_("Register at least one candidate before opening the campaign."))
        missing = missing_instruments(session, campaign=campaign)
        if missing:
            raise Conflict(
                _("Pin the instruments before opening the campaign: %(missing)s.")
                % {"missing": describe_instruments(missing)}
            )
    for guard in _guards_for(target):
        guard(session, campaign)


def transition_blockers(
    session: Session, *, campaign: Campaign, target: CampaignState
) -> list[str]:
    """Why the move to ``target`` would be refused now (empty when it can be taken)."""
    try:
        _require_ready(session, campaign=campaign, target=target)
    except Conflict as exc:
        return [exc.message]
    return []


def transition_consequences(campaign: Campaign, target: CampaignState) -> list[str]:
    """What moving to ``target`` does, in words, for the confirmation page."""
    config = parse_config(campaign.config)
    forward = _("The cycle only moves forward: this step cannot be undone.")
    if target == CampaignState.open:
        link = (
            _("Only the single-use invitation links open the questionnaire (no public link).")
            if config.invitations_only
            else _(
                "The questionnaire's public link and the QR posters start accepting answers "
                "from citizens."
            )
        )
        return [
            link,
            _("The pinned questionnaire and grid versions can no longer be changed."),
            _(
                "Candidates can still be registered and missions planned until collection "
                "closes; the configuration can still be edited until scoring."
            ),
            forward,
        ]
    if target == CampaignState.closed:
        return [
            _("The questionnaire stops accepting answers, by the public link and by invitation."),
            _(
                "Candidates can no longer be registered or withdrawn, and missions can no "
                "longer be planned or reassigned."
            ),
            _("Final scoring runs become possible."),
            forward,
        ]
    if target == CampaignState.scored:
        return [
            _("The configuration is frozen: weights, categories and rules can no longer change."),
            _("The jury workspace opens on the current scoring run."),
            forward,
        ]
    if target == CampaignState.deliberated:
        return [
            _("The jury's signed decisions become final."),
            _("No new scoring run can be made: it would change the scores under the decisions."),
            forward,
        ]
    named = {
        PublicationScope.all: _("every candidate is named"),
        PublicationScope.laureates_and_top: _(
            "the laureates and the first %(k)d of each category are named"
        )
        % {"k": config.publication.top_k},
        PublicationScope.laureates: _("only the laureates are named; the others are counted"),
    }[config.publication.scope]
    return [
        _(
            "The laureates and national results appear on the public pages and in the open "
            "data; as the configuration says, %(named)s."
        )
        % {"named": named},
        _("Each candidate's scorecard becomes visible to its authority contacts."),
        forward,
    ]


# What other domains do when a campaign enters a state, in the transition's unit of work (so
# it happens exactly when the transition is committed). Named as ``module:function`` and
# imported when first needed, because those domains import this one.
ON_ENTER_STATE: dict[CampaignState, tuple[str, ...]] = {
    CampaignState.closed: ("app.collection.email_invitations:campaign_closed",),
    CampaignState.scored: ("app.jury.notifications:campaign_scored",),
    CampaignState.published: ("app.publication.notifications:campaign_published",),
}


def transition(
    session: Session,
    *,
    campaign: Campaign,
    to_state: str,
    actor: User | None,
    comment: str = "",
) -> CampaignTransition:
    """Move the campaign one step along its cycle; anything else is refused with 409."""
    current = CampaignState(campaign.state)
    try:
        target = CampaignState(to_state)
    except ValueError:
        raise Conflict(_("Unknown campaign state: %(state)s.") % {"state": to_state}) from None
    expected = NEXT_STATE.get(current)
    if target != expected:
        if expected is None:
            message = _("The campaign is %(current)s: that is the end of its cycle.") % {
                "current": current.value
            }
        else:
            message = _(
                "A campaign cannot go from %(current)s to %(target)s; "
                "the next step is %(expected)s."
            ) % {"current": current.value, "target": target.value, "expected": expected.value}
        raise Conflict(message, field="to_state")
    _require_ready(session, campaign=campaign, target=target)
    record = CampaignTransition(
        campaign_id=row_id(campaign),
        from_state=current.value,
        to_state=target.value,
        actor_id=actor.id if actor else None,
        comment=comment,
    )
    campaign.state = target.value
    session.add_all([campaign, record])
    record_audit(
        session,
        actor=actor,
        action="campaign.transition",
        object_type="campaign",
        object_id=campaign.id,
        before={"state": current.value},
        after={"state": target.value},
    )
    session.flush()
    for reference in ON_ENTER_STATE.get(target, ()):
        module_name, _sep, function_name = reference.partition(":")
        hook = getattr(importlib.import_module(module_name), function_name)
        hook(session, campaign=campaign, actor=actor)
    return record


def _require_registration_open(campaign: Campaign) -> None:
    if CampaignState(campaign.state) not in REGISTRATION_STATES:
        raise Conflict(_("Candidates can only be registered while the campaign is draft or open."))


def _category_or_error(config: CampaignConfig, authority: Authority) -> str:
    category = config.category_for(authority.kind, authority.population)
    if category is None:
        raise InvalidInput(
            _(
                "No category of this campaign accepts %(name)s "
                "(%(kind)s, %(population)d inhabitants)."
            )
            % {"name": authority.name, "kind": authority.kind, "population": authority.population},
            field="code",
        )
    return category.key


def register_candidate(
    session: Session, *, campaign: Campaign, code: str, actor: User | None
) -> Candidate:
    _require_registration_open(campaign)
    code = code.strip().upper()
    authority = authorities_repository.get(session, code)
    if authority is None:
        raise InvalidInput(_("No authority with code %(code)s.") % {"code": code}, field="code")
    if repository.get_candidate(session, row_id(campaign), code) is not None:
        raise Conflict(
            _("%(name)s is already a candidate.") % {"name": authority.name}, field="code"
        )
    config = CampaignConfig.model_validate(campaign.config)
    candidate = Candidate(
        campaign_id=row_id(campaign),
        authority_code=code,
        category=_category_or_error(config, authority),
    )
    session.add(candidate)
    session.flush()
    record_audit(
        session,
        actor=actor,
        action="candidate.register",
        object_type="campaign",
        object_id=campaign.id,
        after={"authority_code": code, "category": candidate.category},
    )
    return candidate


@dataclass(frozen=True)
class CandidateImportReport:
    registered: int
    already_registered: int


def parse_candidate_codes(text: str) -> list[tuple[int, str]]:
    """Codes from a CSV: a ``code`` column if there is a header, else the first column."""
    rows = list(csv.reader(io.StringIO(text)))
    start = 0
    column = 0
    if rows and rows[0] and "code" in [cell.strip().lower().lstrip("\ufeff") for cell in rows[0]]:
        column = [cell.strip().lower().lstrip("\ufeff") for cell in rows[0]].index("code")
        start = 1
    codes = []
    for line_number, row in enumerate(rows[start:], start=start + 1):
        if not row or all(not cell.strip() for cell in row):
            continue
        value = row[column].strip().upper() if column < len(row) else ""
        codes.append((line_number, value))
    return codes


def import_candidates(
    session: Session, *, campaign: Campaign, text: str, actor: User | None
) -> CandidateImportReport:
    """Register every code of the file, or none: problems are reported with line numbers."""
    _require_registration_open(campaign)
    codes = parse_candidate_codes(text)
    if not codes:
        raise InvalidInput(_("The file contains no authority code."), field="file")
    config = CampaignConfig.model_validate(campaign.config)
    authorities = authorities_repository.get_many(session, [code for _, code in codes])
    already = repository.candidate_codes(session, row_id(campaign), [code for _, code in codes])
    errors: list[str] = []
    seen: set[str] = set()
    new_candidates: list[Candidate] = []
    for line_number, code in codes:
        authority = authorities.get(code)
        if authority is None:
            errors.append(
                _("Line %(line)d: no authority with code %(code)s.")
                % {"line": line_number, "code": code or "∅"}
            )
            continue
        if code in already or code in seen:
            continue
        try:
            category = _category_or_error(config, authority)
        except InvalidInput as exc:
            errors.append(
                _("Line %(line)d: %(problem)s") % {"line": line_number, "problem": exc.message}
            )
            continue
        seen.add(code)
        new_candidates.append(
            Candidate(campaign_id=row_id(campaign), authority_code=code, category=category)
        )
    refuse_file(errors)
    session.add_all(new_candidates)
    session.flush()
    record_audit(
        session,
        actor=actor,
        action="candidate.import",
        object_type="campaign",
        object_id=campaign.id,
        after={"registered": len(new_candidates)},
    )
    return CandidateImportReport(
        registered=len(new_candidates), already_registered=len(codes) - len(new_candidates)
    )


def withdraw_candidate(
    session: Session, *, campaign: Campaign, code: str, actor: User | None
) -> Candidate:
    _require_registration_open(campaign)
    candidate = repository.get_candidate(session, row_id(campaign), code)
    if candidate is None:
        raise NotFound(_("%(code)s is not a candidate of this campaign.") % {"code": code})
    candidate.status = CandidateStatus.withdrawn
    session.add(candidate)
    record_audit(
        session,
        actor=actor,
        action="candidate.withdraw",
        object_type="campaign",
        object_id=campaign.id,
        after={"authority_code": code},
    )
    return candidate


PINNING_STATES = {CampaignState.draft}


def required_instruments(config: CampaignConfig) -> list[str]:
    """The citizen survey, and the grid of every channel that carries weight and has tests."""
    grids = [
        f"grid-{channel.value}"
        for channel, weight in config.channel_weights.items()
        if weight > 0 and config.tests_per_channel.get(channel, 0) > 0
    ]
    return ["survey", *sorted(grids)]


def describe_instruments(needs: list[str]) -> str:
    """Words for :func:`required_instruments` codes: "the citizen questionnaire, the grid
    for telephone"."""
    words = [
        _("the citizen questionnaire")
        if need == "survey"
        else _("the grid for %(channel)s") % {"channel": _(need.removeprefix("grid-"))}
        for need in needs
    ]
    return ", ".join(words)


def missing_instruments(session: Session, *, campaign: Campaign) -> list[str]:
    pinned = repository.pinned_instruments(session, row_id(campaign))
    kinds = {version.kind for _, version in pinned}
    keys = {version.key for _, version in pinned}
    required = required_instruments(parse_config(campaign.config))
    return [
        need
        for need in required
        if (need == "survey" and "survey" not in kinds) or (need != "survey" and need not in keys)
    ]


def pin_instrument(
    session: Session, *, campaign: Campaign, version_id: int, actor: User | None
) -> CampaignInstrument:
    """Pin a published version; pins change only while the campaign is a draft.

    Collected answers keep the version they were validated with, but a campaign must not mix
    two versions of one instrument, so pinning is closed once collection opens.
    """
    if CampaignState(campaign.state) not in PINNING_STATES:
        raise Conflict(_("Instruments can only be pinned while the campaign is a draft."))
    version = instruments_repository.get(session, version_id)
    if version is None:
        raise InvalidInput(
            _("No published instrument with id %(id)d.") % {"id": version_id}, field="version_id"
        )
    # One instrument per role: the questionnaire, and one grid per channel. Pinning another
    # key of the same role replaces it (two pinned questionnaires would leave the public link
    # to serve whichever key sorts first).
    replaced = [
        (other_pin, other)
        for other_pin, other in repository.pinned_instruments(session, row_id(campaign))
        if other.key != version.key and _role(other) == _role(version)
    ]
    for other_pin, _other in replaced:
        session.delete(other_pin)
    pin = repository.get_pin(session, row_id(campaign), version.key)
    before: dict[str, Any] | None = (
        {"instrument_version_id": pin.instrument_version_id} if pin else None
    )
    if replaced:
        before = {
            **(before or {}),
            "replaced": [{"key": other.key, "version": other.version} for _pin, other in replaced],
        }
    if pin is None:
        pin = CampaignInstrument(
            campaign_id=row_id(campaign),
            instrument_key=version.key,
            instrument_version_id=row_id(version),
        )
    pin.instrument_version_id = row_id(version)
    pin.pinned_by_id = actor.id if actor else None
    pin.pinned_at = utcnow()
    session.add(pin)
    session.flush()
    record_audit(
        session,
        actor=actor,
        action="campaign.pin_instrument",
        object_type="campaign",
        object_id=campaign.id,
        before=before,
        after={"key": version.key, "version": version.version, "sha256": version.sha256},
    )
    return pin


def _role(version: InstrumentVersion) -> tuple[str, str | None]:
    """What an instrument does in a campaign: the questionnaire, or the grid of a channel."""
    return (version.kind, version.channel if version.kind != "survey" else None)


def pin_latest_versions(session: Session, *, campaign: Campaign, actor: User | None) -> int:
    """Pin the newest version of each role's instrument; returns how many were pinned.

    A role already pinned keeps its instrument and moves to that key's newest version; a role
    without a pin gets the most recently published instrument of that role.
    """
    pinned = {
        _role(version): version.key
        for _, version in repository.pinned_instruments(session, row_id(campaign))
    }
    newest: dict[str, InstrumentVersion] = {}
    for version in instruments_repository.list_versions(session):
        newest.setdefault(version.key, version)
    chosen: dict[tuple[str, str | None], InstrumentVersion] = {}
    for key, version in newest.items():
        role = _role(version)
        if role in pinned:
            if key == pinned[role]:
                chosen[role] = version
        elif role not in chosen or version.published_at > chosen[role].published_at:
            chosen[role] = version
    for version in chosen.values():
        pin_instrument(session, campaign=campaign, version_id=row_id(version), actor=actor)
    return len(chosen)
