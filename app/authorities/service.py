"""Importing and searching the registry of authorities."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlmodel import Session

from app.authorities import repository
from app.authorities.models import Authority
from app.authorities.schemas import REGISTRY_COLUMNS, ImportReport, RegistryRow
from app.core.errors import InvalidInput, NotFound, refuse_file
from app.core.i18n import _
from app.core.text import search_key

# The registry shipped with the app: every French local authority with its population.
BUNDLED_REGISTRY = Path(__file__).resolve().parents[1] / "data" / "collectivites.csv"
PAGE_SIZE = 20


def _describe(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        field = ".".join(str(part) for part in item["loc"]) or "line"
        parts.append(f"{field}: {item['msg']}")
    return "; ".join(parts)


def parse_registry(text: str) -> list[RegistryRow]:
    """Parse and validate the whole file first: a single bad line refuses the whole import."""
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None:
        raise InvalidInput(_("The registry file is empty."))
    header = [name.strip().lstrip("\ufeff") for name in header]
    missing = [name for name in REGISTRY_COLUMNS if name not in header]
    if missing:
        raise InvalidInput(
            _("Line 1: missing column(s) %(columns)s.") % {"columns": ", ".join(missing)}
        )
    positions = {name: header.index(name) for name in REGISTRY_COLUMNS}
    rows: list[RegistryRow] = []
    errors: list[str] = []
    seen: dict[str, int] = {}
    for line_number, fields in enumerate(reader, start=2):
        if not fields or all(not value.strip() for value in fields):
            continue
        if len(fields) != len(header):
            errors.append(
                _("Line %(line)d: expected %(expected)d fields, found %(found)d.")
                % {"line": line_number, "expected": len(header), "found": len(fields)}
            )
            continue
        raw = {name: fields[position] for name, position in positions.items()}
        try:
            row = RegistryRow.model_validate(raw)
        except ValidationError as exc:
            errors.append(
                _("Line %(line)d: %(problem)s") % {"line": line_number, "problem": _describe(exc)}
            )
            continue
        if row.code in seen:
            errors.append(
                _("Line %(line)d: code %(code)s already appears on line %(first)d.")
                % {"line": line_number, "code": row.code, "first": seen[row.code]}
            )
            continue
        seen[row.code] = line_number
        rows.append(row)
    refuse_file(errors)
    return rows


def _as_columns(row: RegistryRow) -> dict[str, Any]:
    return {
        "code": row.code,
        "siren": row.siren,
        "name": row.name,
        "search_name": search_key(row.name),
        "kind": row.kind.value,
        "population": row.population,
        "departement": row.departement,
        "region": row.region,
        "parent_code": row.epci,
    }


def import_registry(session: Session, *, text: str) -> ImportReport:
    """Insert new authorities and update changed ones; identical rows are left untouched."""
    rows = parse_registry(text)
    existing = repository.snapshot(session)
    to_insert: list[dict[str, Any]] = []
    to_update: list[dict[str, Any]] = []
    for row in rows:
        values = _as_columns(row)
        current = existing.get(row.code)
        if current is None:
            to_insert.append(values)
        elif current != tuple(values[name] for name in repository.COMPARED_COLUMNS):
            to_update.append(values)
    repository.insert_many(session, to_insert)
    repository.update_many(session, to_update)
    session.flush()
    file_codes = {row.code for row in rows}
    return ImportReport(
        created=len(to_insert),
        updated=len(to_update),
        unchanged=len(rows) - len(to_insert) - len(to_update),
        absent_from_file=sum(1 for code in existing if code not in file_codes),
    )


def import_registry_file(session: Session, *, path: Path) -> ImportReport:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            _("The file is not UTF-8 text (byte %(position)d).") % {"position": exc.start}
        ) from exc
    return import_registry(session, text=text)


def get_authority(session: Session, *, code: str) -> Authority:
    authority = repository.get(session, code)
    if authority is None:
        raise NotFound(_("No authority with code %(code)s.") % {"code": code})
    return authority


def search_authorities(
    session: Session, *, query: str, kind: str | None, page: int
) -> tuple[list[Authority], int]:
    page = max(page, 1)
    return repository.search(
        session, query=query, kind=kind, offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE
    )
