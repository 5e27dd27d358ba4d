"""Sign-in, sign-out, invitations, password resets and user administration."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from app.accounts import repository, service
from app.accounts.dependencies import AdminUser, OptionalUser, sign_in
from app.accounts.models import Role, User
from app.accounts.schemas import (
    PasswordChoice,
    PasswordForgot,
    UserCreate,
    UserUpdate,
    form_errors,
)
from app.core.config import Settings, SettingsDep
from app.core.db import SessionDep, keep_changes
from app.core.errors import DomainError, NotFound
from app.core.i18n import _
from app.core.security import CSRF_SESSION_KEY
from app.core.templating import flash, render
from app.core.urls import absolute_url

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
    _end_session_keeping_csrf(request)
    flash(request, _("Your password is set. You can now sign in."))
    return RedirectResponse("/login", status_code=303)


def _end_session_keeping_csrf(request: Request) -> None:
    # Whoever was signed in on this browser is signed out; the form token stays valid.
    csrf = request.session.get(CSRF_SESSION_KEY)
    request.session.clear()
    if csrf:
        request.session[CSRF_SESSION_KEY] = csrf


def _link_for(request: Request, settings: Settings, route_name: str) -> service.LinkFor:
    """The absolute address of ``route_name`` for a token, for a link in an e-mail."""
    return lambda token: absolute_url(
        request, settings, request.url_for(route_name, token=token).path
    )


# --- forgotten password ----------------------------------------------------------------------


@router.get("/password/forgot", name="password_forgot")
def password_forgot(request: Request) -> Response:
    return render(request, "accounts/password_forgot.html", {"email": "", "errors": {}})


@router.post("/password/forgot", name="password_forgot_submit")
def password_forgot_submit(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    email: Annotated[str, Form(max_length=254)] = "",
) -> Response:
    """The same answer whether the address is an active account, an inactive one or none:
    the page must not tell who has an account."""
    try:
        asked = PasswordForgot(email=email)
    except ValidationError as exc:
        return render(
            request,
            "accounts/password_forgot.html",
            {"email": email, "errors": form_errors(exc)},
            status_code=400,
        )
    service.request_password_reset(
        session,
        email=str(asked.email),
        client_address=request.client.host if request.client else "unknown",
        settings=settings,
        link_for=_link_for(request, settings, "password_reset"),
    )
    return render(request, "accounts/password_forgot_sent.html")


def _reset_page(
    request: Request,
    session: SessionDep,
    token: str,
    *,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    """The new-password form of a usable link, or (404) why it no longer works."""
    try:
        reset = service.find_open_reset(session, token=token)
    except NotFound:
        return render(
            request,
            "accounts/password_reset.html",
            {"invalid": True, "errors": {}},
            status_code=404,
        )
    return render(
        request,
        "accounts/password_reset.html",
        {
            "invalid": False,
            "account": repository.get(session, reset.user_id),
            "errors": errors or {},
        },
        status_code=status_code,
    )


@router.get("/password/reset/{token}", name="password_reset")
def password_reset(request: Request, session: SessionDep, token: str) -> Response:
    return _reset_page(request, session, token)


@router.post("/password/reset/{token}", name="password_reset_submit")
def password_reset_submit(
    request: Request,
    session: SessionDep,
    token: str,
    password: Annotated[str, Form(max_length=256)] = "",
    password_confirm: Annotated[str, Form(max_length=256)] = "",
) -> Response:
    try:
        choice = PasswordChoice(password=password, password_confirm=password_confirm)
    except ValidationError as exc:
        return _reset_page(request, session, token, errors=form_errors(exc), status_code=400)
    try:
        service.reset_password(session, token=token, choice=choice)
    except NotFound:
        return _reset_page(request, session, token)
    _end_session_keeping_csrf(request)
    flash(request, _("Your password has been changed. Sign in."))
    return RedirectResponse("/login", status_code=303)


def _users_page(
    request: Request,
    session: SessionDep,
    settings: Settings,
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
            "mail_held": not settings.smtp_host,
        },
        status_code=status_code,
    )


@router.get("/admin/users", name="users")
def users_page(
    request: Request, session: SessionDep, settings: SettingsDep, admin: AdminUser
) -> Response:
    return _users_page(request, session, settings)


def _invite(
    request: Request, session: SessionDep, settings: Settings, *, user: User, admin: User
) -> None:
    """Send the invitation e-mail and say so; without a mail server, say where it is kept."""
    service.send_invitation(
        session,
        user=user,
        invited_by=admin,
        settings=settings,
        link_for=_link_for(request, settings, "invitation"),
    )
    if settings.smtp_host:
        flash(
            request,
            _("The invitation was sent by e-mail to %(email)s.") % {"email": user.email},
        )
    else:
        flash(
            request,
            _(
                "No mail server is configured: the invitation e-mail to %(email)s is not sent "
                "but kept in the outbox (%(path)s), where you can read it."
            )
            % {"email": user.email, "path": request.url_for("admin_outbox").path},
            "error",
        )


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
    language: Annotated[str, Form(max_length=8)] = "fr",
) -> Response:
    form = {
        "email": email,
        "display_name": display_name,
        "role": role,
        "authority_code": authority_code,
        "language": language,
    }
    try:
        data = UserCreate.model_validate({**form, "authority_code": authority_code or None})
        user = service.create_user(session, data=data, created_by=admin)
    except ValidationError as exc:
        return _users_page(
            request, session, settings, errors=form_errors(exc), form=form, status_code=400
        )
    except DomainError as exc:
        errors = {exc.field or "form": exc.message}
        return _users_page(
            request, session, settings, errors=errors, form=form, status_code=exc.status_code
        )
    flash(request, _("Account created for %(email)s.") % {"email": user.email})
    _invite(request, session, settings, user=user, admin=admin)
    return RedirectResponse(request.url_for("users").path, status_code=303)


@router.post("/admin/users/{user_id}/invitation", name="users_reinvite")
def users_reinvite(
    request: Request, session: SessionDep, settings: SettingsDep, admin: AdminUser, user_id: int
) -> Response:
    user = service.get_user(session, user_id=user_id)
    _invite(request, session, settings, user=user, admin=admin)
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
        "language": user.language,
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
    language: Annotated[str, Form(max_length=8)] = "fr",
) -> Response:
    user = service.get_user(session, user_id=user_id)
    form = {
        "display_name": display_name,
        "role": role,
        "authority_code": authority_code,
        "language": language,
    }
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
    flash(
        request,
        _(
            "The account of %(email)s is active again: to sign in they choose a new password "
            "through the invitation."
        )
        % {"email": user.email},
    )
    _invite(request, session, settings, user=user, admin=admin)
    return RedirectResponse(request.url_for("users").path, status_code=303)
