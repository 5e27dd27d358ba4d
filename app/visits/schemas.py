"""Request and response bodies of the shopper's JSON API."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

MAX_ANSWERS = 200
MAX_TIMINGS = 50
MAX_EVIDENCE = 30


class VisitSubmission(BaseModel):
    """A shopper's report of a mission (first report, or a correction under a new id)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "id": "6b0c3a58-34c5-4d1e-9a36-3f0cbe2b8f11",
                    "mission": 42,
                    "visited_at": "2030-03-14T09:12:00Z",
                    "answers": {
                        "number_found": "yes",
                        "connected": "yes",
                        "rings": 4,
                        "call_date": "2030-03-14",
                    },
                    "timings": {
                        "rings": {"taps": ["2030-03-14T09:12:03Z", "2030-03-14T09:12:08Z"]}
                    },
                    "evidence": [],
                }
            ]
        },
    )

    id: uuid.UUID = Field(description="Client-generated: the idempotency key of this report.")
    mission: int = Field(ge=1)
    visited_at: datetime | None = Field(
        default=None, description="When the test happened, by the device's clock."
    )
    answers: dict[str, Any] = Field(max_length=MAX_ANSWERS)
    timings: dict[str, Any] = Field(
        default_factory=dict,
        max_length=MAX_TIMINGS,
        description=(
            "What the device measured, by item key: a stopwatch "
            '{"started_at": ISO, "stopped_at": ISO, "seconds": n}, a ring counter '
            '{"taps": [ISO, ...]}.'
        ),
    )
    evidence: list[uuid.UUID] = Field(default_factory=list, max_length=MAX_EVIDENCE)


class VisitAccepted(BaseModel):
    id: uuid.UUID = Field(description="The id of this submission (the revision's id).")
    visit: uuid.UUID = Field(description="The visit (the id of its first report).")
    mission: int
    revision: int
    content_sha256: str


class EvidenceAccepted(BaseModel):
    id: uuid.UUID
    mission: int
    media_type: str
    size_bytes: int
    sha256: str


class MissionSummary(BaseModel):
    id: int
    campaign: int
    authority: str
    authority_name: str
    channel: str
    window_start: date
    window_end: date
    state: str
    review_state: str | None = None


class GridScenario(BaseModel):
    key: str
    title: str
    request_text: str
    answer_sheet: str


class MissionGrid(BaseModel):
    mission: MissionSummary
    scenario: GridScenario | None
    instrument: dict[str, Any] = Field(description="The pinned grid version's definition.")
    instrument_key: str
    instrument_version: int
    instrument_sha256: str
    public_holidays: list[date] = Field(
        description="Public holidays around the mission (for working-day delays on the device)."
    )
