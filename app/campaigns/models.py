"""Yearly editions of the barometer, their state history and their candidates."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from app.core.timeutil import UTCDateTime, utcnow


class CampaignState(StrEnum):
    draft = "draft"
    open = "open"
    closed = "closed"
    scored = "scored"
    deliberated = "deliberated"
    published = "published"


# The yearly cycle is linear: each state has exactly one successor.
NEXT_STATE: dict[CampaignState, CampaignState] = {
    CampaignState.draft: CampaignState.open,
    CampaignState.open: CampaignState.closed,
    CampaignState.closed: CampaignState.scored,
    CampaignState.scored: CampaignState.deliberated,
    CampaignState.deliberated: CampaignState.published,
}


class Campaign(SQLModel, table=True):
    __tablename__ = "campaigns"
    __table_args__ = (sa.UniqueConstraint("organiser", "year", name="uq_campaign_organiser_year"),)

    id: int | None = Field(default=None, primary_key=True)
    year: int = Field(index=True)
    organiser: str = Field(max_length=200)
    name: str = Field(max_length=200)
    state: str = Field(default=CampaignState.draft, max_length=20)
    opens_at: date
    closes_at: date
    config: dict[str, Any] = Field(sa_type=sa.JSON)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class CampaignTransition(SQLModel, table=True):
    __tablename__ = "campaign_transitions"

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaigns.id", index=True)
    from_state: str = Field(max_length=20)
    to_state: str = Field(max_length=20)
    actor_id: int | None = Field(default=None, foreign_key="users.id")
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    comment: str = Field(default="", max_length=500)


class CandidateStatus(StrEnum):
    registered = "registered"
    withdrawn = "withdrawn"


class Candidate(SQLModel, table=True):
    __tablename__ = "candidates"
    __table_args__ = (
        sa.UniqueConstraint(
            "campaign_id", "authority_code", name="uq_candidate_campaign_authority"
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaigns.id", index=True)
    authority_code: str = Field(foreign_key="authorities.code", max_length=12, index=True)
    category: str = Field(max_length=40)
    status: str = Field(default=CandidateStatus.registered, max_length=20)
    registered_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class CampaignInstrument(SQLModel, table=True):
    """The exact instrument version a campaign collects with (one per instrument key)."""

    __tablename__ = "campaign_instruments"
    __table_args__ = (
        sa.UniqueConstraint("campaign_id", "instrument_key", name="uq_campaign_instrument_key"),
    )

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaigns.id", index=True)
    instrument_key: str = Field(max_length=64)
    instrument_version_id: int = Field(foreign_key="instrument_versions.id")
    pinned_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    pinned_by_id: int | None = Field(default=None, foreign_key="users.id")
