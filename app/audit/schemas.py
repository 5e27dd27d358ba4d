"""The audit log's filters, parsed from the query string of the page and of the CSV export."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from app.core.i18n import _
from app.core.timeutil import LOCAL_ZONE

MAX_PAGE = 1_000_000
# An action code ("user.create"), or a group prefix ending with a dot ("user.").
ACTION_PATTERN = r"^[a-z][a-z_]*(\.[a-z][a-z_]*)*\.?$"
OBJECT_TYPE_PATTERN = r"^[a-z][a-z_]*$"
FILTER_FIELDS = ("actor", "action", "object_type", "object_id", "date_from", "date_to", "page")


class AuditFilters(BaseModel):
    """What the organiser asked to see; an empty field filters nothing.

    Dates are local days in Paris, both ends included.
    """

    model_config = ConfigDict(str_strip_whitespace=True, extra="ignore", frozen=True)

    actor: int | None = Field(default=None, ge=1)
    action: str | None = Field(default=None, max_length=64, pattern=ACTION_PATTERN)
    object_type: str | None = Field(default=None, max_length=64, pattern=OBJECT_TYPE_PATTERN)
    object_id: str | None = Field(default=None, max_length=64)
    date_from: date | None = None
    date_to: date | None = None
    page: int = Field(default=1, ge=1, le=MAX_PAGE)

    @field_validator("*", mode="before")
    @classmethod
    def _read_query_value(cls, value: Any, info: ValidationInfo) -> Any:
        # The form sends every field, empty or not: an empty one filters nothing.
        if value is None or (isinstance(value, str) and not value.strip()):
            return 1 if info.field_name == "page" else None
        # pydantic would also read "1700000000" as a date; the form sends YYYY-MM-DD.
        dated = info.field_name in ("date_from", "date_to")
        if dated and isinstance(value, str) and not _looks_like_iso_date(value.strip()):
            raise ValueError("not a date (YYYY-MM-DD)")
        return value

    @model_validator(mode="after")
    def _dates_in_order(self) -> AuditFilters:
        if self.date_from and self.date_to and self.date_to < self.date_from:
            raise ValueError("date_to: before date_from")
        return self

    @property
    def action_prefix(self) -> str | None:
        """The group asked for ("user."), when the action filter names a group."""
        return self.action if self.action and self.action.endswith(".") else None

    @property
    def starts_at(self) -> datetime | None:
        """The first instant of ``date_from`` in Paris, in UTC."""
        return _paris_midnight(self.date_from) if self.date_from else None

    @property
    def ends_before(self) -> datetime | None:
        """The first instant after ``date_to`` in Paris, in UTC (the day itself is included)."""
        return _paris_midnight(self.date_to + timedelta(days=1)) if self.date_to else None

    def query(self, **changes: object) -> dict[str, str]:
        """The non-empty filters as query parameters (without the page unless changed)."""
        values: dict[str, object] = {
            name: getattr(self, name) for name in FILTER_FIELDS if name != "page"
        }
        values.update(changes)
        return {name: str(value) for name, value in values.items() if value not in (None, "")}

    @property
    def is_filtered(self) -> bool:
        return bool(self.query())


def _looks_like_iso_date(value: str) -> bool:
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return len(value) == 10


def _paris_midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=LOCAL_ZONE).astimezone(UTC)


def _field_message(field: str) -> str:
    # One sentence per field, naming it in the reader's words (pydantic's messages are English).
    messages = {
        "actor": _("“Actor”: choose a person from the list."),
        "action": _("“Action”: choose an action from the list."),
        "object_type": _("“Object type”: choose a type from the list."),
        "object_id": _("“Object identifier”: enter at most 64 characters."),
        "date_from": _("“From”: enter a date as YYYY-MM-DD, such as 2026-03-31."),
        "date_to": _(
            "“To”: enter a date as YYYY-MM-DD, on or after the “From” date, such as 2026-03-31."
        ),
        "page": _("“Page”: enter a whole number from 1."),
    }
    return messages.get(field, _("Check this field."))


def filter_errors(error: ValidationError) -> dict[str, str]:
    """Per-field messages of the filters, translated, keyed by query parameter name."""
    messages: dict[str, str] = {}
    for item in error.errors():
        field = str(item["loc"][0]) if item["loc"] else ""
        if not field:  # a model validator names its field: "field: message"
            field = str(item["msg"]).removeprefix("Value error, ").split(": ", 1)[0]
        messages.setdefault(field or "form", _field_message(field))
    return messages


def raw_filters(query: Mapping[str, str]) -> dict[str, str]:
    """The filter parameters of a query string, as sent (to validate, or to show again)."""
    return {name: query[name] for name in FILTER_FIELDS if name in query}
