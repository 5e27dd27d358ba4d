"""The one door for a citizen's completed questionnaire.

Four entry points hand in a completed questionnaire: the public form's last page, the
invitation form's last page, ``POST /api/v1/responses``, and the same with an invitation token.
Each only adapts its input into a :class:`Submission` and calls :func:`submit`, which:

1. checks what this process knows of the client's rate limit (a full bucket: 429, no read);
2. :func:`prepare` validates the answers and builds the row (pure: no database), with the
   packed item scores that scoring reads (``surveys.pack_item_scores``);
3. hands it to the process's group-commit writer (``app.collection.ingest``), which re-checks
   in its transaction the campaign, the candidacy, the shared rate-limit counter and the
   invitation, inserts the response once (its id decides: a replay is harmless, other content
   under the same id is a conflict), deletes the form's draft, marks the invitation used, and
   acknowledges only after COMMIT;
4. turns a refused outcome into the domain error of the caller's form (:func:`refusal`); the
   error handlers render it as a page, an htmx fragment or JSON, in the request's language.

:func:`submit_in_session` runs steps 2–4 in the caller's transaction with the writer's own
batch function (the demo and the command line): a response stored there is the same row, with
the same content hash, as one that came through the API.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from functools import lru_cache
from typing import Any

from fastapi import Request
from sqlalchemy.engine import Engine
from sqlmodel import Session

import surveys
from app.campaigns.schemas import Channel
from app.collection import ingest, service
from app.collection.models import ResponseSource
from app.collection.service import InvalidAnswers, SurveyTarget
from app.core import ratelimit
from app.core.config import Settings
from app.core.db import row_id
from app.core.errors import DomainError, InvalidInput, TooManyRequests
from app.core.i18n import _
from app.core.security import keyed_hash
from app.core.timeutil import utcnow


class Via(StrEnum):
    """How the questionnaire came in: it decides how a refusal is worded."""

    form = "form"  # the questionnaire's pages (public link or invitation)
    api = "api"  # POST /api/v1/responses


@dataclass(frozen=True)
class Submission:
    """A completed questionnaire as any entry point hands it in."""

    target: SurveyTarget
    response_id: uuid.UUID  # the client's id (API) or the form's draft id: the idempotency key
    answers: Mapping[str, Any]
    source: ResponseSource
    channel: str | None = None
    started_at: datetime | None = None
    # An invitation already checked against this target (its use is settled in the transaction).
    invitation_id: int | None = None
    # The form's last page: its draft (same id) is deleted in the response's transaction.
    discard_draft: bool = False
    # When it was received; None is now. Only a backfill in the caller's transaction (the
    # demo's past edition) says otherwise: no request can choose it.
    submitted_at: datetime | None = None


@dataclass(frozen=True)
class ClientLimit:
    """The public rate limit of one client: its bucket and the bucket's allowance."""

    bucket: str
    limit: int
    window_seconds: int


def client_limit(settings: Settings, request: Request) -> ClientLimit:
    """The client's bucket, from a keyed hash whose salt rotates every day.

    The address itself is never stored, and yesterday's buckets cannot be linked to today's.
    """
    day = datetime.now(UTC).date().isoformat()
    address = request.client.host if request.client else "unknown"
    return ClientLimit(
        bucket="submit:" + _bucket_hash(settings.secret_key, day, address),
        limit=settings.public_submissions_per_window,
        window_seconds=settings.public_window_seconds,
    )


@lru_cache(maxsize=4096)
def _bucket_hash(secret_key: str, day: str, address: str) -> str:
    """The keyed hash of an address for a day (pure, so memoised: it is on every submission)."""
    return keyed_hash(secret_key + day, address)


def limit_message() -> str:
    return _("Too many answers from this connection. Please try again in a few minutes.")


# --- 2. prepare: validation and the row, no database ----------------------------------------


def content_sha256(target: SurveyTarget, channel: str | None, answers: Mapping[str, Any]) -> str:
    """What makes two submissions of one id "the same": campaign, authority, channel, answers."""
    payload = {
        "campaign": target.campaign.id,
        "authority": target.authority.code,
        "channel": channel,
        "answers": answers,
    }
    canonical = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _reconcile_channel(
    target: SurveyTarget, answers: Mapping[str, Any], channel: str | None
) -> tuple[dict[str, Any], str | None]:
    """The link's channel fills the questionnaire's channel item, and they must agree."""
    answers = dict(answers)
    channel_item = target.instrument.channel_item
    if channel_item is None:
        return answers, channel
    answered = answers.get(channel_item.key)
    if answered in (None, "") and channel is not None:
        return {**answers, channel_item.key: channel}, channel
    if channel is not None and answered is not None and answered != channel:
        raise InvalidAnswers(
            [
                {
                    "field": f"answers.{channel_item.key}",
                    "code": "channel_mismatch",
                    "message": _("The answer says %(answer)s but the channel is %(channel)s.")
                    % {"answer": answered, "channel": channel},
                }
            ]
        )
    return answers, answered if isinstance(answered, str) else channel


def prepare(submission: Submission, *, limit: ClientLimit | None = None) -> ingest.Pending:
    """Validate a submission and build the row the writer stores (no database access).

    Raises ``InvalidInput`` / ``InvalidAnswers`` (422, item by item) for anything that must
    not be stored.
    """
    target = submission.target
    channel = submission.channel
    if channel is not None and channel not in {c.value for c in Channel}:
        raise InvalidInput(
            _("Unknown channel: %(channel)s.") % {"channel": channel}, field="channel"
        )
    answers, channel = _reconcile_channel(target, submission.answers, channel)
    clean, errors = service.validate_page(target.instrument, answers, section=None)
    if errors:
        raise InvalidAnswers(errors)
    submitted_at = submission.submitted_at or utcnow()
    started_at = submission.started_at
    if started_at is not None and started_at > submitted_at:
        started_at = None  # a client clock ahead of ours says nothing about speed
    flags = service.quality_flags(
        target.instrument, clean, started_at=started_at, submitted_at=submitted_at
    )
    profile = {
        item.key: clean[item.key]
        for item in target.instrument.weighting_variables
        if item.key in clean
    }
    values = {
        "id": submission.response_id,
        "campaign_id": row_id(target.campaign),
        "authority_code": target.authority.code,
        "instrument_version_id": row_id(target.version),
        "channel": channel,
        "source": submission.source.value,
        "started_at": started_at,
        "submitted_at": submitted_at,
        "answers": clean,
        "profile": profile or None,
        "content_sha256": content_sha256(target, channel, clean),
        "quality_flags": flags,
        "excluded": bool(flags),
        # What scoring reads (``surveys.pack_item_scores``), so that a run does not parse the
        # answers of a million responses again; computed here, the one door every response takes.
        "item_scores": surveys.pack_item_scores(target.instrument, clean),
    }
    return ingest.Pending(
        values,
        bucket=limit.bucket if limit else None,
        window_seconds=limit.window_seconds if limit else 600,
        limit=limit.limit if limit else None,
        discard_draft=submission.discard_draft,
        invitation_id=submission.invitation_id,
    )


# --- 3 and 4. store, and say why not ---------------------------------------------------------


def refusal(
    outcome: ingest.Outcome, *, target: SurveyTarget, via: Via, limit: ClientLimit | None
) -> DomainError | None:
    """The error a refused outcome stands for, worded for the caller's form (``None`` when the
    response is stored)."""
    if outcome in (ingest.Outcome.created, ingest.Outcome.replay):
        return None
    if outcome is ingest.Outcome.conflict:
        return service.response_conflict()
    if outcome is ingest.Outcome.limited:
        window_seconds = limit.window_seconds if limit else 600
        return TooManyRequests(limit_message(), retry_after=ratelimit.retry_after(window_seconds))
    if outcome is ingest.Outcome.closed:
        return service.campaign_closed(target.campaign.year)
    if outcome is ingest.Outcome.not_candidate:
        return service.not_a_candidate(target.authority.code, target.campaign.year)
    if outcome is ingest.Outcome.invitations_only:
        return service.invitations_only_error(
            replace(target, invitations_only=True), public_link=via is Via.form
        )
    if outcome is ingest.Outcome.invitation_used:
        return service.invitation_used()
    raise RuntimeError(f"unexpected outcome {outcome}")


def _check_known_limit(limit: ClientLimit | None) -> None:
    if limit is not None:
        ratelimit.LOCAL.check(
            limit.bucket,
            limit=limit.limit,
            window_seconds=limit.window_seconds,
            message=limit_message(),
        )


async def submit(
    engine: Engine,
    settings: Settings,
    submission: Submission,
    *,
    limit: ClientLimit | None,
    via: Via,
) -> bool:
    """Validate and store one completed questionnaire; True when this call created it (201),
    False for a harmless replay (200). Refusals are raised as domain errors."""
    _check_known_limit(limit)
    if submission.invitation_id is None and via is Via.api:
        # Checked again in the write transaction; refusing here spares the writer a row.
        error = service.invitations_only_error(submission.target, public_link=False)
        if error is not None:
            raise error
    pending = prepare(submission, limit=limit)
    outcome = await ingest.public_writer(engine, settings).submit(pending)
    error = refusal(outcome, target=submission.target, via=via, limit=limit)
    if error is not None:
        raise error
    return outcome is ingest.Outcome.created


def submit_in_session(
    session: Session,
    submission: Submission,
    *,
    limit: ClientLimit | None = None,
    via: Via = Via.api,
) -> bool:
    """:func:`submit` in the caller's transaction (the demo, the command line): the writer's
    own batch function on the session's connection; the caller's unit of work commits."""
    return submit_many_in_session(session, [submission], limit=limit, via=via)[0]


def submit_many_in_session(
    session: Session,
    submissions: Sequence[Submission],
    *,
    limit: ClientLimit | None = None,
    via: Via = Via.api,
) -> list[bool]:
    """Several submissions as one batch of the writer's (in the caller's transaction): for
    each, True when created, False for a replay; the first refusal is raised."""
    _check_known_limit(limit)
    created: list[bool] = []
    for start in range(0, len(submissions), ingest.MAX_BATCH):
        chunk = submissions[start : start + ingest.MAX_BATCH]
        batch: list[ingest.Item] = [prepare(given, limit=limit) for given in chunk]
        outcomes = ingest.write_batch(session.connection(), batch)
        for given, outcome in zip(chunk, outcomes, strict=True):
            error = refusal(outcome, target=given.target, via=via, limit=limit)
            if error is not None:
                raise error
            created.append(outcome is ingest.Outcome.created)
    return created


async def invitation_of_token(
    engine: Engine, *, token: str | None, target: SurveyTarget, response_id: uuid.UUID
) -> int | None:
    """For the API: the id of the invitation a token names, checked against the target
    (422 when it is not valid here, 410 when another response used it); None without one."""
    if token is None:
        return None
    return await asyncio.to_thread(
        service.invitation_id_of_token,
        engine,
        token=token,
        target=target,
        response_id=response_id,
    )
