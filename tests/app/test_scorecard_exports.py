"""The scorecard's CSV and PDF in the reader's language: words, not codes.

The French CSV is a French spreadsheet (``;``, decimal comma, BOM), the English one the
international dialect; ``?dialect=`` chooses explicitly. Both PDFs name every level, key, flag
and category in words, with the locale's numbers and, in French, French punctuation.
"""

from __future__ import annotations

import csv
import io
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.accounts.models import Role
from app.campaigns.models import Campaign
from app.results.models import RankRow
from app.scorecards import exports, pdf
from app.scorecards.pdf import NARROW_NBSP, french_typography
from tests.app.test_jury import BIG, SMALL, Spec, login_en, scored
from tests.conftest import OPEN_YEAR, make_user

ITEMS = (("citizen:courtesy", 90.0), ("citizen:ease", 50.0), ("citizen:clarity", 70.0))
SPECS = (
    Spec(
        "69123",
        BIG,
        74.0,
        2.5,
        top1=True,
        items=ITEMS,
        flags=("insufficient_precision", "ci_cut_high"),
    ),
    Spec(
        "75056",
        BIG,
        72.0,
        2.0,
        top1=True,
        items=(("citizen:courtesy", 70.0), ("citizen:ease", 70.0), ("citizen:clarity", 70.0)),
    ),
    Spec("01001", SMALL, 61.0, 3.0, eligible=False),
)
INELIGIBILITY_CODE = "respondents:3/30; channels:1/2"
# Parts of codes a reader must never see in a label column or in the PDF.
RAW_CODE_PARTS = (
    "citizen:",
    "insufficient_precision",
    "ci_cut_",
    "communes-",
    "respondents:",
    "channels:",
)
# Keys that are also words ("Citizen survey"): a code only when a whole cell, or a whole word
# in a French text.
BARE_KEYS = frozenset(
    {"overall", "component", "channel", "theme", "item", "survey", "mystery", "guichet", "ease"}
)
FRENCH_TEXT_KEYS = re.compile(r"\b(overall|survey|mystery|guichet|relationship|ease)\b")
LABEL_COLUMNS = len(exports.scorecard_csv_header()) - len(exports.CODE_COLUMNS)
FRENCH_HEADER = [
    "Année",
    "Collectivité",
    "Catégorie",
    "Niveau",
    "Libellé",
    "Score",
    "Erreur type",
    f"Borne basse (intervalle à 95{NARROW_NBSP}%)",
    f"Borne haute (intervalle à 95{NARROW_NBSP}%)",
    "Degrés de liberté",
    "Nombre d’observations",
    "Effectif efficace",
    "Signalements",
    "Classée dans sa catégorie",
    "Motif de non-classement",
]
ENGLISH_HEADER = [
    "Year",
    "Authority",
    "Category",
    "Level",
    "Label",
    "Score",
    "Standard error",
    "Lower bound (95 % interval)",
    "Upper bound (95 % interval)",
    "Degrees of freedom",
    "Number of observations",
    "Effective sample size",
    "Flags",
    "Ranked in its category",
    "Reason not ranked",
]


@pytest.fixture
def campaign(registry: Session, open_campaign: Campaign) -> Campaign:
    """A scored campaign: Lyon with flagged overall score and criteria, 01001 not ranked."""
    scored(registry, open_campaign, SPECS)
    not_ranked = registry.exec(select(RankRow).where(RankRow.authority_code == "01001")).one()
    not_ranked.ineligible_reason = INELIGIBILITY_CODE  # as compute.ineligibility_code writes it
    registry.add(not_ranked)
    registry.commit()
    return open_campaign


def _reader(client: TestClient, registry: Session, language: str) -> TestClient:
    """An admin (who sees every scorecard before publication) reading in ``language``."""
    login_en(client, make_user(registry, Role.admin))
    client.cookies.set("lang", language)
    return client


def _get(client: TestClient, campaign: Campaign, code: str, suffix: str, query: str = ""):
    return client.get(f"/campaigns/{campaign.id}/scorecards/{code}.{suffix}{query}")


def _table(content: bytes, delimiter: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(content.decode("utf-8-sig")), delimiter=delimiter))


def _by_code(rows: list[list[str]]) -> dict[tuple[str, str], list[str]]:
    """Data rows by (level code, key code)."""
    header = rows[0]
    level, key = header.index("level_code"), header.index("key_code")
    return {(row[level], row[key]): row for row in rows[1:]}


def _assert_words_only(rows: list[list[str]]) -> None:
    for row in rows:
        for cell in row[:LABEL_COLUMNS]:
            assert not any(part in cell for part in RAW_CODE_PARTS), (cell, row)
            assert cell not in BARE_KEYS, (cell, row)


def test_french_csv_is_a_french_spreadsheet_in_words(
    client: TestClient, registry: Session, campaign: Campaign
) -> None:
    response = _get(_reader(client, registry, "fr"), campaign, "69123", "csv")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert (
        f'filename="scorecard-{OPEN_YEAR}-lyon-69123.csv"'
        in response.headers["content-disposition"]
    )
    assert response.content.startswith("\ufeff".encode())  # Excel reads the accents right
    rows = _table(response.content, ";")
    assert rows[0] == [*FRENCH_HEADER, *exports.CODE_COLUMNS]
    _assert_words_only(rows)
    # The page's order: overall, components, channels, themes, then the criteria.
    assert [row[rows[0].index("level_code")] for row in rows[1:]] == [
        "overall",
        *["component"] * 2,
        *["channel"] * 2,
        *["theme"] * 2,
        *["item"] * 3,
    ]
    by_code = _by_code(rows)
    overall = by_code[("overall", "")]
    assert overall[:7] == [
        str(OPEN_YEAR),
        "Lyon",
        "Communes de plus de 100 000 habitants",
        "Score global",
        "Score global",
        "74",
        "2,5",
    ]
    assert overall[12] == "précision insuffisante, borne haute coupée au bord de l’échelle 0–100"
    assert overall[13:15] == ["oui", ""]
    assert overall[15:] == [
        "69123",
        "communes-100000-plus",
        "overall",
        "",
        "insufficient_precision ci_cut_high",
        "1",
        "",
    ]
    # Rounded as the page shows: scores and bounds to 1 decimal, SE to 2, n an integer.
    survey = by_code[("component", "survey")]
    assert survey[3:12] == [
        "Composante",
        "Enquête citoyenne",
        "76",
        "3,25",
        "69,4",
        "82,6",
        "40",
        "120",
        "110",
    ]
    assert by_code[("component", "mystery")][4:7] == ["Visites mystère", "72", "3,75"]
    assert by_code[("channel", "guichet")][3:5] == ["Canal", "accueil physique"]
    assert by_code[("theme", "ease")][3:5] == ["Thème", "Simplicité et rapidité"]
    clarity = by_code[("item", "citizen:clarity")]
    assert clarity[3] == "Critère" and clarity[4] and clarity[4] != "citizen:clarity"


def test_english_csv_is_international_in_english_words(
    client: TestClient, registry: Session, campaign: Campaign
) -> None:
    response = _get(_reader(client, registry, "en"), campaign, "69123", "csv")
    assert not response.content.startswith("\ufeff".encode())
    rows = _table(response.content, ",")
    assert rows[0] == [*ENGLISH_HEADER, *exports.CODE_COLUMNS]
    _assert_words_only(rows)
    by_code = _by_code(rows)
    overall = by_code[("overall", "")]
    assert overall[2:5] == ["Municipalities over 100,000", "Overall score", "Overall score"]
    assert overall[12] == "insufficient precision, upper bound cut at the edge of the 0–100 scale"
    assert by_code[("component", "survey")][4:9] == ["Citizen survey", "76", "3.25", "69.4", "82.6"]
    assert by_code[("channel", "guichet")][4] == "counter"


def test_dialect_parameter_chooses_whatever_the_language(
    client: TestClient, registry: Session, campaign: Campaign
) -> None:
    reader = _reader(client, registry, "fr")
    international = _get(reader, campaign, "69123", "csv", "?dialect=international")
    assert not international.content.startswith("\ufeff".encode())
    rows = _table(international.content, ",")
    assert rows[0][:2] == ["Année", "Collectivité"]  # the words stay the reader's
    assert _by_code(rows)[("component", "survey")][6] == "3.25"
    reader.cookies.set("lang", "en")
    french = _get(reader, campaign, "69123", "csv", "?dialect=french")
    assert french.content.startswith("\ufeff".encode())
    rows = _table(french.content, ";")
    assert rows[0][:2] == ["Year", "Authority"]
    assert _by_code(rows)[("component", "survey")][6] == "3,25"


def test_unknown_dialect_is_refused_naming_the_parameter(
    client: TestClient, registry: Session, campaign: Campaign
) -> None:
    reader = _reader(client, registry, "en")
    page = _get(reader, campaign, "69123", "csv", "?dialect=bogus")
    assert page.status_code == 422 and "dialect" in page.text
    api_style = reader.get(
        f"/campaigns/{campaign.id}/scorecards/69123.csv?dialect=bogus",
        headers={"accept": "application/json"},
    )
    assert api_style.status_code == 422
    assert [error["field"] for error in api_style.json()["errors"]] == ["dialect"]


def test_csv_of_a_candidate_not_ranked_says_why_in_words(
    client: TestClient, registry: Session, campaign: Campaign
) -> None:
    response = _get(_reader(client, registry, "fr"), campaign, "01001", "csv")
    rows = _table(response.content, ";")
    _assert_words_only(rows)
    overall = _by_code(rows)[("overall", "")]
    assert overall[13:15] == ["non", "3 répondants (minimum 30); 1 canaux testés (minimum 2)"]
    assert overall[-2:] == ["0", INELIGIBILITY_CODE]


def _pdf_text(response, tmp_path: Path) -> str:
    assert shutil.which("pdftotext"), "poppler-utils is missing: scripts/test.sh installs it"
    assert response.status_code == 200 and response.content.startswith(b"%PDF")
    pdf = tmp_path / "scorecard.pdf"
    pdf.write_bytes(response.content)
    subprocess.run(["pdftotext", "-enc", "UTF-8", str(pdf), str(tmp_path / "text.txt")], check=True)
    text = (tmp_path / "text.txt").read_text(encoding="utf-8")
    # Table cells wrap over lines: compare words. (A narrow no-break space comes out of the PDF
    # as a plain space: French spacing is checked on the HTML the PDF is drawn from.)
    return " ".join(text.split())


def _assert_no_raw_code(text: str, *, french: bool) -> None:
    for part in RAW_CODE_PARTS:
        assert part not in text, part
    if french:
        assert FRENCH_TEXT_KEYS.findall(text) == []
    else:
        assert "guichet" not in text


@pytest.fixture
def printed_html(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The HTML each PDF is drawn from, kept as the route renders it."""
    kept: list[str] = []

    def render_html(context: dict[str, Any]) -> str:
        kept.append(original(context))
        return kept[-1]

    original = pdf.render_html
    monkeypatch.setattr(pdf, "render_html", render_html)
    return kept


def _prose(html: str) -> str:
    """The text of the print page, tags and their style sheets left out."""
    without_styles = re.sub(r"<style.*?</style>", "", html, flags=re.DOTALL)
    # Only ASCII white space is collapsed: str.split() would also eat the narrow no-break spaces.
    return re.sub(r"[ \t\r\n]+", " ", re.sub(r"<[^>]*>", " ", without_styles)).strip()


def test_french_pdf_speaks_french(
    client: TestClient,
    registry: Session,
    campaign: Campaign,
    tmp_path: Path,
    printed_html: list[str],
) -> None:
    response = _get(_reader(client, registry, "fr"), campaign, "69123", "pdf")
    assert (
        f'filename="scorecard-{OPEN_YEAR}-lyon-69123.pdf"'
        in response.headers["content-disposition"]
    )
    text = _pdf_text(response, tmp_path)
    for words in (
        "Score global",
        "Communes de plus de 100 000 habitants",
        "Enquête citoyenne",
        "Visites mystère",
        "accueil physique",
        "Simplicité et rapidité",
        "précision insuffisante",
        "courtoisie",
        "74,0",
    ):
        assert words in text, words
    _assert_no_raw_code(text, french=True)
    (html,) = printed_html
    assert '<html lang="fr">' in html
    # French punctuation: a narrow no-break space before ";" and ":" and "%".
    prose = _prose(html)
    assert f"rang 1 sur 2{NARROW_NBSP};" in prose
    assert f"Signalements{NARROW_NBSP}:" in prose
    assert f"95{NARROW_NBSP}%{NARROW_NBSP}:" in prose
    assert not re.search(r"[^\u202f][;:!?](\s|$)", prose), re.findall(r".{20}[;:!?]\s", prose)


def test_english_pdf_speaks_english(
    client: TestClient,
    registry: Session,
    campaign: Campaign,
    tmp_path: Path,
    printed_html: list[str],
) -> None:
    text = _pdf_text(_get(_reader(client, registry, "en"), campaign, "69123", "pdf"), tmp_path)
    for words in (
        "Overall score",
        "Municipalities over 100,000",
        "Citizen survey",
        "Mystery shopping",
        "counter",
        "Ease and speed",
        "insufficient precision",
        "74.0",
        "rank 1 of 2;",
    ):
        assert words in text, words
    _assert_no_raw_code(text, french=False)
    (html,) = printed_html
    assert '<html lang="en">' in html
    assert NARROW_NBSP not in html  # French spacing is for French only


def test_pdf_of_a_candidate_not_ranked_says_why_in_words(
    client: TestClient, registry: Session, campaign: Campaign, tmp_path: Path
) -> None:
    text = _pdf_text(_get(_reader(client, registry, "fr"), campaign, "01001", "pdf"), tmp_path)
    assert "3 répondants (minimum 30)" in text and "1 canaux testés (minimum 2)" in text
    _assert_no_raw_code(text, french=True)


def test_french_typography_touches_prose_only() -> None:
    html = (
        '<style>a{color:red; b:c}</style><p class="x:y">Note : rang 2; voir http://x.fr/?a=1 '
        "à 10:30 &amp; plus ! « bien » 95 %</p><svg><style>.t{fill:#000;}</style>"
        "<text>Pourquoi?</text></svg>"
    )
    assert french_typography(html) == (
        '<style>a{color:red; b:c}</style><p class="x:y">Note\u202f: rang 2\u202f; voir '
        "http://x.fr/?a=1 à 10:30 &amp; plus\u202f! «\u202fbien\u202f» 95\u202f%</p><svg>"
        "<style>.t{fill:#000;}</style><text>Pourquoi\u202f?</text></svg>"
    )
