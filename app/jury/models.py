"""The jury's workspace: conflicts of interest, votes, comments and signed decisions."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from app.core.timeutil import UTCDateTime, utcnow


class JuryConflict(SQLModel, table=True):
    """A candidate a juror must not vote on (declared by the juror, or by the organiser)."""

    __tablename__ = "jury_conflicts"
    __table_args__ = (
        sa.UniqueConstraint("campaign_id", "juror_id", "authority_code", name="uq_jury_conflict"),
    )

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaigns.id", index=True)
    juror_id: int = Field(foreign_key="users.id")
    authority_code: str = Field(foreign_key="authorities.code", max_length=12)
    reason: str = Field(default="", max_length=500)
    declared_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class JuryVote(SQLModel, table=True):
    """A juror's choice of laureate in a category, on one frozen run (one vote, changeable
    until the category's decision is signed)."""

    __tablename__ = "jury_votes"
    __table_args__ = (sa.UniqueConstraint("run_id", "category", "juror_id", name="uq_jury_vote"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="scoring_runs.id", index=True)
    category: str = Field(max_length=40)
    juror_id: int = Field(foreign_key="users.id")
    authority_code: str = Field(foreign_key="authorities.code", max_length=12)
    comment: str = Field(default="", max_length=2000)
    cast_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class JuryComment(SQLModel, table=True):
    """A note in a category's discussion, optionally about one candidate. Append-only."""

    __tablename__ = "jury_comments"

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="scoring_runs.id", index=True)
    category: str = Field(max_length=40)
    authority_code: str | None = Field(default=None, foreign_key="authorities.code", max_length=12)
    author_id: int = Field(foreign_key="users.id")
    body: str = Field(max_length=4000)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class AwardDecision(SQLModel, table=True):
    """The president's signed decision for a category: locked once signed."""

    __tablename__ = "award_decisions"
    __table_args__ = (sa.UniqueConstraint("campaign_id", "category", name="uq_award_decision"),)

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaigns.id", index=True)
    run_id: int = Field(foreign_key="scoring_runs.id")
    category: str = Field(max_length=40)
    laureate_code: str = Field(foreign_key="authorities.code", max_length=12)
    # Required when the laureate is not the point leader or the top-1 set is a tie.
    justification: str = Field(default="", max_length=4000)
    signed_by: int = Field(foreign_key="users.id")
    signed_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
