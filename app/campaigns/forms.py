"""The configuration form: posted fields → ``CampaignConfig``, and errors back onto the fields.

Weights and shares are typed as percentages (French decimal comma accepted); the model keeps
its own units (channel weights summing to 100, component weights and shares as fractions).
Every message is worded for people and translated; pydantic's messages never reach the page.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from babel.numbers import format_decimal
from pydantic import ValidationError

from app.authorities.models import AuthorityKind
from app.campaigns.schemas import (
    CampaignConfig,
    Channel,
    MissingChannel,
    PublicationScope,
)
from app.core.i18n import _, get_locale

# Sums typed by hand (33,3 + 33,3 + 33,4) are accepted within this margin, in points.
PERCENT_TOLERANCE = 0.05
MAX_CATEGORIES = 40
# "count" is the live recount (htmx): rows ticked for removal stay, so row numbers hold.
ACTIONS = ("save", "add_category", "recount", "count")

# The names of the form's single fields, in the order the page shows them.
ELIGIBILITY_FIELDS = ("min_respondents", "min_channels_tested", "min_visits_per_tested_channel")
SCALAR_FIELDS = (
    "component-survey",
    "component-mystery",
    *ELIGIBILITY_FIELDS,
    "confidence_level",
    "seed",
    "missing_channel",
    "publication_scope",
    "publication_top_k",
    "replicate_share",
    "replicate_minimum",
)

_SPACES = re.compile(r"[\s\u00a0\u202f]+")
_NOT_KEY = re.compile(r"[^a-z0-9]+")
_ACCENTS = str.maketrans("àâäáãåçéèêëíìîïñóòôöõúùûüýÿœæ", "aaaaaaceeeeiiiinooooouuuuyyoa")


@dataclass
class CategoryRow:
    """One category as typed in the form (text, so a wrong value is shown back as typed)."""

    key: str = ""
    label_fr: str = ""
    label_en: str = ""
    kinds: list[str] = field(default_factory=list)
    population_min: str = ""
    population_max: str = ""

    def is_blank(self) -> bool:
        return not (
            self.key
            or self.label_fr
            or self.label_en
            or self.kinds
            or self.population_min
            or self.population_max
        )


@dataclass
class ConfigForm:
    """What the page shows in its fields: the saved configuration, or the user's input."""

    categories: list[CategoryRow]
    values: dict[str, str]
    channel_weights: dict[str, str]
    tests_per_channel: dict[str, str]
    invitations_only: bool = False


@dataclass(frozen=True)
class CategoryCount:
    """Registered candidates the row's kinds and band would hold (first matching row wins)."""

    row: int
    count: int


@dataclass(frozen=True)
class ParsedForm:
    form: ConfigForm
    action: str
    errors: dict[str, str]
    config: CampaignConfig | None


def category_field(row: int, name: str) -> str:
    return f"cat-{row}-{name}"


# --- numbers in the reader's format ------------------------------------------------------------


def _decimal_text(value: float, locale: str) -> str:
    return format_decimal(round(value, 4), format="0.####", locale=locale)


def _parse_decimal(text: str) -> float | None:
    cleaned = _SPACES.sub("", text).removesuffix("%").replace(",", ".")
    if not cleaned:
        return None
    try:
        number = float(cleaned)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _parse_whole(text: str) -> int | None:
    cleaned = _SPACES.sub("", text)
    if not re.fullmatch(r"-?\d{1,12}", cleaned):
        return None
    return int(cleaned)


# --- configuration → form ----------------------------------------------------------------------


def form_from_config(config: CampaignConfig, *, locale: str) -> ConfigForm:
    weight_total = sum(config.channel_weights.values()) or 1.0
    component_total = config.component_weights.survey + config.component_weights.mystery
    return ConfigForm(
        categories=[
            CategoryRow(
                key=category.key,
                label_fr=category.label_fr,
                label_en=category.label_en,
                kinds=[kind.value for kind in category.kinds],
                population_min=str(category.population_min),
                population_max=(
                    "" if category.population_max is None else str(category.population_max)
                ),
            )
            for category in config.categories
        ],
        values={
            "component-survey": _decimal_text(
                100 * config.component_weights.survey / component_total, locale
            ),
            "component-mystery": _decimal_text(
                100 * config.component_weights.mystery / component_total, locale
            ),
            "min_respondents": str(config.eligibility.min_respondents),
            "min_channels_tested": str(config.eligibility.min_channels_tested),
            "min_visits_per_tested_channel": str(config.eligibility.min_visits_per_tested_channel),
            "confidence_level": _decimal_text(100 * config.confidence_level, locale),
            "seed": str(config.seed),
            "missing_channel": config.missing_channel.value,
            "publication_scope": config.publication.scope.value,
            "publication_top_k": str(config.publication.top_k),
            "replicate_share": _decimal_text(100 * config.replicates.share, locale),
            "replicate_minimum": str(config.replicates.minimum),
        },
        channel_weights={
            channel.value: _decimal_text(
                100 * config.channel_weights.get(channel, 0.0) / weight_total, locale
            )
            for channel in Channel
        },
        tests_per_channel={
            channel.value: str(config.tests_per_channel.get(channel, 0)) for channel in Channel
        },
        invitations_only=config.invitations_only,
    )


# --- posted fields → form → configuration ------------------------------------------------------


def _text(posted: Mapping[str, Any], name: str, limit: int = 200) -> str:
    value = posted.get(name, "")
    return value.strip()[:limit] if isinstance(value, str) else ""


def read_form(posted: Any) -> tuple[ConfigForm, str]:
    """The form as posted (a Starlette ``FormData``), rows marked for removal left out."""
    try:
        row_count = min(int(_text(posted, "categories-count", 4)), MAX_CATEGORIES)
    except ValueError:
        row_count = 0
    action = _text(posted, "action", 20)
    rows = []
    for row in range(max(row_count, 0)):
        if posted.get(category_field(row, "remove")) and action != "count":
            continue
        kinds = [
            value
            for value in posted.getlist(category_field(row, "kinds"))
            if isinstance(value, str)
        ]
        rows.append(
            CategoryRow(
                key=_text(posted, category_field(row, "key"), 40),
                label_fr=_text(posted, category_field(row, "label_fr"), 120),
                label_en=_text(posted, category_field(row, "label_en"), 120),
                kinds=[kind for kind in kinds if kind in set(AuthorityKind)],
                population_min=_text(posted, category_field(row, "population_min"), 20),
                population_max=_text(posted, category_field(row, "population_max"), 20),
            )
        )
    form = ConfigForm(
        categories=rows,
        values={name: _text(posted, name, 40) for name in SCALAR_FIELDS},
        channel_weights={c.value: _text(posted, f"weight-{c.value}", 20) for c in Channel},
        tests_per_channel={c.value: _text(posted, f"tests-{c.value}", 20) for c in Channel},
        invitations_only=bool(posted.get("invitations_only")),
    )
    return form, action if action in ACTIONS else "save"


def suggested_key(label: str) -> str:
    """A new category's key from its French label: ``Communes rurales`` → ``communes-rurales``."""
    return _NOT_KEY.sub("-", label.lower().translate(_ACCENTS)).strip("-")[:40]


class _Collector:
    def __init__(self) -> None:
        self.errors: dict[str, str] = {}

    def add(self, name: str, message: str) -> None:
        self.errors.setdefault(name, message)

    def decimal(self, name: str, text: str) -> float | None:
        if not text:
            self.add(name, _("Enter a number."))
            return None
        number = _parse_decimal(text)
        if number is None:
            self.add(name, _("Enter a number, such as 12,5."))
        return number

    def whole(self, name: str, text: str, *, low: int, high: int | None = None) -> int | None:
        if not text:
            self.add(name, _("Enter a whole number."))
            return None
        number = _parse_whole(text)
        if number is None:
            self.add(name, _("Enter a whole number, without decimals."))
            return None
        if number < low or (high is not None and number > high):
            if high is None:
                self.add(name, _("Enter a whole number of at least %(low)d.") % {"low": low})
            else:
                self.add(
                    name,
                    _("Enter a whole number from %(low)d to %(high)d.")
                    % {"low": low, "high": high},
                )
            return None
        return number


def _check_percentages(
    collector: _Collector, group: str, values: dict[str, float | None], *, names: dict[str, str]
) -> None:
    """Each share from 0 to 100, and all of them adding up to 100 %."""
    for key, value in values.items():
        if value is not None and not 0 <= value <= 100:
            collector.add(names[key], _("Enter a percentage from 0 to 100."))
    if all(value is not None for value in values.values()) and not any(
        names[key] in collector.errors for key in values
    ):
        total = sum(value or 0.0 for value in values.values())
        if abs(total - 100) > PERCENT_TOLERANCE:
            collector.add(
                group,
                _("The percentages must add up to 100 %%; they add up to %(total)s %%.")
                % {"total": _decimal_text(total, _locale())},
            )


def _locale() -> str:
    return get_locale()


def _category_data(collector: _Collector, rows: list[CategoryRow]) -> list[dict[str, Any]]:
    """Each row checked on its own, then the bands together (no overlap, no gap)."""
    data: list[dict[str, Any]] = []
    bands: list[tuple[int, int, float, set[str]]] = []  # row, low, high, kinds
    for row, category in enumerate(rows):
        if not category.key and category.label_fr:
            category.key = suggested_key(category.label_fr)
        for name in ("label_fr", "label_en"):
            if not getattr(category, name):
                collector.add(category_field(row, name), _("Give the category a name."))
        if not category.key:
            collector.add(category_field(row, "key"), _("Give the category an identifier."))
        elif not re.fullmatch(r"[a-z0-9][a-z0-9-]*", category.key):
            collector.add(
                category_field(row, "key"),
                _("Use lower-case letters, digits and hyphens only, such as communes-rurales."),
            )
        if not category.kinds:
            collector.add(category_field(row, "kinds"), _("Choose at least one kind of authority."))
        low = (
            0
            if not category.population_min
            else collector.whole(
                category_field(row, "population_min"), category.population_min, low=0
            )
        )
        high = (
            None
            if not category.population_max
            else collector.whole(
                category_field(row, "population_max"), category.population_max, low=1
            )
        )
        if low is not None and high is not None and high <= low:
            collector.add(
                category_field(row, "population_max"),
                _("The upper limit must be greater than the lower limit."),
            )
        data.append(
            {
                "key": category.key,
                "label_fr": category.label_fr,
                "label_en": category.label_en,
                "kinds": category.kinds,
                "population_min": low if low is not None else 0,
                "population_max": high,
            }
        )
        if low is not None and (high is not None or not category.population_max):
            bands.append((row, low, math.inf if high is None else high, set(category.kinds)))
    if not rows:
        collector.add("categories", _("Add at least one category."))
    seen: dict[str, int] = {}
    for row, category in enumerate(rows):
        if category.key and category.key in seen:
            collector.add(
                category_field(row, "key"),
                _("Another category already uses this identifier (category %(n)d).")
                % {"n": seen[category.key] + 1},
            )
        seen.setdefault(category.key, row)
    _check_bands(collector, bands)
    return data


def _check_bands(collector: _Collector, bands: list[tuple[int, int, float, set[str]]]) -> None:
    """Two rows must never claim the same authority, and a kind's bands must leave no hole."""
    for index, (row, low, high, kinds) in enumerate(bands):
        for other, other_low, other_high, other_kinds in bands[:index]:
            shared = kinds & other_kinds
            if shared and low < other_high and other_low < high:
                collector.add(
                    category_field(row, "population_min"),
                    _(
                        "This band overlaps category %(n)d for %(kind)s: an authority "
                        "can only be in one category."
                    )
                    % {"n": other + 1, "kind": _(sorted(shared)[0])},
                )
    for kind in AuthorityKind:
        spans = sorted((low, high, row) for row, low, high, kinds in bands if kind.value in kinds)
        for (_low, high, _row), (next_low, _next_high, next_row) in pairwise(spans):
            if high < next_low:
                collector.add(
                    category_field(next_row, "population_min"),
                    _(
                        "No category holds %(kind)s from %(low)s to %(high)s inhabitants: "
                        "start this band at %(low)s."
                    )
                    % {
                        "kind": _(kind.value),
                        "low": format_decimal(high, locale=_locale()),
                        "high": format_decimal(next_low, locale=_locale()),
                    },
                )


# Where each part of the model is typed in the form.
_LOCATION_FIELDS: dict[tuple[str, ...], str] = {
    ("component_weights",): "component_weights",
    ("component_weights", "survey"): "component-survey",
    ("component_weights", "mystery"): "component-mystery",
    ("confidence_level",): "confidence_level",
    ("seed",): "seed",
    ("missing_channel",): "missing_channel",
    ("publication", "scope"): "publication_scope",
    ("publication", "top_k"): "publication_top_k",
    ("replicates", "share"): "replicate_share",
    ("replicates", "minimum"): "replicate_minimum",
    ("channel_weights",): "channel_weights",
    ("tests_per_channel",): "tests_per_channel",
    ("categories",): "categories",
    **{("eligibility", name): name for name in ELIGIBILITY_FIELDS},
}


def field_of(location: Iterable[Any]) -> str:
    """The form field a pydantic error location points at."""
    parts = tuple(str(part) for part in location)
    if len(parts) >= 2 and parts[0] == "categories" and parts[1].isdigit():
        name = parts[2] if len(parts) > 2 else "population_max"
        return category_field(int(parts[1]), name)
    if len(parts) == 2 and parts[0] == "channel_weights":
        return f"weight-{parts[1]}"
    if len(parts) == 2 and parts[0] == "tests_per_channel":
        return f"tests-{parts[1]}"
    return _LOCATION_FIELDS.get(parts, "form")


def _human_message(item: Mapping[str, Any]) -> str:
    """A translated message for what the form's own checks did not already catch."""
    kind = item.get("type", "")
    limits = item.get("ctx") or {}
    if kind in ("greater_than_equal", "greater_than"):
        return _("The value is too small (minimum %(limit)s).") % {
            "limit": limits.get("ge", limits.get("gt", ""))
        }
    if kind in ("less_than_equal", "less_than"):
        return _("The value is too large (maximum %(limit)s).") % {
            "limit": limits.get("le", limits.get("lt", ""))
        }
    if kind == "enum":
        return _("Choose one of the options.")
    if kind in ("string_too_long", "string_too_short", "too_short", "missing"):
        return _("Fill in this field.")
    return _("This value is not accepted.")


def errors_from_validation(error: ValidationError) -> dict[str, str]:
    messages: dict[str, str] = {}
    for item in error.errors():
        messages.setdefault(field_of(item["loc"]), _human_message(item))
    return messages


def parse_form(posted: Any) -> ParsedForm:
    """The configuration the form describes, or the errors of each field (FR/EN)."""
    form, action = read_form(posted)
    collector = _Collector()
    categories = _category_data(collector, form.categories)
    weights = {
        channel: collector.decimal(f"weight-{channel}", text)
        for channel, text in form.channel_weights.items()
    }
    _check_percentages(
        collector,
        "channel_weights",
        weights,
        names={channel: f"weight-{channel}" for channel in weights},
    )
    components = {
        part: collector.decimal(f"component-{part}", form.values[f"component-{part}"])
        for part in ("survey", "mystery")
    }
    _check_percentages(
        collector,
        "component_weights",
        components,
        names={part: f"component-{part}" for part in components},
    )
    if components["survey"] == 0 and components["mystery"] == 0:
        collector.add("component_weights", _("The two components cannot both weigh 0 %."))
    tests = {
        channel: collector.whole(f"tests-{channel}", text, low=0, high=50)
        for channel, text in form.tests_per_channel.items()
    }
    values = form.values
    eligibility = {
        "min_respondents": collector.whole(
            "min_respondents", values["min_respondents"], low=0, high=100_000
        ),
        "min_channels_tested": collector.whole(
            "min_channels_tested", values["min_channels_tested"], low=0, high=len(Channel)
        ),
        "min_visits_per_tested_channel": collector.whole(
            "min_visits_per_tested_channel",
            values["min_visits_per_tested_channel"],
            low=1,
            high=50,
        ),
    }
    level = collector.decimal("confidence_level", values["confidence_level"])
    if level is not None and not 50 < level < 100:
        collector.add(
            "confidence_level",
            _("Enter a level above 50 %% and below 100 %%, such as 95 %%.") % {},
        )
    seed = collector.whole("seed", values["seed"], low=0, high=2**32 - 1)
    if values["missing_channel"] not in set(MissingChannel):
        collector.add("missing_channel", _("Choose what a missing channel does."))
    if values["publication_scope"] not in set(PublicationScope):
        collector.add("publication_scope", _("Choose whom the public pages name."))
    top_k = collector.whole("publication_top_k", values["publication_top_k"], low=1, high=1000)
    share = collector.decimal("replicate_share", values["replicate_share"])
    if share is not None and not 0 <= share <= 100:
        collector.add("replicate_share", _("Enter a percentage from 0 to 100."))
    minimum = collector.whole("replicate_minimum", values["replicate_minimum"], low=0, high=10_000)
    if collector.errors:
        return ParsedForm(form, action, collector.errors, None)
    raw = {
        "categories": categories,
        "channel_weights": weights,
        "component_weights": {
            "survey": (components["survey"] or 0.0) / 100,
            "mystery": (components["mystery"] or 0.0) / 100,
        },
        "eligibility": eligibility,
        "tests_per_channel": tests,
        "invitations_only": form.invitations_only,
        "confidence_level": (level or 0.0) / 100,
        "seed": seed,
        "missing_channel": values["missing_channel"],
        "publication": {"scope": values["publication_scope"], "top_k": top_k},
        "replicates": {"share": (share or 0.0) / 100, "minimum": minimum},
    }
    try:
        config = CampaignConfig.model_validate(raw)
    except ValidationError as exc:
        return ParsedForm(form, action, errors_from_validation(exc), None)
    return ParsedForm(form, action, {}, config)


def count_by_row(
    rows: list[CategoryRow], profiles: Iterable[tuple[str, int]]
) -> tuple[list[int | None], int]:
    """Registered candidates each row would hold, and how many no row holds.

    A row whose band cannot be read yet counts ``None``; each candidate goes to the first row
    that matches, as registration does.
    """
    bands: list[tuple[set[str], int, float] | None] = []
    for row in rows:
        low = _parse_whole(row.population_min) if row.population_min else 0
        high = _parse_whole(row.population_max) if row.population_max else None
        if low is None or (row.population_max and high is None):
            bands.append(None)
        else:
            bands.append((set(row.kinds), low, math.inf if high is None else high))
    counts: list[int | None] = [0 if band is not None else None for band in bands]
    unplaced = 0
    for kind, population in profiles:
        for index, band in enumerate(bands):
            if band is not None and kind in band[0] and band[1] <= population < band[2]:
                counts[index] = (counts[index] or 0) + 1
                break
        else:
            unplaced += 1
    return counts, unplaced


# --- words for the choices (the page never shows a code) -------------------------------------


@dataclass(frozen=True)
class Choice:
    value: str
    label: str
    hint: str = ""


def missing_channel_choices() -> list[Choice]:
    return [
        Choice(
            MissingChannel.impute.value,
            _("Fill the gap with the category's average for that channel"),
            _(
                "The candidate stays ranked; the uncertainty of the filled-in value "
                "widens its interval."
            ),
        ),
        Choice(
            MissingChannel.unranked.value,
            _("Leave the candidate out of the ranking"),
            _("It still gets its scorecard, marked as incomplete."),
        ),
    ]


def publication_choices() -> list[Choice]:
    return [
        Choice(PublicationScope.all.value, _("Name every candidate")),
        Choice(
            PublicationScope.laureates_and_top.value,
            _("Name the laureates and the first candidates of each category"),
        ),
        Choice(
            PublicationScope.laureates.value,
            _("Name the laureates only; the others are counted"),
        ),
    ]


def kind_choices() -> list[str]:
    return [kind.value for kind in AuthorityKind]


def channel_choices() -> list[str]:
    return [channel.value for channel in Channel]


_CATEGORY_PARTS = {
    "key": lambda: _("identifier"),
    "label_fr": lambda: _("name in French"),
    "label_en": lambda: _("name in English"),
    "kinds": lambda: _("kinds of authority"),
    "population_min": lambda: _("from (inhabitants)"),
    "population_max": lambda: _("below (inhabitants)"),
}
_FIELD_LABELS = {
    "categories": lambda: _("Categories"),
    "channel_weights": lambda: _("Channel weights"),
    "tests_per_channel": lambda: _("Tests per candidate and channel"),
    "component_weights": lambda: _("Weights of the two instruments"),
    "component-survey": lambda: _("Citizen survey"),
    "component-mystery": lambda: _("Mystery shopping"),
    "min_respondents": lambda: _("Minimum respondents"),
    "min_channels_tested": lambda: _("Minimum channels tested"),
    "min_visits_per_tested_channel": lambda: _("Minimum visits per tested channel"),
    "confidence_level": lambda: _("Confidence level"),
    "seed": lambda: _("Seed of the random draws"),
    "missing_channel": lambda: _("A channel without any approved visit"),
    "publication_scope": lambda: _("Whom the public pages name"),
    "publication_top_k": lambda: _("Candidates named per category"),
    "replicate_share": lambda: _("Share of candidates with a second test"),
    "replicate_minimum": lambda: _("Minimum candidates with a second test"),
    "invitations_only": lambda: _("Invitations only"),
}


def field_label(name: str) -> str:
    """The words that name a field in the error summary (``Category 2, below (inhabitants)``)."""
    match = re.fullmatch(r"cat-(\d+)-(\w+)", name)
    if match and match[2] in _CATEGORY_PARTS:
        return _("Category %(n)d, %(part)s") % {
            "n": int(match[1]) + 1,
            "part": _CATEGORY_PARTS[match[2]](),
        }
    for prefix in ("weight-", "tests-"):
        if name.startswith(prefix) and name[len(prefix) :] in set(Channel):
            group = "channel_weights" if prefix == "weight-" else "tests_per_channel"
            return f"{_FIELD_LABELS[group]()}, {_(name[len(prefix) :])}"
    return _FIELD_LABELS[name]() if name in _FIELD_LABELS else _("Configuration")


def error_anchor(name: str) -> str:
    """The field an error summary link moves to (a group's first input)."""
    if name.endswith("-kinds"):
        return name + "-0"
    return {
        "categories": "cat-0-label_fr",
        "channel_weights": "weight-guichet",
        "tests_per_channel": "tests-guichet",
        "component_weights": "component-survey",
        "missing_channel": "missing_channel-0",
        "publication_scope": "publication_scope-0",
    }.get(name, name)
