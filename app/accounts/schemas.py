"""Request models for accounts."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, ValidationError, model_validator

from app.accounts.models import Role
from app.core.i18n import _

MIN_PASSWORD_LENGTH = 12
# The languages an e-mail can be written in (``app.core.i18n.SUPPORTED_LOCALES``).
Language = Literal["fr", "en"]


class UserCreate(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True)

    email: EmailStr
    display_name: str = Field(min_length=1, max_length=120)
    role: Role
    authority_code: str | None = Field(default=None, max_length=12)
    # The language of the e-mails this person receives.
    language: Language = "fr"

    @model_validator(mode="after")
    def _authority_only_for_authority_role(self) -> UserCreate:
        if self.role == Role.authority and not self.authority_code:
            raise ValueError("authority_code: required for an authority contact")
        if self.role != Role.authority:
            self.authority_code = None
        return self


class UserUpdate(BaseModel):
    """What an organiser may change of an account (the e-mail address is its identity)."""

    model_config = ConfigDict(str_strip_whitespace=True)

    display_name: str = Field(min_length=1, max_length=120)
    role: Role
    authority_code: str | None = Field(default=None, max_length=12)
    language: Language = "fr"

    @model_validator(mode="after")
    def _authority_only_for_authority_role(self) -> UserUpdate:
        if self.role == Role.authority and not self.authority_code:
            raise ValueError("authority_code: required for an authority contact")
        if self.role != Role.authority:
            self.authority_code = None
        return self


class PasswordForgot(BaseModel):
    """The address someone asks a new-password link for (it may match no account)."""

    model_config = ConfigDict(str_strip_whitespace=True)

    email: EmailStr


class PasswordChoice(BaseModel):
    password: str = Field(min_length=MIN_PASSWORD_LENGTH, max_length=256)
    password_confirm: str

    @model_validator(mode="after")
    def _passwords_match(self) -> PasswordChoice:
        if self.password != self.password_confirm:
            raise ValueError("password_confirm: the two passwords differ")
        return self


def _field_message(field: str) -> str:
    # One sentence per field in the reader's language: pydantic's own messages are English
    # and name types ("value is not a valid email address: An email address must have an @").
    messages = {
        "email": _("Enter a valid e-mail address, such as name@example.fr."),
        "display_name": _("Enter the person's name (120 characters at most)."),
        "role": _("Choose a role."),
        "language": _("Choose the language of the e-mails."),
        "authority_code": _("Enter the code of the authority this contact belongs to."),
        "password": _("Choose a password of at least %(count)d characters.")
        % {"count": MIN_PASSWORD_LENGTH},
        "password_confirm": _("The two passwords differ."),
    }
    return messages.get(field, _("Check this field."))


def form_errors(error: ValidationError) -> dict[str, str]:
    """Per-field messages of an accounts form, translated (never pydantic's English)."""
    messages: dict[str, str] = {}
    for item in error.errors():
        field = str(item["loc"][0]) if item["loc"] else ""
        if not field:  # a model validator names its field: "field: message"
            field = str(item["msg"]).removeprefix("Value error, ").split(": ", 1)[0]
        messages.setdefault(field or "form", _field_message(field))
    return messages
