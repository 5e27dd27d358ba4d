"""From an instrument to the columns of an export: names, labels, codes, missing values.

One coding for every format, so that a CSV with its dictionary, the XLSX, the SPSS and the
Stata files hold the same table:

* a closed question (scales, yes/no, single choice) is one ``code`` column. Options whose
  values are small integers keep them as codes (an agreement scale is 1–5, as in the
  questionnaire); ``yes`` is 1 and ``no`` 0; other options (text choices, the 0 / 0.5 / 1 of
  graded observations) are numbered 1, 2, 3… in the instrument's order. The dictionary gives
  each code its label and the instrument's own value;
* "not applicable" is −1, "don't know" −2, a delay whose answer never came −3: answers, so
  they are kept and labelled, but *declared missing* (SPSS user-missing values, Stata's
  ``.a``, ``.b``, ``.c``), as is a choice marked "counts as no answer" (prefer not to say);
* a multiple choice is one 0/1 column per option (Kobo's "select_multiple split into
  columns"), empty when the question was not answered;
* counts, durations and computed delays are numbers; dates are dates; texts are texts;
* every scored item also gets its score 0–100 (``score_<item>``), as scoring computes it.

An empty cell is the system missing value: the question was not shown, or not answered.
Variable names are the item keys, made valid for SPSS and Stata (32 characters, no reserved
word) and unique; labels are in the language of whoever asked for the export.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import surveys
from app.core.i18n import _
from app.exports.variables import MAX_MISSING_CODES, Variable, VariableKind
from surveys.schema import CHOICE_TYPES, DONT_KNOW, NEVER, NOT_APPLICABLE, SCALE_TYPES, option_key

NOT_APPLICABLE_CODE = -1
DONT_KNOW_CODE = -2
NEVER_CODE = -3
_SPECIAL_CODES = {NOT_APPLICABLE: NOT_APPLICABLE_CODE, DONT_KNOW: DONT_KNOW_CODE}
_YES_NO_CODES = {"yes": 1, "no": 0}
MAX_NAME = 32

# Words SPSS or Stata refuse as variable names (compared case-insensitively).
RESERVED_NAMES = frozenset(
    {
        # SPSS
        "all", "and", "by", "eq", "ge", "gt", "le", "lt", "ne", "not", "or", "to", "with",
        # Stata
        "_all", "_b", "byte", "_coef", "_cons", "double", "float", "if", "in", "int",
        "long", "_n", "_pi", "_pred", "_rc", "_skip", "strl", "using",
    }
)  # fmt: skip


@dataclass(frozen=True)
class CodedValue:
    """One code of a column: its label and, for answers, the instrument's own value."""

    code: int
    label: str
    value: str = ""
    missing: bool = False


@dataclass(frozen=True)
class Column:
    """A column of an export: the variable, where it comes from, and how a row fills it."""

    variable: Variable
    #: What the dictionary says the column is ("item", "option", "score", or a metadata key).
    source: str = "meta"
    item_key: str = ""
    codes: tuple[CodedValue, ...] = ()

    @property
    def name(self) -> str:
        return self.variable.name


def _variable(
    name: str,
    label: str,
    kind: VariableKind,
    codes: Iterable[CodedValue] = (),
    width: int = 1,
) -> Variable:
    coded = list(codes)
    return Variable(
        name=name,
        label=label,
        kind=kind,
        value_labels={c.code: c.label for c in coded},
        missing_codes=tuple(c.code for c in coded if c.missing)[:MAX_MISSING_CODES],
        width=width if kind == "text" else 0,
    )


def meta_column(
    name: str, label: str, kind: VariableKind, codes: Iterable[CodedValue] = ()
) -> Column:
    """A column that is not an item (an identifier, a date, the authority…)."""
    coded = tuple(codes)
    return Column(variable=_variable(name, label, kind, coded), source="meta", codes=coded)


class Names:
    """Hands out valid, unique (case-insensitively) SPSS/Stata variable names."""

    def __init__(self, taken: Iterable[str] = ()) -> None:
        self._taken = {name.lower() for name in taken}

    def take(self, wanted: str) -> str:
        base = re.sub(r"[^A-Za-z0-9_]", "_", wanted)
        if not base or not base[0].isalpha():
            base = "v" + base
        base = base[:MAX_NAME]
        if base.lower() in RESERVED_NAMES:
            base = (base + "_")[:MAX_NAME]
        name, counter = base, 1
        while name.lower() in self._taken:
            counter += 1
            suffix = f"_{counter}"
            name = base[: MAX_NAME - len(suffix)] + suffix
        self._taken.add(name.lower())
        return name


Encoder = Callable[[Mapping[str, Any]], list[Any]]


@dataclass(frozen=True)
class Codebook:
    """The item columns of one instrument and the function that fills them from answers."""

    columns: tuple[Column, ...]
    encode: Encoder = field(repr=False)


def _is_small_integer(value: object) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return float(value).is_integer() and -100 <= value <= 100


def option_codes(item: surveys.Item, language: str) -> dict[str, CodedValue]:
    """Option key (``surveys.schema.option_key``) → its code, for a closed item."""
    options = item.options
    plain = [o for o in options if option_key(o.value) not in _SPECIAL_CODES]
    yes_no = item.type in ("yes_no", "yes_no_dk")
    native = not yes_no and all(_is_small_integer(o.value) for o in plain)
    codes: dict[str, CodedValue] = {}
    position = 0
    for option in options:
        key = option_key(option.value)
        if key in _SPECIAL_CODES:
            code = _SPECIAL_CODES[key]
        elif yes_no and key in _YES_NO_CODES:
            code = _YES_NO_CODES[key]
        elif native:
            code = int(float(option.value))
        else:
            position += 1
            code = position
        codes[key] = CodedValue(code, option.label.get(language), key, option.missing)
    return codes


def _label(item: surveys.Item, language: str) -> str:
    return item.label.get(language)


def build_codebook(
    instrument: surveys.Instrument,
    language: str,
    names: Names,
    *,
    scores: bool = True,
    subdivision: str | None = None,
) -> Codebook:
    """The columns of ``instrument``'s items (answers, then scores) and their encoder.

    ``names`` hands out the variable names (shared with the dataset's metadata columns so
    that no two columns of a file share one). ``subdivision`` is the holiday calendar of
    the working days behind computed delays (see :func:`surveys.delay_value`).
    """
    columns: list[Column] = []
    fillers: list[Callable[[Mapping[str, Any]], list[Any]]] = []
    for item in instrument.items:
        label = _label(item, language)
        if item.type == "note":
            continue
        if item.type == "choice_many":
            selected = (
                CodedValue(0, _("Not selected"), "0"),
                CodedValue(1, _("Selected"), "1"),
            )
            keys = []
            for option in item.options:
                key = option_key(option.value)
                keys.append(key)
                name = names.take(f"{item.key}_{key}")
                option_label = f"{label} : {option.label.get(language)}"
                columns.append(
                    Column(
                        _variable(name, option_label, "code", selected),
                        "option",
                        item.key,
                        selected,
                    )
                )
            fillers.append(_many_filler(item.key, keys))
            continue
        name = names.take(item.key)
        if item.type in SCALE_TYPES or item.type in CHOICE_TYPES:
            codes = option_codes(item, language)
            coded = tuple(codes.values())
            columns.append(Column(_variable(name, label, "code", coded), "item", item.key, coded))
            fillers.append(_closed_filler(item.key, {k: c.code for k, c in codes.items()}))
        elif item.type == "delay":
            never = (CodedValue(NEVER_CODE, _("Never (no answer came)"), NEVER, True),)
            columns.append(
                Column(
                    _variable(name, f"{label} ({_('working days')})", "integer", never),
                    "item",
                    item.key,
                    never,
                )
            )
            fillers.append(_delay_filler(item, subdivision))
        else:
            kind: VariableKind = {
                "count": "integer",
                "duration": "number",
                "date": "date",
                "text": "text",
            }[item.type]  # type: ignore[assignment]
            columns.append(Column(_variable(name, label, kind), "item", item.key))
            fillers.append(_plain_filler(item.key, kind))
    if scores:
        scored = [item for item in instrument.items if item.scorable]
        for item in scored:
            name = names.take(f"score_{item.key}")
            label = _("Score 0–100: %(item)s") % {"item": _label(item, language)}
            columns.append(Column(_variable(name, label, "number"), "score", item.key))
        fillers.append(_score_filler(scored, subdivision))

    def encode(answers: Mapping[str, Any]) -> list[Any]:
        cells: list[Any] = []
        for fill in fillers:
            cells.extend(fill(answers))
        return cells

    return Codebook(columns=tuple(columns), encode=encode)


def _closed_filler(key: str, codes: dict[str, int]) -> Callable[[Mapping[str, Any]], list[Any]]:
    def fill(answers: Mapping[str, Any]) -> list[Any]:
        value = answers.get(key)
        return [None if value is None else codes.get(option_key(value))]

    return fill


def _many_filler(key: str, options: list[str]) -> Callable[[Mapping[str, Any]], list[Any]]:
    def fill(answers: Mapping[str, Any]) -> list[Any]:
        value = answers.get(key)
        if not isinstance(value, list):
            return [None] * len(options)
        chosen = {option_key(v) for v in value}
        return [int(option in chosen) for option in options]

    return fill


def _plain_filler(key: str, kind: VariableKind) -> Callable[[Mapping[str, Any]], list[Any]]:
    import datetime as dt

    def fill(answers: Mapping[str, Any]) -> list[Any]:
        value = answers.get(key)
        if value is None or isinstance(value, bool):
            return [None]
        if kind == "date":
            try:
                return [dt.date.fromisoformat(str(value))]
            except ValueError:
                return [None]
        if kind == "text":
            return [str(value)]
        if kind == "integer":
            return [int(value)] if isinstance(value, int | float) else [None]
        return [float(value)] if isinstance(value, int | float) else [None]

    return fill


def _delay_filler(
    item: surveys.Item, subdivision: str | None
) -> Callable[[Mapping[str, Any]], list[Any]]:
    def fill(answers: Mapping[str, Any]) -> list[Any]:
        try:
            value = surveys.delay_value(item, answers, subdivision=subdivision)
        except ValueError:
            return [None]
        return [NEVER_CODE if value == NEVER else value]

    return fill


def _option_scores(item: surveys.Item) -> dict[str, float | None] | None:
    """Option key → score of a closed item (looked up, not recomputed, for every row)."""
    if item.type not in SCALE_TYPES and item.type != "choice_one":
        return None
    return {option_key(o.value): surveys.item_score(item, o.value) for o in item.options}


def _score_filler(
    items: list[surveys.Item], subdivision: str | None
) -> Callable[[Mapping[str, Any]], list[Any]]:
    tables = [_option_scores(item) for item in items]

    def fill(answers: Mapping[str, Any]) -> list[Any]:
        cells: list[Any] = []
        for item, table in zip(items, tables, strict=True):
            value: Any = answers.get(item.key)
            if table is not None:
                cells.append(None if value is None else table.get(option_key(value)))
                continue
            if item.type == "delay":
                try:
                    value = surveys.delay_value(item, answers, subdivision=subdivision)
                except ValueError:
                    value = None
            try:
                cells.append(surveys.item_score(item, value))
            except ValueError:
                cells.append(None)
        return cells

    return fill
