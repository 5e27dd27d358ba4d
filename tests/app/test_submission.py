"""The one submission door: every way a questionnaire comes in goes through it, and the
invitation's use is settled in the response's own transaction."""

from __future__ import annotations

import csv
import io
import uuid
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

import surveys
from app.accounts.models import Role
from app.campaigns.models import Campaign
from app.collection import ingest, service, submission
from app.collection.models import Invitation, Response, ResponseSource, SurveyDraft
from tests.conftest import OPEN_YEAR, VALID_ANSWERS, login, make_user


def _tokens(client: TestClient, session: Session, campaign: Campaign, count: int) -> list[str]:
    token = login(client, make_user(session, Role.admin))
    response = client.post(
        f"/campaigns/{campaign.id}/invitations",
        data={"csrf_token": token, "code": "69123", "count": str(count)},
    )
    client.post("/logout", data={"csrf_token": token})
    client.cookies.clear()
    return [row["link"].rsplit("/", 1)[1] for row in csv.DictReader(io.StringIO(response.text))]


def _complete_form(client: TestClient, first_page_url: str) -> str:
    opened = client.get(first_page_url)
    if opened.status_code == 303:  # an invitation link redirects to its questionnaire
        opened = client.get(opened.headers["location"])
    action = opened.text.split('action="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    page, result = 1, None
    client.post(action, data={"page": "1", "action": "next", "channel": "site", "overall": "3"})
    for page in range(2, 7):
        result = client.post(action, data={"page": str(page), "action": "next"})
        if result.headers.get("location", "").endswith("/merci"):
            break
    assert result is not None and result.headers["location"].endswith("/merci"), page
    return action


def test_the_four_entry_points_go_through_one_door(
    open_campaign: Campaign,
    client: TestClient,
    session: Session,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[ResponseSource, bool]] = []
    real_prepare = submission.prepare

    def spy(given: submission.Submission, **kwargs: Any) -> ingest.Pending:
        calls.append((given.source, given.invitation_id is not None))
        return real_prepare(given, **kwargs)

    monkeypatch.setattr(submission, "prepare", spy)
    tokens = _tokens(client, session, open_campaign, 2)
    # 1. the public form, 2. the invitation form
    _complete_form(client, f"/s/{OPEN_YEAR}/69123")
    _complete_form(client, f"/i/{tokens[0]}")
    # 3. the API, 4. the API with an invitation
    body = {"campaign": OPEN_YEAR, "authority": "69123", "answers": VALID_ANSWERS}
    assert (
        client.post("/api/v1/responses", json={**body, "id": str(uuid.uuid4())}).status_code == 201
    )
    invited = client.post(
        "/api/v1/responses", json={**body, "id": str(uuid.uuid4()), "invitation": tokens[1]}
    )
    assert invited.status_code == 201
    assert [source for source, _ in calls] == [
        ResponseSource.link,
        ResponseSource.invitation,
        ResponseSource.api,
        ResponseSource.invitation,
    ]
    assert [has_invitation for _, has_invitation in calls] == [False, True, False, True]
    session.expire_all()
    assert len(session.exec(select(Response)).all()) == 4
    assert session.exec(select(SurveyDraft)).all() == []  # each form's draft went with it
    used = session.exec(select(Invitation).where(Invitation.used_at.is_not(None))).all()  # type: ignore[union-attr]
    assert len(used) == 2


def _pending(session: Session, invitation_id: int | None) -> ingest.Pending:
    target = service.survey_target(
        session, organiser="Baromètre", year=OPEN_YEAR, authority_code="69123"
    )
    return submission.prepare(
        submission.Submission(
            target=target,
            response_id=uuid.uuid4(),
            answers=VALID_ANSWERS,
            source=ResponseSource.invitation,
            invitation_id=invitation_id,
        )
    )


def test_two_responses_racing_for_one_invitation_store_one(
    open_campaign: Campaign, client: TestClient, session: Session, engine: Engine
) -> None:
    """Both passed the request's check (the invitation was free); the transaction decides."""
    _tokens(client, session, open_campaign, 1)
    invitation = session.exec(select(Invitation)).one()
    first, second = _pending(session, invitation.id), _pending(session, invitation.id)
    with engine.begin() as connection:
        outcomes = ingest.write_batch(connection, [first, second])
    assert outcomes == [ingest.Outcome.created, ingest.Outcome.invitation_used]
    with engine.begin() as connection:  # across batches too
        late = _pending(session, invitation.id)
        assert ingest.write_batch(connection, [late]) == [ingest.Outcome.invitation_used]
        # The stored response's replay stays a harmless replay.
        assert ingest.write_batch(connection, [first]) == [ingest.Outcome.replay]
    session.expire_all()
    [stored] = session.exec(select(Response)).all()
    assert stored.id == first.id
    used = session.get(Invitation, invitation.id)
    assert used is not None and used.draft_id == first.id and used.used_at is not None
    error = submission.refusal(
        ingest.Outcome.invitation_used,
        target=service.survey_target(
            session, organiser="Baromètre", year=OPEN_YEAR, authority_code="69123"
        ),
        via=submission.Via.api,
        limit=None,
    )
    assert error is not None and error.status_code == 410 and error.field == "invitation"


def test_submit_in_session_stores_the_same_row_as_the_api(
    open_campaign: Campaign, client: TestClient, session: Session
) -> None:
    """The demo's door: the same validation, row and content hash as a request's."""
    target = service.survey_target(
        session, organiser="Baromètre", year=OPEN_YEAR, authority_code="69123"
    )
    response_id = uuid.uuid4()
    given = submission.Submission(
        target=target,
        response_id=response_id,
        answers=VALID_ANSWERS,
        source=ResponseSource.api,
        channel="guichet",
    )
    assert submission.submit_in_session(session, given) is True
    assert submission.submit_in_session(session, given) is False  # a replay
    session.commit()
    body = {
        "id": str(response_id),
        "campaign": OPEN_YEAR,
        "authority": "69123",
        "channel": "guichet",
        "answers": VALID_ANSWERS,
    }
    assert client.post("/api/v1/responses", json=body).status_code == 200
    changed = {**body, "answers": {**VALID_ANSWERS, "trust": 1}}
    assert client.post("/api/v1/responses", json=changed).status_code == 409


def test_every_door_stores_the_packed_item_scores_of_the_stored_answers(
    open_campaign: Campaign, client: TestClient, session: Session
) -> None:
    """What scoring reads (``item_scores``) is computed from the very answers stored."""
    tokens = _tokens(client, session, open_campaign, 1)
    _complete_form(client, f"/s/{OPEN_YEAR}/69123")
    _complete_form(client, f"/i/{tokens[0]}")
    body = {"campaign": OPEN_YEAR, "authority": "69123", "answers": VALID_ANSWERS}
    client.post("/api/v1/responses", json={**body, "id": str(uuid.uuid4())})
    target = service.survey_target(
        session, organiser="Baromètre", year=OPEN_YEAR, authority_code="69123"
    )
    given = submission.Submission(
        target=target,
        response_id=uuid.uuid4(),
        answers={**VALID_ANSWERS, "trust": "na"},
        source=ResponseSource.api,
    )
    submission.submit_in_session(session, given)
    session.commit()
    session.expire_all()
    stored = session.exec(select(Response)).all()
    assert len(stored) == 4
    keys = [item.key for item in surveys.packed_items(target.instrument)]
    for response in stored:
        assert response.item_scores == surveys.pack_item_scores(target.instrument, response.answers)
        scores = np.frombuffer(surveys.unpack_item_scores([response.item_scores], len(keys)))
        for key, score in zip(keys, scores, strict=True):
            expected = surveys.item_score(target.instrument.item(key), response.answers.get(key))
            assert (np.isnan(score) and expected is None) or score == expected
    trust = keys.index("trust")
    packed = [r.item_scores for r in stored if r.item_scores is not None]
    matrix = np.frombuffer(surveys.unpack_item_scores(packed, len(keys))).reshape(-1, len(keys))
    assert np.isnan(matrix[:, trust]).sum() >= 1
