"""Who is asking: named dependencies that routes declare (and the route-table test checks).

Every domain's routes import these, so ``app.accounts`` sits just above core (and the registry
data of ``app.authorities``, which a user may belong to) and imports no domain with pages.
:func:`load_layout_user` is the hook core's templating calls for pages no route dependency
served (error pages); ``app.main.create_app`` registers it.
"""

from __future__ import annotations

import hashlib
from typing import Annotated

from fastapi import Depends, Request
from sqlmodel import Session

from app.accounts import repository
from app.accounts.models import Role, User
from app.core.db import SessionDep
from app.core.errors import Forbidden, NotAuthenticated
from app.core.i18n import _
from app.core.templating import LayoutUser, remember_layout_user

SESSION_USER_KEY = "user_id"
# A digest of the password hash the session was opened with: a new password, or a
# deactivation (which erases it), ends every session opened before.
SESSION_FINGERPRINT_KEY = "user_fp"


def session_fingerprint(user: User) -> str:
    return hashlib.sha256((user.password_hash or "").encode()).hexdigest()[:32]


def sign_in(request: Request, user: User) -> None:
    """Open a fresh session for ``user`` (no fixation of a session prepared by someone else)."""
    request.session.clear()
    request.session[SESSION_USER_KEY] = user.id
    request.session[SESSION_FINGERPRINT_KEY] = session_fingerprint(user)


def _session_user(request: Request, session: Session) -> User | None:
    """The active user this session was opened for, checked on every request."""
    user_id = request.session.get(SESSION_USER_KEY)
    if user_id is None:
        return None
    user = repository.get(session, int(user_id))
    if (
        user is None
        or not user.is_active
        or user.password_hash is None
        or request.session.get(SESSION_FINGERPRINT_KEY) != session_fingerprint(user)
    ):
        request.session.pop(SESSION_USER_KEY, None)
        request.session.pop(SESSION_FINGERPRINT_KEY, None)
        return None
    return user


def get_optional_user(request: Request, session: SessionDep) -> User | None:
    user = _session_user(request, session)
    if user is None:
        return None
    remember_layout_user(request, user)
    return user


def load_layout_user(request: Request) -> LayoutUser | None:
    """The signed-in user for the layout of a page no route dependency served (an error page):
    read in a session of its own, since the request's unit of work may have rolled back."""
    user_id = request.session.get(SESSION_USER_KEY)
    if user_id is None:
        return None
    with Session(request.app.state.engine) as session:  # reads only
        user = _session_user(request, session)
        if user is None:
            return None
        return remember_layout_user(request, user)


OptionalUser = Annotated[User | None, Depends(get_optional_user)]


def get_current_user(user: OptionalUser) -> User:
    if user is None:
        raise NotAuthenticated(_("Please sign in to continue."))
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


class RequireRole:
    """Dependency that lets only the listed roles through (403 for the others)."""

    def __init__(self, *roles: Role) -> None:
        self.roles = frozenset(roles)

    def __call__(self, user: CurrentUser) -> User:
        if user.role not in self.roles:
            raise Forbidden(_("Your role does not give access to this page."))
        return user

    def __repr__(self) -> str:
        return f"RequireRole({', '.join(sorted(self.roles))})"


AdminUser = Annotated[User, Depends(RequireRole(Role.admin))]
StaffUser = Annotated[User, Depends(RequireRole(Role.admin, Role.reviewer, Role.jury))]
