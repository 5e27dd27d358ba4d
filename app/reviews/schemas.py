"""Request and response models of the review API (a future reviewer app)."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from app.missions.models import ReviewState


class ReviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    to_state: ReviewState
    comment: str = Field(default="", max_length=4000)
    # What the client last saw: a visit that moved on meanwhile is refused (409).
    expected_state: ReviewState | None = None
    expected_revision: int | None = Field(default=None, ge=1)


class BulkApproveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    visit_ids: list[uuid.UUID] = Field(min_length=1, max_length=500)
    comment: str = Field(default="", max_length=4000)


class HintOut(BaseModel):
    code: str
    item: str | None
    message: str


class QueueVisitOut(BaseModel):
    id: uuid.UUID
    mission_id: int
    campaign_id: int
    authority_code: str
    authority_name: str
    channel: str
    shopper_id: int | None
    review_state: str
    revision: int
    visited_at: datetime | None
    submitted_at: datetime
    hints: list[HintOut]


class QueueOut(BaseModel):
    total: int
    page: int
    pages: int
    visits: list[QueueVisitOut]


class ReviewEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    visit_id: uuid.UUID
    revision: int
    from_state: str | None
    to_state: str | None
    comment: str
    created_at: datetime


class BulkApproveOut(BaseModel):
    approved: int
