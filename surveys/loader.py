"""Loading instrument definitions (YAML, JSON, XLSForm) and their canonical form.

Every refusal is a :class:`~surveys.errors.DefinitionError` listing each problem with the file,
the line (YAML), the path inside the instrument (``section/item/field``) and the reason.

YAML is read with YAML 1.2 booleans (only ``true``/``false``: the choice value ``no`` stays the
text ``"no"``), no implicit dates, and duplicate mapping keys refused.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple

import yaml
from pydantic import ValidationError

from surveys.errors import DefinitionError, DefinitionProblem
from surveys.schema import Instrument, SchemaProblems

__all__ = [
    "Where",
    "canonical_json",
    "default_instruments",
    "instrument_from_dict",
    "instrument_from_yaml",
    "instrument_sha256",
    "load_instrument",
    "problems_from_validation",
]

Loc = tuple[str | int, ...]


class Where(NamedTuple):
    """Where a value sits in its file: YAML line and column, or spreadsheet row and column."""

    line: int
    column: int | str | None = None
    sheet: str | None = None


_BOOL = "tag:yaml.org,2002:bool"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"


class _DuplicateKeyError(yaml.MarkedYAMLError):
    pass


class _Yaml12Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans, no implicit timestamps, no duplicate keys."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
            except TypeError:
                continue  # unhashable keys are refused by the base constructor
            if duplicate:
                raise _DuplicateKeyError(
                    "while reading a mapping",
                    node.start_mark,
                    f"duplicate key {key!r}",
                    key_node.start_mark,
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in (_BOOL, _TIMESTAMP)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Yaml12Loader.add_implicit_resolver(
    _BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _read_yaml(text: str, file: str | None) -> tuple[Any, dict[Loc, Where]]:
    loader = _Yaml12Loader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        reason = getattr(error, "problem", None) or str(error)
        raise DefinitionError(
            [
                DefinitionProblem(
                    path="",
                    message=f"not valid YAML: {reason}",
                    code="syntax",
                    file=file,
                    line=mark.line + 1 if mark else None,
                    column=mark.column + 1 if mark else None,
                )
            ]
        ) from None
    finally:
        loader.dispose()
    lines: dict[Loc, Where] = {}
    if node is not None:
        _map_lines(node, (), lines)
    return data, lines


def _map_lines(node: yaml.Node, loc: Loc, lines: dict[Loc, Where]) -> None:
    lines[loc] = Where(node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if key is None:
                continue
            _map_lines(value_node, (*loc, key), lines)
            # point at the key, which is where people look for a field
            lines[(*loc, key)] = Where(key_node.start_mark.line + 1, key_node.start_mark.column + 1)
    elif isinstance(node, yaml.SequenceNode):
        for index, child in enumerate(node.value):
            _map_lines(child, (*loc, index), lines)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _read_json(text: str, file: str | None) -> Any:
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as error:
        problem = DefinitionProblem(
            "", f"not valid JSON: {error.msg}", "syntax", file, error.lineno, error.colno
        )
        raise DefinitionError([problem]) from None
    except ValueError as error:
        raise DefinitionError([DefinitionProblem("", str(error), "duplicate_key", file)]) from None


# --------------------------------------------------------------------------- problems


def display_path(loc: Loc, data: Any) -> str:
    """``('sections', 0, 'items', 2, 'weight')`` → ``accueil/attente/weight`` using keys."""
    parts: list[str] = []
    node = data
    index = 0
    while index < len(loc):
        part = loc[index]
        child_index = loc[index + 1] if index + 1 < len(loc) else None
        if part in ("sections", "items", "themes") and isinstance(child_index, int):
            element = _child(_child(node, part), child_index)
            key = element.get("key") if isinstance(element, Mapping) else None
            if not (isinstance(key, str) and key):
                parts.append(f"{part}[{child_index}]")
            else:
                parts += ["themes", key] if part == "themes" else [key]
            node = element
            index += 2
            continue
        parts.append(str(part))
        node = _child(node, part)
        index += 1
    return "/".join(parts)


def _child(node: Any, part: str | int) -> Any:
    if isinstance(node, Mapping):
        return node.get(part)
    if isinstance(node, list | tuple) and isinstance(part, int) and 0 <= part < len(node):
        return node[part]
    return None


_CODES = {
    "extra_forbidden": "unknown_field",
    "too_short": "empty",
    "literal_error": "invalid_value",
    "string_pattern_mismatch": "invalid_key",
}
_UNION_MEMBERS = {"str", "int", "float", "bool", "function-after[_check_key(), str]"}


def problems_from_validation(
    error: ValidationError,
    data: Any,
    *,
    file: str | None = None,
    lines: Mapping[Loc, Where] | None = None,
    base: Loc = (),
) -> list[DefinitionProblem]:
    """Turn a pydantic ``ValidationError`` on ``data`` into located definition problems."""
    found: list[tuple[Loc, str, str]] = []
    details = error.errors()
    failed = [tuple(detail["loc"]) for detail in details]
    for detail in details:
        raw_loc = tuple(detail["loc"])
        if detail["type"] == "too_short" and any(
            len(other) > len(raw_loc) and other[: len(raw_loc)] == raw_loc for other in failed
        ):
            continue  # pydantic also calls a list too short when its elements failed
        loc: Loc = tuple(part for part in raw_loc if part not in _UNION_MEMBERS)
        cause = (detail.get("ctx") or {}).get("error")
        if isinstance(cause, SchemaProblems):
            found += [((*loc, *where), code, message) for where, code, message in cause.problems]
            continue
        kind = detail["type"]
        if kind == "missing":
            code = "missing_translation" if loc and loc[-1] in ("fr", "en") else "missing_field"
            message = "missing translation" if code == "missing_translation" else "missing field"
        elif kind == "greater_than_equal" and loc and loc[-1] == "weight":
            code, message = "negative_weight", f"negative weight {detail.get('input')!r}"
        else:
            code, message = _CODES.get(kind, kind), detail["msg"]
        found.append((loc, code, message))
    problems: list[DefinitionProblem] = []
    seen: set[tuple[str, str]] = set()
    for loc, code, message in found:
        path = display_path((*base, *loc), data)
        if (path, code) in seen:
            continue  # one union type fails once per member
        seen.add((path, code))
        where = _locate((*base, *loc), lines or {})
        problems.append(
            DefinitionProblem(
                path,
                message,
                code,
                file,
                where.line if where else None,
                where.column if where else None,
                where.sheet if where else None,
            )
        )
    return problems


def _locate(loc: Loc, lines: Mapping[Loc, Where]) -> Where | None:
    """The position of ``loc``, or of its closest enclosing value that has one."""
    for cut in range(len(loc), -1, -1):
        where = lines.get(loc[:cut])
        if where is not None:
            return where
    return None


# --------------------------------------------------------------------------- loading


def instrument_from_dict(
    data: Any,
    *,
    file: str | None = None,
    lines: Mapping[Loc, Where] | None = None,
) -> Instrument:
    """Validate a definition already parsed into Python data (e.g. stored JSON content)."""
    if not isinstance(data, Mapping):
        kind = type(data).__name__
        raise DefinitionError(
            [DefinitionProblem("", f"a definition is a mapping, not {kind}", "invalid", file)]
        )
    try:
        return Instrument.model_validate(data)
    except ValidationError as error:
        raise DefinitionError(
            problems_from_validation(error, data, file=file, lines=lines)
        ) from None


def load_instrument(path: str | Path) -> Instrument:
    """Load and validate a definition from ``.yaml``/``.yml``, ``.json`` or ``.xlsx`` (XLSForm)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".xlsx":
        from surveys.xlsform import from_xlsform

        return from_xlsform(path)
    text = path.read_text(encoding="utf-8")
    if suffix in (".yaml", ".yml"):
        data, lines = _read_yaml(text, path.name)
        return instrument_from_dict(data, file=path.name, lines=lines)
    if suffix == ".json":
        return instrument_from_dict(_read_json(text, path.name), file=path.name)
    raise DefinitionError(
        [DefinitionProblem("", f"unknown format {suffix!r}: use .yaml, .json or .xlsx", "format")]
    )


def instrument_from_yaml(text: str, *, file: str | None = None) -> Instrument:
    """Validate a YAML definition given as text (errors carry lines)."""
    data, lines = _read_yaml(text, file)
    return instrument_from_dict(data, file=file, lines=lines)


@cache
def _defaults() -> dict[str, Instrument]:
    found: dict[str, Instrument] = {}
    folder = resources.files("surveys") / "definitions"
    for entry in sorted(folder.iterdir(), key=lambda entry: entry.name):
        if not entry.name.endswith((".yaml", ".yml")):
            continue
        instrument = instrument_from_yaml(entry.read_text(encoding="utf-8"), file=entry.name)
        if instrument.key in found:
            problem = DefinitionProblem("key", f"{instrument.key!r} defined twice", "duplicate_key")
            raise DefinitionError([problem])
        found[instrument.key] = instrument
    return found


def default_instruments() -> dict[str, Instrument]:
    """The shipped definitions (``surveys/definitions``): instrument key → instrument."""
    return dict(_defaults())


# --------------------------------------------------------------------------- canonical form


def canonical_json(instrument: Instrument) -> str:
    """Deterministic JSON of a definition: sorted keys, no spaces, defaults left out.

    Two definitions with the same meaning give the same text whatever their source format
    (YAML, JSON, XLSForm); :func:`instrument_from_dict` on ``json.loads`` of it gives the
    instrument back. Default values are left out so that a field added later with a default
    does not change the hash of existing versions.
    """
    content = instrument.model_dump(mode="json", exclude_defaults=True)
    return json.dumps(
        content, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False
    )


def instrument_sha256(instrument: Instrument) -> str:
    """Hex sha256 of :func:`canonical_json`: the identity of a published version."""
    return hashlib.sha256(canonical_json(instrument).encode("utf-8")).hexdigest()
