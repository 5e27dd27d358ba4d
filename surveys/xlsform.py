"""XLSForm import and export.

The workbook follows XLSForm (https://xlsform.org, as pyxform, ODK and KoboToolbox read it):
sheets ``survey``, ``choices`` and ``settings``; ``label``, ``hint`` and ``constraint_message``
columns, each section a ``begin_group`` … ``end_group``. What XLSForm cannot say travels in extra
columns, which XLSForm tools ignore:

``survey``
    ``item_type`` (the instrument's item type, e.g. ``likert5``), ``weight``, ``theme``,
    ``threshold`` (full credit) and ``threshold_partial``, ``knockout`` (failing values such as
    ``no``, or ``> 30``, ``> 2 months``, ``> 60 calendar_days``), ``min``, ``max``,
    ``max_length``, ``role``, ``scored`` (groups), ``redact_contacts``, ``source``, and
    ``delay``: a delay is a ``calculate`` row whose ``delay`` is
    ``working_days(${start}, ${end})`` (working days, holidays excluded, computed by the
    platform); its ``calculation`` is standard XPath counting Monday–Friday days, which
    collection tools can show (no custom function, so pyxform and ODK Validate accept it).
    Older workbooks with ``working_days(...)`` in ``calculation`` are read too.
``choices``
    ``score`` and ``missing`` (a choice that counts as no answer).
``settings``
    ``form_id`` (or ``id_string``: the key), ``version``, ``form_title`` (French) and
    ``form_title_en`` (``form_title::en`` is read but stops pyxform, so it is not written),
    ``default_language``, ``introduction::fr``/``::en``, ``kind``, ``channel``, ``source``.
``themes`` (extra sheet)
    ``name``, ``label::fr``, ``label::en``, ``source``.

Languages: a column without a language (``label``, ``hint``, ``form_title``…) is in the settings'
``default_language``, French (``fr``) when none is given, as this platform is French first.
``label::fr``, ``label::Français (fr)``, ``label::English (en)``, ``label::French`` and the
older ``label:English`` name French and English; another language is ignored with a warning,
unless no French or English label is left, which refuses the sheet. A form title given in one
language only is used for both (XLSForm cannot translate titles), with a warning.

Read without a word: ``select_one`` as ``choice_one``, ``select_multiple`` as ``choice_many``,
``integer`` as ``count`` (without ``item_type``); ``text``, ``date`` and ``note`` as themselves;
questions outside any group form a section of their own; without a ``scored`` column, a group
whose questions carry no weight is not scored; metadata rows (``start``, ``end``, ``today``,
``deviceid``, ``username``…) are skipped. Without ``kind``, a form is a survey (a grid if it
names a ``channel``).

Accepted with a warning (:attr:`XLSFormReading.warnings`, each naming sheet, row and column):
columns the platform does not use (``appearance``, ``required_message``, ``default``,
``choice_filter``, ``read_only``, ``bind::*``, ``media::*``, ``image``, ``$kuid``…: code
``ignored_column``, at the first row where they hold a value), unused settings
(``ignored_setting``), extra sheets (``ignored_sheet``), other languages (``ignored_language``),
``audit`` and location metadata (``ignored_metadata``), a ``calculate`` that is not a delay
(``ignored_calculation``: the row is left out), a group inside a group (``flattened_group``: its
questions join the outer section and its ``relevant`` is added to each of theirs), ``select_one
list or_other`` (``or_other``: as pyxform does, the choice ``other`` and a text question
``<name>_other`` shown when it is chosen; in a weighted item ``other`` counts as no answer) and
a one-language title (``untranslated_title``), hint or constraint message (``untranslated_text``:
used in both languages).

Refused with :class:`XLSFormError`, naming sheet, row and column: what the platform cannot
collect (``geopoint``, ``geotrace``, ``geoshape``, ``image``, ``audio``, ``video``, ``file``,
``barcode``, repeats, ``range``, ``acknowledge``, ``rank``, ``dateTime``, ``time``, choices
from a file…), a conditional ``required``, and everything the instrument's own rules refuse.
"""

from __future__ import annotations

import dataclasses
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
    "delay",
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
    "form_title_en",
    "default_language",
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
    "settings": {"form_id", "version", "kind", "channel", "source", "default_language"},
    "themes": {"name", "source"},
}
#: Other spellings of the columns read: pyxform's ``id_string``; the English (or French) form
#: title that this module writes in a column of its own, since ``form_title::en`` stops pyxform.
_ALIASES = {
    "survey": {"relevance": "relevant"},
    "choices": {},
    "settings": {
        "id_string": "form_id",
        "form_title_en": "form_title::en",
        "form_title_fr": "form_title::fr",
    },
    "themes": {},
}
#: Metadata that the platform does not record: skipped silently (a visit or a response keeps
#: its own timestamps, and no device identifier is ever stored).
_METADATA_TYPES = {
    "start",
    "end",
    "today",
    "deviceid",
    "imei",
    "subscriberid",
    "simserial",
    "phonenumber",
    "username",
    "email",
    "uri:email",
    "uri:username",
    "uri:phonenumber",
    "uri:deviceid",
    "uri:subscriberid",
    "uri:simserial",
}
#: Metadata that would record more than a timestamp: skipped with a warning.
_TRACKING_TYPES = {"audit", "start-geopoint", "background-geopoint", "background-audio"}
#: Question types the platform cannot collect, with the reason given to the organiser.
_UNCOLLECTABLE = {
    "geopoint": "locations are not collected",
    "geotrace": "locations are not collected",
    "geoshape": "locations are not collected",
    "image": "files are not collected",
    "audio": "files are not collected",
    "video": "files are not collected",
    "file": "files are not collected",
    "barcode": "barcodes are not scanned",
    "begin_repeat": "repeats are not supported",
    "end_repeat": "repeats are not supported",
    "range": "ranges are not supported: use integer with min and max",
    "acknowledge": "acknowledgements are not supported: use a yes/no question",
    "rank": "rankings are not supported",
    "datetime": "times are not collected: use date",
    "time": "times are not collected: use date",
    "hidden": "hidden fields are not supported",
    "select_one_from_file": "choices from a file are not supported",
    "select_multiple_from_file": "choices from a file are not supported",
    "select_one_external": "external choices are not supported",
    "xml-external": "external data is not supported",
    "csv-external": "external data is not supported",
    "trigger": "triggers are not supported",
}
#: Other spellings of question types (pyxform's aliases).
_TYPE_ALIASES = {"int": "integer", "string": "text", "select1": "select_one"}
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


def _day_number(key: str) -> str:
    # decimal-date-time() gives days since 1970-01-01 (a Thursday) at the device's midnight,
    # a fraction of a day off UTC: rounding gives the day; + 4 makes 0 a Monday.
    return f"(floor(decimal-date-time(${{{key}}}) + 0.5) + 4)"


def _weekdays_before(key: str) -> str:
    # Monday–Friday days before the day after ``key`` since a Monday: 5 per week, then
    # min(day of week, 5) written as d - floor(d div 6) for d in 0..6.
    day = _day_number(key)
    return f"(5 * floor({day} div 7) + ({day} mod 7) - floor(({day} mod 7) div 6))"


def _weekdays_xpath(start: str, end: str) -> str:
    """Standard XPath for the Monday–Friday days in ``(start, end]``.

    What ODK Collect or Enketo show as the delay while collecting: public holidays, which
    XPath cannot know, are not taken off. The platform reads the ``delay`` column instead and
    computes the delay itself, holidays excluded (:func:`surveys.working_days_between`).
    """
    blank = f"${{{start}}} = '' or ${{{end}}} = ''"
    return f"if({blank}, '', {_weekdays_before(end)} - {_weekdays_before(start)})"


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
        "calculation": (_weekdays_xpath(item.start, item.end) if item.start and item.end else None),
        "delay": (
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
        "form_title_en": instrument.title.en,
        "default_language": "fr",
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
        self.warnings: list[DefinitionProblem] = []

    def refuse(self, where: Where, message: str, code: str = "unsupported") -> None:
        self.problems.append(
            DefinitionProblem("", message, code, self.file, where.line, where.column, where.sheet)
        )

    def warn(self, where: Where, message: str, code: str) -> None:
        self.warnings.append(
            DefinitionProblem("", message, code, self.file, where.line, where.column, where.sheet)
        )

    # ------------------------------------------------------------------ cells

    def read_sheet(self, worksheet: Any, name: str, default: str | None) -> _Sheet:
        """Read one sheet; ``default`` is the language of untranslated columns (None: other)."""
        sheet = _Sheet(name)
        rows = worksheet.iter_rows(values_only=True)
        header = next(rows, None) or ()
        kept: dict[int, str] = {}
        ignored: dict[int, tuple[str, str, str]] = {}  # index → (column, code, message)
        foreign: dict[str, list[str]] = {}  # "label" → ["C (label::Español (es))"]
        unused = "ignored_setting" if name == "settings" else "ignored_column"
        for index, title in enumerate(header):
            text = _cell_text(title)
            if not text:
                continue
            column = f"{get_column_letter(index + 1)} ({text})"
            head, separator, language = text.partition("::")
            if not separator:
                head, separator, language = text.partition(":")  # the older "label:English"
            head = head.strip().lower().replace(" ", "_")
            head = _ALIASES[name].get(head, head)
            if "::" in head:  # an alias naming its language, e.g. form_title_en
                key = head
            elif head in _TRANSLATED[name]:
                code = _language(language) if separator else default
                if code is None:
                    what = f"language {language.strip()!r}" if separator else "default language"
                    ignored[index] = (
                        column,
                        "ignored_language",
                        f"column {text!r}: the {what} is not used (the platform speaks French "
                        "and English); ignored",
                    )
                    foreign.setdefault(head, []).append(column)
                    continue
                key = f"{head}::{code}"
            elif head in _PLAIN[name] and not separator:
                key = head
            else:
                what = "setting" if name == "settings" else "column"
                ignored[index] = (
                    column,
                    unused,
                    f"{what} {text!r} is not used by the platform; ignored",
                )
                continue
            if key in sheet.columns:
                self.refuse(
                    Where(1, column, name),
                    f"column {text!r} says the same as {sheet.columns[key]}",
                    "duplicate_key",
                )
            kept[index] = key
            sheet.columns[key] = column
        first_use: dict[int, int] = {}
        uses: dict[int, int] = {}
        for number, cells in enumerate(rows, start=2):
            values = {}
            for index, value in enumerate(cells):
                if value is None or (isinstance(value, str) and not value.strip()):
                    continue
                if index in kept:
                    values[kept[index]] = value.strip() if isinstance(value, str) else value
                else:
                    first_use.setdefault(index, number)
                    uses[index] = uses.get(index, 0) + 1
            if values:
                sheet.rows.append(_Row(number, values))
        for index, number in sorted(first_use.items()):
            count = uses[index]
            rows_text = f" ({count} rows)" if count > 1 else ""
            if index in ignored:
                column, code, message = ignored[index]
                self.warn(Where(number, column, name), message + rows_text, code)
            else:
                self.warn(
                    Where(number, get_column_letter(index + 1), name),
                    f"values in a column without a header{rows_text}; ignored",
                    "ignored_column",
                )
        if name in ("survey", "choices") and sheet.rows:
            self.require_languages(sheet, foreign.get("label", []))
        return sheet

    def require_languages(self, sheet: _Sheet, foreign: list[str]) -> None:
        """One refusal for a sheet without a French or an English label column."""
        missing = [code for code in LANGUAGES if f"label::{code}" not in sheet.columns]
        if not missing:
            return
        names = " and ".join(_LANGUAGE_NAMES_EN[code] for code in missing)
        found = f" (found {', '.join(foreign)})" if foreign else ""
        self.refuse(
            Where(1, None, sheet.name),
            f"no {names} label column{found}: every text is shown in French and English; "
            "add 'label::Français (fr)' and 'label::English (en)' ('label' alone is the "
            "settings' default_language, French if not given)",
            "unsupported_language" if len(missing) == len(LANGUAGES) else "missing_translation",
        )

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

    def optional_text(self, sheet: _Sheet, row: _Row, prefix: str) -> dict[str, str] | None:
        """A hint or message; given in one language only, it is used for both, with a warning."""
        text = self.localized(row, prefix)
        if text is None or len(text) == len(LANGUAGES):
            return text
        (given,) = text
        other = next(code for code in LANGUAGES if code != given)
        text[other] = text[given]
        self.warn(
            sheet.where(row, f"{prefix}::{given}"),
            f"{prefix} has no {_LANGUAGE_NAMES_EN[other]} version: the same text is shown",
            "untranslated_text",
        )
        return text


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return option_key(value)
    return str(value).strip()


_LANGUAGE_CODES = {
    "fr": "fr",
    "fra": "fr",
    "fre": "fr",
    "french": "fr",
    "français": "fr",
    "francais": "fr",
    "en": "en",
    "eng": "en",
    "english": "en",
    "anglais": "en",
}
_LANGUAGE_NAMES_EN = {"fr": "French", "en": "English"}


def _language(text: str) -> str | None:
    """``fr``/``en`` for ``English (en)``, ``Français (fr)``, ``French``, ``en-GB``…; else None."""
    text = text.strip().lower()
    name, _, rest = text.partition("(")
    code = rest.rstrip(") ").split("-")[0].strip()
    for candidate in (code, name.strip(), name.strip().split("-")[0]):
        if candidate in _LANGUAGE_CODES:
            return _LANGUAGE_CODES[candidate]
    return None


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
        worksheets: dict[str, Any] = {}
        for worksheet in workbook.worksheets:
            name = worksheet.title.strip().lower()
            if name not in _TRANSLATED or name in worksheets:
                reader.warn(
                    Where(1, None, worksheet.title),
                    f"sheet {worksheet.title!r} is not used by the platform; ignored",
                    "ignored_sheet",
                )
                continue
            worksheets[name] = worksheet
        if "survey" not in worksheets:
            reader.refuse(
                Where(1, None, "survey"), "the workbook has no 'survey' sheet", "missing_field"
            )
            return {}
        default = self.default_language(worksheets.get("settings"))
        sheets = {
            name: reader.read_sheet(worksheet, name, default)
            for name, worksheet in worksheets.items()
        }
        data = self.settings(sheets.get("settings"))
        data["themes"] = self.themes(sheets.get("themes"))
        data["sections"] = self.sections(sheets["survey"], self.choice_lists(sheets.get("choices")))
        return data

    def default_language(self, worksheet: Any) -> str | None:
        """The language of untranslated columns: ``default_language``, else French."""
        if worksheet is None:
            return "fr"
        rows = list(worksheet.iter_rows(values_only=True, max_row=2))
        if len(rows) < 2:
            return "fr"
        for index, title in enumerate(rows[0]):
            if _cell_text(title).lower().replace(" ", "_") == "default_language":
                value = _cell_text(rows[1][index]) if index < len(rows[1]) else ""
                return _language(value) if value else "fr"
        return "fr"

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
        if "version" not in data:  # optional in XLSForm; the platform numbers versions itself
            data["version"] = "1"
            self.reader.warn(
                sheet.where(row, "version"),
                "no form version: '1' is recorded (the platform numbers published versions itself)",
                "default_version",
            )
        if "kind" not in data:  # an ODK or Kobo form: a grid names its channel
            data["kind"] = "grid" if "channel" in data else "survey"
        title = self.reader.localized(row, "form_title")
        if title is not None and len(title) == 1:
            # XLSForm has no translated form title (pyxform stops on form_title::en).
            (given,) = title
            other = next(code for code in LANGUAGES if code != given)
            title[other] = title[given]
            self.reader.warn(
                sheet.where(row, f"form_title::{given}"),
                f"the form title has no {_LANGUAGE_NAMES_EN[other]} version: the same title is "
                f"used (add a form_title_{other} column to translate it)",
                "untranslated_title",
            )
        _put(data, "title", title)
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
        depth = 0
        # The relevant of each group flattened into the current section (None: always shown).
        inner: list[str | None] = []
        for row in sheet.rows:
            words = (reader.text(row, "type") or "").split()
            head = words[0].lower() if words else ""
            if head in ("begin", "end", "select") and len(words) > 1:  # "begin group"
                head = f"{head}_{words[1].lower()}"
                words = [head, *words[2:]]
            head = _TYPE_ALIASES.get(head, head)
            where_type = sheet.where(row, "type")
            if not head:
                reader.refuse(where_type, "a row without a type", "missing_field")
                continue
            if head in _METADATA_TYPES:
                continue
            if head in _TRACKING_TYPES:
                reader.warn(where_type, f"{head!r} is not recorded; ignored", "ignored_metadata")
                continue
            if head == "begin_group":
                if depth:
                    relevant = reader.text(row, "relevant")
                    outer = current.get("key") if current else None
                    reader.warn(
                        where_type,
                        f"group {reader.text(row, 'name')!r} inside group {outer!r}: its "
                        "questions join the outer section (its label is not shown"
                        + (", its relevant applies to each of them)" if relevant else ")"),
                        "flattened_group",
                    )
                    inner.append(relevant)
                    depth += 1
                    continue
                depth = 1
                current = self.section(sheet, row, len(sections))
                sections.append(current)
                continue
            if head == "end_group":
                if depth == 0:
                    reader.refuse(where_type, "end_group without begin_group")
                elif depth > 1:
                    inner.pop()
                    depth -= 1
                else:
                    depth = 0
                    current = None
                continue
            if head in _UNCOLLECTABLE:
                reader.refuse(
                    where_type, f"question type {head!r}: {_UNCOLLECTABLE[head]}", "unsupported"
                )
                continue
            if current is None:
                current = self.implicit_section(sheet, row, len(sections))
                sections.append(current)
            loc: Loc = ("sections", len(sections) - 1, "items", len(current["items"]))
            conditions = [condition for condition in inner if condition]
            current["items"] += self.item(sheet, row, head, words, lists, loc, conditions)
        if depth:
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
        _put(section, "help", reader.optional_text(sheet, row, "hint"))
        _put(section, "relevant", reader.text(row, "relevant"))
        scored = reader.flag(sheet, row, "scored")
        if scored is False:
            section["scored"] = False
        for column in row.values:
            if column not in ("type", "name", "relevant", "scored") and not column.startswith(
                ("label::", "hint::")
            ):
                reader.warn(
                    sheet.where(row, column),
                    f"{column!r} is not used on a group row; ignored",
                    "ignored_column",
                )
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
        conditions: list[str],
    ) -> list[dict[str, Any]]:
        """The item of one survey row (two for ``or_other``), or none if it is refused."""
        reader = self.reader
        where_type = sheet.where(row, "type")
        if head not in _COMPATIBLE:
            reader.refuse(where_type, f"question type {head!r} is not supported")
            return []
        list_name = None
        or_other = False
        if head in ("select_one", "select_multiple"):
            or_other = len(words) == 3 and words[2].lower() == "or_other"
            if len(words) != 2 and not or_other:
                reader.refuse(where_type, f"expected '{head} <list name>' or '... or_other'")
                return []
            list_name = words[1]
        elif len(words) != 1:
            reader.refuse(where_type, f"unexpected text after {head!r}")
            return []
        calculation = reader.text(row, "calculation")
        delay = reader.text(row, "delay")
        item_type = reader.text(row, "item_type") or _INFERRED.get(head)
        if head == "calculate" and item_type is None:
            if delay or _DELAY.match(calculation or ""):
                item_type = "delay"
            else:
                reader.warn(
                    where_type,
                    f"calculate {reader.text(row, 'name')!r} is not used (the platform computes "
                    "only working-day delays); ignored",
                    "ignored_calculation",
                )
                return []
        if item_type is None:
            reader.refuse(
                where_type,
                f"{head!r} needs an item_type (e.g. duration for decimal, delay for calculate)",
            )
            return []
        if item_type not in _COMPATIBLE[head]:
            reader.refuse(
                sheet.where(row, "item_type"),
                f"item_type {item_type!r} does not fit a {head!r} row",
            )
            return []
        if or_other and item_type not in _CHOICE_ITEMS:
            reader.refuse(where_type, f"'or_other' does not fit a {item_type} item")
            return []
        item: dict[str, Any] = {"type": item_type}
        _put(item, "key", reader.text(row, "name"))
        _put(item, "label", reader.localized(row, "label"))
        _put(item, "help", reader.optional_text(sheet, row, "hint"))
        if reader.flag(sheet, row, "required"):
            item["required"] = True
        for column in ("relevant", "constraint", "theme", "role", "source"):
            _put(item, column, reader.text(row, column))
        _put(item, "constraint_message", reader.optional_text(sheet, row, "constraint_message"))
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
        delay_column = "delay" if delay else "calculation"
        if item_type == "delay":
            match = _DELAY.match(delay or calculation or "")
            if match is None:
                reader.refuse(
                    sheet.where(row, delay_column),
                    f"a delay's {delay_column} must be working_days(${{start}}, ${{end}})",
                )
                return []
            # With a delay column, the calculation is the XPath that collection tools show.
            item["start"], item["end"] = match.group(1), match.group(2)
        elif calculation:
            reader.warn(
                sheet.where(row, "calculation"),
                "calculation is only used by delays; ignored",
                "ignored_column",
            )
        if delay and item_type != "delay":
            reader.warn(
                sheet.where(row, "delay"), "delay is only used by delays; ignored", "ignored_column"
            )
        if conditions:
            own = [item.pop("relevant")] if "relevant" in item else []
            item["relevant"] = " and ".join(f"({text})" for text in [*conditions, *own])
        knockout = reader.text(row, "knockout")
        if knockout:
            item["knockout"] = self.knockout(knockout, item_type, sheet.where(row, "knockout"))
        if list_name is not None:
            self.options(item, list_name, lists, loc, where_type, or_other)
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
                "start": delay_column,
                "end": delay_column,
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
        if not or_other:
            return [item]
        return [item, self.other_text(item, loc, where_type)]

    def other_text(self, item: dict[str, Any], loc: Loc, where_type: Where) -> dict[str, Any]:
        """The text question that ``or_other`` adds, as pyxform does (``<name>_other``)."""
        key = f"{item.get('key')}_other"
        test = "${%s} = 'other'" if item["type"] == "choice_one" else "selected(${%s}, 'other')"
        other_loc: Loc = (*loc[:-1], int(loc[-1]) + 1)
        self.where[other_loc] = where_type
        self.reader.warn(
            where_type,
            f"or_other: the choice 'other' and the text question {key!r} are added",
            "or_other",
        )
        return {
            "key": key,
            "type": "text",
            "label": {"fr": "Précisez :", "en": "Specify other:"},
            "relevant": test % item.get("key"),
        }

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
        or_other: bool = False,
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
            if or_other:
                self.where[(*loc, "choices", len(choices))] = where_type
                other: dict[str, Any] = {"value": "other", "label": {"fr": "Autre", "en": "Other"}}
                if item.get("weight"):  # a free text is not scored: "other" counts as no answer
                    other["missing"] = True
                item["choices"] = [*choices, other]
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


def _read(source: str | Path | IO[bytes], file: str | None) -> XLSFormReading:
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
        instrument = instrument_from_dict(data, file=name, lines=importer.where)
    except DefinitionError as error:
        raise XLSFormError([_explained(problem, data) for problem in error.problems]) from None
    return XLSFormReading(instrument, tuple(importer.reader.warnings))


def _explained(problem: DefinitionProblem, data: dict[str, Any]) -> DefinitionProblem:
    """Say what a plain ODK or Kobo form lacks instead of "the weights sum to 0"."""
    weighted = any(
        item.get("weight") for section in data.get("sections", []) for item in section["items"]
    )
    if problem.code != "zero_weight" or problem.path not in ("", "sections") or weighted:
        return problem
    message = (
        "no question carries a weight, so nothing can be scored: add a 'weight' column to the "
        "survey sheet (and a 'score' column to the choices sheet for answers that are not "
        "numbers); see surveys/README.md"
    )
    return dataclasses.replace(problem, message=message, sheet=problem.sheet or "survey")


def from_xlsform(source: str | Path | IO[bytes], *, file: str | None = None) -> Instrument:
    """Read an XLSForm workbook; refuse it with :class:`XLSFormError` (sheet, row, column).

    What the platform does not use is ignored: :func:`read_xlsform` also lists it.
    """
    return _read(source, file).instrument


@dataclass(frozen=True)
class XLSFormReading:
    """An accepted workbook: the instrument, and what in the workbook it did not use.

    ``warnings`` name each ignored column, sheet or setting by sheet, row and column
    (``code`` ``ignored_column``, ``ignored_sheet``, ``ignored_setting``, ``ignored_language``,
    ``ignored_metadata``, ``ignored_calculation``, ``flattened_group``, ``or_other``,
    ``untranslated_title``, ``untranslated_text``), so that
    the organiser sees what the platform will not honour before publishing.
    """

    instrument: Instrument
    warnings: tuple[DefinitionProblem, ...] = ()


def read_xlsform(source: str | Path | IO[bytes], *, file: str | None = None) -> XLSFormReading:
    """Read an XLSForm workbook with its warnings; refuse it with :class:`XLSFormError`.

    ``file`` names the workbook in problems (default: the path's name, or ``workbook.xlsx``).
    """
    return _read(source, file)
