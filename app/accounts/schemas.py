"""Request models for accounts."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, EmailStr, Field, model_validator

from app.accounts.models import Role

MIN_PASSWORD_LENGTH = 12


class UserCreate(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True)

    email: EmailStr
    display_name: str = Field(min_length=1, max_length=120)
    role: Role
    authority_code: str | None = Field(default=None, max_length=12)

    @model_validator(mode="after")
    def _authority_only_for_authority_role(self) -> UserCreate:
        if self.role == Role.authority and not self.authority_code:
            raise ValueError("authority_code: required for an authority contact")
        if self.role != Role.authority:
            self.authority_code = None
        return self


class PasswordChoice(BaseModel):
    password: str = Field(min_length=MIN_PASSWORD_LENGTH, max_length=256)
    password_confirm: str

    @model_validator(mode="after")
    def _passwords_match(self) -> PasswordChoice:
        if self.password != self.password_confirm:
            raise ValueError("password_confirm: the two passwords differ")
        return self
