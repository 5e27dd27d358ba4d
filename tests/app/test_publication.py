"""Public results and open data: nothing before publication, documented columns after."""

from __future__ import annotations

import csv
import io

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.accounts.models import Role
from app.campaigns.models import Campaign
from app.campaigns.schemas import CampaignConfig, PublicationScope
from app.campaigns.service import register_candidate
from app.publication.service import OPEN_DATA_COLUMNS
from tests.app.test_jury import BIG, DEFAULT_SPECS, SMALL, Spec, login_en, scored
from tests.app.test_scorecards import publish
from tests.conftest import OPEN_YEAR, make_user


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
        "74",
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


# --- the publication policy -------------------------------------------------------------------

# Four candidates in the large-town category (Lyon the laureate), 01001 alone in the small one.
POLICY_SPECS = (
    *DEFAULT_SPECS,
    Spec("59112", BIG, 66.0, 2.0),
    Spec("01004", BIG, 60.0, 2.0),
)


def _with_policy(session: Session, campaign: Campaign, scope: str, top_k: int = 10) -> None:
    # Set on the stored configuration: the policy's own validation is tested with the schema.
    campaign.config = {**campaign.config, "publication": {"scope": scope, "top_k": top_k}}
    session.add(campaign)
    session.commit()


def _named(client: TestClient) -> tuple[str, set[str], dict]:
    page = client.get(f"/results/{OPEN_YEAR}/{BIG}").text
    text = client.get(f"/results/{OPEN_YEAR}/open-data/scores.csv").content.decode("utf-8")
    codes = {row["authority_code"] for row in csv.DictReader(io.StringIO(text))}
    data = client.get(f"/results/{OPEN_YEAR}/open-data/scores.json").json()
    return page, codes, data


@pytest.mark.parametrize(
    ("scope", "top_k", "named", "hidden"),
    [
        ("all", 10, {"69123", "75056", "59112", "01004", "01001"}, 0),
        ("laureates_and_top", 2, {"69123", "75056", "01001"}, 2),
        ("laureates", 10, {"69123", "01001"}, 3),
    ],
    ids=["all", "laureates-and-top-2", "laureates-only"],
)
def test_public_pages_and_open_data_name_whom_the_policy_names(
    client: TestClient,
    registry: Session,
    open_campaign: Campaign,
    scope: str,
    top_k: int,
    named: set[str],
    hidden: int,
) -> None:
    for code in ("59112", "01004"):
        register_candidate(registry, campaign=open_campaign, code=code, actor=None)
    scored(registry, open_campaign, POLICY_SPECS)
    _with_policy(registry, open_campaign, scope, top_k)
    publish(registry, open_campaign)
    client.cookies.set("lang", "en")
    names = {
        "69123": "Lyon",
        "75056": "Paris",
        "59112": "Bruay-sur-l",
        "01004": "Ambérieu-en-Bugey",
    }
    page, codes, data = _named(client)
    assert codes == named
    assert {row["authority_code"] for row in data["rows"]} == named
    assert data["publication"]["scope"] == scope
    assert data["publication"]["not_named"][BIG] == hidden
    for code, name in names.items():
        assert (name in page) == (code in named), (scope, name)
    if hidden:
        others = "candidate" if hidden == 1 else "candidates"
        assert f"and {hidden} other ranked {others}, not named" in page
    else:
        assert "not named" not in page
    # The public rankings API names the same candidates; the jury and the organiser see all.
    public = client.get(f"/api/v1/campaigns/{OPEN_YEAR}/rankings").json()
    assert public["publication_scope"] == scope
    big = next(c for c in public["categories"] if c["key"] == BIG)
    assert {e["authority_code"] for e in big["candidates"]} == named - {"01001"}
    assert big["not_named"] == hidden and big["ranked"] == 4
    login_en(client, make_user(registry, Role.jury))
    full = client.get(f"/api/v1/campaigns/{OPEN_YEAR}/rankings").json()
    big = next(c for c in full["categories"] if c["key"] == BIG)
    assert len(big["candidates"]) == 4 and big["not_named"] == 0
    jury_page = client.get(f"/campaigns/{open_campaign.id}/jury/{BIG}").text
    assert all(name in jury_page for name in names.values())


@pytest.mark.parametrize("scope", ["laureates", "laureates_and_top"])
def test_each_authority_still_sees_its_own_scorecard(
    client: TestClient, registry: Session, open_campaign: Campaign, scope: str
) -> None:
    for code in ("59112", "01004"):
        register_candidate(registry, campaign=open_campaign, code=code, actor=None)
    scored(registry, open_campaign, POLICY_SPECS)
    _with_policy(registry, open_campaign, scope, 1)
    publish(registry, open_campaign)
    login_en(client, make_user(registry, Role.authority, authority_code="01004"))
    page = client.get(f"/campaigns/{open_campaign.id}/scorecards/01004")
    assert page.status_code == 200 and "Ambérieu-en-Bugey" in page.text


def test_the_default_policy_names_the_laureates_and_the_top_ten() -> None:
    policy = CampaignConfig().publication
    assert (policy.scope, policy.top_k) == (PublicationScope.laureates_and_top, 10)


def test_methodology_page_in_french_and_english_linked_from_the_footer(
    client: TestClient,
) -> None:
    french = client.get("/methodologie")
    assert french.status_code == 200
    for words in ("Mogstad", "intervalle de rang de la collectivité prise isolément", "égalité"):
        assert words in french.text
    assert 'id="tie"' in french.text and 'id="simultaneous"' in french.text
    assert '/methodologie">Méthodologie</a>' in client.get("/").text
    client.cookies.set("lang", "en")
    english = client.get("/methodologie").text
    assert "How the barometer computes" in english and "doi:10.1093/restud/rdad006" in english
    assert "<script" not in english.split("</head>", 1)[1]  # no script in the body
