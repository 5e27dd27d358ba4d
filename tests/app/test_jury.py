"""The jury's workspace: conflicts (403), locked decisions (409), justification, audit rows."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.accounts.models import Role, User
from app.audit.models import AuditEvent
from app.campaigns import repository as campaigns_repository
from app.campaigns.models import Campaign
from app.campaigns.service import transition
from app.collection.models import Response
from app.jury.models import AwardDecision, JuryComment, JuryConflict, JuryVote
from app.jury.service import assign_president
from app.results.models import RankRow, RunKind, RunStatus, ScoreRow, ScoringRun
from tests.conftest import login, make_user

BIG = "communes-100000-plus"
SMALL = "communes-0-3500"


@dataclass(frozen=True)
class Spec:
    """One candidate of a hand-made run."""

    code: str
    category: str
    estimate: float
    se: float = 2.0
    top1: bool = False
    eligible: bool = True
    items: tuple[tuple[str, float], ...] = ()
    flags: tuple[str, ...] = ()


# Lyon and Paris share the large-town category and are statistically tied; 01001 is alone.
DEFAULT_SPECS = (
    Spec(
        "69123", BIG, 74.0, 2.5, top1=True, items=(("citizen:courtesy", 90), ("citizen:ease", 50))
    ),
    Spec(
        "75056", BIG, 72.0, 2.0, top1=True, items=(("citizen:courtesy", 70), ("citizen:ease", 70))
    ),
    Spec("01001", SMALL, 61.0, 3.0, top1=True, items=(("citizen:courtesy", 60),)),
)


def make_run(
    session: Session, campaign: Campaign, specs: tuple[Spec, ...] = DEFAULT_SPECS
) -> ScoringRun:
    """A complete final run with overall, component, channel, theme and item rows and ranks.

    Inserted directly so these tests do not depend on the scoring engine (tested elsewhere).
    """
    run = ScoringRun(
        campaign_id=campaign.id or 0,
        kind=RunKind.final,
        status=RunStatus.complete,
        progress=100,
        seed=1,
        inputs_sha256="ab" * 32,
        code_version="test",
    )
    session.add(run)
    session.flush()
    by_category: dict[str, list[Spec]] = {}
    for spec in specs:
        by_category.setdefault(spec.category, []).append(spec)
    for category, members in by_category.items():
        ranked = sorted((s for s in members if s.eligible), key=lambda s: -s.estimate)
        for position, spec in enumerate(ranked, start=1):
            session.add(
                RankRow(
                    run_id=run.id or 0,
                    category=category,
                    authority_code=spec.code,
                    estimate=spec.estimate,
                    se=spec.se,
                    rank=position,
                    rank_low=1 if spec.top1 else position,
                    rank_high=min(len(ranked), position + 1),
                    in_top1_set=spec.top1,
                    in_top3_set=position <= 3,
                    # The candidate's own interval, narrower than the simultaneous one.
                    marginal_low=position,
                    marginal_high=position,
                    p_best=0.6 if position == 1 else 0.4 / max(len(ranked) - 1, 1),
                    percentile=100.0 * (len(ranked) - position) / max(len(ranked), 1),
                )
            )
        for spec in members:
            if spec.eligible:
                continue
            session.add(
                RankRow(
                    run_id=run.id or 0,
                    category=category,
                    authority_code=spec.code,
                    eligible=False,
                    ineligible_reason="3 respondents (minimum 30)",
                    estimate=spec.estimate,
                    se=spec.se,
                )
            )
    for spec in specs:
        rows = [
            ("overall", "", spec.estimate, spec.se),
            ("component", "survey", spec.estimate + 2, spec.se * 1.3),
            ("component", "mystery", spec.estimate - 2, spec.se * 1.5),
            ("channel", "guichet", spec.estimate + 5, spec.se * 2),
            ("channel", "telephone", spec.estimate - 6, spec.se * 2),
            ("theme", "ease", spec.estimate + 1, spec.se * 2),
            ("theme", "relationship", spec.estimate - 1, spec.se * 2),
            *(("item", key, value, 4.0) for key, value in spec.items),
        ]
        for level, key, estimate, se in rows:
            session.add(
                ScoreRow(
                    run_id=run.id or 0,
                    authority_code=spec.code,
                    level=level,
                    key=key,
                    estimate=estimate,
                    se=se,
                    df=40.0,
                    ci_low=estimate - 2.02 * se,
                    ci_high=estimate + 2.02 * se,
                    n=120 if level != "item" else 100,
                    n_eff=110.0,
                    flags=list(spec.flags) if level == "overall" else [],
                )
            )
    session.flush()
    return run


def scored(
    session: Session, campaign: Campaign, specs: tuple[Spec, ...] = DEFAULT_SPECS
) -> ScoringRun:
    """Close the campaign, store a run and move it to scored."""
    if campaign.state == "open":
        transition(session, campaign=campaign, to_state="closed", actor=None)
    run = make_run(session, campaign, specs)
    transition(session, campaign=campaign, to_state="scored", actor=None)
    session.commit()
    return run


def add_responses(session: Session, campaign: Campaign, code: str, comments: list[str]) -> None:
    pins = campaigns_repository.pinned_instruments(session, campaign.id or 0)
    citizen = next(version for _pin, version in pins if version.kind == "survey")
    for text in comments:
        session.add(
            Response(
                id=uuid.uuid4(),
                campaign_id=campaign.id or 0,
                authority_code=code,
                instrument_version_id=citizen.id or 0,
                channel="guichet",
                source="link",
                answers={"overall": 4, "comment": text},
                content_sha256=uuid.uuid4().hex,
            )
        )
    session.commit()


@dataclass
class Jury:
    campaign: Campaign
    run: ScoringRun
    president: User
    juror: User
    admin: User


@pytest.fixture
def jury(registry: Session, open_campaign: Campaign) -> Jury:
    run = scored(registry, open_campaign)
    admin = make_user(registry, Role.admin)
    president = make_user(registry, Role.jury)
    juror = make_user(registry, Role.jury)
    assign_president(registry, campaign=open_campaign, user_id=president.id or 0, actor=admin)
    registry.commit()
    return Jury(open_campaign, run, president, juror, admin)


def login_en(client: TestClient, user: User) -> str:
    """Sign in and read the pages in English (the assertions use the English msgids)."""
    token = login(client, user)
    client.cookies.set("lang", "en")
    return token


def _post(client: TestClient, token: str, path: str, **data: str):
    if path.endswith("/sign"):  # signing asks first: these posts come from its confirmation page
        data.setdefault("confirmed", "yes")
    return client.post(path, data={**data, "csrf_token": token}, follow_redirects=False)


def _audit(session: Session, action: str) -> list[AuditEvent]:
    session.expire_all()
    return list(session.exec(select(AuditEvent).where(AuditEvent.action == action)).all())


def test_conflicted_juror_cannot_vote_for_that_candidate(
    client: TestClient, registry: Session, jury: Jury
) -> None:
    base = f"/campaigns/{jury.campaign.id}/jury"
    token = login_en(client, jury.juror)
    declared = _post(client, token, f"{base}/conflicts", code="69123", reason="Former employee")
    assert declared.status_code == 303
    refused = _post(client, token, f"{base}/{BIG}/vote", code="69123")
    assert refused.status_code == 403
    registry.expire_all()
    assert registry.exec(select(JuryVote)).all() == []

    accepted = _post(client, token, f"{base}/{BIG}/vote", code="75056", comment="Steady")
    assert accepted.status_code == 303
    changed = _post(client, token, f"{base}/{BIG}/vote", code="75056", comment="Changed my mind")
    assert changed.status_code == 303
    registry.expire_all()
    votes = registry.exec(select(JuryVote)).all()
    assert [(v.authority_code, v.comment, v.run_id) for v in votes] == [
        ("75056", "Changed my mind", jury.run.id)
    ]
    # The page does not offer the conflicted candidate in the vote form.
    page = client.get(f"{base}/{BIG}")
    vote_form = page.text.split('id="field-code"')[1].split("</select>")[0]
    assert 'value="75056"' in vote_form and 'value="69123"' not in vote_form


def test_organiser_declares_a_conflict_for_a_juror_and_a_juror_only_their_own(
    client: TestClient, registry: Session, jury: Jury
) -> None:
    token = login_en(client, jury.admin)
    response = _post(
        client,
        token,
        f"/campaigns/{jury.campaign.id}/jury/conflicts",
        code="75056",
        juror=str(jury.juror.id),
    )
    assert response.status_code == 303
    registry.expire_all()
    conflict = registry.exec(select(JuryConflict)).one()
    assert (conflict.juror_id, conflict.authority_code) == (jury.juror.id, "75056")
    unknown = _post(
        client,
        token,
        f"/campaigns/{jury.campaign.id}/jury/conflicts",
        code="99999",
        juror=str(jury.juror.id),
    )
    assert unknown.status_code == 400 and "error-summary" in unknown.text


def test_justification_required_when_tied_or_not_the_leader(
    client: TestClient, registry: Session, jury: Jury
) -> None:
    base = f"/campaigns/{jury.campaign.id}/jury"
    token = login_en(client, jury.president)
    # The large-town category is a statistical tie: even the leader needs a justification.
    tied = _post(client, token, f"{base}/{BIG}/sign", laureate="69123", justification="")
    assert tied.status_code == 400
    assert "error-summary" in tied.text and 'href="#field-justification"' in tied.text
    registry.expire_all()
    assert registry.exec(select(AwardDecision)).all() == []
    signed = _post(
        client,
        token,
        f"{base}/{BIG}/sign",
        laureate="75056",
        justification="Better on every channel.",
    )
    assert signed.status_code == 303
    # The single-candidate category is not tied and 01001 leads: no justification needed.
    plain = _post(client, token, f"{base}/{SMALL}/sign", laureate="01001", justification="")
    assert plain.status_code == 303
    registry.expire_all()
    decisions = {d.category: d for d in registry.exec(select(AwardDecision)).all()}
    assert decisions[BIG].laureate_code == "75056" and decisions[BIG].run_id == jury.run.id
    assert decisions[SMALL].justification == ""


def test_not_the_leader_needs_a_justification(registry: Session, open_campaign: Campaign) -> None:
    from app.jury.service import justification_required

    specs = (
        Spec("69123", BIG, 80.0, 1.0, top1=True),
        Spec("75056", BIG, 60.0, 1.0),
        Spec("01001", SMALL, 61.0),
    )
    run = scored(registry, open_campaign, specs)
    assert not justification_required(registry, run, BIG, "69123")
    assert justification_required(registry, run, BIG, "75056")


def test_only_the_president_signs(client: TestClient, jury: Jury) -> None:
    token = login_en(client, jury.juror)
    response = _post(
        client, token, f"/campaigns/{jury.campaign.id}/jury/{SMALL}/sign", laureate="01001"
    )
    assert response.status_code == 403


def test_signed_category_is_locked(client: TestClient, registry: Session, jury: Jury) -> None:
    base = f"/campaigns/{jury.campaign.id}/jury"
    president = login_en(client, jury.president)
    assert _post(client, president, f"{base}/{SMALL}/sign", laureate="01001").status_code == 303
    again = _post(client, president, f"{base}/{SMALL}/sign", laureate="01001", justification="x")
    assert again.status_code == 409
    client.cookies.clear()
    juror = login_en(client, jury.juror)
    assert _post(client, juror, f"{base}/{SMALL}/vote", code="01001").status_code == 409
    assert _post(client, juror, f"{base}/{SMALL}/comments", body="Late note").status_code == 409
    # Other categories stay open.
    assert _post(client, juror, f"{base}/{BIG}/comments", body="Still open").status_code == 303
    page = client.get(f"{base}/{SMALL}")
    assert (
        "Signed decision" in page.text
        and 'action="/campaigns' not in page.text.split("Signed decision")[1].split("</section>")[0]
    )


def test_every_jury_action_is_audited(client: TestClient, registry: Session, jury: Jury) -> None:
    base = f"/campaigns/{jury.campaign.id}/jury"
    assert [e.after for e in _audit(registry, "jury.president")] == [{"user_id": jury.president.id}]
    token = login_en(client, jury.juror)
    assert _post(client, token, f"{base}/conflicts", code="01001").status_code == 303
    assert _post(client, token, f"{base}/{BIG}/vote", code="75056").status_code == 303
    assert _post(client, token, f"{base}/{BIG}/vote", code="69123").status_code == 303
    assert (
        _post(client, token, f"{base}/{BIG}/comments", body="Close call", about="69123").status_code
        == 303
    )
    client.cookies.clear()
    token = login_en(client, jury.president)
    assert (
        _post(
            client, token, f"{base}/{BIG}/sign", laureate="69123", justification="Tie: better trend"
        ).status_code
        == 303
    )
    conflict = _audit(registry, "jury.conflict")
    votes = _audit(registry, "jury.vote")
    comments = _audit(registry, "jury.comment")
    signs = _audit(registry, "jury.sign")
    assert [(e.actor_id, e.after["authority_code"]) for e in conflict] == [(jury.juror.id, "01001")]  # type: ignore[index]
    assert [e.after["authority_code"] for e in votes] == ["75056", "69123"]  # type: ignore[index]
    assert votes[1].before == {"authority_code": "75056", "comment": ""}
    assert comments[0].after["body"] == "Close call"  # type: ignore[index]
    assert signs[0].actor_id == jury.president.id
    assert signs[0].after == {  # type: ignore[comparison-overlap]
        "run_id": jury.run.id,
        "category": BIG,
        "laureate_code": "69123",
        "justification": "Tie: better trend",
    }
    registry.expire_all()
    assert len(registry.exec(select(JuryComment)).all()) == 1


def test_deliberation_ends_only_when_every_category_is_signed(
    client: TestClient, registry: Session, jury: Jury
) -> None:
    admin = login_en(client, jury.admin)
    path = f"/campaigns/{jury.campaign.id}/transition"
    refused = client.post(path, data={"to_state": "deliberated", "csrf_token": admin})
    assert refused.status_code == 409 and BIG in refused.text
    client.cookies.clear()
    token = login_en(client, jury.president)
    base = f"/campaigns/{jury.campaign.id}/jury"
    _post(client, token, f"{base}/{BIG}/sign", laureate="69123", justification="Tie")
    _post(client, token, f"{base}/{SMALL}/sign", laureate="01001")
    client.cookies.clear()
    admin = login_en(client, jury.admin)
    for state in ("deliberated", "published"):
        response = client.post(
            path, data={"to_state": state, "csrf_token": admin}, follow_redirects=False
        )
        assert response.status_code == 303, response.text


@pytest.mark.parametrize("htmx", [False, True])
def test_category_page_shows_ranks_tie_plots_and_sorts(
    client: TestClient, registry: Session, jury: Jury, htmx: bool
) -> None:
    token = login_en(client, jury.juror)
    assert token
    headers = {"HX-Request": "true"} if htmx else {}
    page = client.get(f"/campaigns/{jury.campaign.id}/jury/{BIG}", headers=headers)
    assert page.status_code == 200
    text = page.text
    assert "Statistical tie" in text
    assert text.count('role="img"') == 1  # forest only: a funnel needs 3 candidates
    assert "Paris" in text and "Lyon" in text
    assert text.index("Lyon") < text.index("Paris")  # by rank
    by_name = client.get(f"/campaigns/{jury.campaign.id}/jury/{BIG}?sort=estimate&dir=asc").text
    table = by_name.split('class="ranking"')[1]
    assert table.index("Paris") < table.index("Lyon")
    assert 'aria-sort="ascending"' in by_name
    home = client.get(f"/campaigns/{jury.campaign.id}/jury")
    assert home.status_code == 200 and BIG in home.text


def test_tie_notice_shows_p_best_and_cut_intervals_are_marked(
    client: TestClient, registry: Session, open_campaign: Campaign
) -> None:
    lyon, paris, small = DEFAULT_SPECS
    cut = Spec(lyon.code, BIG, lyon.estimate, lyon.se, top1=True, flags=("ci_cut_high",))
    scored(registry, open_campaign, (cut, paris, small))
    login_en(client, make_user(registry, Role.jury))
    text = client.get(f"/campaigns/{open_campaign.id}/jury/{BIG}").text
    notice = text.split('class="notice notice-tie"')[1].split("</div>\n</div>")[0]
    # Beside the tie: who could be first, with P(best) labelled descriptive, most often first.
    assert "P(best), descriptive" in notice and "60.0 %" in notice
    assert notice.index("Lyon") < notice.index("Paris") and "must be justified" in notice
    assert "/methodologie#tie" in notice
    table = text.split('class="ranking"')[1].split("</table>")[0]
    assert table.count('class="cut-mark"') == 1 and "cut at the edge of the 0–100 scale" in table
    assert "ci_cut_high" not in text  # a mark and words, never the code
    assert "Bound cut at the edge of the 0–100 scale" in text
    assert "Rank intervals in this table are simultaneous" in text


def test_ineligible_candidates_are_listed_with_their_reason(
    client: TestClient, registry: Session, open_campaign: Campaign
) -> None:
    specs = (*DEFAULT_SPECS[:2], Spec("01001", BIG, 40.0, eligible=False))
    scored(registry, open_campaign, specs)
    token = login_en(client, make_user(registry, Role.jury))
    assert token
    page = client.get(f"/campaigns/{open_campaign.id}/jury/{BIG}")
    assert "Not eligible" in page.text and "3 respondents (minimum 30)" in page.text


def test_candidate_page_masks_contacts_and_needs_five_respondents(
    client: TestClient, registry: Session, jury: Jury
) -> None:
    token = login_en(client, jury.juror)
    assert token
    path = f"/campaigns/{jury.campaign.id}/jury/{BIG}/candidates/69123"
    add_responses(registry, jury.campaign, "69123", ["Call me at 06 12 34 56 78", "ok"] * 2)
    few = client.get(path)
    assert few.status_code == 200
    assert "only with 5 respondents" in few.text and "06 12" not in few.text
    add_responses(registry, jury.campaign, "69123", ["Write to jean.dupont@example.org please"])
    enough = client.get(path).text
    assert "jean.dupont@example.org" not in enough and "06 12 34 56 78" not in enough
    assert "please" in enough and "Call me at" in enough
    assert "Scores per channel" in enough and "guichet" in enough.lower()
    # A candidate of another category is not found under this one.
    assert (
        client.get(f"/campaigns/{jury.campaign.id}/jury/{BIG}/candidates/01001").status_code == 404
    )


def test_other_roles_cannot_open_the_jury_workspace(
    client: TestClient, registry: Session, jury: Jury
) -> None:
    for role in (Role.authority, Role.shopper, Role.reviewer):
        client.cookies.clear()
        login(
            client,
            make_user(registry, role, authority_code="69123" if role == Role.authority else None),
        )
        assert client.get(f"/campaigns/{jury.campaign.id}/jury/{BIG}").status_code == 403


def test_candidate_page_lists_approved_visits_with_their_evidence(
    client: TestClient, registry: Session, jury: Jury
) -> None:
    from datetime import date

    from app.missions.models import Mission, Visit, VisitEvidence

    pins = campaigns_repository.pinned_instruments(registry, jury.campaign.id or 0)
    grid = next(version for _pin, version in pins if version.channel == "guichet")
    shopper = make_user(registry, Role.shopper)
    visits = {}
    for sequence, state in ((1, "approved"), (2, "rejected")):
        mission = Mission(
            campaign_id=jury.campaign.id or 0,
            authority_code="69123",
            channel="guichet",
            sequence=sequence,
            window_start=date(2030, 3, 1),
            window_end=date(2030, 3, 31),
            state="submitted",
        )
        registry.add(mission)
        registry.flush()
        visit = Visit(
            id=uuid.uuid4(),
            mission_id=mission.id or 0,
            instrument_version_id=grid.id or 0,
            answers={"remarks": f"{state}: agent polite, call back on 06 12 34 56 78"},
            content_sha256="0" * 64,
            review_state=state,
        )
        registry.add(visit)
        registry.flush()
        registry.add(
            VisitEvidence(
                id=uuid.uuid4(),
                mission_id=mission.id or 0,
                visit_id=visit.id,
                uploaded_by=shopper.id or 0,
                media_type="image/jpeg",
                size_bytes=10,
                sha256="1" * 64,
                storage_path=f"x/{sequence}.jpg",
                original_name=f"{state}-counter.jpg",
            )
        )
        visits[state] = visit
    registry.commit()
    path = f"/campaigns/{jury.campaign.id}/jury/{BIG}/candidates/69123"
    login_en(client, jury.admin)
    page = client.get(path).text
    assert "approved-counter.jpg" in page and "rejected-counter.jpg" not in page
    assert "approved: agent polite" in page and "rejected: agent" not in page
    assert "06 12 34 56 78" not in page  # the shopper's remarks are shown with contacts masked
    evidence = registry.exec(
        select(VisitEvidence).where(VisitEvidence.visit_id == visits["approved"].id)
    ).one()
    assert f'href="/evidence/{evidence.id}"' in page  # the visits domain serves it to admins
    client.cookies.clear()
    login_en(client, jury.juror)
    page = client.get(path).text
    assert "approved-counter.jpg" in page and f'href="/evidence/{evidence.id}"' in page
    # The jury downloads the proofs of approved visits, never those of other visits.
    evidence_dir = client.app.state.settings.evidence_dir  # type: ignore[attr-defined]
    for sequence in (1, 2):
        stored = evidence_dir / f"x/{sequence}.jpg"
        stored.parent.mkdir(parents=True, exist_ok=True)
        stored.write_bytes(b"\xff\xd8\xff proof")
    assert client.get(f"/evidence/{evidence.id}").content == b"\xff\xd8\xff proof"
    rejected = registry.exec(
        select(VisitEvidence).where(VisitEvidence.visit_id == visits["rejected"].id)
    ).one()
    assert client.get(f"/evidence/{rejected.id}").status_code == 404


def test_deliberation_does_not_mix_runs(client: TestClient, registry: Session, jury: Jury) -> None:
    base = f"/campaigns/{jury.campaign.id}/jury"
    token = login_en(client, jury.president)
    assert _post(client, token, f"{base}/{SMALL}/sign", laureate="01001").status_code == 303
    # A later run supersedes the one the first decision was signed on.
    newer = make_run(registry, jury.campaign)
    jury.run.superseded_by = newer.id
    registry.add(jury.run)
    registry.commit()
    response = _post(client, token, f"{base}/{BIG}/sign", laureate="69123", justification="Tie")
    assert response.status_code == 409
    assert _post(client, token, f"{base}/{BIG}/vote", code="69123").status_code == 409
