"""Turning pydantic validation errors into per-field messages for forms."""

from __future__ import annotations

from pydantic import ValidationError


def field_errors(error: ValidationError) -> dict[str, str]:
    """Map each invalid field to its message; model-level errors name the field themselves.

    Model validators raise ``ValueError("field: message")`` so the message lands on its field.
    """
    messages: dict[str, str] = {}
    for item in error.errors():
        location = ".".join(str(part) for part in item["loc"])
        message = str(item["msg"]).removeprefix("Value error, ")
        if not location and ": " in message:
            location, message = message.split(": ", 1)
        messages.setdefault(location or "form", message)
    return messages
