"""The citizen JSON API: validation, exactly-once storage, concurrency, abuse limits."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.campaigns.models import Campaign
from app.collection.models import Response
from tests.conftest import OPEN_YEAR, VALID_ANSWERS


def _body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "campaign": OPEN_YEAR,
        "authority": "69123",
        "channel": "guichet",
        "answers": dict(VALID_ANSWERS),
    }
    body.update(changes)
    return body


def _answers(**changes: Any) -> dict[str, Any]:
    answers = dict(VALID_ANSWERS)
    for key, value in changes.items():
        if value is ...:
            answers.pop(key, None)
        else:
            answers[key] = value
    return answers


def _rows(session: Session) -> list[Response]:
    session.expire_all()
    return list(session.exec(select(Response)).all())


def test_survey_is_published_for_the_open_campaign(
    open_campaign: Campaign, client: TestClient
) -> None:
    response = client.get(f"/api/v1/campaigns/{OPEN_YEAR}/survey")
    assert response.status_code == 200
    body = response.json()
    assert body["key"] == "citizen" and len(body["sha256"]) == 64
    assert body["content"]["sections"][0]["items"][0]["key"] == "channel"


def test_valid_submission_is_stored_with_its_version_and_no_personal_data(
    open_campaign: Campaign, client: TestClient, session: Session
) -> None:
    body = _body(started_at="2020-01-01T10:00:00Z")
    created = client.post("/api/v1/responses", json=body, headers={"User-Agent": "Spy/1.0"})
    assert created.status_code == 201 and created.json() == {"id": body["id"]}
    [row] = _rows(session)
    assert row.authority_code == "69123" and row.channel == "guichet" and row.source == "api"
    assert row.instrument_version_id is not None and row.profile == {"age_band": "30_44"}
    assert row.answers["satisfied"] == 4 and row.quality_flags == [] and not row.excluded
    stored = str(row.model_dump())
    assert "Spy" not in stored and "127.0.0.1" not in stored and "testclient" not in stored


def test_replay_returns_the_same_result_and_other_answers_conflict(
    open_campaign: Campaign, client: TestClient, session: Session
) -> None:
    body = _body()
    first = client.post("/api/v1/responses", json=body)
    replay = client.post("/api/v1/responses", json=body)
    assert (first.status_code, replay.status_code) == (201, 200)
    assert first.json() == replay.json()
    changed = client.post("/api/v1/responses", json={**body, "answers": _answers(satisfied=1)})
    assert changed.status_code == 409 and changed.json()["field"] == "id"
    elsewhere = client.post("/api/v1/responses", json={**body, "authority": "01001"})
    assert elsewhere.status_code == 409
    assert len(_rows(session)) == 1


BAD_INPUTS = [
    (
        "unknown item",
        _body(answers=_answers(favourite_colour="blue")),
        422,
        "answers.favourite_colour",
    ),
    ("wrong type", _body(answers=_answers(satisfied="very")), 422, "answers.satisfied"),
    ("out of range", _body(answers=_answers(satisfied=7)), 422, "answers.satisfied"),
    ("missing required", _body(answers=_answers(overall=...)), 422, "answers.overall"),
    ("choice not in list", _body(answers=_answers(age_band="ancient")), 422, "answers.age_band"),
    ("100 kB text", _body(answers=_answers(comment="x" * 100_000)), 422, "answers.comment"),
    (
        "markup in text",
        _body(answers=_answers(comment="<script>alert(1)</script>")),
        422,
        "answers.comment",
    ),
    ("channel mismatch", _body(channel="telephone"), 422, "answers.channel"),
    ("unknown channel", _body(channel="fax"), 422, "channel"),
    ("unknown authority", _body(authority="99999"), 404, "authority"),
    ("not a candidate", _body(authority="01004"), 404, "authority"),
    ("no such campaign", _body(campaign=2099), 404, "campaign"),
    ("not a UUID", _body(id="123"), 422, "id"),
    ("extra field", {**_body(), "ip": "1.2.3.4"}, 422, "ip"),
]


@pytest.mark.parametrize(
    ("case", "body", "status", "field"), BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS]
)
def test_bad_input_is_refused_with_the_field_and_nothing_is_stored(
    open_campaign: Campaign,
    client: TestClient,
    session: Session,
    case: str,
    body: dict[str, Any],
    status: int,
    field: str,
) -> None:
    response = client.post("/api/v1/responses", json=body)
    assert response.status_code == status, response.text
    payload = response.json()
    fields = [payload.get("field")] + [e.get("field") for e in payload.get("errors", [])]
    assert field in fields, payload
    assert _rows(session) == []


def test_invalid_utf8_and_non_json_are_refused(
    open_campaign: Campaign, client: TestClient, session: Session
) -> None:
    raw = (
        b'{"id": "' + str(uuid.uuid4()).encode() + b'", "campaign": 2030, "authority": "\xff\xfe"}'
    )
    response = client.post(
        "/api/v1/responses", content=raw, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400 and "detail" in response.json()
    assert _rows(session) == []


def test_closed_campaign_refuses_answers(
    open_campaign: Campaign, client: TestClient, session: Session
) -> None:
    from app.campaigns.service import transition

    transition(
        session, campaign=session.get(Campaign, open_campaign.id), to_state="closed", actor=None
    )  # type: ignore[arg-type]
    session.commit()
    response = client.post("/api/v1/responses", json=_body())
    assert response.status_code == 409 and response.json()["field"] == "campaign"
    assert _rows(session) == []


def test_suspicious_responses_are_kept_but_excluded(
    open_campaign: Campaign, client: TestClient, session: Session
) -> None:
    flat = _answers(
        **{
            k: 5
            for k in (
                "satisfied",
                "trust",
                "effective",
                "ease",
                "efficiency",
                "equity",
                "employees",
                "courtesy",
                "clarity",
            )
        }
    )
    client.post("/api/v1/responses", json=_body(answers=flat))
    [row] = _rows(session)
    assert row.quality_flags == ["straight_lining"] and row.excluded


def test_same_submission_twenty_times_concurrently_gives_one_row(
    open_campaign: Campaign, live_server_url: str, session: Session
) -> None:
    body = _body()

    def send(_: int) -> int:
        return httpx.post(live_server_url + "/api/v1/responses", json=body, timeout=30).status_code

    with ThreadPoolExecutor(max_workers=20) as pool:
        statuses = list(pool.map(send, range(20)))
    assert sorted(statuses) == [200] * 19 + [201]
    assert len(_rows(session)) == 1


def test_thousand_submissions_from_fifty_clients_all_stored(
    open_campaign: Campaign, live_server_url: str, session: Session
) -> None:
    bodies = [_body(authority=("69123", "01001", "75056")[i % 3]) for i in range(1000)]

    def send(chunk: list[dict[str, Any]]) -> list[int]:
        with httpx.Client(base_url=live_server_url, timeout=60) as client:
            return [client.post("/api/v1/responses", json=body).status_code for body in chunk]

    chunks = [bodies[i::50] for i in range(50)]
    with ThreadPoolExecutor(max_workers=50) as pool:
        statuses = [status for result in pool.map(send, chunks) for status in result]
    assert statuses.count(201) == 1000
    rows = _rows(session)
    assert len(rows) == 1000
    assert {str(row.id) for row in rows} == {body["id"] for body in bodies}


def test_rate_limit_answers_429_with_retry_after(
    open_campaign: Campaign, application, session: Session
) -> None:
    settings = application.state.settings
    original = settings.public_submissions_per_window
    settings.public_submissions_per_window = 2
    try:
        with TestClient(application) as client:
            statuses = [
                client.post("/api/v1/responses", json=_body()).status_code for _ in range(3)
            ]
            limited = client.post("/api/v1/responses", json=_body())
    finally:
        settings.public_submissions_per_window = original
    assert statuses == [201, 201, 429]
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) > 0
    assert len(_rows(session)) == 2


def test_oversized_body_is_refused_before_it_is_read(
    open_campaign: Campaign, client: TestClient, session: Session
) -> None:
    huge = _body(answers=_answers(comment="x" * 400_000))
    response = client.post("/api/v1/responses", json=huge)
    assert response.status_code == 413 and "too large" in response.json()["detail"]
    assert _rows(session) == []


def test_contacts_in_comments_are_masked_before_storage(
    open_campaign: Campaign, client: TestClient, session: Session
) -> None:
    comment = "Rappelez-moi : jean.dupont@example.org ou 06 12 34 56 78"
    client.post("/api/v1/responses", json=_body(answers=_answers(comment=comment)))
    [row] = _rows(session)
    assert "jean.dupont" not in row.answers["comment"] and "56 78" not in row.answers["comment"]
    assert row.answers["comment"].startswith("Rappelez-moi")
