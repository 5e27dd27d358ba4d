"""Request models for scenarios, conflicts and assignment files."""

from __future__ import annotations

from pydantic import Field

from app.campaigns.schemas import Channel, StrictModel

# Columns of the assignment export; an import needs only mission_id and shopper_email.
ASSIGNMENT_COLUMNS = (
    "mission_id",
    "authority_code",
    "authority_name",
    "channel",
    "sequence",
    "scenario_key",
    "window_start",
    "window_end",
    "state",
    "shopper_email",
)


class ScenarioCreate(StrictModel):
    channel: Channel
    key: str = Field(min_length=1, max_length=40, pattern=r"^[a-z0-9][a-z0-9-]*$")
    title: str = Field(min_length=1, max_length=200)
    request_text: str = Field(min_length=1, max_length=4000)
    answer_sheet: str = Field(min_length=1, max_length=4000)


class ConflictDeclare(StrictModel):
    code: str = Field(min_length=1, max_length=12)
