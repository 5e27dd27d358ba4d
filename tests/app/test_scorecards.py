"""The authority scorecard: only one's own (404 otherwise, on every format), YoY, PDF renders."""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlmodel import Session

from app.accounts.models import Role
from app.campaigns.models import Campaign
from app.campaigns.schemas import CampaignCreate
from app.campaigns.service import (
    create_campaign,
    pin_latest_versions,
    register_candidate,
    transition,
)
from app.jury.service import assign_president, sign_decision
from app.scorecards import exports
from tests.app.test_jury import BIG, SMALL, Spec, add_responses, login_en, scored
from tests.conftest import OPEN_YEAR, make_user

FORMATS = ("", ".pdf", ".csv")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


def publish(session: Session, campaign: Campaign) -> None:
    """Sign every category with a president and publish."""
    from app.jury import repository as jury_repository

    admin = make_user(session, Role.admin)
    president = make_user(session, Role.jury)
    assign_president(session, campaign=campaign, user_id=president.id or 0, actor=admin)
    signed = {d.category for d in jury_repository.decisions(session, campaign.id or 0)}
    for category, laureate in ((BIG, "69123"), (SMALL, "01001")):
        if category not in signed:
            sign_decision(
                session,
                campaign=campaign,
                category=category,
                president=president,
                laureate=laureate,
                justification="Statistical tie: Lyon answers every channel.",
            )
    transition(session, campaign=campaign, to_state="deliberated", actor=admin)
    transition(session, campaign=campaign, to_state="published", actor=admin)
    session.commit()


@pytest.fixture
def published(registry: Session, open_campaign: Campaign) -> Campaign:
    scored(registry, open_campaign)
    publish(registry, open_campaign)
    return open_campaign


def _urls(campaign: Campaign, code: str) -> list[str]:
    pages = [f"/campaigns/{campaign.id}/scorecards/{code}{suffix}" for suffix in FORMATS]
    return [*pages, f"/api/v1/campaigns/{campaign.year}/scorecards/{code}"]


def test_authority_sees_only_its_own_scorecard_in_every_format(
    client: TestClient, registry: Session, published: Campaign
) -> None:
    login_en(client, make_user(registry, Role.authority, authority_code="69123"))
    for url in _urls(published, "69123"):
        assert client.get(url).status_code == 200, url
    for url in _urls(published, "75056") + _urls(published, "01001"):
        assert client.get(url).status_code == 404, url
    data = client.get(f"/api/v1/campaigns/{published.year}/scorecards/69123").json()
    assert data["authority_code"] == "69123"
    assert data["overall"]["estimate"] == 74.0
    # The scorecard's family: the authority's own (marginal) interval, no award-table sets.
    position = data["position"]
    assert position["rank"] == 1 and position["marginal_rank_low"] == 1
    assert position["marginal_rank_high"] == 1
    assert not {"rank_low", "rank_high", "in_top1_set", "in_top3_set"} & set(position)
    assert data["category"]["ranked"] == 2 and data["category"]["best"] == 74.0


def test_authority_waits_for_publication_admin_and_jury_see_all(
    client: TestClient, registry: Session, open_campaign: Campaign
) -> None:
    scored(registry, open_campaign)
    login_en(client, make_user(registry, Role.authority, authority_code="69123"))
    for url in _urls(open_campaign, "69123"):
        assert client.get(url).status_code == 404, url
    for role in (Role.admin, Role.jury):
        client.cookies.clear()
        login_en(client, make_user(registry, role))
        for url in _urls(open_campaign, "75056"):
            assert client.get(url).status_code == 200, (role, url)
        assert client.get(_urls(open_campaign, "99999")[0]).status_code == 404


def test_scorecard_labels_its_marginal_interval_and_marks_a_cut_bound(
    client: TestClient, registry: Session, open_campaign: Campaign
) -> None:
    lyon = Spec("69123", BIG, 97.0, 2.5, top1=True, flags=("ci_cut_high",))
    scored(
        registry, open_campaign, (lyon, Spec("75056", BIG, 72.0, 2.0), Spec("01001", SMALL, 61.0))
    )
    publish(registry, open_campaign)
    login_en(client, make_user(registry, Role.authority, authority_code="69123"))
    text = client.get(f"/campaigns/{open_campaign.id}/scorecards/69123").text
    overall = text.split('id="overall-title"')[1].split("</section>")[0]
    assert "rank interval of the authority taken alone (marginal): 1 to 1" in overall
    assert "/methodologie#marginal" in overall and "Top-1" not in overall
    assert overall.count('class="cut-mark"') == 1 and "Bound cut at the edge" in overall
    assert "ci_cut_high" not in text
    # The PDF links to the methodology with an absolute address.
    assert client.get(f"/campaigns/{open_campaign.id}/scorecards/69123.pdf").status_code == 200


def test_scorecard_shows_position_category_strengths_and_comments(
    client: TestClient, registry: Session, published: Campaign
) -> None:
    add_responses(registry, published, "69123", ["Très bon accueil, 0612345678"] * 5)
    login_en(client, make_user(registry, Role.authority, authority_code="69123"))
    page = client.get(f"/campaigns/{published.id}/scorecards/69123")
    text = page.text
    assert "74.0" in text and "69.0" in text  # estimate and CI low (74 − 2.02 × 2.5)
    assert "median 73.0" in text
    # Courtesy 90 vs category mean 80 is a strength; ease 50 vs 60 an irritant.
    strengths = text.split(">Strengths<")[1].split(">Irritants<")[0]
    irritants = text.split(">Irritants<")[1].split("</section>")[0]
    assert "+10.0" in strengths and "-10.0" in irritants
    assert "Très bon accueil" in text and "0612345678" not in text
    assert text.count('role="img"') == 2
    assert "no comparable score the year before" in text


def test_year_over_year_change_with_its_interval(
    client: TestClient, registry: Session, settings, published: Campaign
) -> None:
    previous = create_campaign(
        registry,
        data=CampaignCreate(
            year=OPEN_YEAR - 1, name="Avant", opens_at=date(2029, 1, 1), closes_at=date(2029, 6, 1)
        ),
        organiser=settings.organiser,
        actor=None,
    )
    for code in ("69123", "75056", "01001"):
        register_candidate(registry, campaign=previous, code=code, actor=None)
    pin_latest_versions(registry, campaign=previous, actor=None)
    transition(registry, campaign=previous, to_state="open", actor=None)
    specs = (
        Spec("69123", BIG, 64.0, 2.0, top1=True),
        Spec("75056", BIG, 71.0, 2.0, top1=True),
        Spec("01001", SMALL, 60.0),
    )
    scored(registry, previous, specs)
    login_en(client, make_user(registry, Role.admin))
    lyon = client.get(f"/api/v1/campaigns/{published.year}/scorecards/69123").json()["change"]
    assert lyon["previous_year"] == OPEN_YEAR - 1 and lyon["difference"] == pytest.approx(10.0)
    # se = √(2.5² + 2²) = 3.20; Welch df from 40 and 40
    assert lyon["ci_high"] - lyon["ci_low"] == pytest.approx(2 * 3.2016 * 1.99, rel=0.01)
    assert lyon["significant"] is True
    paris = client.get(f"/api/v1/campaigns/{published.year}/scorecards/75056").json()["change"]
    assert paris["difference"] == pytest.approx(1.0) and paris["significant"] is False
    page = client.get(f"/campaigns/{published.id}/scorecards/69123").text
    assert "a significant change" in page


def test_scorecard_csv_lists_every_score_row(
    client: TestClient, registry: Session, published: Campaign
) -> None:
    login_en(client, make_user(registry, Role.authority, authority_code="69123"))
    response = client.get(f"/campaigns/{published.id}/scorecards/69123.csv")
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8"))))
    assert list(rows[0]) == exports.scorecard_csv_header()
    assert [(r["level_code"], r["key_code"]) for r in rows][:3] == [
        ("overall", ""),
        ("component", "mystery"),
        ("component", "survey"),
    ]
    assert len(rows) == 9 and all(r["authority_code"] == "69123" for r in rows)


def test_scorecard_pdf_first_page_is_not_blank(
    client: TestClient, registry: Session, published: Campaign, tmp_path: Path
) -> None:
    assert shutil.which("pdftoppm"), "poppler-utils is missing: scripts/test.sh installs it"
    login_en(client, make_user(registry, Role.authority, authority_code="69123"))
    response = client.get(f"/campaigns/{published.id}/scorecards/69123.pdf")
    assert response.status_code == 200 and response.content.startswith(b"%PDF")
    pdf = tmp_path / "scorecard.pdf"
    pdf.write_bytes(response.content)
    subprocess.run(
        ["pdftoppm", "-png", "-r", "50", "-f", "1", "-l", "1", str(pdf), str(tmp_path / "page")],
        check=True,
    )
    (png,) = tmp_path.glob("page*.png")
    image = Image.open(png).convert("L")
    ARTIFACTS.mkdir(exist_ok=True)
    image.save(ARTIFACTS / "scorecard-pdf-page1.png")
    pixels = np.asarray(image, dtype=float)
    non_white = float((pixels < 200).mean())
    assert image.width > 300 and image.height > 400
    assert non_white > 0.02, f"page 1 is almost blank ({non_white:.3%} ink)"
    assert pixels.var() > 100
