"""Every route declares who may use it; anonymous and wrong-role access is refused.

The list is generated from the application's route table, so a new route cannot escape.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.accounts.dependencies import RequireRole
from app.accounts.models import Role
from app.campaigns.schemas import CampaignCreate
from app.campaigns.service import create_campaign
from tests.conftest import csrf_from, login, make_user

# Routes anyone may call, each for a stated reason.
PUBLIC_ROUTES = {
    "home": "public landing page",
    "healthz": "liveness probe",
    "readyz": "readiness probe",
    "login": "sign-in form",
    "login_submit": "sign-in",
    "logout": "ends whatever session there is",
    "invitation": "the token in the link is the credential",
    "invitation_submit": "the token in the link is the credential",
    "set_language": "a display preference cookie",
    "api_campaign_survey": "the published questionnaire is public",
    "api_submit_response": "anonymous citizens answer (rate-limited, validated, no personal data)",
    "survey_start": "the public questionnaire link",
    "survey_page": "a page of the public questionnaire (its draft id is the capability)",
    "survey_page_submit": "anonymous citizens answer, page by page",
    "survey_live": "skip logic refresh of the public questionnaire",
    "survey_thanks": "the thank-you page",
    "privacy": "the privacy notice",
    "invitation_link": "the token in the link is the credential",
    "results_public": "published laureates and distributions (404 before publication)",
    "results_category": "a category's published results (404 before publication)",
    "open_data_csv": "open data of published scores (404 before publication)",
    "open_data_json": "open data of published scores (404 before publication)",
    "open_data_schema": "Table Schema of the published open data (404 before publication)",
    "open_data_package": "data package of the published open data (404 before publication)",
    "open_data_dictionary": "data dictionary of the published open data (404 before publication)",
    "service_worker": "the shoppers' service worker script: static code, no data",
    "api_rankings": "public once published; before that admin/jury only (checked in the handler)",
    "methodology": "the public methodology page every results table links to",
    "password_forgot": "the forgotten-password form",
    "password_forgot_submit": "anonymous request, rate-limited, same answer whatever the address",
    "password_reset": "the token in the e-mailed link is the credential",
    "password_reset_submit": "the token in the e-mailed link is the credential",
    "citizen_optout": "the opt-out token in the e-mailed link is the credential",
    "citizen_optout_submit": "one-click opt-out (RFC 8058): the token is the credential",
}
FRAMEWORK_ROUTES = {"openapi", "swagger_ui_html", "swagger_ui_redirect", "static"}


def _roles_of(dependant: Dependant) -> frozenset[Role] | None:
    for sub in dependant.dependencies:
        if isinstance(sub.call, RequireRole):
            return frozenset(Role(role) for role in sub.call.roles)
        found = _roles_of(sub)
        if found is not None:
            return found
    return None


def all_routes(routes: list[Any]) -> list[Any]:
    """Flatten included routers (FastAPI keeps them as nested branches since 0.13x)."""
    flat = []
    for route in routes:
        nested = getattr(route, "original_router", None)
        flat.extend(all_routes(nested.routes) if nested is not None else [route])
    return flat


def _protected_routes(app: FastAPI) -> list[tuple[APIRoute, str, frozenset[Role] | None]]:
    routes = []
    for route in all_routes(app.routes):
        if not isinstance(route, APIRoute) or route.name in PUBLIC_ROUTES:
            continue
        roles = _roles_of(route.dependant)
        for method in sorted(route.methods):
            routes.append((route, method, roles))
    return routes


def test_every_route_is_public_by_decision_or_declares_roles(application: FastAPI) -> None:
    names = {getattr(route, "name", None) for route in all_routes(application.routes)}
    undeclared = [
        f"{method} {route.path}"
        for route, method, roles in _protected_routes(application)
        if roles is None
    ]
    assert undeclared == [], "routes without RequireRole and not listed as public"
    assert set(PUBLIC_ROUTES) <= names
    assert len(_protected_routes(application)) >= 15


def _path(route: APIRoute, campaign_id: int) -> str:
    values = {
        "campaign_id": campaign_id,
        "user_id": 1,
        "version_id": 1,
        "code": "01001",
        "token": "x",
        "mission_id": 1,
        "evidence_id": "00000000-0000-4000-8000-000000000001",
        "visit_id": "00000000-0000-4000-8000-000000000002",
        "year": 2031,
        "category": "communes-0-3500",
        "run_id": 1,
        "message_id": 1,
        "export_id": 1,
    }
    return route.path.format(**{name: values[name] for name in route.param_convertors})


def test_anonymous_and_wrong_roles_are_refused_everywhere(
    registry: Session, application: FastAPI, client: TestClient
) -> None:
    campaign = create_campaign(
        registry,
        data=CampaignCreate(
            year=2031,
            name="Test",
            opens_at="2031-01-01",
            closes_at="2031-06-01",  # type: ignore[arg-type]
        ),
        organiser="Test",
        actor=None,
    )
    registry.commit()
    users = {role: make_user(registry, role) for role in Role}
    protected = _protected_routes(application)

    anonymous_token = csrf_from(client)
    for route, method, _roles in protected:
        path = _path(route, campaign.id or 0)
        response = client.request(method, path, headers={"X-CSRF-Token": anonymous_token})
        expected = {401} if path.startswith("/api/") else {303}
        assert response.status_code in expected, f"anonymous {method} {path}"
        if response.status_code == 303:
            assert response.headers["location"].startswith("/login")

    for role, user in users.items():
        client.cookies.clear()
        token = login(client, user)
        for route, method, roles in protected:
            assert roles is not None
            if role in roles:
                continue
            path = _path(route, campaign.id or 0)
            response = client.request(method, path, headers={"X-CSRF-Token": token})
            assert response.status_code == 403, f"{role.value} {method} {path}"


@pytest.mark.parametrize("path", ["/campaigns", "/registry"])
def test_htmx_request_for_protected_page_redirects_the_whole_page(
    client: TestClient, session: Session, path: str
) -> None:
    response = client.get(path, headers={"HX-Request": "true"})
    assert response.status_code == 401
    assert response.headers["HX-Redirect"].startswith("/login")
