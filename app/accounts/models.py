"""User accounts, roles and invitation links."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlmodel import Field, SQLModel

from app.core.timeutil import UTCDateTime, utcnow


class Role(StrEnum):
    admin = "admin"
    reviewer = "reviewer"
    shopper = "shopper"
    jury = "jury"
    authority = "authority"


class User(SQLModel, table=True):
    __tablename__ = "users"

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=254, unique=True, index=True)
    display_name: str = Field(max_length=120)
    # None until the invited user chooses a password.
    password_hash: str | None = Field(default=None, max_length=255)
    role: str = Field(max_length=20)
    # Only for the authority role: the one authority whose scorecard the user may see.
    authority_code: str | None = Field(default=None, foreign_key="authorities.code", max_length=12)
    is_active: bool = True
    # The language of the e-mails sent to this person ("fr" or "en").
    language: str = Field(default="fr", max_length=8)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_login_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class AccountInvitation(SQLModel, table=True):
    __tablename__ = "account_invitations"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    created_by_id: int | None = Field(default=None, foreign_key="users.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class PasswordReset(SQLModel, table=True):
    """A single-use, expiring link to choose a new password; only its hash is stored."""

    __tablename__ = "password_resets"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
