"""One commit point: a request that succeeds commits once, a refused request leaves nothing.

A throwaway router, mounted on a real application (the real ``SessionDep``, error handlers,
``render`` and ``flash_refusal``), flushes a user row and then succeeds or refuses in each of
the ways routes do; the row must be there afterwards exactly when the request succeeded (or
said it keeps its changes). Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from app.accounts.models import Role, User
from app.core.config import Settings
from app.core.db import SessionDep, keep_changes, unit_of_work
from app.core.errors import Conflict
from app.core.templating import flash, flash_refusal, render
from app.main import create_app
from tests.conftest import csrf_from

router = APIRouter(prefix="/test-unit-of-work")


def _add_user(session: Session, email: str) -> User:
    user = User(email=email, display_name="Flushed", role=Role.reviewer.value)
    session.add(user)
    session.flush()  # the row is in the database, inside the request's transaction
    return user


def create_then_refuse(session: Session, *, email: str) -> User:
    """A service that writes, then finds a reason to refuse (a business error)."""
    _add_user(session, email)
    raise Conflict("Refused after a flush.")


def _error_page(request: Request, status_code: int) -> Response:
    return render(
        request,
        "errors/error.html",
        {"status_code": status_code, "title": "Refused", "message": "Refused", "errors": []},
        status_code=status_code,
    )


@router.post("/succeeds/{email}")
def succeeds(request: Request, session: SessionDep, email: str) -> Response:
    _add_user(session, email)
    return RedirectResponse("/", status_code=303)


@router.post("/succeeds-with-a-warning/{email}")
def succeeds_with_a_warning(request: Request, session: SessionDep, email: str) -> Response:
    _add_user(session, email)
    flash(request, "Saved, but look at this.", "error")
    return RedirectResponse("/", status_code=303)


@router.post("/service-raises/{email}")
def service_raises(request: Request, session: SessionDep, email: str) -> Response:
    create_then_refuse(session, email=email)
    return RedirectResponse("/", status_code=303)


@router.post("/renders-400/{email}")
def renders_400(request: Request, session: SessionDep, email: str) -> Response:
    _add_user(session, email)
    return _error_page(request, 400)


@router.post("/flash-refusal/{email}")
def refuses_with_a_flash(request: Request, session: SessionDep, email: str) -> Response:
    _add_user(session, email)
    flash_refusal(request, "Refused, see above.")
    return RedirectResponse("/", status_code=303)


@router.post("/keeps-a-refusal/{email}")
def keeps_a_refusal(request: Request, session: SessionDep, email: str) -> Response:
    _add_user(session, email)
    keep_changes(request)  # like a failed sign-in, which counts against the throttle
    return _error_page(request, 400)


@router.post("/crashes/{email}")
def crashes(request: Request, session: SessionDep, email: str) -> Response:
    _add_user(session, email)
    raise RuntimeError("a bug")


@pytest.fixture(scope="module")
def refusal_app(settings: Settings) -> Iterator[FastAPI]:
    application = create_app(settings)
    application.include_router(router)
    yield application
    application.state.engine.dispose()


@pytest.fixture
def refusal_client(refusal_app: FastAPI, session: Session) -> Iterator[tuple[TestClient, str]]:
    with TestClient(
        refusal_app,
        base_url="http://testserver",
        follow_redirects=False,
        raise_server_exceptions=False,
    ) as client:
        yield client, csrf_from(client)


def _stored(engine: Engine, email: str) -> bool:
    with Session(engine) as fresh:
        return fresh.exec(select(User).where(User.email == email)).first() is not None


def _post(refusal_client: tuple[TestClient, str], path: str) -> tuple[int, str]:
    client, token = refusal_client
    email = f"{uuid.uuid4().hex[:12]}@example.org"
    response = client.post(f"/test-unit-of-work/{path}/{email}", headers={"x-csrf-token": token})
    return response.status_code, email


def test_a_request_that_succeeds_commits(refusal_client, engine: Engine) -> None:
    status, email = _post(refusal_client, "succeeds")
    assert status == 303
    assert _stored(engine, email)


def test_a_warning_after_a_success_keeps_the_changes(refusal_client, engine: Engine) -> None:
    status, email = _post(refusal_client, "succeeds-with-a-warning")
    assert status == 303
    assert _stored(engine, email)


def test_a_service_that_flushed_then_raised_leaves_nothing(refusal_client, engine: Engine) -> None:
    status, email = _post(refusal_client, "service-raises")
    assert status == 409
    assert not _stored(engine, email)


def test_a_route_that_flushed_then_rendered_a_400_page_leaves_nothing(
    refusal_client, engine: Engine
) -> None:
    status, email = _post(refusal_client, "renders-400")
    assert status == 400
    assert not _stored(engine, email)


def test_a_flash_refusal_and_redirect_leaves_nothing(refusal_client, engine: Engine) -> None:
    status, email = _post(refusal_client, "flash-refusal")
    assert status == 303
    assert not _stored(engine, email)
    client, _token = refusal_client
    assert "Refused, see above." in client.get("/login").text


def test_a_refusal_that_is_the_record_keeps_its_changes(refusal_client, engine: Engine) -> None:
    status, email = _post(refusal_client, "keeps-a-refusal")
    assert status == 400
    assert _stored(engine, email)


def test_an_unexpected_error_leaves_nothing(refusal_client, engine: Engine) -> None:
    status, email = _post(refusal_client, "crashes")
    assert status == 500
    assert not _stored(engine, email)


def test_the_command_line_unit_of_work_commits_or_rolls_back(
    session: Session, engine: Engine
) -> None:
    kept, dropped = (f"{uuid.uuid4().hex[:12]}@example.org" for _ in range(2))
    with unit_of_work(engine) as work:
        _add_user(work, kept)
    with pytest.raises(Conflict), unit_of_work(engine) as work:
        create_then_refuse(work, email=dropped)
    assert _stored(engine, kept)
    assert not _stored(engine, dropped)
