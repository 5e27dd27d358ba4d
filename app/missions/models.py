"""Mystery-shopper scenarios, conflicts of interest, missions and the visits that report them."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from app.core.labels import N_
from app.core.timeutil import UTCDateTime, utcnow


class MissionState(StrEnum):
    planned = "planned"  # generated, no shopper yet
    assigned = "assigned"
    submitted = "submitted"  # a visit was reported
    approved = "approved"  # its visit passed review: it counts in scoring
    cancelled = "cancelled"


# For the catalogs: templates translate the states with _(state).
MISSION_STATE_LABELS = [
    N_("planned"),
    N_("assigned"),
    N_("submitted"),
    N_("approved"),
    N_("cancelled"),
]
REVIEW_STATE_LABELS = [N_("received"), N_("has_issues"), N_("approved"), N_("rejected")]

# A mission can change hands or be replanned only before a visit is reported.
UNSUBMITTED_STATES = frozenset({MissionState.planned, MissionState.assigned})


class ReviewState(StrEnum):
    """ODK Central's review states for a submission."""

    received = "received"
    has_issues = "has_issues"
    approved = "approved"
    rejected = "rejected"


class Scenario(SQLModel, table=True):
    """What the shopper asks on a channel, and the answer sheet a correct reply must match."""

    __tablename__ = "mission_scenarios"
    __table_args__ = (
        sa.UniqueConstraint("campaign_id", "channel", "key", name="uq_scenario_campaign_key"),
    )

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaigns.id", index=True)
    channel: str = Field(max_length=20)
    key: str = Field(max_length=40)
    title: str = Field(max_length=200)
    request_text: str = Field(max_length=4000)
    answer_sheet: str = Field(max_length=4000)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ShopperConflict(SQLModel, table=True):
    """An authority a shopper must never test (they work there, live there, know its staff…)."""

    __tablename__ = "shopper_conflicts"
    __table_args__ = (sa.UniqueConstraint("user_id", "authority_code", name="uq_shopper_conflict"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    authority_code: str = Field(foreign_key="authorities.code", max_length=12)
    declared_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Mission(SQLModel, table=True):
    """One test of one candidate on one channel: the n-th (``sequence``) of its quota."""

    __tablename__ = "missions"
    __table_args__ = (
        sa.UniqueConstraint(
            "campaign_id", "authority_code", "channel", "sequence", name="uq_mission_slot"
        ),
        sa.Index("ix_missions_campaign_shopper", "campaign_id", "shopper_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaigns.id")
    authority_code: str = Field(foreign_key="authorities.code", max_length=12)
    channel: str = Field(max_length=20)
    sequence: int = Field(ge=1)
    # None on channels the organiser gave no scenario (a website audit needs none).
    scenario_id: int | None = Field(default=None, foreign_key="mission_scenarios.id")
    shopper_id: int | None = Field(default=None, foreign_key="users.id", index=True)
    window_start: date
    window_end: date
    state: str = Field(default=MissionState.planned, max_length=20)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Visit(SQLModel, table=True):
    """A shopper's report of a mission, filled on the pinned grid version."""

    __tablename__ = "visits"

    # The client-generated UUID is the idempotency key, as for citizen responses.
    id: uuid.UUID = Field(primary_key=True)
    mission_id: int = Field(foreign_key="missions.id", index=True)
    instrument_version_id: int = Field(foreign_key="instrument_versions.id")
    answers: dict[str, Any] = Field(sa_type=sa.JSON)
    # Stopwatch and ring-counter timestamps behind the duration items.
    timings: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    # sha256 of what was submitted: a replay with the same id must carry the same content.
    content_sha256: str = Field(max_length=64)
    submitted_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    review_state: str = Field(default=ReviewState.received, max_length=20)
    # 1 for the first report, +1 for each correction after a has_issues review.
    revision: int = Field(default=1, ge=1)
    # The shopper who reported it (the mission's shopper at the time): never shown to authorities.
    shopper_id: int | None = Field(default=None, foreign_key="users.id", index=True)
    # When the visit happened, as the shopper's device recorded it (a queued offline
    # submission reaches the server later: the window check uses this, not submitted_at).
    visited_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # What scoring reads of an approved visit, computed at approval
    # (``surveys.pack_submission_scores``: total, knock-out flag, theme and item scores as
    # float64), so that a run does not score tens of thousands of visits again. Used only
    # while ``scores_key`` (``app.results.visit_scores.scores_key``: format, instrument
    # version, content hash, holiday subdivision) still matches; None before approval and
    # for visits approved before it existed: scoring computes those from the answers.
    scores: bytes | None = Field(default=None, sa_type=sa.LargeBinary)
    scores_key: str | None = Field(default=None, max_length=64)


class VisitRevision(SQLModel, table=True):
    """Every version of a visit's content, kept forever: the review history reads these.

    Revision 1 is the first report (its ``id`` is the visit's id); each correction after a
    has_issues review adds the next one, under its own client-generated UUID so a replayed
    correction is as harmless as a replayed first report.
    """

    __tablename__ = "visit_revisions"
    __table_args__ = (sa.UniqueConstraint("visit_id", "revision", name="uq_visit_revision"),)

    id: uuid.UUID = Field(primary_key=True)
    visit_id: uuid.UUID = Field(foreign_key="visits.id", index=True)
    revision: int = Field(ge=1)
    answers: dict[str, Any] = Field(sa_type=sa.JSON)
    timings: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    content_sha256: str = Field(max_length=64)
    visited_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    submitted_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class VisitEvidence(SQLModel, table=True):
    """A proof attached to a mission (photo, screenshot, PDF), stored outside the database.

    Uploaded against the mission (possibly before the visit is submitted, and replayable
    under its client UUID); ``visit_id`` is set once the report that cites it arrives.
    Images are re-encoded without EXIF before they are stored.
    """

    __tablename__ = "visit_evidence"

    id: uuid.UUID = Field(primary_key=True)
    mission_id: int = Field(foreign_key="missions.id", index=True)
    visit_id: uuid.UUID | None = Field(default=None, foreign_key="visits.id", index=True)
    # The grid item this proves, when the shopper attached it to one.
    item_key: str | None = Field(default=None, max_length=60)
    uploaded_by: int = Field(foreign_key="users.id")
    media_type: str = Field(max_length=40)  # as sniffed from the bytes, never as declared
    size_bytes: int = Field(ge=0)
    sha256: str = Field(max_length=64)
    # Relative to the evidence directory of the settings; never built from user input.
    storage_path: str = Field(max_length=200)
    original_name: str = Field(default="", max_length=200)
    uploaded_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ReviewEvent(SQLModel, table=True):
    """One entry of a visit's review thread: a state change, a comment, or both.

    Append-only; the shopper sees the thread of their own visits (with reviewers named by
    role only), authorities never see it.
    """

    __tablename__ = "visit_review_events"

    id: int | None = Field(default=None, primary_key=True)
    visit_id: uuid.UUID = Field(foreign_key="visits.id", index=True)
    revision: int = Field(ge=1)  # the revision the event is about
    author_id: int = Field(foreign_key="users.id")
    from_state: str | None = Field(default=None, max_length=20)
    to_state: str | None = Field(default=None, max_length=20)
    comment: str = Field(default="", max_length=4000)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
