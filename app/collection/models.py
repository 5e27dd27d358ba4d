"""Citizen responses and the drafts that carry answers between the pages of the form.

No address, user agent, account or tracking identifier is ever stored with either.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from app.core.timeutil import UTCDateTime, utcnow


class ResponseSource(StrEnum):
    link = "link"
    qr = "qr"
    invitation = "invitation"
    api = "api"


class Response(SQLModel, table=True):
    __tablename__ = "responses"
    __table_args__ = (sa.Index("ix_responses_campaign_authority", "campaign_id", "authority_code"),)

    # The client-generated UUID is the idempotency key (as ODK's instanceID).
    id: uuid.UUID = Field(primary_key=True)
    campaign_id: int = Field(foreign_key="campaigns.id")
    authority_code: str = Field(foreign_key="authorities.code", max_length=12)
    instrument_version_id: int = Field(foreign_key="instrument_versions.id")
    channel: str | None = Field(default=None, max_length=20)
    source: str = Field(max_length=20)
    started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    submitted_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    answers: dict[str, Any] = Field(sa_type=sa.JSON)
    # Optional weighting variables (age band, sex), copied out of the answers for calibration.
    profile: dict[str, Any] | None = Field(default=None, sa_type=sa.JSON)
    # sha256 of what was submitted: a replay with the same id must carry the same content.
    content_sha256: str = Field(max_length=64)
    quality_flags: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    # Flagged responses are kept but left out of scoring unless a reviewer reinstates them.
    excluded: bool = False
    # The scored items' scores 0–100 in the pinned version's item order, little-endian
    # float64, NaN missing (``surveys.pack_item_scores``): what scoring reads, without
    # parsing a million JSON documents. None for rows written before it existed.
    item_scores: bytes | None = Field(default=None, sa_type=sa.LargeBinary)


class SurveyDraft(SQLModel, table=True):
    __tablename__ = "survey_drafts"

    # Random, carried in the form's URL: it becomes the response id on submission.
    id: uuid.UUID = Field(primary_key=True)
    campaign_id: int = Field(foreign_key="campaigns.id")
    authority_code: str = Field(foreign_key="authorities.code", max_length=12)
    channel: str | None = Field(default=None, max_length=20)
    source: str = Field(max_length=20)
    answers: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    started_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    submitted: bool = False
    invitation_id: int | None = Field(default=None, foreign_key="invitations.id")


class Invitation(SQLModel, table=True):
    """A single-use link to the questionnaire, for a mailing. The token is stored hashed."""

    __tablename__ = "invitations"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True)
    campaign_id: int = Field(foreign_key="campaigns.id", index=True)
    authority_code: str = Field(foreign_key="authorities.code", max_length=12)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # The draft the invitation opened (an unfinished answer resumes); once sent, the response id.
    draft_id: uuid.UUID | None = Field(default=None, index=True)
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class InvitationRecipient(SQLModel, table=True):
    """The citizen an :class:`Invitation` was e-mailed to, until the collection closes.

    Never joined to a response: the invitation says whether it was used, nothing more. The
    address and the clear token are erased at once on opt-out, and for everyone at close;
    the dates stay, so the counts (invited, reminded, opted out, erased) remain.
    """

    __tablename__ = "invitation_recipients"
    __table_args__ = (
        sa.UniqueConstraint("campaign_id", "email_hash", name="uq_invitation_recipients_email"),
    )

    id: int | None = Field(default=None, primary_key=True)
    invitation_id: int = Field(foreign_key="invitations.id", unique=True)
    campaign_id: int = Field(foreign_key="campaigns.id", index=True)
    # None once erased (opt-out or close).
    email: str | None = Field(default=None, max_length=254)
    # A keyed hash of the lower-cased address, kept after an opt-out (erased at close) so that
    # a later upload of the same list cannot invite again someone who asked for nothing more.
    email_hash: str | None = Field(default=None, max_length=64)
    language: str = Field(default="fr", max_length=8)
    # The invitation's clear token. Invitations keep only its hash, but the one reminder must
    # carry the same survey link again (a new token would leave the first e-mail's link
    # pointing at a different invitation than the reminder's); erased with the address.
    token: str | None = Field(default=None, max_length=64)
    # The opt-out link's token, hashed (its clear value is only in the e-mails).
    optout_token_hash: str = Field(max_length=64, unique=True)
    # When the invitation e-mail was queued (by the ``citizen.invitations`` job, so that a
    # list of 50,000 addresses does not hold the upload's request for minutes).
    invited_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    remind_after: datetime = Field(sa_type=UTCDateTime, index=True)
    reminded_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    opted_out_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    erased_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
