"""Who is asking: named dependencies that routes declare (and the route-table test checks).

Every domain's routes import these, so ``app.accounts`` sits just above core (and the registry
data of ``app.authorities``, which a user may belong to) and imports no domain with pages.
:func:`load_layout_user` is the hook core's templating calls for pages no route dependency
served (error pages); ``app.main.create_app`` registers it.
"""

from __future__ import annotations

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


def get_optional_user(request: Request, session: SessionDep) -> User | None:
    user_id = request.session.get(SESSION_USER_KEY)
    if user_id is None:
        return None
    user = repository.get(session, int(user_id))
    if user is None or not user.is_active:
        request.session.pop(SESSION_USER_KEY, None)
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
        user = repository.get(session, int(user_id))
        if user is None or not user.is_active:
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
