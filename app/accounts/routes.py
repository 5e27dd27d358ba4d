"""Sign-in, sign-out, invitations and user administration."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from app.accounts import repository, service
from app.accounts.dependencies import AdminUser, OptionalUser, sign_in
from app.accounts.models import Role, User
from app.accounts.schemas import PasswordChoice, UserCreate, UserUpdate, form_errors
from app.core.config import SettingsDep
from app.core.db import SessionDep, keep_changes
from app.core.errors import DomainError
from app.core.i18n import _
from app.core.security import CSRF_SESSION_KEY
from app.core.templating import flash, render

router = APIRouter()

ROLE_HOME = {
    Role.admin: "/campaigns",
    Role.reviewer: "/review",
    Role.jury: "/campaigns",
    Role.shopper: "/me/missions",
    Role.authority: "/",
}


def _safe_next(next_url: str | None) -> str | None:
    # Only local paths: an open redirect after sign-in is a phishing tool.
    if next_url and next_url.startswith("/") and not next_url.startswith("//"):
        return next_url
    return None


def home_for(user: User) -> str:
    return ROLE_HOME.get(Role(user.role), "/")


@router.get("/login", name="login")
def login_page(request: Request, user: OptionalUser, next: str | None = None) -> Response:
    if user is not None:
        return RedirectResponse(_safe_next(next) or home_for(user), status_code=303)
    return render(request, "accounts/login.html", {"next": _safe_next(next) or "", "errors": {}})


@router.post("/login", name="login_submit")
def login_submit(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    email: Annotated[str, Form(max_length=254)] = "",
    password: Annotated[str, Form(max_length=256)] = "",
    next: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    client_address = request.client.host if request.client else "unknown"
    user = service.authenticate(
        session,
        email=email,
        password=password,
        client_address=client_address,
        limits=service.LoginLimits(
            secret_key=settings.secret_key,
            max_failures=settings.login_max_failures,
            window_seconds=settings.login_window_seconds,
        ),
    )
    if user is None:
        keep_changes(request)  # the failure counts against the sign-in throttle
        return render(
            request,
            "accounts/login.html",
            {
                "next": _safe_next(next) or "",
                "email": email,
                "errors": {"form": _("Incorrect e-mail address or password.")},
            },
            status_code=400,
        )
    sign_in(request, user)
    return RedirectResponse(_safe_next(next) or home_for(user), status_code=303)


@router.post("/logout", name="logout")
def logout(request: Request) -> Response:
    request.session.clear()
    return RedirectResponse("/", status_code=303)


@router.get("/invitations/{token}", name="invitation")
def invitation_page(request: Request, session: SessionDep, token: str) -> Response:
    invitation = service.find_open_invitation(session, token=token)
    user = repository.get(session, invitation.user_id)
    return render(request, "accounts/invitation.html", {"invited": user, "errors": {}})


@router.post("/invitations/{token}", name="invitation_submit")
def invitation_submit(
    request: Request,
    session: SessionDep,
    token: str,
    password: Annotated[str, Form(max_length=256)] = "",
    password_confirm: Annotated[str, Form(max_length=256)] = "",
) -> Response:
    invitation = service.find_open_invitation(session, token=token)
    try:
        choice = PasswordChoice(password=password, password_confirm=password_confirm)
    except ValidationError as exc:
        invited = repository.get(session, invitation.user_id)
        return render(
            request,
            "accounts/invitation.html",
            {"invited": invited, "errors": form_errors(exc)},
            status_code=400,
        )
    service.accept_invitation(session, token=token, choice=choice)
    csrf = request.session.get(CSRF_SESSION_KEY)
    request.session.clear()
    if csrf:
        request.session[CSRF_SESSION_KEY] = csrf
    flash(request, _("Your password is set. You can now sign in."))
    return RedirectResponse("/login", status_code=303)


def _users_page(
    request: Request,
    session: SessionDep,
    *,
    errors: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "accounts/users.html",
        {
            "users": repository.list_users(session),
            "roles": list(Role),
            "errors": errors or {},
            "form": form or {},
        },
        status_code=status_code,
    )


@router.get("/admin/users", name="users")
def users_page(request: Request, session: SessionDep, admin: AdminUser) -> Response:
    return _users_page(request, session)


@router.post("/admin/users", name="users_create")
def users_create(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    admin: AdminUser,
    email: Annotated[str, Form(max_length=254)] = "",
    display_name: Annotated[str, Form(max_length=120)] = "",
    role: Annotated[str, Form(max_length=20)] = "",
    authority_code: Annotated[str, Form(max_length=12)] = "",
) -> Response:
    form = {
        "email": email,
        "display_name": display_name,
        "role": role,
        "authority_code": authority_code,
    }
    try:
        data = UserCreate.model_validate({**form, "authority_code": authority_code or None})
        user = service.create_user(session, data=data, created_by=admin)
    except ValidationError as exc:
        return _users_page(request, session, errors=form_errors(exc), form=form, status_code=400)
    except DomainError as exc:
        errors = {exc.field or "form": exc.message}
        return _users_page(request, session, errors=errors, form=form, status_code=exc.status_code)
    token = service.create_invitation(
        session, user=user, created_by=admin, valid_days=settings.invitation_valid_days
    )
    link = str(request.url_for("invitation", token=token))
    flash(
        request,
        _("Account created for %(email)s. Send them this single-use link: %(link)s")
        % {"email": user.email, "link": link},
    )
    return RedirectResponse(request.url_for("users").path, status_code=303)


@router.post("/admin/users/{user_id}/invitation", name="users_reinvite")
def users_reinvite(
    request: Request, session: SessionDep, settings: SettingsDep, admin: AdminUser, user_id: int
) -> Response:
    user = service.get_user(session, user_id=user_id)
    token = service.create_invitation(
        session, user=user, created_by=admin, valid_days=settings.invitation_valid_days
    )
    link = str(request.url_for("invitation", token=token))
    flash(
        request,
        _("New single-use link for %(email)s: %(link)s") % {"email": user.email, "link": link},
    )
    return RedirectResponse(request.url_for("users").path, status_code=303)


def _edit_page(
    request: Request,
    user: User,
    *,
    errors: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    values = form or {
        "display_name": user.display_name,
        "role": user.role,
        "authority_code": user.authority_code or "",
    }
    return render(
        request,
        "accounts/user_edit.html",
        {"user": user, "roles": list(Role), "errors": errors or {}, "form": values},
        status_code=status_code,
    )


@router.get("/admin/users/{user_id}", name="users_edit")
def users_edit(request: Request, session: SessionDep, admin: AdminUser, user_id: int) -> Response:
    """An account's name, role and authority, with its activation and invitation actions."""
    return _edit_page(request, service.get_user(session, user_id=user_id))


@router.post("/admin/users/{user_id}", name="users_update")
def users_update(
    request: Request,
    session: SessionDep,
    admin: AdminUser,
    user_id: int,
    display_name: Annotated[str, Form(max_length=120)] = "",
    role: Annotated[str, Form(max_length=20)] = "",
    authority_code: Annotated[str, Form(max_length=12)] = "",
) -> Response:
    user = service.get_user(session, user_id=user_id)
    form = {"display_name": display_name, "role": role, "authority_code": authority_code}
    try:
        data = UserUpdate.model_validate({**form, "authority_code": authority_code or None})
        service.update_user(session, user=user, data=data, actor=admin)
    except ValidationError as exc:
        return _edit_page(request, user, errors=form_errors(exc), form=form, status_code=400)
    except DomainError as exc:
        errors = {exc.field or "form": exc.message}
        return _edit_page(request, user, errors=errors, form=form, status_code=exc.status_code)
    flash(request, _("The account of %(email)s is saved.") % {"email": user.email})
    return RedirectResponse(request.url_for("users").path, status_code=303)


@router.get("/admin/users/{user_id}/deactivate", name="users_deactivate_confirm")
def users_deactivate_confirm(
    request: Request, session: SessionDep, admin: AdminUser, user_id: int
) -> Response:
    """What deactivating the account does, and the button that does it."""
    user = service.get_user(session, user_id=user_id)
    refusal = None
    if user.id == admin.id:
        refusal = _("You cannot deactivate your own account.")
    elif not user.is_active:
        refusal = _("This account is already deactivated.")
    return render(request, "accounts/user_deactivate.html", {"user": user, "refusal": refusal})


@router.post("/admin/users/{user_id}/deactivate", name="users_deactivate")
def users_deactivate(
    request: Request, session: SessionDep, admin: AdminUser, user_id: int
) -> Response:
    user = service.get_user(session, user_id=user_id)
    try:
        service.deactivate_user(session, user=user, actor=admin)
    except DomainError as exc:
        return render(
            request,
            "accounts/user_deactivate.html",
            {"user": user, "refusal": exc.message},
            status_code=exc.status_code,
        )
    flash(
        request,
        _("The account of %(email)s is deactivated: its sessions have ended.")
        % {"email": user.email},
    )
    return RedirectResponse(request.url_for("users").path, status_code=303)


@router.post("/admin/users/{user_id}/reactivate", name="users_reactivate")
def users_reactivate(
    request: Request, session: SessionDep, settings: SettingsDep, admin: AdminUser, user_id: int
) -> Response:
    user = service.get_user(session, user_id=user_id)
    try:
        service.reactivate_user(session, user=user, actor=admin)
    except DomainError as exc:
        return _edit_page(request, user, errors={"form": exc.message}, status_code=exc.status_code)
    token = service.create_invitation(
        session, user=user, created_by=admin, valid_days=settings.invitation_valid_days
    )
    link = str(request.url_for("invitation", token=token))
    flash(
        request,
        _(
            "The account of %(email)s is active again. To sign in they choose a new password "
            "with this single-use link: %(link)s"
        )
        % {"email": user.email, "link": link},
    )
    return RedirectResponse(request.url_for("users").path, status_code=303)
