"""Scoring from the browser (preview and final run as buttons, progress), no page naming a
command, and the confirmation page that signing a jury decision asks for first."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.accounts.models import Role
from app.audit.models import AuditEvent
from app.campaigns.models import Campaign, CampaignState
from app.campaigns.service import transition
from app.jury.models import AwardDecision
from app.results.models import RankRow, RunKind, RunStatus, ScoreRow, ScoringRun
from tests.app.test_jury import SMALL, Jury, jury, login_en  # noqa: F401  (jury: a fixture)
from tests.conftest import login, make_user, run_jobs
from tests.factories.responses import add_responses
from tests.factories.visits import add_visits

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def collected(open_campaign: Campaign, registry: Session) -> Campaign:
    rng = np.random.default_rng(11)
    add_responses(registry, campaign=open_campaign, rng=rng, per_candidate=(35, 50))
    add_visits(registry, campaign=open_campaign, rng=rng)
    registry.commit()
    return open_campaign


def _finish(registry: Session, run_id: int) -> ScoringRun:
    """Run the queued jobs as a worker would (the run's job among them)."""
    run_jobs(registry.get_bind())  # type: ignore[arg-type]
    registry.expire_all()
    run = registry.get(ScoringRun, run_id)
    assert run is not None
    return run


def _run_id(location: str) -> int:
    match = re.search(r"/runs/(\d+)/progress$", location)
    assert match, location
    return int(match.group(1))


def test_preview_button_computes_a_provisional_preview_with_progress(
    collected: Campaign, registry: Session, client: TestClient
) -> None:
    token = login(client, make_user(registry, Role.admin))
    runs_url = f"/campaigns/{collected.id}/runs"
    page = client.get(runs_url)
    assert "Calculer un aperçu provisoire" in page.text and "barometre" not in page.text
    assert client.post(f"{runs_url}/preview").status_code in (400, 403)  # no CSRF token
    started = client.post(f"{runs_url}/preview", data={"csrf_token": token})
    assert started.status_code == 303
    run_id = _run_id(started.headers["location"])
    # While it runs (or just after), the progress page answers and the fragment too.
    assert client.get(started.headers["location"]).status_code == 200
    run = _finish(registry, run_id)
    assert (run.kind, run.status) == (RunKind.preview, RunStatus.complete), run.error
    assert run.summary["responses_used"] > 0 and len(run.inputs_sha256) == 64
    # A preview stores no score or rank row and never becomes the current run.
    assert registry.exec(select(ScoreRow).where(ScoreRow.run_id == run_id)).first() is None
    assert registry.exec(select(RankRow).where(RankRow.run_id == run_id)).first() is None
    fragment = client.get(started.headers["location"], headers={"HX-Request": "true"})
    assert fragment.status_code == 200 and "<html" not in fragment.text
    assert "hx-trigger" not in fragment.text and "Voir l’aperçu" in fragment.text
    result = client.get(f"{runs_url}/{run_id}")
    assert result.status_code == 200 and "Aperçu provisoire" in result.text
    assert "Candidats par catégorie" in result.text
    registry.refresh(collected)
    assert collected.state == CampaignState.open
    assert registry.exec(select(AuditEvent).where(AuditEvent.action == "results.preview")).one()
    # A final run is refused while the campaign collects.
    assert client.post(runs_url, data={"csrf_token": token}).status_code == 409


def test_final_run_button_and_its_running_status_fragment(
    collected: Campaign, registry: Session, client: TestClient
) -> None:
    token = login(client, make_user(registry, Role.admin))
    client.cookies.set("lang", "en")
    runs_url = f"/campaigns/{collected.id}/runs"
    transition(registry, campaign=collected, to_state="closed", actor=None)
    registry.commit()
    assert client.post(f"{runs_url}/preview", data={"csrf_token": token}).status_code == 409
    started = client.post(runs_url, data={"csrf_token": token})
    assert started.status_code == 303
    run_id = _run_id(started.headers["location"])
    run = _finish(registry, run_id)
    assert (run.kind, run.status) == (RunKind.final, RunStatus.complete), run.error
    done = client.get(started.headers["location"])
    assert f"See the result of run {run_id}" in done.text and "Refresh" not in done.headers
    result = client.get(f"{runs_url}/{run_id}")
    assert "This is the current run" in result.text


def test_a_running_run_polls_and_refreshes_without_javascript(
    open_campaign: Campaign, registry: Session, client: TestClient
) -> None:
    login(client, make_user(registry, Role.admin))
    run = ScoringRun(
        campaign_id=open_campaign.id or 0,
        kind=RunKind.preview,
        status=RunStatus.running,
        progress=37,
        progress_message="reading responses",
        seed=1,
        code_version="test",
    )
    registry.add(run)
    registry.commit()
    url = f"/campaigns/{open_campaign.id}/runs/{run.id}/progress"
    page = client.get(url)
    assert page.status_code == 200 and page.headers["Refresh"] == "3"
    assert "37 % · lecture des réponses" in page.text and f'{url}"' in page.text
    fragment = client.get(url, headers={"HX-Request": "true"})
    assert 'hx-trigger="every 3s"' in fragment.text and "Refresh" not in fragment.headers
    assert client.get(f"/campaigns/{open_campaign.id}/runs").headers["Refresh"] == "3"
    run.status = RunStatus.failed
    run.error = "Close the campaign first."
    registry.add(run)
    registry.commit()
    failed = client.get(url)
    assert "L’aperçu n’a pas pu être calculé." in failed.text
    assert "Close the campaign first." in failed.text


def _msgstrs(po_text: str) -> list[str]:
    return re.findall(r'^msgstr "(.*)"$', po_text, flags=re.MULTILINE)


def test_no_page_mentions_a_command() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "app" / "templates").rglob("*.html")
        if "barometre score" in path.read_text(encoding="utf-8").replace("&nbsp;", " ")
    ]
    assert offenders == []
    po = (ROOT / "app/translations/fr/LC_MESSAGES/messages.po").read_text(encoding="utf-8")
    assert [text for text in _msgstrs(po) if "barometre score" in text] == []


def test_signing_asks_first(client: TestClient, registry: Session, jury: Jury) -> None:  # noqa: F811
    token = login_en(client, jury.president)
    base = f"/campaigns/{jury.campaign.id}/jury/{SMALL}"
    category = client.get(base).text
    assert f'action="http://testserver{base}/sign"' in category or f'{base}/sign"' in category
    assert "Review and sign" in category
    confirm = client.get(f"{base}/sign", params={"laureate": "01001", "justification": ""})
    assert confirm.status_code == 200
    assert "cannot be changed or withdrawn" in confirm.text
    assert 'name="confirmed" value="yes"' in confirm.text and "csrf_token" in confirm.text
    assert registry.exec(select(AwardDecision)).first() is None  # asking signs nothing
    # A post that did not come from the confirmation page asks too.
    direct = client.post(f"{base}/sign", data={"csrf_token": token, "laureate": "01001"})
    assert direct.status_code == 200 and "cannot be changed or withdrawn" in direct.text
    assert registry.exec(select(AwardDecision)).first() is None
    # A wrong laureate is refused on the category page, in words.
    wrong = client.get(f"{base}/sign", params={"laureate": "69123"})
    assert wrong.status_code == 400 and "is not a candidate of this category" in wrong.text
    signed = client.post(
        f"{base}/sign", data={"csrf_token": token, "laureate": "01001", "confirmed": "yes"}
    )
    assert signed.status_code == 303
    registry.expire_all()
    assert registry.exec(select(AwardDecision)).one().laureate_code == "01001"
    # Only the president reaches the confirmation page.
    client.cookies.clear()
    login_en(client, jury.juror)
    assert client.get(f"{base}/sign", params={"laureate": "01001"}).status_code in (403, 409)
