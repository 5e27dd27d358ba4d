"""Queries on users, invitations and password resets."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from app.accounts.models import AccountInvitation, PasswordReset, User


def get(session: Session, user_id: int) -> User | None:
    return session.get(User, user_id)


def get_by_email(session: Session, email: str) -> User | None:
    return session.exec(select(User).where(col(User.email) == email.strip().lower())).first()


def list_users(session: Session) -> list[User]:
    return list(session.exec(select(User).order_by(col(User.role), col(User.email))).all())


def count_by_role(session: Session, role: str) -> int:
    return int(
        session.exec(select(func.count()).select_from(User).where(col(User.role) == role)).one()
    )


def get_invitation(session: Session, token_hash: str) -> AccountInvitation | None:
    return session.exec(
        select(AccountInvitation).where(col(AccountInvitation.token_hash) == token_hash)
    ).first()


def count_active_admins(session: Session) -> int:
    return int(
        session.exec(
            select(func.count())
            .select_from(User)
            .where(col(User.role) == "admin", col(User.is_active).is_(True))
        ).one()
    )


def get_password_reset(session: Session, token_hash: str) -> PasswordReset | None:
    return session.exec(
        select(PasswordReset).where(col(PasswordReset.token_hash) == token_hash)
    ).first()


def open_password_resets(session: Session, *, user_id: int, now: datetime) -> list[PasswordReset]:
    """The user's reset links that could still be used."""
    return list(
        session.exec(
            select(PasswordReset).where(
                col(PasswordReset.user_id) == user_id,
                col(PasswordReset.used_at).is_(None),
                col(PasswordReset.expires_at) > now,
            )
        ).all()
    )


def claim_password_reset(session: Session, *, reset_id: int, now: datetime) -> bool:
    """Mark the reset used if nobody did yet; False when another request was first.

    One conditional UPDATE, so two requests racing with the same link cannot both use it.
    """
    table = PasswordReset.__table__  # type: ignore[attr-defined]
    result = session.execute(
        sa.update(table)
        .where(table.c.id == reset_id, table.c.used_at.is_(None), table.c.expires_at > now)
        .values(used_at=now)
    )
    session.expire_all()
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]
