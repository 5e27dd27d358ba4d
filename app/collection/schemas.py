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
