"""The JSON API's request and response bodies."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from app.campaigns.schemas import Channel

MAX_ANSWERS = 200


class ResponseSubmission(BaseModel):
    """One completed questionnaire, as a client (app, kiosk, partner site) sends it."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "id": "3f1c1b7e-8a52-4c65-9d0c-2f1f3c9a7b10",
                    "campaign": 2026,
                    "authority": "69123",
                    "channel": "guichet",
                    "answers": {
                        "channel": "guichet",
                        "overall": 3,
                        "satisfied": 4,
                        "trust": 4,
                        "effective": 5,
                        "ease": 4,
                        "efficiency": 3,
                        "equity": "na",
                        "employees": 5,
                        "courtesy": 5,
                        "clarity": 4,
                        "delay_kept": "yes",
                    },
                }
            ]
        },
    )

    id: uuid.UUID
    campaign: int = Field(ge=2000, le=2100, description="The campaign's year.")
    authority: str = Field(min_length=1, max_length=12, description="The authority's code.")
    channel: Channel | None = None
    answers: dict[str, Any] = Field(max_length=MAX_ANSWERS)
    started_at: datetime | None = None
    invitation: str | None = Field(
        default=None, max_length=100, description="The token of a single-use invitation link."
    )


class ResponseAccepted(BaseModel):
    id: uuid.UUID


class PublishedInstrument(BaseModel):
    campaign: int
    key: str
    version: int
    sha256: str
    content: dict[str, Any]


# --- collection progress against the eligibility rules ---------------------------------------


class ChannelProgressOut(BaseModel):
    channel: str = Field(description="The channel's code.")
    label: str = Field(description="The channel in words, in the request's language.")
    approved_visits: int
    planned_tests: int = Field(description="The campaign's tests per candidate (0: none).")
    counted_visits: int = Field(
        description="Approved visits that count toward the channel being tested: up to the "
        "planned tests (a replicate second test does not count)."
    )
    tested: bool = Field(description="Counts as tested under the campaign's rule.")


class CandidateProgressOut(BaseModel):
    code: str
    name: str
    category: str
    category_label: str
    respondents: int = Field(
        description="Responses that count as respondents: not excluded, with the pinned "
        "survey version, and a defined satisfaction index (half the weight of its items "
        "answered with a score)."
    )
    respondents_needed: int
    respondents_short: int
    channels: list[ChannelProgressOut]
    channels_tested: int
    channels_needed: int
    channels_short: int
    eligible_so_far: bool
    reason: str = Field(description="Why not eligible yet, in words (empty when eligible).")


class ProgressSummaryOut(BaseModel):
    candidates: int
    eligible_so_far: int
    short_of_respondents: int
    short_of_channels: int


class ProgressOut(BaseModel):
    """Collection progress of a campaign's registered candidates (one page of them)."""

    campaign_id: int
    year: int
    min_respondents: int
    min_channels_tested: int
    min_visits_per_tested_channel: int
    summary: ProgressSummaryOut
    sort: str
    direction: str
    category: str | None
    page: int
    pages: int
    per_page: int
    candidates: list[CandidateProgressOut]
