"""The "new version from this one" form: field names, posted values → definition, errors → fields.

The form edits what an organiser tunes between editions (texts, order, required, weights,
thresholds, knock-outs); everything else of the version is carried over unchanged, and the
result is validated by ``surveys`` like any other definition. Field names use ``-`` as the
separator because instrument keys never contain one: ``item-wait-weight``,
``section-accueil-title_fr``, ``title_en``.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import surveys
from app.core.i18n import _

#: Item types whose score comes from thresholds, and whose knock-out is a limit (``above``).
THRESHOLD_TYPES = frozenset({"count", "duration", "delay"})
_NUMBER = re.compile(r"^-?\d+(?:[.,]\d+)?$")


@dataclass(frozen=True)
class EditedDefinition:
    """The definition the posted form describes, and the values it could not read."""

    data: dict[str, Any]
    errors: dict[str, str]


def item_field(key: str, name: str) -> str:
    return f"item-{key}-{name}"


def section_field(key: str, name: str) -> str:
    return f"section-{key}-{name}"


def _number_text(value: float | int | None, *, comma: bool = False) -> str:
    if value is None:
        return ""
    if float(value).is_integer():
        return str(int(value))
    return str(value).replace(".", ",") if comma else str(value)


def _choice_text(value: object) -> str:
    return _number_text(value) if isinstance(value, int | float) else str(value)


def initial_values(instrument: surveys.Instrument, *, locale: str = "fr") -> dict[str, str]:
    """The form's fields filled with the version being copied (decimal comma in French)."""
    comma = locale == "fr"

    def number(value: float | int | None) -> str:
        return _number_text(value, comma=comma)

    values: dict[str, str] = {
        "version_label": instrument.version,
        "title_fr": instrument.title.fr,
        "title_en": instrument.title.en,
    }
    for section in instrument.sections:
        values[section_field(section.key, "title_fr")] = section.title.fr
        values[section_field(section.key, "title_en")] = section.title.en
        for position, item in enumerate(section.items, start=1):
            field = item.key
            values[item_field(field, "position")] = str(position)
            values[item_field(field, "label_fr")] = item.label.fr
            values[item_field(field, "label_en")] = item.label.en
            values[item_field(field, "help_fr")] = item.help.fr if item.help else ""
            values[item_field(field, "help_en")] = item.help.en if item.help else ""
            if item.required:
                values[item_field(field, "required")] = "on"
            values[item_field(field, "weight")] = number(item.weight)
            if item.type in THRESHOLD_TYPES:
                thresholds = item.thresholds
                values[item_field(field, "threshold_full")] = number(
                    thresholds.full if thresholds else None
                )
                values[item_field(field, "threshold_partial")] = number(
                    thresholds.partial if thresholds else None
                )
                knockout = item.knockout
                values[item_field(field, "knockout_above")] = number(
                    knockout.above if knockout else None
                )
            elif item.options:
                knockout = item.knockout
                values[item_field(field, "knockout_fail_if")] = ", ".join(
                    _choice_text(value) for value in (knockout.fail_if if knockout else ())
                )
    return values


def _text(form: Mapping[str, str], name: str) -> str:
    return str(form.get(name, "")).strip()


def _parse_number(
    form: Mapping[str, str], name: str, errors: dict[str, str], *, integer: bool = False
) -> float | None:
    """A number typed with a decimal point or comma; blank is None; anything else an error."""
    text = _text(form, name).replace("\u202f", "").replace("\xa0", "").replace(" ", "")
    if not text:
        return None
    if not _NUMBER.match(text) or (integer and not text.lstrip("-").isdigit()):
        errors[name] = _("Enter a whole number.") if integer else _("Enter a number.")
        return None
    return float(text.replace(",", "."))


def _localized(form: Mapping[str, str], base: str) -> dict[str, str] | None:
    """``{fr, en}`` from two fields; None when both are blank (a missing half is for surveys)."""
    fr, en = _text(form, base + "_fr"), _text(form, base + "_en")
    if not fr and not en:
        return None
    return {"fr": fr, "en": en}


def _choice_value(text: str, item: surveys.Item) -> str | int | float:
    """The option whose value reads as ``text`` (``1`` and ``"1"`` alike), else the text."""
    for option in item.options:
        if _choice_text(option.value) == text:
            return option.value
    return text


def apply_form(instrument: surveys.Instrument, form: Mapping[str, str]) -> EditedDefinition:
    """The definition of ``instrument`` with the form's edits (not validated yet)."""
    data: dict[str, Any] = copy.deepcopy(instrument.model_dump(mode="json", exclude_defaults=True))
    errors: dict[str, str] = {}
    data["version"] = _text(form, "version_label")
    data["title"] = {"fr": _text(form, "title_fr"), "en": _text(form, "title_en")}
    for section_data, section in zip(data["sections"], instrument.sections, strict=True):
        section_data["title"] = {
            "fr": _text(form, section_field(section.key, "title_fr")),
            "en": _text(form, section_field(section.key, "title_en")),
        }
        ordered: list[tuple[float, int, dict[str, Any]]] = []
        for index, (item_data, item) in enumerate(
            zip(section_data["items"], section.items, strict=True)
        ):
            _apply_item(item_data, item, form, errors)
            position = _parse_number(form, item_field(item.key, "position"), errors, integer=True)
            ordered.append((index + 1 if position is None else position, index, item_data))
        ordered.sort(key=lambda entry: (entry[0], entry[1]))
        section_data["items"] = [entry[2] for entry in ordered]
    return EditedDefinition(data=data, errors=errors)


def _apply_item(
    data: dict[str, Any], item: surveys.Item, form: Mapping[str, str], errors: dict[str, str]
) -> None:
    key = item.key
    data["label"] = {
        "fr": _text(form, item_field(key, "label_fr")),
        "en": _text(form, item_field(key, "label_en")),
    }
    help_text = _localized(form, item_field(key, "help"))
    if help_text is None:
        data.pop("help", None)
    else:
        data["help"] = help_text
    data["required"] = item_field(key, "required") in form
    weight = _parse_number(form, item_field(key, "weight"), errors)
    data["weight"] = 0 if weight is None else weight
    if item.type in THRESHOLD_TYPES:
        full = _parse_number(form, item_field(key, "threshold_full"), errors)
        partial = _parse_number(form, item_field(key, "threshold_partial"), errors)
        if full is None and partial is None:
            data.pop("thresholds", None)
        elif full is None:
            errors[item_field(key, "threshold_full")] = _(
                "Give the full-credit threshold, or leave both thresholds empty."
            )
        else:
            data["thresholds"] = {"full": full, **({"partial": partial} if partial else {})}
        if item_field(key, "knockout_above") not in form:
            return  # the form offers knock-outs on grids only: keep what the version has
        above = _parse_number(form, item_field(key, "knockout_above"), errors)
        if above is None:
            data.pop("knockout", None)
        else:
            unit = item.knockout.unit if item.knockout else "working_days"
            data["knockout"] = {"above": above, **({"unit": unit} if item.type == "delay" else {})}
    elif item.options and item_field(key, "knockout_fail_if") in form:
        failing = [
            part.strip()
            for part in _text(form, item_field(key, "knockout_fail_if")).split(",")
            if part.strip()
        ]
        if failing:
            data["knockout"] = {"fail_if": [_choice_value(text, item) for text in failing]}
        else:
            data.pop("knockout", None)


# Which form field each part of an instrument path is edited by (``surveys`` names problems by
# path: ``accueil/attente/thresholds/partial``).
_ITEM_FIELDS = {
    "label/fr": "label_fr",
    "label/en": "label_en",
    "label": "label_fr",
    "help/fr": "help_fr",
    "help/en": "help_en",
    "help": "help_fr",
    "required": "required",
    "weight": "weight",
    "thresholds/full": "threshold_full",
    "thresholds/partial": "threshold_partial",
    "thresholds": "threshold_full",
    "knockout/above": "knockout_above",
    "knockout/fail_if": "knockout_fail_if",
    "knockout": "knockout_above",
}
_SECTION_FIELDS = {"title/fr": "title_fr", "title/en": "title_en", "title": "title_fr"}


def _translated(problem: surveys.DefinitionProblem) -> str:
    messages = {
        "negative_weight": _("The weight must be zero or more."),
        "threshold_order": _("The partial-credit threshold must be above the full-credit one."),
        "missing_translation": _("Give this text in French and in English."),
        "zero_weight": _("The weights add up to 0: give a weight to at least one question."),
        "weight_in_unscored": _("This section is not scored: its questions take no weight."),
    }
    return messages.get(problem.code, problem.message)


def problem_fields(
    problems: tuple[surveys.DefinitionProblem, ...], instrument: surveys.Instrument
) -> dict[str, str]:
    """Each problem on the form field that edits it (``form`` when no field does)."""
    item_keys = {item.key for item in instrument.items}
    section_keys = {section.key for section in instrument.sections}
    errors: dict[str, str] = {}
    for problem in problems:
        parts = problem.path.split("/") if problem.path else []
        field = "form"
        if len(parts) >= 2 and parts[0] in section_keys and parts[1] in item_keys:
            # The exact field, else the field of its first part (``knockout/unit`` → knock-out).
            name = _ITEM_FIELDS.get("/".join(parts[2:])) or _ITEM_FIELDS.get("".join(parts[2:3]))
            field = item_field(parts[1], name) if name else "form"
        elif parts and parts[0] in section_keys:
            name = _SECTION_FIELDS.get("/".join(parts[1:]))
            field = section_field(parts[0], name) if name else "form"
        elif parts[:1] == ["title"]:
            field = "title_en" if parts[1:] == ["en"] else "title_fr"
        elif parts[:1] == ["version"]:
            field = "version_label"
        message = _translated(problem)
        if field == "form":
            message = f"{problem.path}: {message}" if problem.path else message
        if field in errors and field == "form":
            errors[field] += " " + message
        else:
            errors.setdefault(field, message)
    return errors
