"""Citizens' e-mail invitations: sending, one reminder, opt-out, erasure at close.

The organiser uploads a list of addresses with the candidate each one uses; every address
gets a single-use invitation (the ``invitations`` table, token hashed) at once, and the
``citizen_invitation`` e-mail from the ``citizen.invitations`` job (a batch at a time: a list
of 50,000 must not hold the request for minutes). One ``citizen.reminders`` job per campaign
and due date later sends the ``citizen_reminder`` e-mail to whoever has not answered nor opted
out, once.

Addresses live only in ``invitation_recipients`` and in the outbox, and only for as long as
they serve: an opt-out erases its address at once, the campaign's closing erases them all.
What stays are dates, hence counts. Nothing here is ever joined to a response: whether an
invitation was used is all the results could learn, and they do not ask.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from babel.numbers import format_decimal
from email_validator import EmailNotValidError, validate_email
from sqlmodel import Session

from app.accounts.models import User
from app.audit.models import record_audit
from app.authorities import repository as authorities_repository
from app.campaigns import repository as campaigns_repository
from app.campaigns.models import Campaign, CampaignState
from app.collection import repository
from app.collection.models import InvitationRecipient
from app.core.config import Settings
from app.core.db import row_id
from app.core.errors import Conflict, InvalidInput, refuse_file
from app.core.i18n import _, get_locale, ngettext
from app.core.security import hash_token, keyed_hash, new_token
from app.core.timeutil import utcnow
from app.core.urls import public_base
from app.jobs import service as jobs
from app.jobs.models import JobState
from app.jobs.worker import JobContext
from app.mail import repository as mail_repository
from app.mail.service import cancel_messages, queue_email

OBJECT_TYPE = "invitation_recipient"
INVITATION_TEMPLATE = "citizen_invitation"
REMINDER_TEMPLATE = "citizen_reminder"
INVITATIONS_KIND = "citizen.invitations"
REMINDER_KIND = "citizen.reminders"
# Invitation e-mails queued per job (one transaction each; the next batch is another job).
INVITATIONS_PER_JOB = 1000
UPLOAD_STATES = {CampaignState.draft, CampaignState.open}
LANGUAGES = ("fr", "en")
MAX_ROWS = 50_000
DEFAULT_REMINDER_DAYS = 7
MIN_REMINDER_DAYS = 1
MAX_REMINDER_DAYS = 60
# Where the links of the e-mails lead (``invitation_link`` and ``citizen_optout`` in
# app/collection/routes.py; a test checks they agree). Written out because the reminder is
# queued by a job, with no request to ask ``url_for``.
INVITATION_PATH = "/i/{token}"
OPTOUT_PATH = "/optout/{token}"


def optout_token(survey_token: str) -> str:
    """The opt-out link's token, derived one-way from the survey link's token.

    Derived rather than drawn apart because the reminder must repeat the invitation's opt-out
    link and the row keeps only its hash; one-way because the opt-out address travels in a
    header that mail providers read and act on, and must not open the questionnaire.
    """
    digest = hashlib.sha256(b"barometre-optout\x00" + survey_token.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _links(base_url: str, survey_token: str, language: str) -> tuple[str, str]:
    """The survey and opt-out links; ``?lang=`` opens them in the e-mail's language (the
    locale middleware keeps it for the questionnaire's next pages)."""
    base = base_url.rstrip("/")
    query = f"?lang={language}"
    return (
        base + INVITATION_PATH.format(token=survey_token) + query,
        base + OPTOUT_PATH.format(token=optout_token(survey_token)) + query,
    )


def _unsubscribe_headers(optout_url: str) -> dict[str, str]:
    # RFC 2369 and RFC 8058: mail clients show an unsubscribe button that POSTs there.
    return {
        "List-Unsubscribe": f"<{optout_url}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


def email_hash(settings: Settings, address: str) -> str:
    """A keyed hash of the address, to recognise it again without keeping it (an opt-out)."""
    return keyed_hash(settings.secret_key, "invitation-email:" + address.strip().lower())


# --- the upload -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Line:
    number: int
    email: str
    authority_code: str
    language: str


@dataclass(frozen=True)
class UploadReport:
    invited: int
    # Lines whose address was invited to this campaign before: left out, never invited twice.
    already_invited_lines: list[int]
    remind_after: datetime


def reminder_days(value: str) -> int:
    """The "remind after (days)" field, checked."""
    try:
        days = int(value.strip() or DEFAULT_REMINDER_DAYS)
    except ValueError:
        days = 0
    if not MIN_REMINDER_DAYS <= days <= MAX_REMINDER_DAYS:
        raise InvalidInput(
            _("The reminder is sent after %(min)d to %(max)d days.")
            % {"min": MIN_REMINDER_DAYS, "max": MAX_REMINDER_DAYS},
            field="remind_after_days",
        )
    return days


def _read_lines(text: str) -> list[tuple[int, dict[str, str]]]:
    """The file's rows by line number, as ``{column: value}`` (``,`` or ``;`` separated)."""
    first_line = next((line for line in text.splitlines() if line.strip()), "")
    delimiter = ";" if first_line.count(";") > first_line.count(",") else ","
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    header: list[str] | None = None
    rows: list[tuple[int, dict[str, str]]] = []
    for row in reader:
        if not row or all(not cell.strip() for cell in row):
            continue
        if header is None:
            header = [cell.strip().lstrip("\ufeff").lower() for cell in row]
            if "email" not in header or "authority_code" not in header:
                raise InvalidInput(
                    _(
                        "The first line must name the columns: email, authority_code "
                        "and, if you wish, language."
                    ),
                    field="file",
                )
            continue
        if len(rows) >= MAX_ROWS:
            raise InvalidInput(
                _("The file has more than %(max)s addresses: split it.")
                % {"max": format_decimal(MAX_ROWS, format="#,##0", locale=get_locale())},
                field="file",
            )
        values = {name: (row[i].strip() if i < len(row) else "") for i, name in enumerate(header)}
        rows.append((reader.line_num, values))
    if not rows:
        raise InvalidInput(_("The file contains no address."), field="file")
    return rows


def _check_lines(
    rows: list[tuple[int, dict[str, str]]], *, registered: set[str]
) -> tuple[list[_Line], list[str]]:
    lines: list[_Line] = []
    errors: list[str] = []
    first_seen: dict[str, int] = {}
    for number, values in rows:
        problems: list[str] = []
        address = values.get("email", "")
        try:
            address = validate_email(address, check_deliverability=False).normalized
        except EmailNotValidError:
            problems.append(
                _("“%(address)s” is not a valid e-mail address.") % {"address": address}
            )
        code = values.get("authority_code", "").upper()
        if code not in registered:
            problems.append(
                _("%(code)s is not a registered candidate of this campaign.")
                % {"code": code or "∅"}
            )
        language = values.get("language", "").lower() or LANGUAGES[0]
        if language not in LANGUAGES:
            problems.append(
                _("the language must be fr or en, not “%(language)s”.")
                % {"language": values.get("language", "")}
            )
        if not problems:
            key = address.lower()
            if key in first_seen:
                problems.append(
                    _("this address is already on line %(line)d.") % {"line": first_seen[key]}
                )
            else:
                first_seen[key] = number
        for problem in problems:
            errors.append(_("Line %(line)d: %(problem)s") % {"line": number, "problem": problem})
        if not problems:
            lines.append(_Line(number, address, code, language))
    return lines, errors


def upload_recipients(
    session: Session,
    *,
    settings: Settings,
    campaign: Campaign,
    text: str,
    remind_after_days: int,
    base_url: str,
    actor: User | None,
) -> UploadReport:
    """Invite every address of the file by e-mail, or none: problems come with line numbers.

    An address invited to this campaign before (opted out included) is left out and its line
    reported. ``base_url`` is the platform's public address, for the e-mails' links. The
    e-mails themselves are queued by the ``citizen.invitations`` job.
    """
    if CampaignState(campaign.state) not in UPLOAD_STATES:
        raise Conflict(_("Invitations can be created while the campaign is draft or open."))
    campaign_id = row_id(campaign)
    rows = _read_lines(text)
    registered = set(campaigns_repository.registered_codes(session, campaign_id=campaign_id))
    lines, errors = _check_lines(rows, registered=registered)
    refuse_file(errors)
    hashes = {line.number: email_hash(settings, line.email) for line in lines}
    already = repository.invited_email_hashes(
        session, campaign_id=campaign_id, hashes=list(hashes.values())
    )
    new_lines = [line for line in lines if hashes[line.number] not in already]
    now = utcnow()
    remind_after = now + timedelta(days=remind_after_days)
    tokens = [new_token() for _line in new_lines]
    # Plain rows, not ORM objects: a list of 50,000 is stored in seconds.
    invitation_ids = repository.insert_invitations(
        session,
        [
            {
                "token_hash": hash_token(token),
                "campaign_id": campaign_id,
                "authority_code": line.authority_code,
                "created_at": now,
                "draft_id": None,
                "used_at": None,
            }
            for line, token in zip(new_lines, tokens, strict=True)
        ],
    )
    recipients = [
        {
            "invitation_id": invitation_id,
            "campaign_id": campaign_id,
            "email": line.email,
            "email_hash": hashes[line.number],
            "language": line.language,
            "token": token,
            "optout_token_hash": hash_token(optout_token(token)),
            "invited_at": None,
            "remind_after": remind_after,
            "reminded_at": None,
            "opted_out_at": None,
            "erased_at": None,
        }
        for line, token, invitation_id in zip(new_lines, tokens, invitation_ids, strict=True)
    ]
    repository.insert_recipients(session, recipients)
    if recipients:
        payload = {"campaign_id": campaign_id, "base_url": base_url}
        jobs.enqueue(session, INVITATIONS_KIND, payload, actor=actor)
        _schedule_reminders(session, payload=payload, due=remind_after, actor=actor)
    already_lines = [line.number for line in lines if hashes[line.number] in already]
    record_audit(
        session,
        actor=actor,
        action="invitations.email_upload",
        object_type="campaign",
        object_id=campaign_id,
        after={
            "invited": len(recipients),
            "already_invited": len(already_lines),
            "remind_after_days": remind_after_days,
        },
    )
    session.flush()
    return UploadReport(
        invited=len(recipients), already_invited_lines=already_lines, remind_after=remind_after
    )


def upload_message(report: UploadReport) -> str:
    """What the organiser reads after an upload (counts and line numbers, no address)."""
    message = ngettext(
        "%(count)d citizen invited by e-mail.",
        "%(count)d citizens invited by e-mail.",
        report.invited,
    ) % {"count": report.invited}
    if report.already_invited_lines:
        shown = ", ".join(str(n) for n in report.already_invited_lines[:20])
        if len(report.already_invited_lines) > 20:
            shown += ", …"
        message += " " + ngettext(
            "The address on line %(lines)s was already invited to this campaign: left out.",
            "The addresses on lines %(lines)s were already invited to this campaign: left out.",
            len(report.already_invited_lines),
        ) % {"lines": shown}
    return message


def _queue(
    session: Session,
    *,
    settings: Settings,
    template: str,
    recipient: InvitationRecipient,
    campaign: Campaign,
    authority_name: str,
    base_url: str,
) -> None:
    assert recipient.email is not None and recipient.token is not None
    survey_url, optout_url = _links(base_url, recipient.token, recipient.language)
    queue_email(
        session,
        settings=settings,
        to=recipient.email,
        language=recipient.language,
        template=template,
        context={
            "authority": authority_name,
            "year": campaign.year,
            "closes_at": campaign.closes_at,
            "url": survey_url,
            "optout_url": optout_url,
        },
        # The link is the questionnaire itself (usable once, anonymous): nothing to redact;
        # the whole message is erased with the address.
        contains_secret=False,
        object_type=OBJECT_TYPE,
        object_id=recipient.id,
        headers=_unsubscribe_headers(optout_url),
    )


def _schedule_reminders(
    session: Session, *, payload: dict[str, Any], due: datetime, actor: User | None
) -> None:
    """One reminders job per campaign and due day (it reminds every recipient then due)."""
    key = f"{REMINDER_KIND}:{payload['campaign_id']}:{due.date().isoformat()}"
    existing = jobs.job_by_key(session, key)
    if existing is None:
        jobs.enqueue(session, REMINDER_KIND, payload, run_after=due, dedupe_key=key, actor=actor)
    elif existing.state == JobState.queued:
        # A later upload the same day: the job waits for its recipients too.
        existing.run_after = max(existing.run_after, due)
        session.add(existing)
        session.flush()
    else:
        jobs.enqueue(session, REMINDER_KIND, payload, run_after=due)


# --- the e-mails ------------------------------------------------------------------------------


def _base_url(context: JobContext) -> str:
    """The address the upload came to (its links), else the configured public one."""
    return str(context.payload.get("base_url") or public_base(context.settings))


def send_invitations(context: JobContext) -> None:
    """Queue the invitation e-mails of a campaign's new recipients, a batch at a time (the
    ``citizen.invitations`` job); the next batch is a job enqueued in the same transaction.

    Nothing once the collection is over: the addresses are erased by then.
    """
    campaign_id = int(context.payload["campaign_id"])
    with context.unit_of_work() as session:
        campaign = session.get(Campaign, campaign_id)
        if campaign is None or CampaignState(campaign.state) not in UPLOAD_STATES:
            return
        pending = repository.recipients_to_invite(
            session, campaign_id=campaign_id, limit=INVITATIONS_PER_JOB + 1
        )
        batch = pending[:INVITATIONS_PER_JOB]
        authorities = authorities_repository.get_many(
            session, {invitation.authority_code for _r, invitation in batch}
        )
        now = utcnow()
        for recipient, invitation in batch:
            _queue(
                session,
                settings=context.settings,
                template=INVITATION_TEMPLATE,
                recipient=recipient,
                campaign=campaign,
                authority_name=authorities[invitation.authority_code].name,
                base_url=_base_url(context),
            )
            recipient.invited_at = now
            session.add(recipient)
        if len(pending) > INVITATIONS_PER_JOB:
            jobs.enqueue(session, INVITATIONS_KIND, dict(context.payload))
        session.flush()


# --- the reminder ------------------------------------------------------------------------------


def send_reminders(context: JobContext) -> None:
    """Queue the one reminder of every recipient now due (the ``citizen.reminders`` job).

    Only while the campaign is open; a campaign still in draft is looked at again a day later.
    """
    campaign_id = int(context.payload["campaign_id"])
    with context.unit_of_work() as session:
        campaign = session.get(Campaign, campaign_id)
        if campaign is None:
            return
        if campaign.state == CampaignState.draft:
            later = utcnow() + timedelta(days=1)
            jobs.enqueue(session, REMINDER_KIND, dict(context.payload), run_after=later)
            return
        if campaign.state != CampaignState.open:
            return
        now = utcnow()
        due = repository.recipients_due_reminder(session, campaign_id=campaign_id, now=now)
        authorities = authorities_repository.get_many(
            session, {invitation.authority_code for _r, invitation in due}
        )
        for recipient, invitation in due:
            _queue(
                session,
                settings=context.settings,
                template=REMINDER_TEMPLATE,
                recipient=recipient,
                campaign=campaign,
                authority_name=authorities[invitation.authority_code].name,
                base_url=_base_url(context),
            )
            recipient.reminded_at = now
            session.add(recipient)
        session.flush()


# --- opting out --------------------------------------------------------------------------------


class OptOutState(StrEnum):
    """What an opt-out link finds."""

    subscribed = "subscribed"  # the invitation stands: the page offers the button
    opted_out = "opted_out"  # opted out (now or before): nothing more is sent
    erased = "erased"  # the collection closed: the address is gone already
    unknown = "unknown"  # no such link (mistyped, or from elsewhere)


def _recipient_state(recipient: InvitationRecipient | None) -> OptOutState:
    if recipient is None:
        return OptOutState.unknown
    if recipient.opted_out_at is not None:
        return OptOutState.opted_out
    if recipient.erased_at is not None:
        return OptOutState.erased
    return OptOutState.subscribed


def optout_state(session: Session, *, token: str) -> OptOutState:
    """What the opt-out link ``token`` leads to (reading only: a link scanner changes nothing)."""
    return _recipient_state(repository.recipient_by_optout_hash(session, hash_token(token)))


def opt_out(session: Session, *, token: str) -> OptOutState:
    """Honour an opt-out at once: no message is sent any more, the address is erased."""
    recipient = repository.recipient_by_optout_hash(session, hash_token(token))
    state = _recipient_state(recipient)
    if recipient is None or state != OptOutState.subscribed:
        return state
    now = utcnow()
    recipient.opted_out_at = now
    recipient.erased_at = now
    recipient.email = None
    recipient.token = None
    session.add(recipient)
    session.flush()
    cancel_messages(session, object_type=OBJECT_TYPE, object_id=recipient.id)
    mail_repository.erase_recipients(
        session, object_type=OBJECT_TYPE, object_ids=[str(recipient.id)]
    )
    record_audit(
        session,
        actor=None,
        action="invitation.opt_out",
        object_type=OBJECT_TYPE,
        object_id=recipient.id,
        after={"campaign_id": recipient.campaign_id},
    )
    session.flush()
    return OptOutState.opted_out


# --- the close ---------------------------------------------------------------------------------


def campaign_closed(session: Session, *, campaign: Campaign, actor: User | None) -> None:
    """Hook of :data:`app.campaigns.service.ON_ENTER_STATE`: the collection is over, so every
    invited citizen's address is erased, with the messages that carried it; counts remain."""
    campaign_id = row_id(campaign)
    ids = repository.recipient_ids(session, campaign_id=campaign_id)
    if not ids:
        return
    unsent = repository.recipients_with_unsent_messages(
        session, object_type=OBJECT_TYPE, recipient_ids=ids
    )
    cancelled = sum(
        cancel_messages(session, object_type=OBJECT_TYPE, object_id=recipient_id)
        for recipient_id in unsent
    )
    messages = mail_repository.erase_recipients(
        session, object_type=OBJECT_TYPE, object_ids=[str(i) for i in ids]
    )
    erased = repository.erase_recipient_addresses(session, campaign_id=campaign_id, now=utcnow())
    record_audit(
        session,
        actor=actor,
        action="invitations.erase_addresses",
        object_type="campaign",
        object_id=campaign_id,
        after={
            "recipients": len(ids),
            "addresses_erased": erased,
            "messages_cancelled": cancelled,
            "messages_erased": messages,
        },
    )
    session.flush()


# --- what the organiser sees ---------------------------------------------------------------------


@dataclass(frozen=True)
class RecipientCounts:
    invited: int = 0
    reminded: int = 0
    opted_out: int = 0
    answered: int = 0
    erased: int = 0


@dataclass(frozen=True)
class CandidateCounts:
    authority_code: str
    authority_name: str
    counts: RecipientCounts


@dataclass(frozen=True)
class EmailInvitationFigures:
    total: RecipientCounts
    per_candidate: list[CandidateCounts]


def figures(session: Session, *, campaign: Campaign) -> EmailInvitationFigures:
    rows = repository.recipient_counts(session, campaign_id=row_id(campaign))
    per_candidate = [
        CandidateCounts(
            row.authority_code,
            row.authority_name,
            RecipientCounts(row.invited, row.reminded, row.opted_out, row.answered, row.erased),
        )
        for row in rows
    ]
    total = RecipientCounts(
        invited=sum(row.invited for row in rows),
        reminded=sum(row.reminded for row in rows),
        opted_out=sum(row.opted_out for row in rows),
        answered=sum(row.answered for row in rows),
        erased=sum(row.erased for row in rows),
    )
    return EmailInvitationFigures(total=total, per_candidate=per_candidate)
