"""Business errors carry their HTTP status; one handler renders them as a page or JSON."""

from __future__ import annotations

from app.core.i18n import _


class DomainError(Exception):
    """An expected refusal, shown to the user with its status code and message."""

    status_code = 400
    title = "Request refused"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidInput(DomainError):
    status_code = 422
    title = "Invalid input"


class NotFound(DomainError):
    status_code = 404
    title = "Not found"


class Forbidden(DomainError):
    status_code = 403
    title = "Forbidden"


class NotAuthenticated(DomainError):
    status_code = 401
    title = "Sign-in required"


class Conflict(DomainError):
    status_code = 409
    title = "Conflict"


class TooManyRequests(DomainError):
    status_code = 429
    title = "Too many requests"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


MAX_REPORTED_LINE_ERRORS = 20


def refuse_file(errors: list[str], *, field: str = "file") -> None:
    """Refuse a whole file when any line is wrong, listing the first problems (all or nothing).

    ``errors`` are already worded for people (``Line 12: …``); an empty list accepts the file.
    """
    if not errors:
        return
    shown = errors[:MAX_REPORTED_LINE_ERRORS]
    if len(errors) > MAX_REPORTED_LINE_ERRORS:
        shown.append(_("… and %(count)d more.") % {"count": len(errors) - MAX_REPORTED_LINE_ERRORS})
    raise InvalidInput("\n".join(shown), field=field)
