"""The shopper's reports: grid page (no JS), visits API (idempotent, 409, 422), corrections."""

from __future__ import annotations

import json
import re
import uuid
from concurrent.futures import ThreadPoolExecutor

from fastapi.testclient import TestClient
from sqlmodel import Session, col, func, select

from app.accounts.models import Role, User
from app.audit.models import AuditEvent
from app.campaigns.models import Campaign
from app.missions.models import (
    Mission,
    MissionState,
    ReviewEvent,
    ReviewState,
    Visit,
    VisitRevision,
)
from tests.conftest import login, make_user
from tests.support.visits import make_mission

TELEPHONE_ANSWERS = {
    "call_date": "2030-03-14",
    "number_found": "yes",
    "connected": "yes",
    "rings": 4,
    "greeting": "yes",
    "transfer": "none",
    "answer_correct": 1,
    "courtesy": 4,
    "out_of_hours_message": "na",
}


def body(mission: Mission, **changes: object) -> dict[str, object]:
    data: dict[str, object] = {
        "id": str(uuid.uuid4()),
        "mission": mission.id,
        "visited_at": "2030-03-14T09:12:00Z",
        "answers": dict(TELEPHONE_ANSWERS),
        "timings": {"rings": {"taps": ["2030-03-14T09:12:03Z", "2030-03-14T09:12:08Z"]}},
        "evidence": [],
    }
    data.update(changes)
    return data


def post_visit(client: TestClient, token: str, data: dict[str, object]):
    return client.post("/api/v1/visits", json=data, headers={"X-CSRF-Token": token})


def count_visits(session: Session, mission: Mission) -> int:
    session.expire_all()
    return int(
        session.exec(
            select(func.count()).select_from(Visit).where(col(Visit.mission_id) == mission.id)
        ).one()
    )


def test_api_report_is_stored_once_replayed_with_200_and_conflicts_with_409(
    registry: Session, mission: Mission, shopper_client: tuple[TestClient, str]
) -> None:
    client, token = shopper_client
    data = body(mission)
    first = post_visit(client, token, data)
    assert first.status_code == 201, first.text
    assert first.json()["visit"] == data["id"] and first.json()["revision"] == 1

    replay = post_visit(client, token, data)
    assert replay.status_code == 200
    assert replay.json() == first.json()
    assert count_visits(registry, mission) == 1

    other = post_visit(client, token, {**data, "answers": {**TELEPHONE_ANSWERS, "rings": 5}})
    assert other.status_code == 409
    assert "different report" in other.json()["detail"]

    # A new id for a mission already reported (and not sent back) is refused too.
    again = post_visit(client, token, body(mission))
    assert again.status_code == 409

    registry.expire_all()
    visit = registry.get(Visit, uuid.UUID(str(data["id"])))
    assert visit is not None
    assert visit.timings == data["timings"] and visit.answers["rings"] == 4
    assert visit.shopper_id == mission.shopper_id and visit.review_state == ReviewState.received
    assert visit.visited_at is not None and visit.visited_at.hour == 9
    revision = registry.get(VisitRevision, visit.id)
    assert revision is not None and revision.revision == 1
    assert revision.content_sha256 == visit.content_sha256
    assert registry.get(Mission, mission.id).state == MissionState.submitted  # type: ignore[union-attr]
    actions = registry.exec(select(AuditEvent.action)).all()
    assert "visit.submit" in actions


def test_twenty_concurrent_identical_reports_store_one_visit(
    registry: Session, mission: Mission, shopper_client: tuple[TestClient, str]
) -> None:
    client, token = shopper_client
    data = body(mission)
    with ThreadPoolExecutor(max_workers=20) as pool:
        statuses = list(pool.map(lambda _: post_visit(client, token, data).status_code, range(20)))
    assert sorted(set(statuses)) == [200, 201], statuses
    assert statuses.count(201) == 1
    assert count_visits(registry, mission) == 1
    registry.expire_all()
    revisions = registry.exec(select(VisitRevision)).all()
    assert len(revisions) == 1


def test_invalid_answers_are_refused_per_item_with_422(
    mission: Mission, shopper_client: tuple[TestClient, str], registry: Session
) -> None:
    client, token = shopper_client
    answers = {**TELEPHONE_ANSWERS, "rings": -2}
    del answers["number_found"]
    response = post_visit(client, token, body(mission, answers=answers))
    assert response.status_code == 422
    fields = {error["field"]: error["code"] for error in response.json()["errors"]}
    assert fields == {"answers.number_found": "required", "answers.rings": "out_of_range"}
    assert count_visits(registry, mission) == 0


def test_a_failing_item_requires_a_comment(
    mission: Mission, shopper_client: tuple[TestClient, str], registry: Session
) -> None:
    client, token = shopper_client
    answers = {**TELEPHONE_ANSWERS, "courtesy": 1}  # "unpleasant or rude" scores 0
    response = post_visit(client, token, body(mission, answers=answers))
    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert error["field"] == "answers.remarks" and error["code"] == "comment_required"
    assert "Courtesy" in error["message"]
    fixed = {**answers, "remarks": "L'agent a raccroché sans répondre."}
    assert post_visit(client, token, body(mission, answers=fixed)).status_code == 201


def test_another_shoppers_mission_is_404_and_other_roles_are_refused(
    registry: Session,
    open_campaign: Campaign,
    mission: Mission,
    client: TestClient,
) -> None:
    client.cookies.set("lang", "en")
    other = make_user(registry, Role.shopper)
    token = login(client, other)
    assert post_visit(client, token, body(mission)).status_code == 404
    assert client.get(f"/api/v1/missions/{mission.id}/grid").status_code == 404
    assert client.get(f"/me/missions/{mission.id}/report").status_code == 404
    assert client.get("/api/v1/me/missions").json() == []
    client.post("/logout", data={"csrf_token": token})

    for role in (Role.authority, Role.reviewer, Role.jury):
        user = make_user(registry, role, authority_code="69123" if role == Role.authority else None)
        token = login(client, user)
        assert post_visit(client, token, body(mission)).status_code == 403
        assert client.get(f"/api/v1/missions/{mission.id}/grid").status_code == 403
        client.post("/logout", data={"csrf_token": token})
    assert count_visits(registry, mission) == 0


def test_authenticated_api_posts_need_the_csrf_header(
    mission: Mission, shopper_client: tuple[TestClient, str], registry: Session
) -> None:
    client, _token = shopper_client
    response = client.post("/api/v1/visits", json=body(mission))
    assert response.status_code == 403
    assert count_visits(registry, mission) == 0


def test_unassigned_or_cancelled_missions_take_no_report(
    registry: Session,
    open_campaign: Campaign,
    shopper: User,
    shopper_client: tuple[TestClient, str],
) -> None:
    client, token = shopper_client
    cancelled = make_mission(registry, open_campaign, shopper, state=MissionState.cancelled)
    response = post_visit(client, token, body(cancelled))
    assert response.status_code == 409
    assert count_visits(registry, cancelled) == 0


def test_my_missions_and_grid_api(mission: Mission, shopper_client: tuple[TestClient, str]) -> None:
    client, _token = shopper_client
    missions = client.get("/api/v1/me/missions")
    assert missions.status_code == 200
    assert missions.headers["x-csrf-token"]
    [row] = missions.json()
    assert row["id"] == mission.id and row["state"] == "assigned" and row["channel"] == "telephone"
    grid = client.get(f"/api/v1/missions/{mission.id}/grid").json()
    assert grid["instrument_key"] == "grid-telephone"
    assert grid["scenario"]["request_text"].startswith("Comment obtenir")
    assert "2030-05-01" in grid["public_holidays"]
    keys = [item["key"] for s in grid["instrument"]["sections"] for item in s["items"]]
    assert "rings" in keys


def _review(session: Session, visit_id: uuid.UUID, reviewer: User, comment: str) -> None:
    """The review side's own state machine sends the report back (has_issues)."""
    from app.reviews.service import transition

    session.expire_all()
    transition(
        session,
        visit_id=visit_id,
        to_state=ReviewState.has_issues,
        actor=reviewer,
        comment=comment,
    )
    session.commit()


def test_correction_of_a_has_issues_report_adds_a_revision_and_keeps_history(
    registry: Session, mission: Mission, shopper_client: tuple[TestClient, str]
) -> None:
    client, token = shopper_client
    first = body(mission)
    assert post_visit(client, token, first).status_code == 201
    visit_id = uuid.UUID(str(first["id"]))
    reviewer = make_user(registry, Role.reviewer)
    _review(registry, visit_id, reviewer, "Le nombre de sonneries paraît faible.")

    page = client.get(f"/me/missions/{mission.id}/report")
    assert page.status_code == 200
    assert "Le nombre de sonneries paraît faible." in page.text
    assert "Reviewer" in page.text and reviewer.display_name not in page.text
    assert 'name="a_rings" type="number"' in page.text and 'value="4"' in page.text  # prefilled

    correction = body(mission, answers={**TELEPHONE_ANSWERS, "rings": 3})
    response = post_visit(client, token, correction)
    assert response.status_code == 201, response.text
    assert response.json()["visit"] == str(visit_id) and response.json()["revision"] == 2
    assert post_visit(client, token, correction).status_code == 200  # replayed correction

    registry.expire_all()
    visit = registry.get(Visit, visit_id)
    assert visit is not None
    assert visit.revision == 2 and visit.answers["rings"] == 3
    assert visit.review_state == ReviewState.received
    revisions = registry.exec(
        select(VisitRevision)
        .where(VisitRevision.visit_id == visit_id)
        .order_by(col(VisitRevision.revision))
    ).all()
    assert [(r.revision, r.answers["rings"]) for r in revisions] == [(1, 4), (2, 3)]
    thread = registry.exec(
        select(ReviewEvent).where(ReviewEvent.visit_id == visit_id).order_by(col(ReviewEvent.id))
    ).all()
    assert [(e.from_state, e.to_state, e.revision) for e in thread] == [
        (ReviewState.received, ReviewState.has_issues, 1),
        (ReviewState.has_issues, ReviewState.received, 2),
    ]
    assert thread[1].author_id == mission.shopper_id
    actions = registry.exec(select(AuditEvent.action)).all()
    assert {"visit.submit", "visit.revise", "visit.correct"} <= set(actions)
    assert count_visits(registry, mission) == 1
    # Not sent back again: a further correction is refused.
    assert post_visit(client, token, body(mission)).status_code == 409


# --- the HTML form, without JavaScript --------------------------------------------------------


def form_data(token: str, **fields: str) -> dict[str, str]:
    data = {
        "csrf_token": token,
        "visit_id": str(uuid.uuid4()),
        "timings": "{}",
        "visited_at": "2030-03-14T10:30",
        "a_visit_date": "2030-03-14",
        "a_hours_match_website": "yes",
        "a_signage": "yes",
        "a_step_free": "yes",
        "a_wait_min": "7",
        "a_wait_sec": "30",
        "a_courtesy": "4",
        "a_agent_identifiable": "yes",
        "a_answer_refused": "no",
        "a_answer_correct": "1",
        "a_clean_confidential": "yes",
    }
    data.update(fields)
    return data


def test_grid_form_without_js_errors_then_success(
    registry: Session,
    open_campaign: Campaign,
    shopper: User,
    shopper_client: tuple[TestClient, str],
) -> None:
    client, token = shopper_client
    visit_mission = make_mission(registry, open_campaign, shopper, channel="guichet", sequence=2)
    url = f"/me/missions/{visit_mission.id}/report"
    page = client.get(url)
    assert page.status_code == 200
    assert "Comment obtenir un acte de naissance ?" in page.text
    assert 'name="a_wait_min"' in page.text and "Start waiting" in page.text

    bad = client.post(url, data=form_data(token, a_signage="no", a_wait_min="x"))
    assert bad.status_code == 400
    assert 'id="error-summary"' in bad.text
    assert 'href="#field-a_remarks"' in bad.text and 'href="#field-a_wait"' in bad.text
    assert "Explain the negative answers here" in bad.text
    # The answers come back as given (each attribute separate: no "checkedrequired").
    assert re.search(r'id="field-a_signage-1"[^>]*\schecked\s', bad.text)
    assert re.search(r'id="field-a_courtesy-3"[^>]*\schecked\s', bad.text)
    assert count_visits(registry, visit_mission) == 0

    data = form_data(token, a_signage="no", a_remarks="Aucun panneau à l'entrée.")
    ok = client.post(url, data=data)
    assert ok.status_code == 303, ok.text
    assert client.post(url, data=data).status_code == 303  # a double submit is a replay
    registry.expire_all()
    visit = registry.exec(select(Visit).where(Visit.mission_id == visit_mission.id)).one()
    assert visit.answers["wait"] == 450 and visit.answers["signage"] == "no"
    assert visit.visited_at is not None and visit.visited_at.hour == 9  # 10:30 Paris = 09:30 UTC
    done = client.get(url)
    assert "waiting for review" in done.text and 'id="grid-form"' not in done.text


def test_grid_page_shows_working_day_delay(
    registry: Session,
    open_campaign: Campaign,
    shopper: User,
    shopper_client: tuple[TestClient, str],
) -> None:
    client, token = shopper_client
    email = make_mission(registry, open_campaign, shopper, channel="courriel", sequence=3)
    data = {
        "csrf_token": token,
        "visit_id": str(uuid.uuid4()),
        "a_contact_found": "yes",
        "a_sent_on": "2030-04-30",  # Tuesday; 1 May is a holiday
        "a_ack_received": "yes",
        "a_ack_on": "2030-05-03",  # Friday: 2 working days (Thursday 2, Friday 3)
        "a_answer_received": "no",
    }
    response = client.post(f"/me/missions/{email.id}/report", data=data)
    assert response.status_code == 400  # "no answer" fails: a comment is needed
    delays = dict(re.findall(r'id="delay-(\w+)"[^>]*>\s*([^<]*?)\s*</output>', response.text))
    assert delays["ack_delay"] == "2 working days"
    assert delays["answer_delay"] == "no answer yet"
    assert 'data-holidays="' in response.text and "2030-05-01" in response.text
    json.dumps(delays)


def test_openapi_documents_the_csrf_header_and_the_service_worker_is_served(
    client: TestClient,
) -> None:
    schema = client.get("/api/openapi.json").json()
    for path in ("/api/v1/visits", "/api/v1/missions/{mission_id}/evidence"):
        names = [p["name"] for p in schema["paths"][path]["post"].get("parameters", [])]
        assert "X-CSRF-Token" in names, path
    assert set(schema["paths"]["/api/v1/visits"]["post"]["responses"]) >= {"200", "201", "409"}
    worker = client.get("/me/sw.js")
    assert worker.status_code == 200
    assert worker.headers["content-type"].startswith("text/javascript")
    assert worker.headers["service-worker-allowed"] == "/me/"
    assert "caches.open" in worker.text


def test_a_rejected_report_is_redone_under_a_new_id(
    registry: Session, mission: Mission, shopper_client: tuple[TestClient, str]
) -> None:
    from app.reviews.service import transition

    client, token = shopper_client
    first = body(mission)
    assert post_visit(client, token, first).status_code == 201
    reviewer = make_user(registry, Role.reviewer)
    registry.expire_all()  # the report changed the mission behind this session's back
    transition(
        registry,
        visit_id=uuid.UUID(str(first["id"])),
        to_state=ReviewState.rejected,
        actor=reviewer,
        comment="Appel passé hors de la période.",
    )
    registry.commit()
    assert registry.get(Mission, mission.id).state == MissionState.assigned  # type: ignore[union-attr]

    page = client.get(f"/me/missions/{mission.id}/report")
    assert "must be done again" in page.text and "Appel passé hors de la période." in page.text
    assert 'id="grid-form"' in page.text

    assert post_visit(client, token, first).status_code == 200  # the old replay is still harmless
    redo = post_visit(client, token, body(mission))
    assert redo.status_code == 201, redo.text
    assert count_visits(registry, mission) == 2
    registry.expire_all()
    states = sorted(v.review_state for v in registry.exec(select(Visit)).all())
    assert states == [ReviewState.received, ReviewState.rejected]
    assert registry.get(Mission, mission.id).state == MissionState.submitted  # type: ignore[union-attr]
