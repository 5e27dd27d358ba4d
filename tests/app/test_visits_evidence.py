"""Evidence: sniffed types, size limit, metadata removed, replays, and who may download it."""

from __future__ import annotations

import hashlib
import io
import uuid

from fastapi.testclient import TestClient
from PIL import Image
from sqlmodel import Session, select

from app.accounts.models import Role, User
from app.campaigns.models import Campaign
from app.core.config import Settings
from app.missions.models import Mission, VisitEvidence
from app.visits.evidence import MAX_EVIDENCE_BYTES
from tests.app.test_visits import body, post_visit
from tests.conftest import login, make_user
from tests.support.visits import make_mission

GPS_IFD = 0x8825


def jpeg_with_exif() -> bytes:
    image = Image.new("RGB", (64, 48), (200, 30, 30))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x0110] = "Model X"  # Model
    exif[0x0131] = "Camera 1.0"  # Software
    exif[0x0112] = 6  # Orientation: rotate 90° on display
    exif.get_ifd(GPS_IFD)[2] = (45.0, 45.0, 0.0)  # GPSLatitude
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif.tobytes(), comment=b"secret comment")
    data = buffer.getvalue()
    assert dict(Image.open(io.BytesIO(data)).getexif())  # the fixture really carries EXIF
    return data


def png_with_metadata() -> bytes:
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "Jeanne Dupont")
    image = Image.new("RGBA", (20, 20), (0, 128, 0, 255))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    buffer = io.BytesIO()
    image.save(buffer, "PNG", pnginfo=info, exif=exif.tobytes())
    return buffer.getvalue()


PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def upload(
    client: TestClient,
    token: str,
    mission: Mission,
    data: bytes,
    *,
    evidence_id: uuid.UUID | None = None,
    name: str = "photo.jpg",
    content_type: str = "image/jpeg",
):
    return client.post(
        f"/api/v1/missions/{mission.id}/evidence",
        data={"id": str(evidence_id or uuid.uuid4())},
        files={"file": (name, data, content_type)},
        headers={"X-CSRF-Token": token},
    )


def stored_file(
    settings: Settings, session: Session, evidence_id: str
) -> tuple[VisitEvidence, bytes]:
    session.expire_all()
    row = session.get(VisitEvidence, uuid.UUID(evidence_id))
    assert row is not None
    assert settings.evidence_dir is not None
    return row, (settings.evidence_dir / row.storage_path).read_bytes()


def test_stored_jpeg_has_no_exif_and_replay_is_harmless(
    registry: Session,
    settings: Settings,
    mission: Mission,
    shopper_client: tuple[TestClient, str],
) -> None:
    client, token = shopper_client
    original = jpeg_with_exif()
    evidence_id = uuid.uuid4()
    response = upload(client, token, mission, original, evidence_id=evidence_id)
    assert response.status_code == 201, response.text
    assert response.json()["media_type"] == "image/jpeg"

    row, content = stored_file(settings, registry, str(evidence_id))
    stored = Image.open(io.BytesIO(content))
    assert stored.format == "JPEG"
    assert dict(stored.getexif()) == {}
    assert "exif" not in stored.info and "comment" not in stored.info
    assert b"PhoneMaker" not in content and b"secret comment" not in content
    assert stored.size == (48, 64)  # the orientation was applied to the pixels, then dropped
    assert row.size_bytes == len(content) and row.original_name == "photo.jpg"
    assert row.storage_path == f"{mission.id}/{evidence_id}-{row.sha256[:16]}.jpg"
    assert row.sha256 == hashlib.sha256(content).hexdigest()

    replay = upload(client, token, mission, original, evidence_id=evidence_id)
    assert replay.status_code == 200 and replay.json() == response.json()
    other = upload(client, token, mission, png_with_metadata(), evidence_id=evidence_id)
    assert other.status_code == 409
    assert len(registry.exec(select(VisitEvidence)).all()) == 1


def test_png_loses_text_and_exif_and_pdf_is_kept_as_is(
    registry: Session,
    settings: Settings,
    mission: Mission,
    shopper_client: tuple[TestClient, str],
) -> None:
    client, token = shopper_client
    png = upload(
        client, token, mission, png_with_metadata(), name="x.png", content_type="image/png"
    )
    assert png.status_code == 201, png.text
    _row, content = stored_file(settings, registry, png.json()["id"])
    stored = Image.open(io.BytesIO(content))
    assert dict(stored.getexif()) == {} and "exif" not in stored.info
    assert "Author" not in stored.info and b"Jeanne" not in content

    pdf = upload(client, token, mission, PDF, name="recu.pdf", content_type="application/pdf")
    assert pdf.status_code == 201
    row, content = stored_file(settings, registry, pdf.json()["id"])
    assert content == PDF and row.media_type == "application/pdf"


def test_wrong_type_and_too_large_are_refused_with_a_clear_message(
    registry: Session, mission: Mission, shopper_client: tuple[TestClient, str]
) -> None:
    client, token = shopper_client
    # Declared as a JPEG, really an HTML page: the bytes decide.
    html = upload(client, token, mission, b"<html><script>alert(1)</script></html>")
    assert html.status_code == 422
    assert html.json()["field"] == "file"
    assert "JPEG, PNG or WebP image, or a PDF" in html.json()["detail"]

    gif = upload(client, token, mission, b"GIF89a" + b"\x00" * 100, content_type="image/gif")
    assert gif.status_code == 422

    fake = upload(client, token, mission, b"\xff\xd8\xff" + b"not really a jpeg" * 10)
    assert fake.status_code == 422 and "cannot be read" in fake.json()["detail"]

    huge = upload(client, token, mission, b"\xff\xd8\xff" + b"\x00" * MAX_EVIDENCE_BYTES)
    assert huge.status_code == 413
    assert huge.json()["field"] == "file" and "10 MB" in huge.json()["detail"]
    assert registry.exec(select(VisitEvidence)).all() == []


def test_form_upload_without_js(
    registry: Session, mission: Mission, shopper_client: tuple[TestClient, str]
) -> None:
    client, token = shopper_client
    url = f"/me/missions/{mission.id}/evidence"
    ok = client.post(
        url,
        data={"csrf_token": token, "evidence_id": str(uuid.uuid4())},
        files={"file": ("photo.jpg", jpeg_with_exif(), "image/jpeg")},
    )
    assert ok.status_code == 303
    page = client.get(f"/me/missions/{mission.id}/report")
    assert "photo.jpg" in page.text and 'name="evidence"' in page.text
    bad = client.post(
        url,
        data={"csrf_token": token, "evidence_id": str(uuid.uuid4())},
        files={"file": ("notes.txt", b"hello", "text/plain")},
    )
    assert bad.status_code == 422
    assert 'id="error-file"' in bad.text and "This kind of file is not accepted" in bad.text


def test_download_by_uploader_and_reviewers_only(
    registry: Session,
    open_campaign: Campaign,
    mission: Mission,
    shopper_client: tuple[TestClient, str],
) -> None:
    client, token = shopper_client
    evidence_id = upload(client, token, mission, jpeg_with_exif()).json()["id"]
    url = f"/evidence/{evidence_id}"
    mine = client.get(url)
    assert mine.status_code == 200
    assert mine.headers["content-type"] == "image/jpeg"
    assert (
        mine.headers["content-disposition"] == f'attachment; filename="evidence-{evidence_id}.jpg"'
    )
    assert mine.headers["x-content-type-options"] == "nosniff"
    client.post("/logout", data={"csrf_token": token})

    other = make_user(registry, Role.shopper)
    token = login(client, other)
    assert client.get(url).status_code == 404
    assert upload(client, token, mission, jpeg_with_exif()).status_code == 404
    client.post("/logout", data={"csrf_token": token})

    token = login(client, make_user(registry, Role.authority, authority_code="69123"))
    assert client.get(url).status_code == 403
    client.post("/logout", data={"csrf_token": token})

    # The jury sees proofs only of approved visits: this one is not even cited by a visit.
    token = login(client, make_user(registry, Role.jury))
    assert client.get(url).status_code == 404
    client.post("/logout", data={"csrf_token": token})

    login(client, make_user(registry, Role.reviewer))
    assert client.get(url).status_code == 200


def test_report_cites_evidence_of_its_own_mission_only(
    registry: Session,
    open_campaign: Campaign,
    shopper: User,
    mission: Mission,
    shopper_client: tuple[TestClient, str],
) -> None:
    client, token = shopper_client
    second = make_mission(registry, open_campaign, shopper, code="01001")
    foreign = upload(client, token, second, PDF).json()["id"]
    refused = post_visit(client, token, body(mission, evidence=[foreign]))
    assert refused.status_code == 422 and refused.json()["field"] == "evidence"

    proof = upload(client, token, mission, PDF).json()["id"]
    data = body(mission, evidence=[proof])
    accepted = post_visit(client, token, data)
    assert accepted.status_code == 201
    registry.expire_all()
    row = registry.get(VisitEvidence, uuid.UUID(proof))
    assert row is not None and str(row.visit_id) == data["id"]


def test_concurrent_replays_of_one_upload_store_one_row(
    registry: Session, mission: Mission, shopper_client: tuple[TestClient, str]
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    client, token = shopper_client
    original = jpeg_with_exif()
    evidence_id = uuid.uuid4()
    with ThreadPoolExecutor(max_workers=10) as pool:
        statuses = list(
            pool.map(
                lambda _: (
                    upload(client, token, mission, original, evidence_id=evidence_id).status_code
                ),
                range(10),
            )
        )
    assert statuses.count(201) == 1 and set(statuses) == {200, 201}, statuses
    registry.expire_all()
    assert len(registry.exec(select(VisitEvidence)).all()) == 1
