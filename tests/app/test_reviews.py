"""Review of visits: the state machine, history, bulk approval, the queue and who sees what."""

from __future__ import annotations

import random
import re
import uuid
from datetime import UTC, date, datetime, timedelta
from itertools import product

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.accounts.models import Role, User
from app.audit.models import AuditEvent
from app.campaigns.models import Campaign
from app.campaigns.repository import pinned_instruments
from app.core.config import Settings
from app.core.errors import Conflict, Forbidden, InvalidInput
from app.instruments.service import load_published
from app.missions.models import (
    Mission,
    MissionState,
    ReviewEvent,
    ReviewState,
    Visit,
    VisitEvidence,
    VisitRevision,
)
from app.reviews import repository, service
from tests.conftest import csrf_from, login, make_user
from tests.factories.visits import grid_answers

VISITED = datetime(2030, 3, 12, 9, 30, tzinfo=UTC)
_sequence = iter(range(1, 10_000))


def make_visit(
    session: Session,
    campaign: Campaign,
    shopper: User,
    *,
    state: str = ReviewState.received,
    channel: str = "telephone",
    code: str = "69123",
    submitted_at: datetime | None = None,
    visited_at: datetime = VISITED,
    answers: dict | None = None,
) -> Visit:
    """A mission and its reported visit, with answers the pinned grid accepts."""
    version = next(
        v for _pin, v in pinned_instruments(session, campaign.id or 0) if v.channel == channel
    )
    instrument = load_published(version)
    if answers is None:
        answers = grid_answers(instrument, rng=random.Random(7), quality=0.8, day=visited_at.date())
    mission_state = {
        ReviewState.approved: MissionState.approved,
        ReviewState.rejected: MissionState.assigned,
    }.get(ReviewState(state), MissionState.submitted)
    mission = Mission(
        campaign_id=campaign.id or 0,
        authority_code=code,
        channel=channel,
        sequence=next(_sequence),
        shopper_id=shopper.id,
        window_start=date(2030, 3, 1),
        window_end=date(2030, 3, 31),
        state=mission_state,
    )
    session.add(mission)
    session.flush()
    visit_id = uuid.uuid4()
    visit = Visit(
        id=visit_id,
        mission_id=mission.id or 0,
        instrument_version_id=version.id or 0,
        answers=answers,
        timings={},
        content_sha256="0" * 64,
        submitted_at=submitted_at or visited_at + timedelta(hours=2),
        review_state=state,
        shopper_id=shopper.id,
        visited_at=visited_at,
    )
    session.add(visit)
    session.flush()
    session.add(
        VisitRevision(
            id=visit_id,
            visit_id=visit_id,
            revision=1,
            answers=answers,
            content_sha256="0" * 64,
            visited_at=visited_at,
            submitted_at=visit.submitted_at,
        )
    )
    session.commit()
    return visit


@pytest.fixture
def people(registry: Session) -> dict[str, User]:
    return {
        "admin": make_user(registry, Role.admin),
        "reviewer": make_user(registry, Role.reviewer),
        "shopper": make_user(registry, Role.shopper),
        "other_shopper": make_user(registry, Role.shopper),
        "jury": make_user(registry, Role.jury),
        "authority": make_user(registry, Role.authority, authority_code="69123"),
    }


def _fresh(session: Session, visit: Visit) -> tuple[Visit, Mission]:
    session.expire_all()
    stored = session.get(Visit, visit.id)
    assert stored is not None
    mission = session.get(Mission, stored.mission_id)
    assert mission is not None
    return stored, mission


def _events(session: Session, visit: Visit) -> list[ReviewEvent]:
    return list(session.exec(select(ReviewEvent).where(ReviewEvent.visit_id == visit.id)).all())


def _audits(session: Session, visit: Visit) -> list[AuditEvent]:
    return list(session.exec(select(AuditEvent).where(AuditEvent.object_id == str(visit.id))).all())


# --- the state machine -------------------------------------------------------------------------

STATES = list(ReviewState)
EXPECTED_MISSION = {
    ReviewState.approved: MissionState.approved,
    ReviewState.rejected: MissionState.assigned,
    ReviewState.has_issues: MissionState.submitted,
    ReviewState.received: MissionState.submitted,
}


def test_every_pair_of_states_is_allowed_or_refused_as_documented(
    registry: Session, open_campaign: Campaign, people: dict[str, User]
) -> None:
    allowed_pairs = {
        ("received", "approved", "reviewer"),
        ("received", "has_issues", "reviewer"),
        ("received", "rejected", "reviewer"),
        ("has_issues", "rejected", "reviewer"),
        ("received", "approved", "admin"),
        ("received", "has_issues", "admin"),
        ("received", "rejected", "admin"),
        ("has_issues", "rejected", "admin"),
        ("approved", "received", "admin"),
    }
    checked = 0
    for source, target, role in product(STATES, STATES, ("reviewer", "admin")):
        visit = make_visit(registry, open_campaign, people["shopper"], state=source)
        actor = people[role]
        if (source.value, target.value, role) in allowed_pairs:
            event = service.transition(
                registry, visit_id=visit.id, to_state=target, actor=actor, comment="Vu."
            )
            registry.commit()
            stored, mission = _fresh(registry, visit)
            assert stored.review_state == target, (source, target, role)
            assert mission.state == EXPECTED_MISSION[target], (source, target, role)
            assert (event.from_state, event.to_state, event.comment) == (source, target, "Vu.")
            assert [a.action for a in _audits(registry, visit)] == [
                "visit.reopen" if source == ReviewState.approved else "visit.review"
            ]
        else:
            expected = Forbidden if (source, target) == ("approved", "received") else Conflict
            with pytest.raises(expected) as refused:
                service.transition(
                    registry, visit_id=visit.id, to_state=target, actor=actor, comment="Vu."
                )
            registry.rollback()
            stored, mission = _fresh(registry, visit)
            assert stored.review_state == source, (source, target, role)
            assert mission.state == EXPECTED_MISSION[source]
            assert _events(registry, visit) == [] and _audits(registry, visit) == []
            if expected is Conflict:
                assert refused.value.status_code == 409
                assert str(visit.id)[:8] in refused.value.message
        checked += 1
    assert checked == 32


@pytest.mark.parametrize("target", ["has_issues", "rejected"])
def test_issues_and_rejection_need_a_comment(
    registry: Session, open_campaign: Campaign, people: dict[str, User], target: str
) -> None:
    visit = make_visit(registry, open_campaign, people["shopper"])
    with pytest.raises(InvalidInput) as refused:
        service.transition(
            registry, visit_id=visit.id, to_state=target, actor=people["reviewer"], comment="  "
        )
    assert refused.value.field == "comment"
    registry.rollback()
    assert _fresh(registry, visit)[0].review_state == "received"


def test_an_admin_reopens_an_approved_visit_only_with_a_reason(
    registry: Session, open_campaign: Campaign, people: dict[str, User]
) -> None:
    visit = make_visit(registry, open_campaign, people["shopper"], state="approved")
    with pytest.raises(InvalidInput):
        service.transition(registry, visit_id=visit.id, to_state="received", actor=people["admin"])
    registry.rollback()
    service.transition(
        registry,
        visit_id=visit.id,
        to_state="received",
        actor=people["admin"],
        comment="Erreur de saisie signalée par l'enquêteur.",
    )
    registry.commit()
    stored, mission = _fresh(registry, visit)
    assert (stored.review_state, mission.state) == ("received", "submitted")


def test_no_review_once_the_campaign_is_scored(
    registry: Session, open_campaign: Campaign, people: dict[str, User]
) -> None:
    visit = make_visit(registry, open_campaign, people["shopper"])
    open_campaign.state = "scored"
    registry.add(open_campaign)
    registry.commit()
    with pytest.raises(Conflict, match="no longer be reviewed"):
        service.transition(
            registry, visit_id=visit.id, to_state="approved", actor=people["reviewer"]
        )


def test_a_stale_page_cannot_decide(
    registry: Session, open_campaign: Campaign, people: dict[str, User]
) -> None:
    visit = make_visit(registry, open_campaign, people["shopper"])
    with pytest.raises(Conflict, match="changed since you opened it"):
        service.transition(
            registry,
            visit_id=visit.id,
            to_state="approved",
            actor=people["reviewer"],
            expected_state="received",
            expected_revision=2,
        )


# --- corrections keep the history --------------------------------------------------------------


def _correct(session: Session, visit: Visit, shopper: User, answers: dict) -> None:
    """What the shopper's side does on a correction: a new revision, then the reopening."""
    stored, _mission = _fresh(session, visit)
    session.add(
        VisitRevision(
            id=uuid.uuid4(),
            visit_id=stored.id,
            revision=stored.revision + 1,
            answers=answers,
            content_sha256="1" * 64,
            visited_at=stored.visited_at,
        )
    )
    stored.answers = answers
    stored.revision += 1
    service.reopen_after_correction(session, visit=stored, actor=shopper, comment="Corrigé.")
    session.commit()


def test_a_correction_reopens_the_visit_and_keeps_the_history(
    registry: Session,
    open_campaign: Campaign,
    people: dict[str, User],
    client: TestClient,
) -> None:
    shopper = people["shopper"]
    visit = make_visit(registry, open_campaign, shopper)
    first_answers = dict(visit.answers)
    service.transition(
        registry,
        visit_id=visit.id,
        to_state="has_issues",
        actor=people["reviewer"],
        comment="Le nombre de sonneries paraît faux.",
    )
    registry.commit()
    with pytest.raises(Forbidden):
        service.reopen_after_correction(registry, visit=visit, actor=people["other_shopper"])
    corrected = {**first_answers, "rings": 12}
    _correct(registry, visit, shopper, corrected)

    stored, _mission = _fresh(registry, visit)
    assert (stored.review_state, stored.revision) == ("received", 2)
    revisions = repository.revisions(registry, visit.id)
    assert [(r.revision, r.answers) for r in revisions] == [(1, first_answers), (2, corrected)]
    thread = repository.thread_for_visit(registry, visit.id)
    assert [(e.event.from_state, e.event.to_state, e.event.revision) for e in thread] == [
        ("received", "has_issues", 1),
        ("has_issues", "received", 2),
    ]
    assert [e.author_role for e in thread] == ["reviewer", "shopper"]
    # A correction of a visit that is not waiting for one is refused.
    with pytest.raises(Conflict):
        service.reopen_after_correction(registry, visit=stored, actor=shopper)

    client.cookies.set("lang", "en")
    login(client, people["reviewer"])
    page = client.get(f"/review/visits/{visit.id}")
    assert page.status_code == 200
    assert "What changed in revision 2" in page.text
    diff = page.text.split("What changed in revision 2")[1].split("</table>")[0]
    assert "Number of rings before the call was picked up" in diff
    assert f"<del>{first_answers['rings']}</del>" in diff and "<ins>12</ins>" in diff
    assert "Le nombre de sonneries paraît faux." in page.text


def test_the_shopper_thread_is_only_theirs(
    registry: Session, open_campaign: Campaign, people: dict[str, User]
) -> None:
    visit = make_visit(registry, open_campaign, people["shopper"])
    service.add_comment(
        registry, visit_id=visit.id, actor=people["reviewer"], comment="Merci, bien reçu."
    )
    registry.commit()
    mine = repository.shopper_thread(
        registry, visit_id=visit.id, shopper_id=people["shopper"].id or 0
    )
    assert mine is not None and [e.event.comment for e in mine] == ["Merci, bien reçu."]
    assert (
        repository.shopper_thread(
            registry, visit_id=visit.id, shopper_id=people["other_shopper"].id or 0
        )
        is None
    )


# --- pages ---------------------------------------------------------------------------------------


def _reviewer_client(client: TestClient, user: User) -> str:
    client.cookies.set("lang", "en")
    return login(client, user)


def _post_decision(
    client: TestClient, token: str, visit: Visit, *, seen: str = "received", **data: str
):
    """Post the visit page's form as it was rendered when the visit was ``seen`` (revision 1)."""
    return client.post(
        f"/review/visits/{visit.id}/transition",
        data={"csrf_token": token, "expected_state": seen, "expected_revision": "1", **data},
    )


def test_deciding_from_the_visit_page(
    registry: Session, open_campaign: Campaign, people: dict[str, User], client: TestClient
) -> None:
    visit = make_visit(registry, open_campaign, people["shopper"])
    token = _reviewer_client(client, people["reviewer"])

    missing = _post_decision(client, token, visit, to_state="rejected", comment="")
    assert missing.status_code == 400
    assert 'href="#field-comment"' in missing.text
    assert 'aria-invalid="true"' in missing.text

    done = _post_decision(client, token, visit, to_state="approved")
    assert done.status_code == 303
    assert done.headers["location"] == f"/review/visits/{visit.id}#thread"
    stored, mission = _fresh(registry, visit)
    assert (stored.review_state, mission.state) == ("approved", "approved")

    # The same form posted again (a double click): refused, nothing changed, 409.
    again = _post_decision(client, token, visit, to_state="approved")
    assert again.status_code == 409
    assert "changed since you opened it" in again.text
    outside = _post_decision(
        client, token, stored, seen="approved", to_state="rejected", comment="Finalement non."
    )
    assert outside.status_code == 409
    assert "cannot be moved to rejected" in outside.text
    assert _fresh(registry, visit)[0].review_state == "approved"
    assert len(_events(registry, visit)) == 1

    commented = client.post(
        f"/review/visits/{visit.id}/comment",
        data={"csrf_token": token, "comment": "Rapport exemplaire."},
    )
    assert commented.status_code == 303
    assert [e.comment for e in _events(registry, visit)][-1] == "Rapport exemplaire."


def test_the_visit_page_shows_the_grid_with_labels(
    registry: Session, open_campaign: Campaign, people: dict[str, User], client: TestClient
) -> None:
    visit = make_visit(registry, open_campaign, people["shopper"], channel="guichet")
    _reviewer_client(client, people["admin"])
    page = client.get(f"/review/visits/{visit.id}")
    assert page.status_code == 200
    assert "Waiting time before being served (stopwatch)" in page.text
    assert "Courtesy of the agent" in page.text
    assert "Missing proof" in page.text  # a counter visit without any proof
    assert people["shopper"].display_name in page.text  # staff see who the shopper is
    for label in ("Approve", "Report issues to the shopper", "Reject"):
        assert f">{label}</button>" in page.text
    assert client.get(f"/review/visits/{uuid.uuid4()}").status_code == 404


# --- bulk approval -------------------------------------------------------------------------------


def test_bulk_approval_is_all_or_nothing(
    registry: Session, open_campaign: Campaign, people: dict[str, User], client: TestClient
) -> None:
    shopper = people["shopper"]
    waiting = [make_visit(registry, open_campaign, shopper) for _ in range(3)]
    with_issues = make_visit(registry, open_campaign, shopper, state="has_issues")
    token = _reviewer_client(client, people["reviewer"])

    refused = client.post(
        "/review/approve",
        data={
            "csrf_token": token,
            "visit_id": [str(v.id) for v in [*waiting, with_issues]],
            "back": "state=any",
        },
    )
    assert refused.status_code == 409
    assert str(with_issues.id)[:8] in refused.text
    assert "nothing was approved" in refused.text
    # The selection is kept so the reviewer only has to untick the offending visit.
    assert refused.text.count("checked") >= 3
    registry.expire_all()
    states = {v.id: _fresh(registry, v)[0].review_state for v in [*waiting, with_issues]}
    assert sorted(states.values()) == ["has_issues", "received", "received", "received"]
    assert all(_events(registry, v) == [] for v in [*waiting, with_issues])

    approved = client.post(
        "/review/approve",
        data={"csrf_token": token, "visit_id": [str(v.id) for v in waiting], "back": "state=any"},
    )
    assert approved.status_code == 303
    assert approved.headers["location"] == "/review?state=any"
    for visit in waiting:
        stored, mission = _fresh(registry, visit)
        assert (stored.review_state, mission.state) == ("approved", "approved")
        assert [e.to_state for e in _events(registry, visit)] == ["approved"]
        assert [a.action for a in _audits(registry, visit)] == ["visit.bulk_approve"]

    empty = client.post("/review/approve", data={"csrf_token": token, "back": ""})
    assert empty.status_code == 400
    assert "Select at least one visit" in empty.text


def test_bulk_approval_refuses_an_unknown_visit(
    registry: Session, open_campaign: Campaign, people: dict[str, User]
) -> None:
    visit = make_visit(registry, open_campaign, people["shopper"])
    with pytest.raises(Conflict, match="nothing was approved"):
        service.bulk_approve(registry, visit_ids=[visit.id, uuid.uuid4()], actor=people["reviewer"])
    registry.rollback()
    assert _fresh(registry, visit)[0].review_state == "received"


# --- the queue -----------------------------------------------------------------------------------


def test_queue_filters_sorts_and_pages(
    registry: Session, open_campaign: Campaign, people: dict[str, User], client: TestClient
) -> None:
    shopper, other = people["shopper"], people["other_shopper"]
    oldest = make_visit(registry, open_campaign, shopper, submitted_at=VISITED + timedelta(hours=1))
    newest = make_visit(
        registry, open_campaign, other, code="75056", submitted_at=VISITED + timedelta(days=2)
    )
    middle = make_visit(
        registry,
        open_campaign,
        other,
        channel="guichet",
        code="01001",
        submitted_at=VISITED + timedelta(days=1),
    )
    done = make_visit(registry, open_campaign, shopper, state="approved")

    def ids(**filters: object) -> list[uuid.UUID]:
        anomalies_only = bool(filters.pop("anomalies_only", False))
        page = service.review_queue(
            registry,
            filters=repository.QueueFilters(**filters),  # type: ignore[arg-type]
            anomalies_only=anomalies_only,
            page=1,
        )
        return [row.visit.id for row in page.rows]

    assert ids(state="received") == [oldest.id, middle.id, newest.id]
    assert ids() == [oldest.id, done.id, middle.id, newest.id]
    assert ids(state="approved") == [done.id]
    assert ids(state="received", channel="guichet") == [middle.id]
    assert ids(state="received", shopper_id=other.id) == [middle.id, newest.id]
    assert ids(state="received", authority="75056") == [newest.id]
    assert ids(state="received", authority="lyon") == [oldest.id]
    assert ids(state="received", campaign_id=(open_campaign.id or 0) + 1) == []
    assert ids(state="received", anomalies_only=True) == [middle.id]  # a counter visit, no proof

    paged = service.review_queue(
        registry,
        filters=repository.QueueFilters(state="received"),
        anomalies_only=False,
        page=2,
        page_size=2,
    )
    assert (paged.total, paged.pages, [r.visit.id for r in paged.rows]) == (3, 2, [newest.id])

    _reviewer_client(client, people["reviewer"])
    page = client.get("/review")
    assert page.status_code == 200
    order = [m.group(1) for m in re.finditer(r'/review/visits/([0-9a-f-]{36})"', page.text)]
    assert order == [str(oldest.id), str(middle.id), str(newest.id)]  # received by default
    flagged = client.get("/review", params={"state": "any", "anomalies": "1"})
    assert str(middle.id) in flagged.text and str(oldest.id) not in flagged.text
    assert "Missing proof" in flagged.text
    # htmx asks for the same page: it works the same (full page, no fragment needed).
    assert client.get("/review", headers={"HX-Request": "true"}).status_code == 200


# --- who may see what ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("admin", 200),
        ("reviewer", 200),
        ("shopper", 403),
        ("jury", 403),
        ("authority", 403),
    ],
)
def test_review_pages_per_role(
    registry: Session,
    open_campaign: Campaign,
    people: dict[str, User],
    client: TestClient,
    role: str,
    expected: int,
) -> None:
    reporter = people["other_shopper"]
    reporter.display_name = "Dominique Mystère"
    registry.add(reporter)
    registry.commit()
    visit = make_visit(registry, open_campaign, reporter)
    token = login(client, people[role])
    for path in ("/review", f"/review/visits/{visit.id}"):
        response = client.get(path)
        assert response.status_code == expected, (role, path)
        assert ("Dominique Mystère" in response.text) == (expected == 200)
    decision = _post_decision(client, token, visit, to_state="approved")
    assert decision.status_code == (303 if expected == 200 else 403)


def test_anonymous_visitors_are_sent_to_sign_in(
    registry: Session, open_campaign: Campaign, people: dict[str, User], client: TestClient
) -> None:
    visit = make_visit(registry, open_campaign, people["shopper"])
    for path in ("/review", f"/review/visits/{visit.id}"):
        response = client.get(path)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/login")
    token = csrf_from(client)
    response = client.post(
        "/review/approve", data={"csrf_token": token, "visit_id": [str(visit.id)]}
    )
    assert response.status_code == 303
    assert _fresh(registry, visit)[0].review_state == "received"


def test_the_visit_page_links_the_proofs(
    registry: Session,
    open_campaign: Campaign,
    people: dict[str, User],
    client: TestClient,
    settings: Settings,
) -> None:
    visit = make_visit(registry, open_campaign, people["shopper"], channel="guichet")
    store = settings.evidence_dir or settings.var_dir / "evidence"
    store.mkdir(parents=True, exist_ok=True)
    (store / "review-ticket.png").write_bytes(b"\x89PNG\r\n\x1a\nfake")
    proof = VisitEvidence(
        id=uuid.uuid4(),
        mission_id=visit.mission_id,
        visit_id=visit.id,
        uploaded_by=people["shopper"].id or 0,
        media_type="image/png",
        size_bytes=12,
        sha256="0" * 64,
        storage_path="review-ticket.png",
        original_name="ticket.png",
    )
    registry.add(proof)
    registry.commit()

    _reviewer_client(client, people["reviewer"])
    page = client.get(f"/review/visits/{visit.id}")
    assert f'/evidence/{proof.id}"' in page.text
    assert "Missing proof" not in page.text  # the counter visit has its proof now
    served = client.get(f"/evidence/{proof.id}")
    assert served.status_code == 200
    assert served.content == b"\x89PNG\r\n\x1a\nfake"


# --- the JSON API --------------------------------------------------------------------------------


def test_review_api(
    registry: Session, open_campaign: Campaign, people: dict[str, User], client: TestClient
) -> None:
    counter = make_visit(registry, open_campaign, people["shopper"], channel="guichet")
    call = make_visit(
        registry, open_campaign, people["shopper"], visited_at=VISITED + timedelta(days=1)
    )
    done = make_visit(
        registry,
        open_campaign,
        people["shopper"],
        state="approved",
        visited_at=VISITED + timedelta(days=2),
    )
    assert client.get("/api/v1/review/visits").status_code == 401
    token = _reviewer_client(client, people["reviewer"])
    headers = {"X-CSRF-Token": token}

    queue = client.get("/api/v1/review/visits").json()
    assert queue["total"] == 2  # received by default, as on the page
    assert [v["id"] for v in queue["visits"]] == [str(counter.id), str(call.id)]
    hints = queue["visits"][0]["hints"]
    assert [h["code"] for h in hints] == ["missing_proof"]
    assert hints[0]["message"]
    flagged = client.get("/api/v1/review/visits", params={"state": "any", "anomalies": "1"})
    assert [v["id"] for v in flagged.json()["visits"]] == [str(counter.id)]

    refused = client.post(
        f"/api/v1/review/visits/{done.id}/transition",
        json={"to_state": "rejected", "comment": "Non."},
        headers=headers,
    )
    assert refused.status_code == 409
    assert "cannot be moved to rejected" in refused.text
    invalid = client.post(
        f"/api/v1/review/visits/{call.id}/transition",
        json={"to_state": "lost"},
        headers=headers,
    )
    assert invalid.status_code == 422
    decided = client.post(
        f"/api/v1/review/visits/{call.id}/transition",
        json={"to_state": "has_issues", "comment": "Précisez.", "expected_state": "received"},
        headers=headers,
    )
    assert decided.status_code == 200
    assert decided.json()["to_state"] == "has_issues"

    all_or_nothing = client.post(
        "/api/v1/review/approve",
        json={"visit_ids": [str(counter.id), str(call.id)]},
        headers=headers,
    )
    assert all_or_nothing.status_code == 409
    assert str(call.id)[:8] in all_or_nothing.text
    assert _fresh(registry, counter)[0].review_state == "received"
    approved = client.post(
        "/api/v1/review/approve", json={"visit_ids": [str(counter.id)]}, headers=headers
    )
    assert approved.json() == {"approved": 1}

    client.cookies.clear()
    shopper_token = login(client, people["shopper"])
    assert client.get("/api/v1/review/visits").status_code == 403
    assert (
        client.post(
            "/api/v1/review/approve",
            json={"visit_ids": [str(call.id)]},
            headers={"X-CSRF-Token": shopper_token},
        ).status_code
        == 403
    )


def test_a_rejected_mission_can_be_reported_again(
    registry: Session, open_campaign: Campaign, people: dict[str, User]
) -> None:
    """Rejection sends the mission back to 'assigned': the shopper's side takes a new report."""
    from app.visits.service import submit_visit

    shopper = people["shopper"]
    visit = make_visit(registry, open_campaign, shopper)
    service.transition(
        registry,
        visit_id=visit.id,
        to_state="rejected",
        actor=people["reviewer"],
        comment="Appel passé hors des horaires du scénario.",
    )
    registry.commit()
    assert _fresh(registry, visit)[1].state == MissionState.assigned
    _accepted, created = submit_visit(
        registry,
        shopper=shopper,
        mission_id=visit.mission_id,
        submission_id=uuid.uuid4(),
        answers=dict(visit.answers),
        timings={},
        visited_at=VISITED + timedelta(days=2),
        evidence=[],
    )
    assert created
