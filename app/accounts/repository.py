"""Queries on users and invitations."""

from __future__ import annotations

from sqlmodel import Session, col, func, select

from app.accounts.models import AccountInvitation, User


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
