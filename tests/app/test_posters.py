"""QR posters: who may print them, what the QR code carries, and the three formats."""

from __future__ import annotations

import re
import zlib

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from app.accounts.models import Role
from app.authorities.models import Authority
from app.campaigns.models import Campaign
from app.campaigns.service import transition, withdraw_candidate
from app.posters import service
from tests.conftest import OPEN_CANDIDATES, login, make_user

SURVEY = "http://testserver/s/2030/69123"


def _url(application: FastAPI, name: str, campaign: Campaign, code: str = "69123") -> str:
    return application.url_path_for(name, campaign_id=campaign.id, code=code)


def _sign_in(client: TestClient, session: Session, role: Role, code: str | None = None) -> None:
    """Sign in, with the interface in English for the assertions on messages."""
    login(client, make_user(session, role, authority_code=code))
    client.cookies.set("lang", "en")


def _pdf_objects(pdf: bytes) -> bytes:
    """The PDF's dictionaries, including those packed in compressed object streams."""
    parts = [pdf]
    for stream in re.finditer(rb"stream\r?\n(.*?)endstream", pdf, re.S):
        try:
            parts.append(zlib.decompress(stream[1]))
        except zlib.error:
            continue
    return b"\n".join(parts)


def _pages(application: FastAPI, campaign: Campaign, code: str = "69123") -> list[str]:
    return [
        _url(application, name, campaign, code) for name in ("poster", "poster_svg", "poster_pdf")
    ]


def test_admin_gets_the_page_with_the_qr_code_of_the_public_link(
    application: FastAPI, client: TestClient, session: Session, open_campaign: Campaign
) -> None:
    _sign_in(client, session, Role.admin)
    response = client.get(_url(application, "poster", open_campaign))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert "Votre avis compte" in page and "Your opinion matters" in page
    assert "testserver/s/2030/69123</p>" in page  # the short link printed in clear
    assert "Lyon" in page and "2030" in page
    assert service.qr_svg(f"{SURVEY}?src=qr") in page
    assert '/static/css/poster.css"' in page
    assert " style=" not in page  # the CSP allows no inline style attribute
    # The page works as an htmx request too (full page: nothing asks for a fragment).
    htmx = client.get(_url(application, "poster", open_campaign), headers={"HX-Request": "true"})
    assert htmx.status_code == 200 and service.qr_svg(f"{SURVEY}?src=qr") in htmx.text


def test_a_channel_goes_into_the_qr_code_and_the_printed_link(
    application: FastAPI, client: TestClient, session: Session, open_campaign: Campaign
) -> None:
    _sign_in(client, session, Role.admin)
    page = client.get(_url(application, "poster", open_campaign), params={"canal": "guichet"})
    assert page.status_code == 200
    encoded = f"{SURVEY}?canal=guichet&src=qr"
    assert service.qr_svg(encoded) in page.text
    assert "testserver/s/2030/69123?canal=guichet</p>" in page.text
    assert '<option value="guichet" selected>' in page.text
    assert "/posters/69123.pdf?canal=guichet" in page.text
    # What the QR code carries is the real questionnaire, with the channel and the source.
    survey = client.get(encoded.removeprefix("http://testserver"))
    assert survey.status_code == 200
    assert '<input type="hidden" name="src" value="qr">' in survey.text
    assert '<input type="hidden" name="canal" value="guichet">' in survey.text

    svg = client.get(_url(application, "poster_svg", open_campaign), params={"canal": "guichet"})
    assert svg.text == service.qr_svg(encoded, standalone=True)

    unknown = client.get(_url(application, "poster", open_campaign), params={"canal": "pigeon"})
    assert unknown.status_code == 422
    assert "pigeon" in unknown.text


def test_the_svg_is_the_qr_code_alone_and_always_the_same(
    application: FastAPI, client: TestClient, session: Session, open_campaign: Campaign
) -> None:
    _sign_in(client, session, Role.admin)
    first = client.get(_url(application, "poster_svg", open_campaign))
    second = client.get(_url(application, "poster_svg", open_campaign))
    assert first.status_code == 200
    assert first.headers["content-type"].startswith("image/svg+xml")
    assert first.content == second.content
    assert first.text.startswith("<?xml") and "<svg" in first.text
    assert first.text == service.qr_svg(f"{SURVEY}?src=qr", standalone=True)
    assert service.qr_svg("https://example.org/x") == service.qr_svg("https://example.org/x")


def test_the_pdf_is_one_a4_page(
    application: FastAPI, client: TestClient, session: Session, open_campaign: Campaign
) -> None:
    _sign_in(client, session, Role.admin)
    response = client.get(
        _url(application, "poster_pdf", open_campaign), params={"canal": "guichet"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["content-disposition"] == (
        'attachment; filename="affiche-2030-69123-guichet.pdf"'
    )
    pdf = response.content
    assert pdf.startswith(b"%PDF") and pdf.rstrip().endswith(b"%%EOF")
    objects = _pdf_objects(pdf)
    assert len(re.findall(rb"/Type\s*/Page\b", objects)) == 1
    # A4 in points: 210 mm x 297 mm = 595.28 x 841.89.
    box = re.search(rb"/MediaBox\s*\[\s*0 0 (\d+\.?\d*) (\d+\.?\d*)\s*\]", objects)
    assert box is not None
    assert abs(float(box[1]) - 595.28) < 0.5 and abs(float(box[2]) - 841.89) < 0.5


def test_an_authority_gets_its_own_posters_only(
    application: FastAPI, client: TestClient, session: Session, open_campaign: Campaign
) -> None:
    _sign_in(client, session, Role.authority, "69123")
    for path in _pages(application, open_campaign):
        assert client.get(path).status_code == 200, path
    for path in _pages(application, open_campaign, "01001"):
        response = client.get(path)
        assert response.status_code == 403, path
        assert "your own authority" in response.text


def test_other_roles_and_anonymous_are_refused(
    application: FastAPI, client: TestClient, session: Session, open_campaign: Campaign
) -> None:
    for path in _pages(application, open_campaign):
        response = client.get(path)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/login")
    for role in (Role.shopper, Role.reviewer, Role.jury):
        client.cookies.clear()
        login(client, make_user(session, role))
        for path in _pages(application, open_campaign):
            assert client.get(path).status_code == 403, f"{role} {path}"


def test_only_registered_candidates_of_an_existing_campaign_have_posters(
    application: FastAPI, client: TestClient, session: Session, open_campaign: Campaign
) -> None:
    _sign_in(client, session, Role.admin)
    outsider = session.exec(
        select(Authority).where(col(Authority.code).not_in(OPEN_CANDIDATES))
    ).first()
    assert outsider is not None
    for path in _pages(application, open_campaign, outsider.code):
        response = client.get(path)
        assert response.status_code == 404, path
        assert "is not a candidate of the 2030 campaign" in response.text
    missing = application.url_path_for("poster", campaign_id=999_999, code="69123")
    assert client.get(missing).status_code == 404

    withdraw_candidate(session, campaign=open_campaign, code="75056", actor=None)
    session.commit()
    assert client.get(_url(application, "poster", open_campaign, "75056")).status_code == 404


def test_a_closed_campaign_has_no_posters(
    application: FastAPI, client: TestClient, session: Session, open_campaign: Campaign
) -> None:
    transition(session, campaign=open_campaign, to_state="closed", actor=None)
    session.commit()
    _sign_in(client, session, Role.admin)
    for path in _pages(application, open_campaign):
        response = client.get(path)
        assert response.status_code == 409, path
        assert "draft or open" in response.text


def test_the_pdf_fetcher_reads_static_files_only() -> None:
    fetcher = service.StaticFilesOnly()
    css = fetcher.fetch((service.STATIC_DIR / "css" / "poster.css").as_uri())
    assert b"@page" in css.read()
    for url in (
        "file:///etc/passwd",
        "http://example.org/x.css",
        service.STATIC_DIR.as_uri() + "/../pyproject.toml",
    ):
        try:
            fetcher.fetch(url)
        except ValueError:
            continue
        raise AssertionError(f"fetched {url}")
