"""The precision planner of the configuration page: components, sources and the page itself."""

from __future__ import annotations

import math
import time
from datetime import date

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.accounts.models import Role
from app.campaigns import planner
from app.campaigns.models import Campaign
from app.campaigns.schemas import CampaignCreate
from app.campaigns.service import (
    create_campaign,
    parse_config,
    register_candidate,
    transition,
)
from app.core.config import Settings
from app.results import repository as results_repository
from app.results.service import run_scoring
from scoring import AlternativeKind
from tests.app.test_results import RANKED, _add_departements
from tests.conftest import login, make_user
from tests.factories.responses import add_responses
from tests.factories.visits import add_visits


@pytest.fixture
def admin_client(client: TestClient, registry: Session) -> TestClient:
    login(client, make_user(registry, Role.admin))
    return client


@pytest.fixture
def scored_then_next(
    open_campaign: Campaign, registry: Session, settings: Settings
) -> tuple[Campaign, Campaign]:
    """The open campaign collected, closed and scored; then next year's draft edition."""
    _add_departements(registry, open_campaign)
    rng = np.random.default_rng(11)
    add_responses(registry, campaign=open_campaign, rng=rng, per_candidate=(30, 60))
    add_visits(registry, campaign=open_campaign, rng=rng)
    transition(registry, campaign=open_campaign, to_state="closed", actor=None)
    run_scoring(registry, campaign=open_campaign, actor=None, n_draws=2_000)
    following = create_campaign(
        registry,
        data=CampaignCreate(
            year=open_campaign.year + 1,
            name="Suivante",
            opens_at=date(open_campaign.year + 1, 1, 15),
            closes_at=date(open_campaign.year + 1, 10, 31),
        ),
        organiser=settings.organiser,
        actor=None,
    )
    register_candidate(registry, campaign=following, code="69123", actor=None)
    registry.commit()
    return open_campaign, following


def test_without_an_earlier_edition_the_defaults_reproduce_the_issue_figures(
    open_campaign: Campaign, registry: Session
) -> None:
    config = parse_config(open_campaign.config)
    result = planner.plan_campaign(
        registry, campaign=open_campaign, config=config, registered={}, respondents=None
    )
    assert result.previous is None
    assert result.respondents == config.eligibility.min_respondents
    assert not result.respondents_planned
    assert len(result.categories) == len(config.categories)
    for category in result.categories:
        assert category.components_source is planner.ComponentsSource.defaults
        assert category.candidates_source is planner.CandidatesSource.assumed
        assert category.candidates == planner.DEFAULT_CANDIDATES
    # Issue #12 (35 candidates, default design): mystery ≈ 93 % of the variance, top-1 set
    # ≈ 25 of 35, ≈ 17 with twice the visits; twice the respondents changes almost nothing.
    alternatives = {a.kind: a.forecast for a in result.categories[0].alternatives}
    current = alternatives[AlternativeKind.current]
    assert current.mystery_share == pytest.approx(0.93, abs=0.01)
    assert current.top1_size == pytest.approx(25, abs=2)
    assert alternatives[AlternativeKind.double_visits].top1_size == pytest.approx(17, abs=1.5)
    assert current.top1_size - alternatives[AlternativeKind.double_respondents].top1_size < 1


def test_components_come_from_the_previous_editions_stored_rows(
    scored_then_next: tuple[Campaign, Campaign], registry: Session
) -> None:
    previous, following = scored_then_next
    run = results_repository.current_run(registry, campaign_id=previous.id or 0)
    assert run is not None and run.id is not None
    config = parse_config(following.config)
    result = planner.plan_campaign(
        registry,
        campaign=following,
        config=config,
        registered={"communes-100000-plus": 1},
        respondents=45,
    )
    assert result.previous == planner.PreviousEdition(year=previous.year, run_id=run.id)
    assert result.respondents == 45 and result.respondents_planned
    by_key = {category.key: category for category in result.categories}
    ranked = by_key[RANKED]
    # Recomputed by hand from the stored rows of the ranked category.
    rank_rows = results_repository.rank_rows(registry, run_id=run.id, category=RANKED)
    members = {row.authority_code for row in rank_rows}
    eligible = {row.authority_code for row in rank_rows if row.eligible}
    overall = [
        row
        for row in results_repository.score_rows(registry, run_id=run.id, level="overall")
        if row.authority_code in eligible and row.estimate is not None and row.se is not None
    ]
    assert len(overall) >= planner.MIN_CATEGORY_CANDIDATES
    assert ranked.components_source is planner.ComponentsSource.previous_category
    estimates = np.array([row.estimate for row in overall], dtype=float)
    errors = np.array([row.se for row in overall], dtype=float)
    spread = max(float(np.var(estimates, ddof=1) - np.mean(errors**2)), 0.0)
    assert ranked.components.between_sd == pytest.approx(math.sqrt(spread), rel=1e-9)
    channel_rows = [
        row
        for row in results_repository.score_rows(registry, run_id=run.id, level="channel")
        if row.authority_code in members and row.key == "guichet" and row.n >= 1
    ]
    pooled = np.mean([row.se**2 * row.n for row in channel_rows if row.se is not None])
    assert ranked.components.within_sd["guichet"] == pytest.approx(math.sqrt(pooled))
    survey_rows = [
        row
        for row in results_repository.score_rows(registry, run_id=run.id, level="component")
        if row.authority_code in members and row.key == "survey" and row.se is not None
    ]
    assert survey_rows
    per_respondent = np.mean([row.se**2 * row.n for row in survey_rows])
    assert ranked.components.respondent_sd == pytest.approx(math.sqrt(per_respondent))
    # Candidates: registered now, else as many as the previous edition ranked, else assumed.
    assert by_key["communes-100000-plus"].candidates_source is planner.CandidatesSource.registered
    assert by_key["communes-100000-plus"].candidates == 1
    assert ranked.candidates_source is planner.CandidatesSource.previous_edition
    assert ranked.candidates == len(overall)
    # A category the previous edition did not rank borrows all its categories' figures.
    assert by_key["intercommunalites"].components_source in (
        planner.ComponentsSource.previous_edition,
        planner.ComponentsSource.defaults,
    )
    alternatives = ranked.alternatives
    assert alternatives[0].forecast.plan.respondents == 45
    assert alternatives[-1].kind is AlternativeKind.double_respondents
    assert alternatives[-1].forecast.plan.respondents == 90


def test_config_page_shows_the_planner_in_french_and_english(
    admin_client: TestClient, open_campaign: Campaign
) -> None:
    path = f"/campaigns/{open_campaign.id}/config"
    admin_client.cookies.set("lang", "fr")
    started = time.perf_counter()
    french = admin_client.get(path)
    elapsed = time.perf_counter() - started
    assert french.status_code == 200
    assert elapsed < 1.0  # 8 categories × 9 plans, analytic
    text = french.text
    assert "Planificateur de précision" in text
    assert "Aucune édition précédente" in text
    # French typography: non-breaking space before the colon, decimal comma.
    assert "Planificateur de précision\u00a0:" in text
    assert "environ 2" in text and " sur 35" in text
    assert "±\u00a0" in text and "," in text.split("±\u00a0", 1)[1][:6]
    assert text.count('<th scope="row">') == 8 * 9
    admin_client.cookies.set("lang", "en")
    english = admin_client.get(path, params={"respondents": "60"})
    assert english.status_code == 200
    assert "Precision planner: what each extra test buys" in english.text
    assert "60 respondents" in english.text and "(120)" in english.text
    assert "No earlier edition has been scored" in english.text


def test_an_unusable_planned_figure_is_reported_and_the_minimum_used(
    admin_client: TestClient, open_campaign: Campaign
) -> None:
    admin_client.cookies.set("lang", "en")
    response = admin_client.get(
        f"/campaigns/{open_campaign.id}/config", params={"respondents": "1"}
    )
    assert response.status_code == 200
    assert "Enter a whole number of respondents from 2 to 100,000." in response.text
    assert 'aria-invalid="true"' in response.text
    assert "30 respondents" in response.text


def test_config_page_names_the_previous_edition(
    admin_client: TestClient, scored_then_next: tuple[Campaign, Campaign]
) -> None:
    previous, following = scored_then_next
    admin_client.cookies.set("lang", "en")
    response = admin_client.get(f"/campaigns/{following.id}/config")
    assert response.status_code == 200
    assert f"Variance components from the {previous.year} edition" in response.text
    assert "1 registered candidate." in response.text
