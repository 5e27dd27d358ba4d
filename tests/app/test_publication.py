"""Public results and open data: nothing before publication, documented columns after."""

from __future__ import annotations

import csv
import io

from fastapi.testclient import TestClient
from sqlmodel import Session

from app.campaigns.models import Campaign
from app.publication.service import OPEN_DATA_COLUMNS
from tests.app.test_jury import BIG, DEFAULT_SPECS, SMALL, Spec, scored
from tests.app.test_scorecards import publish
from tests.conftest import OPEN_YEAR


def _paths(year: int) -> list[str]:
    return [
        f"/results/{year}",
        f"/results/{year}/{BIG}",
        f"/results/{year}/open-data/scores.csv",
        f"/results/{year}/open-data/scores.json",
    ]


def test_results_and_open_data_only_after_publication(
    client: TestClient, registry: Session, open_campaign: Campaign
) -> None:
    specs = (*DEFAULT_SPECS[:2], Spec("01001", SMALL, 61.0, flags=("fewer_than_5",)))
    for path in _paths(OPEN_YEAR):
        assert client.get(path).status_code == 404, path
    scored(registry, open_campaign, specs)
    for path in _paths(OPEN_YEAR):
        assert client.get(path).status_code == 404, path  # scored, not published
    publish(registry, open_campaign)
    client.cookies.set("lang", "en")
    for path in _paths(OPEN_YEAR):
        assert client.get(path).status_code == 200, path

    page = client.get(f"/results/{OPEN_YEAR}").text
    assert "Lyon" in page and 'role="img"' in page and "Statistical tie" in page
    category = client.get(f"/results/{OPEN_YEAR}/{BIG}").text
    assert "laureate" in category and "Paris" in category

    response = client.get(f"/results/{OPEN_YEAR}/open-data/scores.csv")
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8"))))
    assert list(rows[0]) == OPEN_DATA_COLUMNS
    assert {r["level"] for r in rows} == {"overall", "component", "channel", "theme"}
    lyon = next(r for r in rows if r["authority_code"] == "69123" and r["level"] == "overall")
    assert (lyon["estimate"], lyon["ci_low"], lyon["rank"], lyon["laureate"]) == (
        "74.0",
        "68.95",
        "1",
        "true",
    )
    assert lyon["in_top1_set"] == "true" and lyon["authority_name"] == "Lyon"
    # Fewer than 5 respondents: the row is there, without figures.
    small = next(r for r in rows if r["authority_code"] == "01001" and r["level"] == "overall")
    assert small["estimate"] == "" and small["flags"] == "fewer_than_5"

    data = client.get(f"/results/{OPEN_YEAR}/open-data/scores.json").json()
    assert data["columns"] == OPEN_DATA_COLUMNS and len(data["rows"]) == len(rows)
    assert data["inputs_sha256"] == "ab" * 32


def test_unknown_category_is_404_after_publication(
    client: TestClient, registry: Session, open_campaign: Campaign
) -> None:
    scored(registry, open_campaign)
    publish(registry, open_campaign)
    assert client.get(f"/results/{OPEN_YEAR}/nope").status_code == 404
    assert client.get(f"/results/{OPEN_YEAR + 1}").status_code == 404
