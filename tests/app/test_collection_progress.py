"""Collection progress against the eligibility rules: the figures scoring will decide on, for
the organiser (every candidate, filtered, sorted, paged) and for an authority (its own row)."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from app.accounts.models import Role
from app.authorities.models import Authority
from app.campaigns.eligibility import channel_tested, counted_visits, index_has_coverage, shortfall
from app.campaigns.models import Campaign
from app.campaigns.schemas import Eligibility
from app.campaigns.service import parse_config, register_candidate, update_config
from app.collection import progress
from app.collection.models import Response
from app.core.db import row_id
from app.core.text import search_key
from app.results.compute import compute
from app.results.inputs import gather_inputs
from tests.conftest import VALID_ANSWERS, login, make_user
from tests.factories.responses import submit_response
from tests.factories.visits import add_visits

# The index averages nine items. LOW_COVERAGE answers three of them (the other six "not
# applicable"): below half, no index, no respondent; HALF_COVERAGE answers five: it counts.
INDEX_ITEMS = ("satisfied", "trust", "effective", "ease", "efficiency", "equity", "employees")
INDEX_ITEMS += ("courtesy", "clarity")
LOW_COVERAGE = {**VALID_ANSWERS, **dict.fromkeys(INDEX_ITEMS[:5], "na")}
HALF_COVERAGE = {**VALID_ANSWERS, **dict.fromkeys(INDEX_ITEMS[:4], "na"), "equity": 3}
RULES = {"min_respondents": 4, "min_channels_tested": 3, "min_visits_per_tested_channel": 1}
EXTRA_CANDIDATES = 55  # with the open campaign's three: two pages of 50


# --- the pure rules --------------------------------------------------------------------------


def test_the_rules_scoring_and_progress_share() -> None:
    assert index_has_coverage(4.5, 9.0) and not index_has_coverage(4.0, 9.0)
    assert not index_has_coverage(0.0, 9.0)
    assert list(index_has_coverage(np.array([0.0, 4.0, 5.0]), 9.0)) == [False, False, True]
    # A replicate second test does not count on a single-test channel.
    assert counted_visits(2, 1) == 1 and counted_visits(3, None) == 3 and counted_visits(2, 0) == 2
    assert channel_tested(approved=2, planned=1, min_visits=2) is False
    assert channel_tested(approved=2, planned=2, min_visits=2) is True
    rules = Eligibility(min_respondents=30, min_channels_tested=4)
    assert shortfall(respondents=13, channels_tested=4, rules=rules).respondents == 17
    gap = shortfall(respondents=31, channels_tested=1, rules=rules)
    assert (gap.respondents, gap.channels, gap.met) == (0, 3, False)
    assert shortfall(respondents=30, channels_tested=6, rules=rules).met


# --- a campaign under way ----------------------------------------------------------------------


def _respond(session: Session, campaign: Campaign, code: str, answers: dict[str, Any], n: int):
    return [
        submit_response(session, campaign=campaign, code=code, answers=answers) for _ in range(n)
    ]


@pytest.fixture
def under_way(open_campaign: Campaign, registry: Session) -> Campaign:
    """The open campaign with small thresholds (RULES), responses that do and do not count,
    approved visits on every channel of two candidates, and 55 more candidates registered."""
    config = parse_config(open_campaign.config).model_dump(mode="json")
    update_config(
        registry, campaign=open_campaign, raw={**config, "eligibility": RULES}, actor=None
    )
    # 69123: 5 counted (one with five items of nine), 1 too fast (excluded), 2 without index.
    _respond(registry, open_campaign, "69123", VALID_ANSWERS, 4)
    _respond(registry, open_campaign, "69123", HALF_COVERAGE, 1)
    submit_response(
        registry, campaign=open_campaign, code="69123", answers=VALID_ANSWERS, seconds=5
    )
    _respond(registry, open_campaign, "69123", LOW_COVERAGE, 2)
    # 01001: 2 counted; 75056: none.
    _respond(registry, open_campaign, "01001", VALID_ANSWERS, 2)
    rng = np.random.default_rng(3)
    add_visits(registry, campaign=open_campaign, rng=rng, codes=["69123"], per_channel=1)
    add_visits(registry, campaign=open_campaign, rng=rng, codes=["01001"], per_channel=1)
    registry.commit()
    config_now = parse_config(open_campaign.config)
    others = registry.exec(
        select(Authority)
        .where(col(Authority.code).not_in(["69123", "01001", "75056"]))
        .order_by(col(Authority.code))
    ).all()
    added = 0
    for authority in others:
        if config_now.category_for(authority.kind, authority.population) is None:
            continue
        register_candidate(registry, campaign=open_campaign, code=authority.code, actor=None)
        added += 1
        if added == EXTRA_CANDIDATES:
            break
    registry.commit()
    return open_campaign


def _scored(session: Session, campaign: Campaign) -> tuple[dict[str, Any], dict[str, int]]:
    """What a scoring run of the campaign as it stands would decide: rank rows by code and the
    respondents' n (the overall score row's, else 0)."""
    run = compute(gather_inputs(session, campaign=campaign), seed=1, n_draws=200)
    n = {row.authority_code: row.n for row in run.score_rows if row.level == "overall"}
    return {row.authority_code: row for row in run.rank_rows}, n


def _assert_matches_scoring(
    session: Session, campaign: Campaign
) -> list[progress.CandidateProgress]:
    rows = progress.campaign_progress(session, campaign=campaign)
    ranks, n = _scored(session, campaign)
    assert {row.code for row in rows} == set(ranks)
    for row in rows:
        rank = ranks[row.code]
        assert row.respondents == n.get(row.code, 0), row.code
        collection_part = "; ".join(
            part
            for part in rank.ineligible_reason.split("; ")
            if part.startswith(("respondents:", "channels:"))
        )
        expected = []
        if row.respondents_short:
            expected.append(f"respondents:{row.respondents}/{row.respondents_needed}")
        if row.channels_short:
            expected.append(f"channels:{row.channels_tested}/{row.channels_needed}")
        assert collection_part == "; ".join(expected), row.code
        if rank.eligible:
            assert row.eligible_so_far, row.code
    return rows


def test_progress_counts_what_scoring_counts(under_way: Campaign, registry: Session) -> None:
    rows = {row.code: row for row in _assert_matches_scoring(registry, under_way)}
    lyon = rows["69123"]
    assert (lyon.respondents, lyon.respondents_short) == (5, 0)
    assert lyon.channels_tested == 6 and lyon.eligible_so_far and lyon.reason == ""
    assert all(channel.approved == 1 and channel.tested for channel in lyon.channels)
    assert {channel.planned for channel in lyon.channels} >= {1, 2}
    ain = rows["01001"]
    assert (ain.respondents, ain.respondents_short, ain.eligible_so_far) == (2, 2, False)
    assert ain.reason == "2 more respondents needed"
    paris = rows["75056"]
    assert (paris.respondents, paris.channels_tested, paris.channels_short) == (0, 0, 3)
    assert paris.reason == "4 more respondents needed; 3 more channels to test"


def test_rows_without_packed_scores_count_as_scoring_reads_them(
    under_way: Campaign, registry: Session
) -> None:
    """Responses stored before packed item scores existed are scored from their answers, by
    scoring and by progress alike."""
    table = Response.__table__  # type: ignore[attr-defined]
    registry.execute(sa.update(table).values(item_scores=None))
    registry.flush()
    rows = {row.code: row for row in _assert_matches_scoring(registry, under_way)}
    assert rows["69123"].respondents == 5 and rows["01001"].respondents == 2


def test_replicate_visits_do_not_make_a_channel_tested(
    under_way: Campaign, registry: Session
) -> None:
    """With two approved visits required, a single-test channel's replicate does not count."""
    config = parse_config(under_way.config).model_dump(mode="json")
    rules = {**RULES, "min_visits_per_tested_channel": 2}
    update_config(registry, campaign=under_way, raw={**config, "eligibility": rules}, actor=None)
    add_visits(registry, campaign=under_way, rng=np.random.default_rng(5), codes=["69123"])
    registry.flush()
    rows = {row.code: row for row in _assert_matches_scoring(registry, under_way)}
    for channel in rows["69123"].channels:
        assert channel.counted == min(channel.approved, channel.planned)
        assert channel.tested == (channel.counted >= 2)


# --- pages and API -----------------------------------------------------------------------------


def _candidate_codes(session: Session, campaign: Campaign) -> list[str]:
    return [row.code for row in progress.campaign_progress(session, campaign=campaign)]


def _english(client: TestClient) -> None:
    client.get("/lang/en?next=/")


def _row_codes(html: str) -> list[str]:
    return re.findall(r'<th scope="rowgroup"[^>]*>.*?<code>([^<]+)</code>', html, flags=re.S)


def test_the_organiser_sees_every_candidate_paged(
    under_way: Campaign, client: TestClient, registry: Session
) -> None:
    login(client, make_user(registry, Role.admin))
    _english(client)
    url = f"/campaigns/{under_way.id}/progress"
    first = client.get(url)
    assert first.status_code == 200
    assert len(_row_codes(first.text)) == 50
    total = 3 + EXTRA_CANDIDATES
    assert f"{total - 1} candidates of {total} have not reached the threshold of 4" in first.text
    assert "4 missing" in first.text and "Not yet" in first.text
    assert 'aria-sort="descending"' in first.text  # shortfall, the default
    assert "page=2" in first.text and 'rel="next"' in first.text
    second = client.get(url, params={"page": 2})
    assert len(_row_codes(second.text)) == total - 50
    everyone = set(_row_codes(first.text)) | set(_row_codes(second.text))
    assert len(everyone) == total
    # The only eligible candidate comes last when the furthest from eligible come first.
    assert _row_codes(second.text)[-1] == "69123"
    fragment = client.get(url, headers={"HX-Request": "true"})
    assert fragment.status_code == 200 and "<html" not in fragment.text
    assert _row_codes(fragment.text) == _row_codes(first.text)
    # Linked from the campaign page and the collection figures.
    assert url in client.get(f"/campaigns/{under_way.id}").text
    assert url in client.get(f"/campaigns/{under_way.id}/collection").text


def test_sorting_and_the_category_filter(
    under_way: Campaign, client: TestClient, registry: Session
) -> None:
    login(client, make_user(registry, Role.admin))
    url = f"/api/v1/campaigns/{under_way.id}/progress"
    by_respondents = client.get(url, params={"sort": "respondents", "dir": "desc"}).json()
    assert [c["code"] for c in by_respondents["candidates"][:2]] == ["69123", "01001"]
    assert by_respondents["direction"] == "desc"
    fewest = client.get(url, params={"sort": "respondents"}).json()
    assert fewest["direction"] == "asc" and fewest["candidates"][0]["respondents"] == 0
    names = [c["name"] for c in client.get(url, params={"sort": "name"}).json()["candidates"]]
    assert names == sorted(names, key=search_key)
    reverse = client.get(url, params={"sort": "name", "dir": "desc", "page": 2}).json()
    assert reverse["candidates"][-1]["name"] == names[0]

    page = client.get(f"/campaigns/{under_way.id}/progress", params={"sort": "name"})
    assert re.search(
        r'<th scope="col" class="" aria-sort="ascending">\s*<a href="\?sort=name', page.text
    )
    assert "sort=respondents&amp;dir=asc" in page.text  # another column: its natural order

    lyon = next(c for c in by_respondents["candidates"] if c["code"] == "69123")
    category = lyon["category"]
    filtered = client.get(url, params={"category": category}).json()
    assert filtered["category"] == category and filtered["summary"]["candidates"] >= 1
    assert {c["category"] for c in filtered["candidates"]} == {category}
    assert all(c["category_label"] != category for c in filtered["candidates"])
    html = client.get(f"/campaigns/{under_way.id}/progress", params={"category": category})
    assert f'<option value="{category}" selected>' in html.text
    assert f"category={category}" in html.text  # kept by the sort links
    unknown = client.get(url, params={"category": "nope"})
    assert unknown.status_code == 422 and unknown.json()["field"] == "category"


@pytest.mark.parametrize("path", ["/campaigns/{id}/progress", "/api/v1/campaigns/{id}/progress"])
def test_a_bad_sort_is_refused_naming_the_parameter(
    under_way: Campaign, client: TestClient, registry: Session, path: str
) -> None:
    login(client, make_user(registry, Role.admin))
    response = client.get(path.format(id=under_way.id), params={"sort": "best"})
    assert response.status_code == 422
    if path.startswith("/api/"):
        assert [error["field"] for error in response.json()["errors"]] == ["sort"]
    else:
        assert "sort" in response.text
    assert client.get(path.format(id=under_way.id), params={"dir": "up"}).status_code == 422


def test_an_authority_sees_its_own_row_only(
    under_way: Campaign, client: TestClient, registry: Session
) -> None:
    login(client, make_user(registry, Role.authority, authority_code="01001"))
    _english(client)
    page = client.get(f"/campaigns/{under_way.id}/progress")
    assert page.status_code == 200
    assert _row_codes(page.text) == ["01001"]
    assert "Not eligible yet: 2 more respondents needed." in page.text
    assert "?sort=" not in page.text and 'name="category"' not in page.text  # one row
    api = client.get(f"/api/v1/campaigns/{under_way.id}/progress").json()
    assert [c["code"] for c in api["candidates"]] == ["01001"]
    assert api["candidates"][0]["respondents"] == 2
    assert api["candidates"][0]["respondents_short"] == 2
    own = client.get(f"/api/v1/campaigns/{under_way.id}/progress", params={"code": "01001"})
    assert own.status_code == 200
    for path in (
        f"/campaigns/{under_way.id}/progress",
        f"/api/v1/campaigns/{under_way.id}/progress",
    ):
        assert client.get(path, params={"code": "69123"}).status_code == 403

    client.cookies.clear()
    outsider = registry.exec(
        select(Authority).where(col(Authority.code).not_in(_candidate_codes(registry, under_way)))
    ).first()
    assert outsider is not None
    login(client, make_user(registry, Role.authority, authority_code=outsider.code))
    assert client.get(f"/campaigns/{under_way.id}/progress").status_code == 404
    assert client.get(f"/api/v1/campaigns/{under_way.id}/progress").status_code == 404


def test_other_roles_and_other_campaigns_are_refused(
    under_way: Campaign, client: TestClient, registry: Session
) -> None:
    login(client, make_user(registry, Role.jury))
    assert client.get(f"/campaigns/{under_way.id}/progress").status_code == 403
    client.cookies.clear()
    login(client, make_user(registry, Role.admin))
    assert client.get(f"/api/v1/campaigns/{row_id(under_way) + 99}/progress").status_code == 404
    one = client.get(f"/api/v1/campaigns/{under_way.id}/progress", params={"code": "69123"})
    assert [c["code"] for c in one.json()["candidates"]] == ["69123"]
