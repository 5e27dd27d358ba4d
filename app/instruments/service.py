"""Publishing instruments: identical content is the same version, changed content the next."""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlmodel import Session

import surveys
from app.accounts.models import User
from app.audit.models import record_audit
from app.core.cache import BoundedCache
from app.core.db import row_id
from app.core.errors import NotFound
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
