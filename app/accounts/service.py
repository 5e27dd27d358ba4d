"""Signing in, inviting users, setting and resetting passwords."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import ValidationError
from sqlmodel import Session

from app.accounts import repository
from app.accounts.models import AccountInvitation, PasswordReset, Role, User
from app.accounts.schemas import PasswordChoice, UserCreate, UserUpdate
from app.audit.models import record_audit
from app.authorities import repository as authorities_repository
from app.core import ratelimit
from app.core.config import Settings
from app.core.db import row_id
from app.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from app.core.i18n import _
from app.core.security import hash_password, hash_token, keyed_hash, new_token, verify_password
from app.core.timeutil import LOCAL_ZONE, utcnow
from app.mail.service import queue_email

# The absolute address (for an e-mail) of the page a single-use token opens: the route knows
# its paths and the request's address, the service only the token.
LinkFor = Callable[[str], str]

PASSWORD_RESET_VALID = timedelta(hours=1)
# Requests for a new-password link, per client address and per asked address, in a window.
PASSWORD_RESET_MAX_REQUESTS = 5
PASSWORD_RESET_WINDOW_SECONDS = 3600


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
        language=data.language,
    )
    session.add(user)
    session.flush()
    record_audit(
        session,
        actor=created_by,
        action="user.create",
        object_type="user",
        object_id=user.id,
        after={
            "email": user.email,
            "role": user.role,
            "authority_code": user.authority_code,
            "language": user.language,
        },
    )
    return user


def create_invitation(
    session: Session, *, user: User, created_by: User | None, valid_days: int
) -> str:
    """Create a single-use link to choose a password; returns the clear token (shown once)."""
    token, _invitation = _new_invitation(
        session, user=user, created_by=created_by, valid_days=valid_days
    )
    return token


def _new_invitation(
    session: Session, *, user: User, created_by: User | None, valid_days: int
) -> tuple[str, AccountInvitation]:
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
    return token, invitation


def send_invitation(
    session: Session, *, user: User, invited_by: User, settings: Settings, link_for: LinkFor
) -> None:
    """Create a single-use invitation and queue its e-mail, in the person's language.

    ``link_for`` turns the token into the absolute address of the invitation page. The link
    is in the e-mail only (the outbox redacts it once sent), never on the organiser's screen.
    """
    token, invitation = _new_invitation(
        session, user=user, created_by=invited_by, valid_days=settings.invitation_valid_days
    )
    queue_email(
        session,
        settings=settings,
        to=user.email,
        language=user.language,
        template="account_invitation",
        context={
            "name": user.display_name,
            "inviter": invited_by.display_name,
            "role": user.role,
            "url": link_for(token),
            "expires_at": invitation.expires_at.astimezone(LOCAL_ZONE).date(),
        },
        contains_secret=True,
        object_type="user",
        object_id=user.id,
    )


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


def _reset_buckets(secret_key: str, *, email: str, client_address: str) -> list[str]:
    # Per client address (one sender, many addresses) and per asked address (many senders,
    # one mailbox to flood). The second counts every address, known or not, so that its
    # refusal says nothing about which accounts exist.
    return [
        "reset-ip:" + keyed_hash(secret_key, client_address),
        "reset-account:" + keyed_hash(secret_key, email.strip().lower()),
    ]


def request_password_reset(
    session: Session, *, email: str, client_address: str, settings: Settings, link_for: LinkFor
) -> None:
    """Send a one-hour, single-use link to choose a new password, if an active account uses
    ``email``; otherwise do nothing, and say nothing: the caller answers the same either way.

    Too many requests from one address or for one account are refused with 429 first. An
    invited person who has not chosen a password yet may use it too (the link goes to the
    same mailbox the invitation went to). Earlier unused links of the account stop working.
    """
    buckets = _reset_buckets(settings.secret_key, email=email, client_address=client_address)
    for bucket in buckets:
        ratelimit.enforce(
            session,
            bucket,
            limit=PASSWORD_RESET_MAX_REQUESTS,
            window_seconds=PASSWORD_RESET_WINDOW_SECONDS,
            message=_("Too many requests for a new password. Try again in an hour."),
        )
    for bucket in buckets:
        ratelimit.record_hit(session, bucket, window_seconds=PASSWORD_RESET_WINDOW_SECONDS)
    # Drawn whatever the address, so an unknown one does not answer obviously faster.
    token = new_token()
    token_hash = hash_token(token)
    user = repository.get_by_email(session, email)
    if user is None or not user.is_active:
        return
    now = utcnow()
    _close_open_resets(session, user=user, now=now)
    reset = PasswordReset(
        token_hash=token_hash,
        user_id=row_id(user),
        created_at=now,
        expires_at=now + PASSWORD_RESET_VALID,
    )
    session.add(reset)
    session.flush()
    record_audit(
        session,
        actor=None,
        action="user.password_reset_requested",
        object_type="user",
        object_id=user.id,
        after={"expires_at": reset.expires_at.isoformat()},
    )
    queue_email(
        session,
        settings=settings,
        to=user.email,
        language=user.language,
        template="password_reset",
        context={"name": user.display_name, "url": link_for(token)},
        contains_secret=True,
        object_type="user",
        object_id=user.id,
    )


def _close_open_resets(
    session: Session, *, user: User, now: datetime, keep: PasswordReset | None = None
) -> None:
    for reset in repository.open_password_resets(session, user_id=row_id(user), now=now):
        if keep is None or reset.id != keep.id:
            reset.expires_at = now
            session.add(reset)


def find_open_reset(session: Session, *, token: str) -> PasswordReset:
    """The reset a link opens, if it is still usable (404 otherwise, in words)."""
    reset = repository.get_password_reset(session, hash_token(token))
    if reset is None or reset.used_at is not None or reset.expires_at <= utcnow():
        raise NotFound(_("This link to choose a new password is invalid, expired or used."))
    user = repository.get(session, reset.user_id)
    if user is None or not user.is_active:
        raise NotFound(_("This link to choose a new password is invalid, expired or used."))
    return reset


def reset_password(session: Session, *, token: str, choice: PasswordChoice) -> User:
    """Set the new password through a reset link, which then stops working (as do the
    account's other open links). Sessions opened with the old password end."""
    reset = find_open_reset(session, token=token)
    now = utcnow()
    if not repository.claim_password_reset(session, reset_id=row_id(reset), now=now):
        raise NotFound(_("This link to choose a new password is invalid, expired or used."))
    user = repository.get(session, reset.user_id)
    assert user is not None  # checked by find_open_reset, in this transaction
    _close_open_resets(session, user=user, now=now, keep=reset)
    user.password_hash = hash_password(choice.password)
    session.add(user)
    session.flush()
    record_audit(
        session, actor=user, action="user.password_reset", object_type="user", object_id=user.id
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
        "language": user.language,
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
    user.language = data.language
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
