"""Publishing instruments: identical content is the same version, changed content the next."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass

import yaml
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlmodel import Session

import surveys
from app.accounts.models import User
from app.audit.models import record_audit
from app.core.cache import BoundedCache
from app.core.db import row_id
from app.core.errors import InvalidInput, NotFound
from app.core.i18n import _
from app.instruments import repository
from app.instruments.models import InstrumentVersion


@dataclass(frozen=True)
class Publication:
    version: InstrumentVersion
    created: bool


def publish(session: Session, *, instrument: surveys.Instrument, actor: User | None) -> Publication:
    sha256 = surveys.instrument_sha256(instrument)
    existing = repository.by_key_and_sha(session, instrument.key, sha256)
    if existing is not None:
        return Publication(version=existing, created=False)
    row = InstrumentVersion(
        key=instrument.key,
        version=repository.latest_number(session, instrument.key) + 1,
        definition_version=str(instrument.version),
        kind=str(instrument.kind),
        channel=str(instrument.channel) if instrument.channel else None,
        title_fr=instrument.title.fr,
        title_en=instrument.title.en,
        content=json.loads(surveys.canonical_json(instrument)),
        sha256=sha256,
        published_by_id=actor.id if actor else None,
    )
    session.add(row)
    session.flush()
    record_audit(
        session,
        actor=actor,
        action="instrument.publish",
        object_type="instrument_version",
        object_id=row.id,
        after={"key": row.key, "version": row.version, "sha256": sha256},
    )
    return Publication(version=row, created=True)


def load_published(version: InstrumentVersion) -> surveys.Instrument:
    """The instrument exactly as published (what answers stored against it were checked with)."""
    return _PARSED.get_or_load(
        (row_id(version), version.sha256),
        lambda: surveys.instrument_from_dict(version.content),
    )


# Never invalidated: a published version is immutable (a trigger refuses changes), and the key
# holds its content hash as well as its id, so a test database whose ids restart cannot serve
# another instrument under the same key. Parsed instruments are shared: nobody writes to them.
_PARSED: BoundedCache[tuple[int, str], surveys.Instrument] = BoundedCache(
    "parsed_instruments", max_entries=256
)


def get_version(session: Session, *, version_id: int) -> InstrumentVersion:
    version = repository.get(session, version_id)
    if version is None:
        raise NotFound(_("No published instrument with id %(id)d.") % {"id": version_id})
    return version


# --------------------------------------------------------------------------- uploads

#: An XLSForm is a few tens of kB; 1 MB leaves room for media-free workbooks with many lists.
MAX_XLSFORM_BYTES = 1024 * 1024
#: How long an uploaded workbook may wait on its preview page before it must be uploaded again.
PENDING_MAX_AGE_SECONDS = 2 * 3600
_PENDING_SALT = "instruments.pending-upload"
_ZIP_MAGIC = b"PK\x03\x04"


@dataclass(frozen=True)
class UploadPreview:
    """A parsed workbook waiting for "publish": what it would become, and its warnings."""

    reading: surveys.XLSFormReading
    filename: str
    #: The version already holding exactly this content, if any (publishing would add nothing).
    duplicate_of: InstrumentVersion | None
    #: The number it would be published as.
    next_number: int


def check_upload(*, filename: str, content: bytes) -> None:
    """Refuse what is not an .xlsx workbook of a sensible size before parsing it."""
    if not filename.lower().endswith(".xlsx"):
        raise InvalidInput(
            _("Choose an XLSForm workbook saved as .xlsx (Excel, LibreOffice, Kobo or ODK)."),
            field="file",
        )
    if len(content) > MAX_XLSFORM_BYTES:
        raise InvalidInput(_("The workbook is larger than 1 MB."), field="file")
    if not content.startswith(_ZIP_MAGIC):
        raise InvalidInput(_("The file is not an .xlsx workbook."), field="file")


def read_upload(session: Session, *, filename: str, content: bytes) -> UploadPreview:
    """Parse an uploaded XLSForm; :class:`surveys.XLSFormError` lists what refuses it.

    Nothing is stored: the preview page carries the parsed instrument in a signed field.
    """
    check_upload(filename=filename, content=content)
    reading = surveys.read_xlsform(io.BytesIO(content), file=filename)
    instrument = reading.instrument
    duplicate = repository.by_key_and_sha(
        session, instrument.key, surveys.instrument_sha256(instrument)
    )
    return UploadPreview(
        reading=reading,
        filename=filename,
        duplicate_of=duplicate,
        next_number=repository.latest_number(session, instrument.key) + 1,
    )


# Why a signed field and not a table of pending uploads: the app is stateless (several workers,
# several hosts), a table would need a migration, an expiry sweep and a place to keep files;
# the parsed instrument is small (a few kB compressed) and the signature, bound to the admin
# who uploaded it and to an expiry, means the page can only hand back what this server read.
# It is validated again when published.
def _pending_serializer(secret_key: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt=_PENDING_SALT)


def seal_pending(instrument: surveys.Instrument, *, secret_key: str, user_id: int) -> str:
    """The signed, compressed form of a parsed upload, for the preview page's hidden field."""
    payload = {"user": user_id, "content": json.loads(surveys.canonical_json(instrument))}
    return str(_pending_serializer(secret_key).dumps(payload))


def open_pending(token: str, *, secret_key: str, user_id: int) -> surveys.Instrument:
    """The instrument sealed by :func:`seal_pending` for this user, if still fresh."""
    try:
        payload = _pending_serializer(secret_key).loads(token, max_age=PENDING_MAX_AGE_SECONDS)
    except SignatureExpired:
        raise InvalidInput(
            _("This upload has expired: upload the workbook again."), field="file"
        ) from None
    except BadSignature:
        raise InvalidInput(
            _("This upload could not be read: upload it again."), field="file"
        ) from None
    if not isinstance(payload, dict) or payload.get("user") != user_id:
        raise InvalidInput(_("This upload could not be read: upload it again."), field="file")
    return surveys.instrument_from_dict(payload.get("content"))


def publish_defaults(session: Session, *, actor: User | None) -> list[Publication]:
    """Publish every shipped definition (unchanged ones stay at their current version)."""
    return [
        publish(session, instrument=instrument, actor=actor)
        for instrument in surveys.default_instruments().values()
    ]


# --------------------------------------------------------------------------- downloads


@dataclass(frozen=True)
class Download:
    filename: str
    media_type: str
    body: bytes


XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def download(version: InstrumentVersion, *, fmt: str) -> Download:
    """A published version as XLSForm (``xlsx``), YAML or JSON."""
    instrument = load_published(version)
    stem = f"{version.key}-v{version.version}"
    if fmt == "xlsx":
        buffer = io.BytesIO()
        surveys.to_xlsform(instrument, buffer)
        return Download(f"{stem}.xlsx", XLSX_MEDIA_TYPE, buffer.getvalue())
    content = json.loads(surveys.canonical_json(instrument))
    if fmt == "yaml":
        text = yaml.safe_dump(content, allow_unicode=True, sort_keys=False, width=100)
        return Download(f"{stem}.yaml", "application/yaml; charset=utf-8", text.encode())
    text = json.dumps(content, ensure_ascii=False, indent=2, sort_keys=True) + "\n"
    return Download(f"{stem}.json", "application/json; charset=utf-8", text.encode())


# --------------------------------------------------------------------------- pinning


@dataclass(frozen=True)
class DraftCampaign:
    id: int
    year: int
    name: str
    #: The version of this instrument key the campaign pins today, if any.
    pinned_version_id: int | None


def draft_campaigns(session: Session, *, key: str) -> list[DraftCampaign]:
    """Campaigns still in draft (the only ones that take pins), with their pin of ``key``."""
    return [
        DraftCampaign(id=row[0], year=row[1], name=row[2], pinned_version_id=row[3])
        for row in repository.draft_campaigns_with_pin(session, key)
    ]
