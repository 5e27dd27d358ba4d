"""One family per table: no page, API or export shows a candidate in a τ-best set whose
displayed lower rank bound is above τ (nor leaves out one whose bound is within τ).

Walked on a campaign scored by the real engine and published through the jury: the rankings
API (organiser and public), the jury's category pages, the public category pages and the open
data. The demo's editions are walked by ``tests/browser/test_rank_family_pages.py``.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import date
from html.parser import HTMLParser

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

import surveys
from app.accounts.models import Role
from app.campaigns.models import Campaign
from app.campaigns.schemas import CampaignCreate
from app.campaigns.service import (
    create_campaign,
    pin_latest_versions,
    register_candidate,
    transition,
)
from app.core.db import row_id
from app.instruments.service import publish as publish_instrument
from app.jury.service import assign_president, sign_decision
from app.results import repository as results_repository
from app.results.service import run_scoring
from tests.app.test_jury import login_en
from tests.conftest import make_user
from tests.factories.responses import add_responses
from tests.factories.visits import add_visits

YEAR = 2031
# Every commune and département of the registry sample's small bands, and the two big towns:
# three categories with 2 to 10 candidates.
CANDIDATES = (
    "75056", "69123",
    "74040", "29068", "59488", "79125", "35271", "51002", "47300", "74307", "46089", "64377",
    "D59", "D13", "D93", "D92", "D78", "D77",
)  # fmt: skip
TOP_SETS = ((1, "Top-1 set"), (3, "Top-3 set"))


@dataclass
class Table:
    caption: str = ""
    classes: str = ""
    headers: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)

    def records(self) -> list[dict[str, str]]:
        """Each body row keyed by its column header."""
        return [dict(zip(self.headers, row, strict=False)) for row in self.rows]


class _TableReader(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tables: list[Table] = []
        self._stack: list[Table] = []
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self._in_head = False
        self._in_caption = False
        self._hidden_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        classes = dict(attrs).get("class") or ""
        if self._hidden_depth or "visually-hidden" in classes.split():
            self._hidden_depth += 1
            return
        if tag == "table":
            self._stack.append(Table(classes=classes))
        elif tag == "thead":
            self._in_head = True
        elif tag == "caption":
            self._in_caption = True
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if self._hidden_depth:
            self._hidden_depth -= 1
            return
        if not self._stack:
            return
        table = self._stack[-1]
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append(re.sub(r"\s+", " ", "".join(self._cell)).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            if self._in_head:
                table.headers = self._row
            else:
                table.rows.append(self._row)
            self._row = None
        elif tag == "thead":
            self._in_head = False
        elif tag == "caption":
            self._in_caption = False
        elif tag == "table":
            self.tables.append(self._stack.pop())

    def handle_data(self, data: str) -> None:
        if self._hidden_depth or not self._stack:
            return
        if self._in_caption:
            self._stack[-1].caption += data
        elif self._cell is not None:
            self._cell.append(data)


def read_tables(html: str) -> list[Table]:
    """Every table of the page, visually hidden text left out (as a sighted reader sees it)."""
    reader = _TableReader()
    reader.feed(html)
    return reader.tables


def rank_bounds(text: str) -> tuple[int, int] | None:
    """``"2 – 7"`` → (2, 7); a dash alone (no interval) → None."""
    match = re.fullmatch(r"(\d+)\s*–\s*(\d+)", text.strip())
    return (int(match[1]), int(match[2])) if match else None


# --- the scored and published campaign ----------------------------------------------------------


@dataclass(frozen=True)
class Edition:
    campaign: Campaign
    categories: list[str]


def score_and_publish(session: Session, *, year: int = YEAR) -> Edition:
    """A campaign collected, scored by the engine, decided by the jury and published."""
    campaign = create_campaign(
        session,
        data=CampaignCreate(
            year=year, name="Familles", opens_at=date(year, 1, 1), closes_at=date(year, 12, 1)
        ),
        organiser="Baromètre",
        actor=None,
    )
    for code in CANDIDATES:
        register_candidate(session, campaign=campaign, code=code, actor=None)
    for instrument in surveys.default_instruments().values():
        publish_instrument(session, instrument=instrument, actor=None)
    pin_latest_versions(session, campaign=campaign, actor=None)
    transition(session, campaign=campaign, to_state="open", actor=None)
    rng = np.random.default_rng(2031)
    add_responses(session, campaign=campaign, rng=rng, per_candidate=(30, 45))
    add_visits(session, campaign=campaign, rng=rng)
    transition(session, campaign=campaign, to_state="closed", actor=None)
    run_scoring(session, campaign=campaign, actor=None)  # a final run: now scored
    run = results_repository.current_run(session, campaign_id=row_id(campaign))
    assert run is not None
    admin = make_user(session, Role.admin)
    president = make_user(session, Role.jury)
    assign_president(session, campaign=campaign, user_id=row_id(president), actor=admin)
    counts = results_repository.category_counts(session, run_id=row_id(run))
    decided = []
    for category, (_total, eligible) in sorted(counts.items()):
        if not eligible:
            continue
        ranks = results_repository.rank_rows(session, run_id=row_id(run), category=category)
        leader = min((r for r in ranks if r.eligible), key=lambda r: r.rank or 10**6)
        sign_decision(
            session,
            campaign=campaign,
            category=category,
            president=president,
            laureate=leader.authority_code,
            justification="Statistical tie: the jury chose the point leader.",
        )
        decided.append(category)
    transition(session, campaign=campaign, to_state="deliberated", actor=admin)
    transition(session, campaign=campaign, to_state="published", actor=admin)
    session.commit()
    return Edition(campaign=campaign, categories=decided)


# --- the checks ---------------------------------------------------------------------------------


def assert_sets_read_from_bounds(where: str, low: int | None, member: dict[int, bool]) -> None:
    """In the top τ exactly when the displayed lower bound is at most τ."""
    for tau, inside in member.items():
        expected = low is not None and low <= tau
        assert inside == expected, f"{where}: top-{tau} says {inside}, lower bound {low}"


def check_rankings_json(body: dict) -> int:
    """Every entry of a rankings API answer; returns how many were checked."""
    assert body["rank_interval_family"] == "simultaneous"
    checked = 0
    for category in body["categories"]:
        for entry in category["candidates"]:
            where = f"API {category['key']} {entry['authority_code']}"
            assert_sets_read_from_bounds(
                where, entry["rank_low"], {1: entry["in_top1_set"], 3: entry["in_top3_set"]}
            )
            if entry["rank_low"] is not None:
                assert entry["rank_low"] <= entry["rank"] <= entry["rank_high"], where
            checked += 1
        tied = sum(entry["in_top1_set"] for entry in category["candidates"]) > 1
        if tied:  # a tie seen in the names is a tie in the flag (the flag counts everyone)
            assert category["statistical_tie"], category["key"]
    return checked


def _table_with(tables: list[Table], header: str) -> Table:
    return next(table for table in tables if header in table.headers)


def check_jury_page(html: str, where: str) -> int:
    table = _table_with(read_tables(html), "Top-1 set")
    assert "simultaneous" in html and "/methodologie#simultaneous" in html, where
    for record in table.records():
        bounds = rank_bounds(record["Rank interval"])
        member = {tau: record[label] == "yes" for tau, label in TOP_SETS}
        assert_sets_read_from_bounds(
            f"{where} {record['Candidate']}", bounds[0] if bounds else None, member
        )
    return len(table.rows)


def check_public_page(html: str, where: str) -> int:
    table = _table_with(read_tables(html), "Could be first")
    assert "/methodologie#simultaneous" in html, where
    for record in table.records():
        bounds = rank_bounds(record["Rank interval"])
        assert_sets_read_from_bounds(
            f"{where} {record['Candidate']}",
            bounds[0] if bounds else None,
            {1: record["Could be first"] == "yes"},
        )
    return len(table.rows)


def check_open_data(text: str) -> int:
    rows = [row for row in csv.DictReader(io.StringIO(text)) if row["level"] == "overall"]
    for row in rows:
        low = int(row["rank_low"]) if row["rank_low"] else None
        assert_sets_read_from_bounds(
            f"open data {row['authority_code']}",
            low,
            {1: row["in_top1_set"] == "true", 3: row["in_top3_set"] == "true"},
        )
    return len(rows)


@pytest.fixture
def edition(registry: Session) -> Edition:
    return score_and_publish(registry)


def test_no_output_shows_a_set_member_whose_lower_bound_is_above_tau(
    client: TestClient, registry: Session, edition: Edition
) -> None:
    campaign = edition.campaign
    assert len(edition.categories) >= 2
    # The public first (anonymous), then the organiser, who sees every candidate.
    public = client.get(f"/api/v1/campaigns/{YEAR}/rankings")
    assert public.status_code == 200
    seen_public = check_rankings_json(public.json())
    client.cookies.set("lang", "en")
    public_rows = 0
    for category in edition.categories:
        page = client.get(f"/results/{YEAR}/{category}")
        assert page.status_code == 200
        public_rows += check_public_page(page.text, f"public {category}")
    open_data_rows = check_open_data(client.get(f"/results/{YEAR}/open-data/scores.csv").text)

    login_en(client, make_user(registry, Role.admin))
    full = client.get(f"/api/v1/campaigns/{YEAR}/rankings").json()
    seen_full = check_rankings_json(full)
    assert seen_full == len(CANDIDATES) and seen_public <= seen_full
    jury_rows = 0
    for category in edition.categories:
        page = client.get(f"/campaigns/{campaign.id}/jury/{category}")
        assert page.status_code == 200
        jury_rows += check_jury_page(page.text, f"jury {category}")
    ranked = sum(
        1
        for category in full["categories"]
        for entry in category["candidates"]
        if entry["eligible"]
    )
    assert jury_rows == ranked and 0 < public_rows <= ranked and open_data_rows > 0
    # Members and non-members there are: the walk checks both directions.
    entries = [entry for category in full["categories"] for entry in category["candidates"]]
    assert any(entry["in_top1_set"] for entry in entries)
    assert any(entry["eligible"] and not entry["in_top1_set"] for entry in entries)


def test_the_scorecard_shows_the_marginal_interval_labelled_and_no_award_set(
    client: TestClient, registry: Session, edition: Edition
) -> None:
    campaign = edition.campaign
    login_en(client, make_user(registry, Role.admin))
    ranks = results_repository.rank_rows(
        registry,
        run_id=row_id(results_repository.current_run(registry, campaign_id=row_id(campaign))),
    )
    ranked = [row for row in ranks if row.eligible and row.marginal_low is not None]
    assert ranked
    for row in ranked:
        # The candidate's own interval is never wider than the award table's.
        assert row.rank_low <= row.marginal_low <= row.marginal_high <= row.rank_high
        page = client.get(f"/campaigns/{campaign.id}/scorecards/{row.authority_code}").text
        label = (
            "rank interval of the authority taken alone (marginal): "
            f"{row.marginal_low} to {row.marginal_high}"
        )
        assert label in page and "/methodologie#marginal" in page
        assert "Top-1 set" not in page and "Could be first" not in page
        api = client.get(f"/api/v1/campaigns/{YEAR}/scorecards/{row.authority_code}").json()
        assert (api["position"]["marginal_rank_low"], api["position"]["marginal_rank_high"]) == (
            row.marginal_low,
            row.marginal_high,
        )
