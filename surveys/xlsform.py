"""XLSForm import and export.

The workbook follows XLSForm (https://xlsform.org): sheets ``survey``, ``choices`` and
``settings``, translated columns ``label::fr`` / ``label::en`` (``label::French (fr)`` is read
too), ``hint``, ``required``, ``relevant``, ``constraint``, ``constraint_message``; each section
is a ``begin_group`` … ``end_group``. What XLSForm cannot say travels in extra columns, which
XLSForm tools ignore:

``survey``
    ``item_type`` (the instrument's item type, e.g. ``likert5``), ``weight``, ``theme``,
    ``threshold`` (full credit) and ``threshold_partial``, ``knockout`` (failing values such as
    ``no``, or ``> 30``, ``> 2 months``, ``> 60 calendar_days``), ``min``, ``max``,
    ``max_length``, ``role``, ``scored`` (groups), ``redact_contacts``, ``source``.
    A delay is a ``calculate`` row whose ``calculation`` is ``working_days(${start}, ${end})``.
``choices``
    ``score`` and ``missing`` (a choice that counts as no answer).
``settings``
    ``form_id`` (the key), ``version``, ``form_title`` (French) and ``form_title::en``,
    ``introduction::fr``/``::en``, ``kind``, ``channel``, ``source``.
``themes`` (extra sheet)
    ``name``, ``label::fr``, ``label::en``, ``source``.

Without ``item_type``, ``select_one`` reads as ``choice_one``, ``select_multiple`` as
``choice_many``, ``integer`` as ``count``; ``text``, ``date`` and ``note`` as themselves.
Questions outside any group form a section of their own; without a ``scored`` column, a group
whose questions carry no weight is not scored. Metadata rows (``start``, ``end``,
``today``, ``deviceid``…) are skipped and ``appearance`` is ignored (presentation only).
Anything else — repeats, nested groups, ``or_other``, other question types, other languages,
unknown sheets or non-empty unknown columns — is refused with its sheet, row and column.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from openpyxl import Workbook, load_workbook
from openpyxl.utils import get_column_letter

from surveys.errors import DefinitionError, DefinitionProblem, XLSFormError
from surveys.loader import Loc, Where, instrument_from_dict
from surveys.schema import SCALE_TYPES, Instrument, Item, LocalizedText, default_options, option_key

__all__ = ["XLSFormReading", "from_xlsform", "read_xlsform", "to_xlsform"]

LANGUAGES = ("fr", "en")

SURVEY_COLUMNS = (
    "type",
    "name",
    "label::fr",
    "label::en",
    "hint::fr",
    "hint::en",
    "required",
    "relevant",
    "constraint",
    "constraint_message::fr",
    "constraint_message::en",
    "calculation",
    "item_type",
    "weight",
    "theme",
    "threshold",
    "threshold_partial",
    "knockout",
    "min",
    "max",
    "max_length",
    "role",
    "scored",
    "redact_contacts",
    "source",
)
CHOICES_COLUMNS = ("list_name", "name", "label::fr", "label::en", "score", "missing")
SETTINGS_COLUMNS = (
    "form_id",
    "version",
    "form_title",
    "form_title::en",
    "introduction::fr",
    "introduction::en",
    "kind",
    "channel",
    "source",
)
THEMES_COLUMNS = ("name", "label::fr", "label::en", "source")

_TRANSLATED = {
    "survey": {"label", "hint", "constraint_message"},
    "choices": {"label"},
    "settings": {"form_title", "introduction"},
    "themes": {"label"},
}
_PLAIN = {
    "survey": {column for column in SURVEY_COLUMNS if "::" not in column} - {"label", "hint"},
    "choices": {"list_name", "name", "score", "missing"},
    "settings": {"form_id", "version", "kind", "channel", "source"},
    "themes": {"name", "source"},
}
#: Columns that only change presentation or deployment: read and ignored.
_IGNORED = {
    "survey": {"appearance"},
    "choices": set(),
    "settings": {"default_language", "style", "instance_name"},
    "themes": set(),
}
_METADATA_TYPES = {
    "start",
    "end",
    "today",
    "deviceid",
    "subscriberid",
    "simserial",
    "phonenumber",
    "username",
    "email",
    "audit",
}
_XLS_TYPE = {
    "choice_many": "select_multiple",
    "count": "integer",
    "duration": "decimal",
    "date": "date",
    "text": "text",
    "note": "note",
    "delay": "calculate",
}
_COMPATIBLE = {
    "select_one": SCALE_TYPES | {"choice_one"},
    "select_multiple": {"choice_many"},
    "integer": {"count", "duration"},
    "decimal": {"duration"},
    "date": {"date"},
    "text": {"text"},
    "note": {"note"},
    "calculate": {"delay"},
}
_INFERRED = {
    "select_one": "choice_one",
    "select_multiple": "choice_many",
    "integer": "count",
    "date": "date",
    "text": "text",
    "note": "note",
}
_DELAY = re.compile(
    r"^\s*working_days\(\s*\$\{([A-Za-z_][A-Za-z0-9_]*)\}\s*,\s*"
    r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}\s*\)\s*$"
)
_CHOICE_ITEMS = ("choice_one", "choice_many")
_TRUE = {"yes", "true", "true()", "1"}
_FALSE = {"no", "false", "false()", "0", ""}


# --------------------------------------------------------------------------- export


def _number(value: float | None) -> int | float | None:
    if value is None:
        return None
    return int(value) if float(value).is_integer() else value


def _knockout_text(item: Item) -> str | None:
    rule = item.knockout
    if rule is None:
        return None
    if rule.fail_if:
        return " ".join(option_key(value) for value in rule.fail_if)
    unit = "" if rule.unit == "working_days" else f" {rule.unit}"
    return f"> {option_key(_number(rule.above))}{unit}"


def _text_pair(text: LocalizedText | None, prefix: str) -> dict[str, str]:
    if text is None:
        return {}
    return {f"{prefix}::fr": text.fr, f"{prefix}::en": text.en}


def _survey_row(item: Item) -> dict[str, Any]:
    if item.type in SCALE_TYPES or item.type == "choice_one":
        xls_type = f"select_one {item.key}"
    elif item.type == "choice_many":
        xls_type = f"select_multiple {item.key}"
    else:
        xls_type = _XLS_TYPE[item.type]
    thresholds = item.thresholds
    row: dict[str, Any] = {
        "type": xls_type,
        "name": item.key,
        "label::fr": item.label.fr,
        "label::en": item.label.en,
        **_text_pair(item.help, "hint"),
        "required": "yes" if item.required else None,
        "relevant": item.relevant,
        "constraint": item.constraint,
        **_text_pair(item.constraint_message, "constraint_message"),
        "calculation": (
            f"working_days(${{{item.start}}}, ${{{item.end}}})" if item.type == "delay" else None
        ),
        "item_type": item.type,
        "weight": _number(item.weight) or None,
        "theme": item.theme,
        "threshold": _number(thresholds.full) if thresholds else None,
        "threshold_partial": _number(thresholds.partial) if thresholds else None,
        "knockout": _knockout_text(item),
        "min": _number(item.min),
        "max": _number(item.max),
        "max_length": item.max_length,
        "role": item.role,
        "redact_contacts": "yes" if item.redact_contacts else None,
        "source": item.source,
    }
    return row


def _write(sheet: Any, columns: Iterable[str], rows: Iterable[dict[str, Any]]) -> None:
    columns = list(columns)
    sheet.append(columns)
    for row in rows:
        sheet.append([row.get(column) for column in columns])
    for cells in sheet.iter_rows(min_row=2):
        for cell in cells:
            if isinstance(cell.value, str) and cell.value.startswith("="):
                cell.data_type = "s"  # text such as "= 'yes'" is not a spreadsheet formula


def to_xlsform(instrument: Instrument, path: str | Path | IO[bytes]) -> None:
    """Write ``instrument`` as an XLSForm workbook (``.xlsx``) to a path or binary file."""
    survey: list[dict[str, Any]] = []
    choices: list[dict[str, Any]] = []
    for section in instrument.sections:
        survey.append(
            {
                "type": "begin_group",
                "name": section.key,
                "label::fr": section.title.fr,
                "label::en": section.title.en,
                **_text_pair(section.help, "hint"),
                "relevant": section.relevant,
                "scored": None if section.scored else "no",
            }
        )
        for item in section.items:
            survey.append(_survey_row(item))
            for option in item.options:
                choices.append(
                    {
                        "list_name": item.key,
                        "name": option_key(option.value),
                        "label::fr": option.label.fr,
                        "label::en": option.label.en,
                        "score": _number(option.score),
                        "missing": "yes" if option.missing and item.type in _CHOICE_ITEMS else None,
                    }
                )
        survey.append({"type": "end_group"})
    settings = {
        "form_id": instrument.key,
        "version": instrument.version,
        "form_title": instrument.title.fr,
        "form_title::en": instrument.title.en,
        **_text_pair(instrument.introduction, "introduction"),
        "kind": instrument.kind,
        "channel": instrument.channel,
        "source": instrument.source,
    }
    themes = [
        {
            "name": theme.key,
            "label::fr": theme.label.fr,
            "label::en": theme.label.en,
            "source": theme.source,
        }
        for theme in instrument.themes
    ]
    workbook = Workbook()
    survey_sheet = workbook.active
    assert survey_sheet is not None
    survey_sheet.title = "survey"
    _write(survey_sheet, SURVEY_COLUMNS, survey)
    _write(workbook.create_sheet("choices"), CHOICES_COLUMNS, choices)
    _write(workbook.create_sheet("settings"), SETTINGS_COLUMNS, [settings])
    if themes:
        _write(workbook.create_sheet("themes"), THEMES_COLUMNS, themes)
    workbook.save(path)


# --------------------------------------------------------------------------- import


@dataclass
class _Row:
    number: int
    values: dict[str, Any]  # "label::fr", "weight", ...


@dataclass
class _Sheet:
    name: str
    columns: dict[str, str] = field(default_factory=dict)  # field → "F (weight)"
    rows: list[_Row] = field(default_factory=list)

    def where(self, row: _Row | int, column: str | None = None) -> Where:
        number = row.number if isinstance(row, _Row) else row
        return Where(number, self.columns.get(column) if column else None, self.name)


class _Reader:
    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[DefinitionProblem] = []

    def refuse(self, where: Where, message: str, code: str = "unsupported") -> None:
        self.problems.append(
            DefinitionProblem("", message, code, self.file, where.line, where.column, where.sheet)
        )

    # ------------------------------------------------------------------ cells

    def read_sheet(self, worksheet: Any, name: str) -> _Sheet:
        sheet = _Sheet(name)
        rows = worksheet.iter_rows(values_only=True)
        header = next(rows, None) or ()
        kept: dict[int, str] = {}
        unknown: dict[int, str] = {}
        for index, title in enumerate(header):
            text = _cell_text(title)
            if not text:
                continue
            column = f"{get_column_letter(index + 1)} ({text})"
            name_part, _, language = text.partition("::")
            name_part = name_part.strip().lower().replace(" ", "_")
            if name_part in _IGNORED[name]:
                continue
            if name_part in _TRANSLATED[name]:
                code = (
                    _language(language)
                    if language
                    else ("fr" if name_part == "form_title" else None)
                )
                if code is None:
                    unknown[index] = (
                        f"column {text!r}: give the language ({name_part}::fr, {name_part}::en)"
                        if not language
                        else f"column {text!r}: language {language!r} is not supported (fr, en)"
                    )
                    continue
                key = f"{name_part}::{code}"
            elif name_part in _PLAIN[name] and not language:
                key = name_part
            else:
                unknown[index] = f"column {text!r} is not supported on sheet {name!r}"
                continue
            if key in sheet.columns:
                self.refuse(
                    Where(1, column, name), f"column {text!r} appears twice", "duplicate_key"
                )
            kept[index] = key
            sheet.columns[key] = column
        reported: set[int] = set()
        for number, cells in enumerate(rows, start=2):
            values = {}
            for index, value in enumerate(cells):
                if value is None or (isinstance(value, str) and not value.strip()):
                    continue
                if index in kept:
                    values[kept[index]] = value.strip() if isinstance(value, str) else value
                elif index in unknown and index not in reported:
                    reported.add(index)
                    where = Where(number, f"{get_column_letter(index + 1)}", name)
                    self.refuse(where, unknown[index])
                elif index >= len(header) and index not in reported:
                    reported.add(index)
                    where = Where(number, get_column_letter(index + 1), name)
                    self.refuse(where, "a value in a column without a header")
            if values:
                sheet.rows.append(_Row(number, values))
        return sheet

    def text(self, row: _Row, column: str) -> str | None:
        value = row.values.get(column)
        return None if value is None else _cell_text(value)

    def number(self, sheet: _Sheet, row: _Row, column: str) -> float | None:
        value = row.values.get(column)
        if value is None:
            return None
        if isinstance(value, bool):
            self.refuse(sheet.where(row, column), f"{column}: expected a number", "invalid_value")
            return None
        if isinstance(value, int | float):
            return value
        try:
            return float(str(value).replace(",", "."))
        except ValueError:
            self.refuse(
                sheet.where(row, column), f"{column}: {value!r} is not a number", "invalid_value"
            )
            return None

    def flag(self, sheet: _Sheet, row: _Row, column: str) -> bool | None:
        value = row.values.get(column)
        if value is None:
            return None
        if isinstance(value, bool):
            return value
        text = _cell_text(value).lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        message = f"{column}: {value!r} is not yes/no"
        if column == "required":
            message += " (a conditional 'required' is not supported: use relevant)"
        self.refuse(sheet.where(row, column), message)
        return None

    def localized(self, row: _Row, prefix: str) -> dict[str, str] | None:
        found = {
            code: row.values[f"{prefix}::{code}"]
            for code in LANGUAGES
            if f"{prefix}::{code}" in row.values
        }
        return {code: _cell_text(text) for code, text in found.items()} or None


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return option_key(value)
    return str(value).strip()


def _language(text: str) -> str | None:
    text = text.strip()
    match = re.search(r"\(([A-Za-z]{2,3})\)\s*$", text)
    code = (match.group(1) if match else text).lower()
    aliases = {"french": "fr", "français": "fr", "francais": "fr", "english": "en", "anglais": "en"}
    code = aliases.get(code, code)
    return code if code in LANGUAGES else None


def _put(data: dict[str, Any], key: str, value: Any) -> None:
    if value is not None:
        data[key] = value


class _Import:
    def __init__(self, file: str) -> None:
        self.reader = _Reader(file)
        self.where: dict[Loc, Where] = {}
        self.choices_sheet: _Sheet | None = None

    def run(self, workbook: Any) -> dict[str, Any]:
        reader = self.reader
        sheets: dict[str, _Sheet] = {}
        for worksheet in workbook.worksheets:
            name = worksheet.title.strip().lower()
            if name not in _TRANSLATED:
                reader.refuse(
                    Where(1, "A", worksheet.title), f"sheet {worksheet.title!r} is not supported"
                )
                continue
            sheets[name] = reader.read_sheet(worksheet, name)
        if "survey" not in sheets:
            reader.refuse(
                Where(1, None, "survey"), "the workbook has no 'survey' sheet", "missing_field"
            )
            return {}
        data = self.settings(sheets.get("settings"))
        data["themes"] = self.themes(sheets.get("themes"))
        data["sections"] = self.sections(sheets["survey"], self.choice_lists(sheets.get("choices")))
        return data

    def settings(self, sheet: _Sheet | None) -> dict[str, Any]:
        data: dict[str, Any] = {}
        if sheet is None or not sheet.rows:
            self.reader.refuse(
                Where(1, None, "settings"), "no settings row (form_id, version...)", "missing_field"
            )
            return data
        row = sheet.rows[0]
        for extra in sheet.rows[1:]:
            self.reader.refuse(sheet.where(extra), "settings take a single row")
        self.where[()] = sheet.where(row)
        for field_name, column in (
            ("key", "form_id"),
            ("version", "version"),
            ("kind", "kind"),
            ("channel", "channel"),
            ("source", "source"),
        ):
            _put(data, field_name, self.reader.text(row, column))
            self.where[(field_name,)] = sheet.where(row, column)
        _put(data, "title", self.reader.localized(row, "form_title"))
        _put(data, "introduction", self.reader.localized(row, "introduction"))
        for code in LANGUAGES:
            self.where[("title", code)] = sheet.where(row, f"form_title::{code}")
            self.where[("introduction", code)] = sheet.where(row, f"introduction::{code}")
        return data

    def themes(self, sheet: _Sheet | None) -> list[dict[str, Any]]:
        themes: list[dict[str, Any]] = []
        for row in sheet.rows if sheet else []:
            assert sheet is not None
            loc: Loc = ("themes", len(themes))
            theme: dict[str, Any] = {}
            _put(theme, "key", self.reader.text(row, "name"))
            _put(theme, "label", self.reader.localized(row, "label"))
            _put(theme, "source", self.reader.text(row, "source"))
            self.where[loc] = sheet.where(row, "name")
            for code in LANGUAGES:
                self.where[(*loc, "label", code)] = sheet.where(row, f"label::{code}")
            themes.append(theme)
        return themes

    def choice_lists(self, sheet: _Sheet | None) -> dict[str, list[tuple[_Row, dict[str, Any]]]]:
        lists: dict[str, list[tuple[_Row, dict[str, Any]]]] = {}
        for row in sheet.rows if sheet else []:
            assert sheet is not None
            list_name = self.reader.text(row, "list_name")
            if not list_name:
                self.reader.refuse(
                    sheet.where(row, "list_name"), "a choice without list_name", "missing_field"
                )
                continue
            choice: dict[str, Any] = {}
            _put(choice, "value", self.reader.text(row, "name"))
            _put(choice, "label", self.reader.localized(row, "label"))
            _put(choice, "score", self.reader.number(sheet, row, "score"))
            if self.reader.flag(sheet, row, "missing"):
                choice["missing"] = True
            lists.setdefault(list_name, []).append((row, choice))
        self.choices_sheet = sheet
        return lists

    def sections(
        self, sheet: _Sheet, lists: dict[str, list[tuple[_Row, dict[str, Any]]]]
    ) -> list[dict[str, Any]]:
        reader = self.reader
        sections: list[dict[str, Any]] = []
        current: dict[str, Any] | None = None
        in_group = False
        for row in sheet.rows:
            words = (reader.text(row, "type") or "").split()
            head = words[0].lower() if words else ""
            if head in ("begin", "end") and len(words) > 1:  # "begin group" = "begin_group"
                head = f"{head}_{words[1].lower()}"
                words = [head, *words[2:]]
            if not head:
                reader.refuse(sheet.where(row, "type"), "a row without a type", "missing_field")
                continue
            if head in _METADATA_TYPES:
                continue
            if head == "begin_group":
                if in_group:
                    reader.refuse(sheet.where(row, "type"), "nested groups are not supported")
                    continue
                in_group = True
                current = self.section(sheet, row, len(sections))
                sections.append(current)
                continue
            if head == "end_group":
                if not in_group:
                    reader.refuse(sheet.where(row, "type"), "end_group without begin_group")
                in_group = False
                current = None
                continue
            if head in ("begin_repeat", "end_repeat"):
                reader.refuse(sheet.where(row, "type"), "repeats are not supported")
                continue
            if current is None:
                current = self.implicit_section(sheet, row, len(sections))
                sections.append(current)
            loc: Loc = ("sections", len(sections) - 1, "items", len(current["items"]))
            item = self.item(sheet, row, head, words, lists, loc)
            if item is not None:
                current["items"].append(item)
        if in_group:
            reader.refuse(
                Where(sheet.rows[-1].number, None, "survey"), "begin_group without end_group"
            )
        # Without a "scored" column (a plain XLSForm), a group without weights is not scored.
        plain = "scored" not in sheet.columns
        for section in sections:
            implicit = section.pop("implicit", False)
            if (plain or implicit) and not any(item.get("weight") for item in section["items"]):
                section["scored"] = False
        return sections

    def section(self, sheet: _Sheet, row: _Row, index: int) -> dict[str, Any]:
        reader = self.reader
        loc: Loc = ("sections", index)
        section: dict[str, Any] = {"items": []}
        _put(section, "key", reader.text(row, "name"))
        _put(section, "title", reader.localized(row, "label"))
        _put(section, "help", reader.localized(row, "hint"))
        _put(section, "relevant", reader.text(row, "relevant"))
        scored = reader.flag(sheet, row, "scored")
        if scored is False:
            section["scored"] = False
        for column in row.values:
            if column not in ("type", "name", "relevant", "scored") and not column.startswith(
                ("label::", "hint::")
            ):
                reader.refuse(sheet.where(row, column), f"{column!r} is not used on a group row")
        self.where[loc] = sheet.where(row, "name")
        self.locate_fields(
            loc, sheet, row, {"key": "name", "relevant": "relevant", "scored": "scored"}
        )
        for code in LANGUAGES:
            self.where[(*loc, "title", code)] = sheet.where(row, f"label::{code}")
            self.where[(*loc, "help", code)] = sheet.where(row, f"hint::{code}")
        return section

    def implicit_section(self, sheet: _Sheet, row: _Row, index: int) -> dict[str, Any]:
        """Questions outside any group form a section of their own."""
        self.where[("sections", index)] = sheet.where(row)
        title = {"fr": "Questions", "en": "Questions"}
        return {"key": f"section_{index + 1}", "title": title, "items": [], "implicit": True}

    def locate_fields(self, loc: Loc, sheet: _Sheet, row: _Row, fields: dict[str, str]) -> None:
        for field_name, column in fields.items():
            self.where[(*loc, field_name)] = sheet.where(row, column)

    def item(
        self,
        sheet: _Sheet,
        row: _Row,
        head: str,
        words: list[str],
        lists: dict[str, list[tuple[_Row, dict[str, Any]]]],
        loc: Loc,
    ) -> dict[str, Any] | None:
        reader = self.reader
        where_type = sheet.where(row, "type")
        if head not in _COMPATIBLE:
            if head in ("select_one_from_file", "select_multiple_from_file"):
                reader.refuse(where_type, "choices from a file are not supported")
            else:
                reader.refuse(where_type, f"question type {head!r} is not supported")
            return None
        list_name = None
        if head in ("select_one", "select_multiple"):
            if len(words) != 2:
                extra = " ('or_other' is not supported)" if "or_other" in words else ""
                reader.refuse(where_type, f"expected '{head} <list name>'{extra}")
                return None
            list_name = words[1]
        elif len(words) != 1:
            reader.refuse(where_type, f"unexpected text after {head!r}")
            return None
        item_type = reader.text(row, "item_type") or _INFERRED.get(head)
        if item_type is None:
            reader.refuse(
                where_type,
                f"{head!r} needs an item_type (e.g. duration for decimal, delay for calculate)",
            )
            return None
        if item_type not in _COMPATIBLE[head]:
            reader.refuse(
                sheet.where(row, "item_type"),
                f"item_type {item_type!r} does not fit a {head!r} row",
            )
            return None
        item: dict[str, Any] = {"type": item_type}
        _put(item, "key", reader.text(row, "name"))
        _put(item, "label", reader.localized(row, "label"))
        _put(item, "help", reader.localized(row, "hint"))
        if reader.flag(sheet, row, "required"):
            item["required"] = True
        for column in ("relevant", "constraint", "theme", "role", "source"):
            _put(item, column, reader.text(row, column))
        _put(item, "constraint_message", reader.localized(row, "constraint_message"))
        weight = reader.number(sheet, row, "weight")
        if weight:
            item["weight"] = weight
        full = reader.number(sheet, row, "threshold")
        partial = reader.number(sheet, row, "threshold_partial")
        if full is not None or partial is not None:
            item["thresholds"] = (
                {"full": full} if partial is None else {"full": full, "partial": partial}
            )
        for column in ("min", "max"):
            _put(item, column, reader.number(sheet, row, column))
        max_length = reader.number(sheet, row, "max_length")
        if max_length is not None:
            item["max_length"] = int(max_length) if float(max_length).is_integer() else max_length
        if reader.flag(sheet, row, "redact_contacts"):
            item["redact_contacts"] = True
        if "scored" in row.values:
            reader.refuse(sheet.where(row, "scored"), "'scored' is only used on group rows")
        calculation = reader.text(row, "calculation")
        if item_type == "delay":
            match = _DELAY.match(calculation or "")
            if match is None:
                reader.refuse(
                    sheet.where(row, "calculation"),
                    "a delay's calculation must be working_days(${start}, ${end})",
                )
                return None
            item["start"], item["end"] = match.group(1), match.group(2)
        elif calculation:
            reader.refuse(
                sheet.where(row, "calculation"), "calculations are only supported for delays"
            )
        knockout = reader.text(row, "knockout")
        if knockout:
            item["knockout"] = self.knockout(knockout, item_type, sheet.where(row, "knockout"))
        if list_name is not None:
            self.options(item, list_name, lists, loc, where_type)
        self.where[loc] = sheet.where(row, "name")
        self.locate_fields(
            loc,
            sheet,
            row,
            {
                "key": "name",
                "type": "item_type",
                "required": "required",
                "relevant": "relevant",
                "constraint": "constraint",
                "weight": "weight",
                "theme": "theme",
                "thresholds": "threshold",
                "knockout": "knockout",
                "min": "min",
                "max": "max",
                "max_length": "max_length",
                "role": "role",
                "redact_contacts": "redact_contacts",
                "start": "calculation",
                "end": "calculation",
                "not_applicable": "type",
            },
        )
        self.where[(*loc, "thresholds", "partial")] = sheet.where(row, "threshold_partial")
        for prefix, name in (
            ("label", "label"),
            ("hint", "help"),
            ("constraint_message", "constraint_message"),
        ):
            for code in LANGUAGES:
                self.where[(*loc, name, code)] = sheet.where(row, f"{prefix}::{code}")
        return item

    def knockout(self, text: str, item_type: str, where: Where) -> dict[str, Any]:
        if text.startswith(">"):
            parts = text[1:].split()
            unit = parts[1] if len(parts) > 1 else "working_days"
            try:
                above = float(parts[0].replace(",", "."))
            except (IndexError, ValueError):
                self.reader.refuse(
                    where, f"knockout {text!r}: expected '> number [unit]'", "invalid_knockout"
                )
                return {}
            rule: dict[str, Any] = {"above": above}
            if unit != "working_days":
                rule["unit"] = unit
            if len(parts) > 2:
                self.reader.refuse(
                    where, f"knockout {text!r}: expected '> number [unit]'", "invalid_knockout"
                )
            return rule
        values: list[Any] = text.replace(",", " ").split()
        if item_type in SCALE_TYPES:
            typed = {option_key(o.value): o.value for o in default_options(item_type, True)}
            values = [typed.get(value, value) for value in values]
        return {"fail_if": values}

    def options(
        self,
        item: dict[str, Any],
        list_name: str,
        lists: dict[str, list[tuple[_Row, dict[str, Any]]]],
        loc: Loc,
        where_type: Where,
    ) -> None:
        entries = lists.get(list_name)
        if not entries:
            self.reader.refuse(
                where_type,
                f"choice list {list_name!r} is missing from the choices sheet",
                "empty_choices",
            )
            return
        item_type = item["type"]
        sheet = self.choices_sheet
        assert sheet is not None
        choices = [choice for _, choice in entries]
        for index, (row, _) in enumerate(entries):
            self.where[(*loc, "choices", index)] = sheet.where(row, "name")
            for column in ("value", "score", "missing"):
                self.where[(*loc, "choices", index, column)] = sheet.where(
                    row, "name" if column == "value" else column
                )
            for code in LANGUAGES:
                self.where[(*loc, "choices", index, "label", code)] = sheet.where(
                    row, f"label::{code}"
                )
        if item_type not in SCALE_TYPES:
            item["choices"] = choices
            return
        names = [choice.get("value") for choice in choices]
        not_applicable = "na" in names
        defaults = default_options(item_type, not_applicable)
        expected = [option_key(option.value) for option in defaults]
        if names != expected:
            self.reader.refuse(
                where_type,
                f"a {item_type} list needs the values {expected} in that order, got {names}",
                "invalid_choices",
            )
            return
        if not_applicable:
            item["not_applicable"] = True
        if any(choice.get("score") is not None or choice.get("missing") for choice in choices):
            self.reader.refuse(
                where_type, f"the options of a {item_type} item take no score or missing"
            )
        labels = [choice.get("label") for choice in choices]
        if labels != [option.label.model_dump() for option in defaults]:
            item["choices"] = [
                {**choice, "value": option.value}
                for choice, option in zip(choices, defaults, strict=True)
            ]


def from_xlsform(source: str | Path | IO[bytes], *, file: str | None = None) -> Instrument:
    """Read an XLSForm workbook; refuse it with :class:`XLSFormError` (sheet, row, column)."""
    name = file or (Path(source).name if isinstance(source, str | Path) else "workbook.xlsx")
    try:
        workbook = load_workbook(source, read_only=True, data_only=True)
    except Exception as error:  # openpyxl raises many kinds on a damaged or foreign file
        problem = DefinitionProblem("", f"not a readable .xlsx workbook: {error}", "syntax", name)
        raise XLSFormError([problem]) from None
    try:
        importer = _Import(name)
        data = importer.run(workbook)
    finally:
        workbook.close()
    if importer.reader.problems:
        raise XLSFormError(importer.reader.problems)
    try:
        return instrument_from_dict(data, file=name, lines=importer.where)
    except DefinitionError as error:
        raise XLSFormError(error.problems) from None


@dataclass(frozen=True)
class XLSFormReading:
    """An accepted workbook: the instrument, and what in the workbook it did not use.

    ``warnings`` name each ignored column, sheet or setting by sheet, row and column
    (``code`` ``ignored_column``, ``ignored_sheet``, ``ignored_setting``...), so that the
    organiser sees what the platform will not honour before publishing.
    """

    instrument: Instrument
    warnings: tuple[DefinitionProblem, ...] = ()


def read_xlsform(source: str | Path | IO[bytes], *, file: str | None = None) -> XLSFormReading:
    """Read an XLSForm workbook with its warnings; refuse it with :class:`XLSFormError`."""
    return XLSFormReading(from_xlsform(source, file=file))
