"""Signing in, inviting users and setting passwords."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from pydantic import ValidationError
from sqlmodel import Session

from app.accounts import repository
from app.accounts.models import AccountInvitation, Role, User
from app.accounts.schemas import PasswordChoice, UserCreate, UserUpdate
from app.audit.models import record_audit
from app.authorities import repository as authorities_repository
from app.core import ratelimit
from app.core.db import row_id
from app.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from app.core.i18n import _
from app.core.security import hash_password, hash_token, keyed_hash, new_token, verify_password
from app.core.timeutil import utcnow


@dataclass(frozen=True)
class LoginLimits:
    secret_key: str
    max_failures: int
    window_seconds: int


def _login_buckets(limits: LoginLimits, *, email: str, client_address: str) -> list[str]:
    # Per address (one attacker, many accounts) and per account (many addresses, one account).
    return [
        "login-ip:" + keyed_hash(limits.secret_key, client_address),
        "login-account:" + keyed_hash(limits.secret_key, email.strip().lower()),
    ]


def authenticate(
    session: Session, *, email: str, password: str, client_address: str, limits: LoginLimits
) -> User | None:
    """Return the user, or None with a generic refusal; too many failures give 429 first.

    The limit is checked before the (deliberately slow) argon2 verification, so a flood of
    guesses costs the server nothing.
    """
    buckets = _login_buckets(limits, email=email, client_address=client_address)
    for bucket in buckets:
        ratelimit.enforce(
            session,
            bucket,
            limit=limits.max_failures,
            window_seconds=limits.window_seconds,
            message=_("Too many failed sign-in attempts. Try again later."),
        )
    user = repository.get_by_email(session, email)
    valid = verify_password(password, user.password_hash if user else None)
    if user is None or not valid or not user.is_active:
        for bucket in buckets:
            ratelimit.record_hit(session, bucket, window_seconds=limits.window_seconds)
        return None
    user.last_login_at = utcnow()
    session.add(user)
    return user


def create_user(session: Session, *, data: UserCreate, created_by: User | None) -> User:
    if repository.get_by_email(session, data.email) is not None:
        raise Conflict(_("An account already uses this e-mail address."), field="email")
    if data.authority_code and authorities_repository.get(session, data.authority_code) is None:
        raise InvalidInput(
            _("No authority with code %(code)s.") % {"code": data.authority_code},
            field="authority_code",
        )
    user = User(
        email=str(data.email).lower(),
        display_name=data.display_name,
        role=data.role.value,
        authority_code=data.authority_code,
    )
    session.add(user)
    session.flush()
    record_audit(
        session,
        actor=created_by,
        action="user.create",
        object_type="user",
        object_id=user.id,
        after={"email": user.email, "role": user.role, "authority_code": user.authority_code},
    )
    return user


def create_invitation(
    session: Session, *, user: User, created_by: User | None, valid_days: int
) -> str:
    """Create a single-use link to choose a password; returns the clear token (shown once)."""
    token = new_token()
    invitation = AccountInvitation(
        token_hash=hash_token(token),
        user_id=row_id(user),
        created_by_id=created_by.id if created_by else None,
        expires_at=utcnow() + timedelta(days=valid_days),
    )
    session.add(invitation)
    session.flush()
    record_audit(
        session,
        actor=created_by,
        action="user.invite",
        object_type="user",
        object_id=user.id,
        after={"expires_at": invitation.expires_at.isoformat()},
    )
    return token


def find_open_invitation(session: Session, *, token: str) -> AccountInvitation:
    invitation = repository.get_invitation(session, hash_token(token))
    if invitation is None or invitation.used_at is not None or invitation.expires_at < utcnow():
        raise NotFound(_("This invitation link is invalid, expired or already used."))
    return invitation


def accept_invitation(session: Session, *, token: str, choice: PasswordChoice) -> User:
    invitation = find_open_invitation(session, token=token)
    user = repository.get(session, invitation.user_id)
    if user is None:
        raise NotFound(_("This invitation link is invalid, expired or already used."))
    user.password_hash = hash_password(choice.password)
    invitation.used_at = utcnow()
    session.add_all([user, invitation])
    record_audit(
        session, actor=user, action="user.set_password", object_type="user", object_id=user.id
    )
    return user


def create_admin(session: Session, *, email: str, display_name: str, password: str) -> User:
    try:
        data = UserCreate(email=email, display_name=display_name, role=Role.admin)
        PasswordChoice(password=password, password_confirm=password)
    except ValidationError as exc:
        raise InvalidInput(str(exc)) from exc
    user = create_user(session, data=data, created_by=None)
    user.password_hash = hash_password(password)
    session.add(user)
    return user


def _snapshot(user: User) -> dict[str, object]:
    return {
        "display_name": user.display_name,
        "role": user.role,
        "authority_code": user.authority_code,
        "is_active": user.is_active,
    }


def get_user(session: Session, *, user_id: int) -> User:
    user = repository.get(session, user_id)
    if user is None:
        raise NotFound(_("No such user."))
    return user


def _keep_an_admin(session: Session, user: User) -> None:
    """Refuse (409) taking away the last active admin: nobody could manage the platform."""
    if user.role == Role.admin and user.is_active and repository.count_active_admins(session) <= 1:
        raise Conflict(
            _(
                "%(name)s is the last active organiser (admin): give the admin role to someone "
                "else first."
            )
            % {"name": user.display_name},
            field="role",
        )


def update_user(session: Session, *, user: User, data: UserUpdate, actor: User) -> User:
    """Change an account's name, role and authority (audited)."""
    if data.authority_code and authorities_repository.get(session, data.authority_code) is None:
        raise InvalidInput(
            _("No authority with code %(code)s.") % {"code": data.authority_code},
            field="authority_code",
        )
    if data.role != Role.admin:
        _keep_an_admin(session, user)
    before = _snapshot(user)
    user.display_name = data.display_name
    user.role = data.role.value
    user.authority_code = data.authority_code
    session.add(user)
    session.flush()
    after = _snapshot(user)
    if after != before:
        record_audit(
            session,
            actor=actor,
            action="user.update",
            object_type="user",
            object_id=user.id,
            before=before,
            after=after,
        )
    return user


def deactivate_user(session: Session, *, user: User, actor: User) -> User:
    """Close an account: its sessions end at the next request, it can no longer sign in.

    The password is erased too, so a session cookie kept from before can never come back to
    life (sessions carry a fingerprint of the password hash) and a reactivated account chooses
    a new password through an invitation link.
    """
    if user.id == actor.id:
        raise Forbidden(_("You cannot deactivate your own account."))
    if not user.is_active:
        raise Conflict(_("This account is already deactivated."))
    _keep_an_admin(session, user)
    before = _snapshot(user)
    user.is_active = False
    user.password_hash = None
    session.add(user)
    session.flush()
    record_audit(
        session,
        actor=actor,
        action="user.deactivate",
        object_type="user",
        object_id=user.id,
        before=before,
        after=_snapshot(user),
    )
    return user


def reactivate_user(session: Session, *, user: User, actor: User) -> User:
    """Open a deactivated account again (its holder then chooses a new password)."""
    if user.is_active:
        raise Conflict(_("This account is already active."))
    before = _snapshot(user)
    user.is_active = True
    session.add(user)
    session.flush()
    record_audit(
        session,
        actor=actor,
        action="user.reactivate",
        object_type="user",
        object_id=user.id,
        before=before,
        after=_snapshot(user),
    )
    return user
