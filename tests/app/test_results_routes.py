"""The rankings API, the runs page and its button, and the ``barometre score`` command."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select
from typer.testing import CliRunner

from app.accounts.models import Role
from app.campaigns.models import Campaign, CampaignState
from app.campaigns.service import transition
from app.cli import cli
from app.core.config import Settings, get_settings
from app.results.models import RunStatus, ScoringRun
from app.results.service import run_scoring
from tests.conftest import OPEN_YEAR, login, make_user, run_jobs
from tests.factories.responses import add_responses
from tests.factories.visits import add_visits


@pytest.fixture
def collected(open_campaign: Campaign, registry: Session) -> Campaign:
    rng = np.random.default_rng(11)
    add_responses(registry, campaign=open_campaign, rng=rng, per_candidate=(35, 50))
    add_visits(registry, campaign=open_campaign, rng=rng)
    registry.commit()
    return open_campaign


@pytest.fixture
def scored(collected: Campaign, registry: Session) -> Campaign:
    transition(registry, campaign=collected, to_state="closed", actor=None)
    run_scoring(registry, campaign=collected, actor=None)
    registry.commit()
    return collected


def _rankings(client: TestClient) -> tuple[int, dict]:
    response = client.get(f"/api/v1/campaigns/{OPEN_YEAR}/rankings")
    return response.status_code, response.json()


def test_rankings_before_publication_are_for_the_organiser_and_the_jury(
    scored: Campaign, registry: Session, client: TestClient
) -> None:
    assert _rankings(client)[0] == 401
    for role, expected in (
        (Role.authority, 403),
        (Role.shopper, 403),
        (Role.reviewer, 403),
        (Role.jury, 200),
        (Role.admin, 200),
    ):
        client.cookies.clear()
        login(
            client,
            make_user(registry, role, authority_code="69123" if role == "authority" else None),
        )
        status, body = _rankings(client)
        assert status == expected, role
    assert body["year"] == OPEN_YEAR and body["campaign_state"] == "scored"
    assert len(body["run"]["inputs_sha256"]) == 64
    entries = [entry for category in body["categories"] for entry in category["candidates"]]
    assert {entry["authority_code"] for entry in entries} == {"69123", "01001", "75056"}
    for entry in entries:
        assert entry["estimate"] is not None
        if entry["se"] is not None:  # 01001, alone in its category, has unreplicated channels
            assert entry["ci_low"] < entry["estimate"] < entry["ci_high"]
        if entry["eligible"]:
            assert entry["rank_low"] <= entry["rank"] <= entry["rank_high"]
        else:
            assert entry["rank"] is None and entry["ineligible_reason"]


def test_rankings_are_public_once_published(
    scored: Campaign, registry: Session, client: TestClient
) -> None:
    # Deliberation (signed jury decisions) is part 2's business: set the state directly.
    scored.state = CampaignState.published
    registry.add(scored)
    registry.commit()
    status, body = _rankings(client)
    assert status == 200
    big = next(c for c in body["categories"] if c["key"] == "communes-100000-plus")
    assert big["label_en"] == "Municipalities over 100,000"
    assert big["statistical_tie"] == (sum(e["in_top1_set"] for e in big["candidates"]) > 1)


def test_rankings_404_without_a_run_or_a_campaign(
    collected: Campaign, registry: Session, client: TestClient
) -> None:
    login(client, make_user(registry, Role.admin))
    assert _rankings(client)[0] == 404
    assert client.get("/api/v1/campaigns/1999/rankings").status_code == 404


def test_rankings_are_documented_with_an_example(client: TestClient) -> None:
    spec = client.get("/api/openapi.json").json()
    operation = spec["paths"]["/api/v1/campaigns/{year}/rankings"]["get"]
    assert "frozen scoring run" in operation["description"]
    schema = spec["components"]["schemas"]["RankingsResponse"]
    assert schema["examples"][0]["categories"][0]["candidates"][0]["rank_low"] == 1
    # One family: the award fields say they are simultaneous and how the sets are read.
    entry = spec["components"]["schemas"]["RankingEntry"]["properties"]
    assert "simultaneous" in entry["rank_low"]["description"]
    assert "rank_low" in entry["in_top1_set"]["description"]
    assert "Descriptive" in entry["p_best"]["description"]
    assert not {"marginal_low", "marginal_high"} & set(entry)
    assert "SIMULTANEOUS" in operation["description"]


def test_admin_button_runs_in_the_background_with_progress(
    collected: Campaign, registry: Session, client: TestClient
) -> None:
    token = login(client, make_user(registry, Role.admin))
    client.cookies.set("lang", "en")
    page = client.get(f"/campaigns/{collected.id}/runs")
    assert page.status_code == 200
    assert "Compute a provisional preview" in page.text  # open: the preview button, no command
    assert "barometre" not in page.text
    refused = client.post(f"/campaigns/{collected.id}/runs", data={"csrf_token": token})
    assert refused.status_code == 409
    transition(registry, campaign=collected, to_state="closed", actor=None)
    registry.commit()
    assert "Score the campaign" in client.get(f"/campaigns/{collected.id}/runs").text
    without_csrf = client.post(f"/campaigns/{collected.id}/runs")
    assert without_csrf.status_code in (400, 403)
    started = client.post(f"/campaigns/{collected.id}/runs", data={"csrf_token": token})
    assert started.status_code == 303
    run = registry.exec(select(ScoringRun)).one()
    assert run_jobs(registry.get_bind()) == 1  # type: ignore[arg-type]
    registry.expire_all()
    run = registry.exec(select(ScoringRun)).one()
    assert run.status == RunStatus.complete, run.error
    fragment = client.get(
        f"/campaigns/{collected.id}/runs/{run.id}/progress", headers={"HX-Request": "true"}
    )
    assert fragment.status_code == 200 and run.inputs_sha256 in fragment.text
    assert "hx-trigger" not in fragment.text  # no more polling once complete
    listing = client.get(f"/campaigns/{collected.id}/runs")
    assert run.inputs_sha256[:16] in listing.text
    assert client.get(f"/campaigns/{collected.id}/runs/999/progress").status_code == 404
    registry.refresh(collected)
    assert collected.state == CampaignState.scored


def test_cli_scores_and_previews(
    collected: Campaign,
    registry: Session,
    database_url: str,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BAROMETRE_DATABASE_URL", database_url)
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        args = ["score", str(OPEN_YEAR), "--organiser", settings.organiser]
        preview = runner.invoke(cli, [*args, "--preview"])
        assert preview.exit_code == 0, preview.output
        assert "preview:" in preview.output and "inputs sha256:" in preview.output
        assert registry.exec(select(ScoringRun)).all() == []
        refused = runner.invoke(cli, args)
        assert refused.exit_code == 1
        transition(registry, campaign=collected, to_state="closed", actor=None)
        registry.commit()
        final = runner.invoke(cli, args)
        assert final.exit_code == 0, final.output
    finally:
        get_settings.cache_clear()
    run = registry.exec(select(ScoringRun)).one()
    assert f"run id:         {run.id}" in final.output
    assert f"inputs sha256:  {run.inputs_sha256}" in final.output
    assert "communes-100000-plus" in final.output and "elapsed:" in final.output
    sha = [line for line in preview.output.splitlines() if line.startswith("inputs sha256")]
    assert sha == [f"inputs sha256:  {run.inputs_sha256}"]  # same inputs, same hash
