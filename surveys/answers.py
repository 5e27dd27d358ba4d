"""Answer validation, relevance (skip logic) and form pages.

Answers are a mapping item key → value, as posted by a form (strings) or sent as JSON. One pass
over the items in form order decides relevance (the ``relevant`` of the section, then of the
item, evaluated on the *clean* earlier answers), checks and normalises each relevant answer and
drops answers to irrelevant items, as ODK does. Errors are per item with a stable ``code``:

=================  =========================================================================
code               meaning
=================  =========================================================================
unknown_item       no item has this key
read_only          a note or a computed delay was given a value
required           a required, relevant item has no answer
invalid_type       the value is not of the item's kind (text for a number, a list, ...)
out_of_range       a number outside the scale or the item's min/max (negative counts, ...)
invalid_choice     not one of the item's options (or "na" where it is not offered)
too_long           a text longer than the item's ``max_length``
invalid_date       not a ``YYYY-MM-DD`` calendar date
date_order         a delay's end date is before its start date (reported on the end date)
constraint         the item's ``constraint`` is not met (a constraint that refers to other
                   items is checked once they are all answered)
=================  =========================================================================

Clean values: scale answers are numbers (``1``–``5``, ``0``/``0.5``/``1``) or ``"na"``/``"dk"``;
yes/no answers ``"yes"``/``"no"`` (``true``/``false`` accepted); single choices their value,
multiple choices a list in the order of the options; counts ``int``; durations seconds
(``int`` when whole); dates ISO text; texts unchanged except contact details masked where the
item asks (``redact_contacts``). Empty values (``None``, ``""``, ``[]``) mean "no answer".
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

from pydantic import BaseModel, ConfigDict

from surveys.schema import SCALE_TYPES, Instrument, Item, Section

__all__ = [
    "AnswerError",
    "AnswerValidation",
    "FormPage",
    "form_pages",
    "redact_contacts",
    "relevant_items",
    "validate_answers",
]

_NUMERIC_SCALES = frozenset({"likert5", "scale1_4", "scale0_10", "smileys3", "graded"})
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_BOOLEAN_ANSWERS = {True: "yes", False: "no"}


class AnswerError(BaseModel):
    """One item's problem: ``{"item": "q3", "code": "out_of_range", "message": "..."}``.

    ``message`` is English for logs and API clients; pages translate from ``code``.
    """

    model_config = ConfigDict(frozen=True)

    item: str
    code: str
    message: str


class AnswerValidation(BaseModel):
    """Result of :func:`validate_answers`.

    ``answers`` holds the clean answers of relevant items (also when there are errors, minus the
    items in error); ``errors`` the per-item errors; ``dropped`` the keys of answers given to
    irrelevant items; ``relevant`` the keys of all relevant items in form order (notes and
    computed delays included).
    """

    model_config = ConfigDict(frozen=True)

    answers: dict[str, Any]
    errors: tuple[AnswerError, ...] = ()
    dropped: tuple[str, ...] = ()
    relevant: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.errors

    def errors_by_item(self) -> dict[str, list[AnswerError]]:
        grouped: dict[str, list[AnswerError]] = {}
        for error in self.errors:
            grouped.setdefault(error.item, []).append(error)
        return grouped


@dataclass(frozen=True)
class FormPage:
    """One page of a one-section-per-page form: a relevant section and its items to show."""

    section: Section
    items: tuple[Item, ...]


class _Invalid(Exception):
    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message


def _is_empty(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    return isinstance(value, list | tuple) and not value


def _number(value: object) -> float:
    """A finite number from a number or numeric text (booleans are not numbers)."""
    if isinstance(value, bool):
        raise _Invalid("invalid_type", "expected a number, got a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _Invalid("invalid_type", "expected a finite number")
        return value
    if isinstance(value, str):
        try:
            number = float(value.strip().replace(",", "."))
        except ValueError:
            raise _Invalid("invalid_type", f"expected a number, got {value[:40]!r}") from None
        if not math.isfinite(number):
            raise _Invalid("invalid_type", "expected a finite number")
        return number
    raise _Invalid("invalid_type", f"expected a number, got {type(value).__name__}")


def _option_value(item: Item, raw: object) -> Any:
    if isinstance(raw, bool) and item.type in ("yes_no", "yes_no_dk"):
        raw = _BOOLEAN_ANSWERS[raw]
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise _Invalid("invalid_type", f"expected one option, got {type(raw).__name__}")
    if isinstance(raw, float) and not math.isfinite(raw):
        raise _Invalid("invalid_type", "expected a finite number")
    text = raw.strip() if isinstance(raw, str) else raw
    option = item.option(text)
    if option is None and isinstance(text, str) and item.type in _NUMERIC_SCALES:
        try:
            option = item.option(_number(text))
        except _Invalid:
            option = None
    if option is not None:
        return option.value
    if item.type in _NUMERIC_SCALES:
        try:
            _number(text)
        except _Invalid:
            pass
        else:
            values = [choice.value for choice in item.options if choice.value != "na"]
            raise _Invalid("out_of_range", f"{text!r} is not on the scale {values}")
    if text == "na":
        raise _Invalid("invalid_choice", "'not applicable' is not offered for this item")
    return _refuse_choice(item, text)


def _refuse_choice(item: Item, value: object) -> NoReturn:
    values = [choice.value for choice in item.options]
    shown = value[:40] if isinstance(value, str) else value
    raise _Invalid("invalid_choice", f"{shown!r} is not one of {values}")


def _many(item: Item, raw: object) -> list[Any]:
    if isinstance(raw, str):
        raw = raw.split()
    if not isinstance(raw, list | tuple):
        raise _Invalid("invalid_type", f"expected a list of choices, got {type(raw).__name__}")
    chosen: set[str] = set()
    for value in raw:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise _Invalid("invalid_type", f"expected choice values, got {type(value).__name__}")
        option = item.option(value.strip() if isinstance(value, str) else value)
        if option is None:
            _refuse_choice(item, value)
        if str(option.value) in chosen:
            raise _Invalid("invalid_choice", f"{option.value!r} is selected twice")
        chosen.add(str(option.value))
    return [choice.value for choice in item.options if choice.value in chosen]


def _bounded(item: Item, number: float) -> None:
    if number < 0:
        raise _Invalid("out_of_range", f"{number:g} is negative")
    if item.min is not None and number < item.min:
        raise _Invalid("out_of_range", f"{number:g} is below the minimum {item.min:g}")
    if item.max is not None and number > item.max:
        raise _Invalid("out_of_range", f"{number:g} is above the maximum {item.max:g}")


def _date(raw: object) -> str:
    if isinstance(raw, dt.datetime):
        raise _Invalid("invalid_date", "expected a date without a time")
    if isinstance(raw, dt.date):
        return raw.isoformat()
    if not isinstance(raw, str):
        raise _Invalid("invalid_date", f"expected a YYYY-MM-DD date, got {type(raw).__name__}")
    text = raw.strip()
    if not _ISO_DATE.match(text):
        raise _Invalid("invalid_date", f"expected a YYYY-MM-DD date, got {text[:40]!r}")
    try:
        return dt.date.fromisoformat(text).isoformat()
    except ValueError:
        raise _Invalid("invalid_date", f"{text!r} is not a calendar date") from None


_EMAIL = re.compile(r"[\w.+%-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}")
_PHONE = re.compile(
    r"(?<![\w+])(?:(?:\+|00)\d{2,3}[\s.\-]?(?:\(0\)[\s.\-]?)?\d|0\d)(?:[\s.\-]?\d{2}){4}(?!\d)"
)


def redact_contacts(text: str) -> str:
    """Mask e-mail addresses and phone numbers (French and international formats)."""
    text = _EMAIL.sub("[adresse masquée]", text)
    return _PHONE.sub("[numéro masqué]", text)


def _text(item: Item, raw: object) -> str:
    if not isinstance(raw, str):
        raise _Invalid("invalid_type", f"expected text, got {type(raw).__name__}")
    if len(raw) > item.text_max_length:
        raise _Invalid("too_long", f"{len(raw)} characters, at most {item.text_max_length}")
    if not item.redact_contacts:
        return raw
    # a mask can be longer than what it hides: stay within the limit the answer passed
    return redact_contacts(raw)[: item.text_max_length]


def _clean(item: Item, raw: object) -> Any:
    kind = item.type
    if kind in SCALE_TYPES or kind == "choice_one":
        return _option_value(item, raw)
    if kind == "choice_many":
        return _many(item, raw)
    if kind == "count":
        number = _number(raw)
        if not float(number).is_integer():
            raise _Invalid("invalid_type", f"expected a whole number, got {number:g}")
        _bounded(item, number)
        return int(number)
    if kind == "duration":
        number = _number(raw)
        _bounded(item, number)
        return int(number) if float(number).is_integer() else number
    if kind == "date":
        return _date(raw)
    if kind == "text":
        return _text(item, raw)
    raise AssertionError(f"unanswered type {kind}")  # notes and delays never get here


@dataclass
class _Walk:
    answers: dict[str, Any]
    errors: list[AnswerError]
    dropped: list[str]
    relevant: list[Item]


def _walk(
    instrument: Instrument, answers: Mapping[Any, Any], required_in: Collection[str] | None
) -> _Walk:
    walk = _Walk({}, [], [], [])
    clean = walk.answers
    for key in answers:
        if not (isinstance(key, str) and instrument.has_item(key)):
            walk.errors.append(
                AnswerError(item=str(key), code="unknown_item", message="no such item")
            )
    for section in instrument.sections:
        section_expression = section.relevant_expression
        section_on = section_expression is None or section_expression.evaluate(clean)
        check_required = required_in is None or section.key in required_in
        for item in section.items:
            key = item.key
            raw = answers.get(key)
            present = not _is_empty(raw)
            expression = item.relevant_expression
            if not (section_on and (expression is None or expression.evaluate(clean))):
                if present:
                    walk.dropped.append(key)
                continue
            walk.relevant.append(item)
            if item.type == "delay":
                _check_dates(item, clean, walk.errors)
            if not item.answerable:
                if present:
                    message = f"a {item.type} item takes no answer"
                    walk.errors.append(AnswerError(item=key, code="read_only", message=message))
                continue
            if not present:
                if item.required and check_required:
                    message = "an answer is required"
                    walk.errors.append(AnswerError(item=key, code="required", message=message))
                continue
            try:
                value = _clean(item, raw)
            except _Invalid as invalid:
                walk.errors.append(
                    AnswerError(item=key, code=invalid.code, message=invalid.message)
                )
                continue
            constraint = item.constraint_expression
            if (
                constraint is not None
                and constraint.keys <= clean.keys()  # checked once what it compares with is known
                and not constraint.evaluate(clean, value)
            ):
                message = (
                    item.constraint_message.en
                    if item.constraint_message
                    else f"the answer does not satisfy {constraint.source!r}"
                )
                walk.errors.append(AnswerError(item=key, code="constraint", message=message))
                continue
            clean[key] = value
    return walk


def _check_dates(item: Item, clean: dict[str, Any], errors: list[AnswerError]) -> None:
    assert item.start is not None and item.end is not None
    start, end = clean.get(item.start), clean.get(item.end)
    if start is not None and end is not None and end < start:
        del clean[item.end]
        message = f"{item.end} ({end}) is before {item.start} ({start})"
        errors.append(AnswerError(item=item.end, code="date_order", message=message))


def validate_answers(
    instrument: Instrument,
    answers: Mapping[str, Any],
    *,
    sections: Collection[str] | None = None,
) -> AnswerValidation:
    """Check and normalise answers; never raises on bad input.

    ``sections`` limits the *required* checks to those section keys (a one-section-per-page
    form validating the page just posted); every other check applies to all answers.
    """
    walk = _walk(instrument, answers, sections)
    return AnswerValidation.model_construct(
        answers=walk.answers,
        errors=tuple(walk.errors),
        dropped=tuple(walk.dropped),
        relevant=tuple(item.key for item in walk.relevant),
    )


def relevant_items(instrument: Instrument, answers: Mapping[str, Any]) -> tuple[Item, ...]:
    """The items relevant given the answers so far, in form order."""
    return tuple(_walk(instrument, answers, ()).relevant)


def form_pages(instrument: Instrument, answers: Mapping[str, Any]) -> tuple[FormPage, ...]:
    """One page per relevant section, with the items to show (computed delays left out).

    Relevance depends on earlier answers: recompute after each page is posted.
    """
    shown: dict[str, list[Item]] = {}
    for item in _walk(instrument, answers, ()).relevant:
        if item.type != "delay":
            shown.setdefault(instrument.section_of(item.key).key, []).append(item)
    return tuple(
        FormPage(section=section, items=tuple(shown[section.key]))
        for section in instrument.sections
        if section.key in shown
    )
