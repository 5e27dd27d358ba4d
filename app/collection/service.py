"""Collecting citizen answers: what survey a link opens, validation, and exactly-once storage."""

from __future__ import annotations

import contextlib
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

import surveys
from app.authorities.models import Authority
from app.campaigns import repository as campaigns_repository
from app.campaigns.models import Campaign, CampaignState, CandidateStatus
from app.campaigns.service import parse_config
from app.collection import cache, repository
from app.collection.models import Response, ResponseSource, SurveyDraft
from app.core.db import row_id
from app.core.errors import Conflict, DomainError, Forbidden, InvalidInput, NotFound
from app.core.i18n import _, get_locale
from app.core.security import hash_token, new_token
from app.core.timeutil import utcnow
from app.instruments.models import InstrumentVersion
from app.instruments.service import load_published

# A citizen cannot read and answer a dozen statements in less time than this.
TOO_FAST_SECONDS = 20
# Straight-lining: at least this many agreement answers, all identical.
STRAIGHT_LINE_MIN_ITEMS = 6
MARKUP = re.compile(r"<\s*/?\s*[a-zA-Z!?]")


class InvalidAnswers(InvalidInput):
    """Answers refused item by item; ``errors`` name each item and say what is wrong."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        super().__init__(summary, field=errors[0]["field"] if errors else None)
        self.errors = errors


@dataclass(frozen=True)
class SurveyTarget:
    """What a public link opens: an open campaign, a registered candidate, the pinned survey.

    The rows are detached copies shared by concurrent requests (``app.collection.cache``):
    read them, never change them or add them to a session.
    """

    campaign: Campaign
    authority: Authority
    version: InstrumentVersion
    instrument: surveys.Instrument
    invitations_only: bool = False


def survey_target(
    session: Session, *, organiser: str, year: int, authority_code: str
) -> SurveyTarget:
    """The target of a public link, from the process's short-lived cache when it has it.

    Two levels (``app.collection.cache``): the open campaign with its pinned survey (re-read
    every ``TTL_SECONDS``), and each authority with its registered candidacy in that
    campaign (``TARGET_TTL_SECONDS``).
    """
    opened = _open_campaign(session, organiser=organiser, year=year)
    bind = session.get_bind()
    key = cache.key_for(bind, organiser=organiser, year=year, authority_code=authority_code)
    found = cache.get(key)
    if not (isinstance(found, _Candidacy) and found.campaign_id == opened.campaign.id):
        generation = cache.generation()
        found = _load_candidacy(session, opened, year=year, authority_code=authority_code)
        cache.put(key, found, loaded_in_generation=generation, ttl_seconds=cache.TARGET_TTL_SECONDS)
    return _target_from(opened, found)


def cached_survey_target(
    bind: Any, *, organiser: str, year: int, authority_code: str
) -> SurveyTarget | None:
    """The cached target if this process has a fresh one (no database access), else None."""
    opened = cache.get(cache.campaign_key(bind, organiser=organiser, year=year))
    found = cache.get(
        cache.key_for(bind, organiser=organiser, year=year, authority_code=authority_code)
    )
    if (
        isinstance(opened, _OpenCampaign)
        and isinstance(found, _Candidacy)
        and found.campaign_id == opened.campaign.id
    ):
        return _target_from(opened, found)
    return None


def refresh_open_campaign(session: Session, *, organiser: str, year: int) -> None:
    """Load the open campaign into the cache if it is there to load (errors are left to the
    requests, which raise them in their own language)."""
    with contextlib.suppress(DomainError):
        _open_campaign(session, organiser=organiser, year=year)


@dataclass(frozen=True)
class _Candidacy:
    """An authority registered as a candidate of a campaign (what the second level keeps)."""

    campaign_id: int | None
    authority: Authority


def _target_from(opened: _OpenCampaign, candidacy: _Candidacy) -> SurveyTarget:
    if opened.version is None or opened.instrument is None:
        raise Conflict(_("This campaign has no questionnaire yet."), field="campaign")
    return SurveyTarget(
        campaign=opened.campaign,
        authority=candidacy.authority,
        version=opened.version,
        instrument=opened.instrument,
        invitations_only=opened.invitations_only,
    )


@dataclass(frozen=True)
class _OpenCampaign:
    campaign: Campaign
    version: InstrumentVersion | None
    instrument: surveys.Instrument | None
    invitations_only: bool


def _open_campaign(session: Session, *, organiser: str, year: int) -> _OpenCampaign:
    """The open campaign of that year and its pinned survey (cached: two reads per TTL)."""
    key = cache.campaign_key(session.get_bind(), organiser=organiser, year=year)
    found = cache.get(key)
    if isinstance(found, _OpenCampaign):
        return found
    generation = cache.generation()
    campaign = campaigns_repository.get_by_year(session, organiser=organiser, year=year)
    if campaign is None:
        raise NotFound(_("There is no %(year)d campaign.") % {"year": year}, field="campaign")
    if campaign.state != CampaignState.open:
        raise campaign_closed(year)
    version = repository.pinned_survey(session, row_id(campaign))
    opened = _OpenCampaign(
        campaign=cache.detached_copy(campaign),
        version=version,
        instrument=load_published(version) if version is not None else None,
        invitations_only=parse_config(campaign.config).invitations_only,
    )
    cache.put(key, opened, loaded_in_generation=generation)
    return opened


def _load_candidacy(
    session: Session, opened: _OpenCampaign, *, year: int, authority_code: str
) -> _Candidacy:
    """Read an authority's registered candidacy (raises NotFound as the link's answer)."""
    found = repository.candidate_authority(
        session, campaign_id=row_id(opened.campaign), authority_code=authority_code.upper()
    )
    if found is None or found[1] != CandidateStatus.registered:
        raise not_a_candidate(authority_code, year)
    return _Candidacy(campaign_id=opened.campaign.id, authority=cache.detached_copy(found[0]))


def campaign_closed(year: int) -> Conflict:
    return Conflict(
        _("The %(year)d campaign is not collecting answers at the moment.") % {"year": year},
        field="campaign",
    )


def not_a_candidate(authority_code: str, year: int) -> NotFound:
    return NotFound(
        _("%(code)s is not a candidate of the %(year)d campaign.")
        % {"code": authority_code, "year": year},
        field="authority",
    )


def _markup_errors(instrument: surveys.Instrument, answers: dict[str, Any]) -> list[dict[str, str]]:
    errors = []
    text_items = {item.key for item in instrument.items if item.type == "text"}
    for key, value in answers.items():
        if key in text_items and isinstance(value, str) and MARKUP.search(value):
            errors.append(
                {
                    "field": f"answers.{key}",
                    "code": "markup",
                    "message": _("Plain text only: remove the < > markup."),
                }
            )
    return errors


def _item_errors(validation: surveys.AnswerValidation) -> list[dict[str, str]]:
    return [
        {"field": f"answers.{error.item}", "code": error.code, "message": error.message}
        for error in validation.errors
    ]


def validate_page(
    instrument: surveys.Instrument, answers: dict[str, Any], *, section: str | None
) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """Check answers (for one page, or all when ``section`` is None); returns clean answers."""
    errors = _markup_errors(instrument, answers)
    validation = surveys.validate_answers(
        instrument, answers, sections=[section] if section is not None else None
    )
    return dict(validation.answers), errors + _item_errors(validation)


def quality_flags(
    instrument: surveys.Instrument,
    answers: dict[str, Any],
    *,
    started_at: datetime | None,
    submitted_at: datetime,
) -> list[str]:
    flags = []
    if started_at is not None and (submitted_at - started_at).total_seconds() < TOO_FAST_SECONDS:
        flags.append("too_fast")
    agreements = [
        answers[item.key]
        for item in instrument.items
        if item.type == "likert5" and isinstance(answers.get(item.key), int)
    ]
    if len(agreements) >= STRAIGHT_LINE_MIN_ITEMS and len(set(agreements)) == 1:
        flags.append("straight_lining")
    return flags


def response_conflict() -> Conflict:
    return Conflict(_("A different response was already received with this id."), field="id")


def load_draft(
    session: Session, *, draft_id: uuid.UUID, target: SurveyTarget
) -> SurveyDraft | None:
    draft = repository.get_draft(session, draft_id)
    if draft is None:
        return None
    if draft.campaign_id != target.campaign.id or draft.authority_code != target.authority.code:
        raise NotFound(_("This questionnaire link does not match its authority."))
    return draft


@dataclass(frozen=True)
class FormState:
    """Where a questionnaire (a draft id in the form's URL) stands, read in one go."""

    answered: bool  # its response is stored: the form is over
    draft: repository.DraftRow | None  # its answers so far
    invitation_id: int | None  # the invitation that opened it

    @property
    def invited(self) -> bool:
        return self.invitation_id is not None


def read_form_state(
    connection: sa.Connection, *, draft_id: uuid.UUID, target: SurveyTarget
) -> FormState:
    """One read for a questionnaire under way: its draft, which names its invitation.

    A draft is deleted in the transaction that stores its response, so an existing draft
    means "not answered yet"; only without one are the response and an invitation that
    opened this id (but saved nothing yet) looked up (one more query).
    """
    draft = repository.read_draft(connection, draft_id)
    if draft is not None:
        if draft.campaign_id != target.campaign.id or draft.authority_code != target.authority.code:
            raise NotFound(_("This questionnaire link does not match its authority."))
        return FormState(answered=False, draft=draft, invitation_id=draft.invitation_id)
    answered, invitation_id = repository.answered_or_invitation(connection, draft_id)
    return FormState(
        answered=answered, draft=None, invitation_id=None if answered else invitation_id
    )


def draft_values(
    *,
    draft_id: uuid.UUID,
    target: SurveyTarget,
    draft: repository.DraftRow | None,
    answers: dict[str, Any],
    channel: str | None,
    source: ResponseSource,
    invitation_id: int | None,
) -> dict[str, Any]:
    """The draft row the group-commit writer upserts for a page of the form (an existing
    draft keeps everything but its answers and ``updated_at``)."""
    now = utcnow()
    if invitation_id is not None:
        source = ResponseSource.invitation
    return {
        "id": draft_id,
        "campaign_id": row_id(target.campaign),
        "authority_code": target.authority.code,
        "channel": draft.channel if draft else channel,
        "source": draft.source if draft else source.value,
        "answers": answers,
        "started_at": draft.started_at if draft else now,
        "updated_at": now,
        "submitted": False,
        "invitation_id": invitation_id,
    }


# --- single-use invitations -----------------------------------------------------------------

MAX_INVITATIONS_PER_BATCH = 5000
INVITATION_STATES = {CampaignState.draft, CampaignState.open}


class InvitationUsed(DomainError):
    """The invitation already produced a response: refused politely (410 Gone)."""

    status_code = 410
    title = "Already answered"


def create_invitations(
    session: Session, *, campaign: Campaign, authority_code: str, count: int
) -> list[str]:
    """Create ``count`` single-use links for a candidate; returns the clear tokens (shown once)."""
    if CampaignState(campaign.state) not in INVITATION_STATES:
        raise Conflict(_("Invitations can be created while the campaign is draft or open."))
    if not 1 <= count <= MAX_INVITATIONS_PER_BATCH:
        raise InvalidInput(
            _("Between 1 and %(max)d invitations at a time.") % {"max": MAX_INVITATIONS_PER_BATCH},
            field="count",
        )
    candidate = campaigns_repository.get_candidate(
        session, row_id(campaign), authority_code.upper()
    )
    if candidate is None or candidate.status != CandidateStatus.registered:
        raise InvalidInput(
            _("%(code)s is not a candidate of this campaign.") % {"code": authority_code},
            field="code",
        )
    tokens = [new_token() for _ in range(count)]
    repository.add_invitations(
        session,
        [
            {
                "token_hash": hash_token(token),
                "campaign_id": campaign.id,
                "authority_code": candidate.authority_code,
                "created_at": utcnow(),
            }
            for token in tokens
        ],
    )
    return tokens


def open_invitation(
    session: Session, *, token: str, organiser: str
) -> tuple[SurveyTarget, uuid.UUID]:
    """The questionnaire an invitation opens, resuming its unfinished answers if any."""
    invitation = repository.get_invitation_by_hash(session, hash_token(token))
    if invitation is None:
        raise NotFound(_("This invitation link is not valid."), field="invitation")
    if invitation.used_at is not None:
        raise invitation_used()
    campaign = campaigns_repository.get(session, invitation.campaign_id)
    assert campaign is not None
    target = survey_target(
        session, organiser=organiser, year=campaign.year, authority_code=invitation.authority_code
    )
    if invitation.draft_id is None:
        invitation.draft_id = uuid.uuid4()
        session.add(invitation)
    return target, invitation.draft_id


def invitation_used() -> InvitationUsed:
    return InvitationUsed(
        _("You have already answered with this invitation. Thank you for your time!"),
        field="invitation",
    )


def invitations_only_error(target: SurveyTarget, *, public_link: bool) -> DomainError | None:
    """The refusal of an invitations-only campaign to an answer without an invitation: the
    public link's page says "use the link you received" (403); the API names the missing
    ``invitation`` field (422)."""
    if not target.invitations_only:
        return None
    if public_link:
        return Forbidden(
            _("This questionnaire is for invited people only: please use the link you received.")
        )
    return InvalidInput(
        _("This campaign accepts answers through invitations only."), field="invitation"
    )


def require_public_link_allowed(target: SurveyTarget) -> None:
    error = invitations_only_error(target, public_link=True)
    if error is not None:
        raise error


def invitation_id_of_token(
    engine: Engine, *, token: str, target: SurveyTarget, response_id: uuid.UUID
) -> int:
    """An invitation token of the API, checked (read only): it must match the target's
    campaign and authority, and not have been used by another response."""
    with engine.connect() as connection:
        invitation = repository.invitation_by_hash(connection, hash_token(token))
    if (
        invitation is None
        or invitation.campaign_id != target.campaign.id
        or invitation.authority_code != target.authority.code
    ):
        raise InvalidInput(_("This invitation link is not valid."), field="invitation")
    if invitation.used_at is not None and invitation.draft_id != response_id:
        raise invitation_used()
    return invitation.id


# --- live collection figures (aggregates only) -----------------------------------------------


@dataclass(frozen=True)
class CollectionFigures:
    total: int
    per_day: list[tuple[str, int]]
    per_channel: dict[str, int]
    per_source: dict[str, int]
    excluded: int
    unfinished: int
    # For each section, in order: how many unfinished answers stopped there.
    stopped_at: list[tuple[str, int]]

    @property
    def completion_rate(self) -> float | None:
        started = self.total + self.unfinished
        return self.total / started if started else None


def collection_figures(
    session: Session,
    *,
    campaign: Campaign,
    authority_code: str | None,
    instrument: surveys.Instrument | None,
) -> CollectionFigures:
    campaign_id = row_id(campaign)
    per_channel = repository.responses_by(
        session, Response.channel, campaign_id=campaign_id, authority_code=authority_code
    )
    per_source = repository.responses_by(
        session, Response.source, campaign_id=campaign_id, authority_code=authority_code
    )
    excluded = repository.responses_by(
        session, Response.excluded, campaign_id=campaign_id, authority_code=authority_code
    )
    drafts = repository.unfinished_draft_answers(
        session, campaign_id=campaign_id, authority_code=authority_code
    )
    stopped: list[tuple[str, int]] = []
    if instrument is not None:
        counts = dict.fromkeys((section.key for section in instrument.sections), 0)
        for answers in drafts:
            reached = [
                section.key
                for section in instrument.sections
                if any(item.key in answers for item in section.items)
            ]
            if reached:
                counts[reached[-1]] += 1
        stopped = [
            (section.title.get(get_locale()), counts[section.key])
            for section in instrument.sections
        ]
    return CollectionFigures(
        total=sum(per_source.values()),
        per_day=repository.responses_per_day(
            session, campaign_id=campaign_id, authority_code=authority_code
        ),
        per_channel={key if key != "None" else "—": value for key, value in per_channel.items()},
        per_source=per_source,
        excluded=sum(v for k, v in excluded.items() if k in {"True", "1", "true"}),
        unfinished=len(drafts),
        stopped_at=stopped,
    )


def survey_instrument_of(session: Session, *, campaign: Campaign) -> surveys.Instrument | None:
    version = next(
        (
            v
            for _p, v in campaigns_repository.pinned_instruments(session, row_id(campaign))
            if v.kind == "survey"
        ),
        None,
    )
    return load_published(version) if version else None
