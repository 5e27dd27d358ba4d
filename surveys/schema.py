"""The schema of an instrument: a survey questionnaire or a mystery-shopper grid.

An :class:`Instrument` has sections, each with items; every model is frozen (a published version
never changes) and refuses unknown fields. Validation happens in two layers, both reported with
the path of the offending field: the fields themselves (pydantic), then the rules that need the
whole item (:meth:`Item._check`) or the whole instrument (:meth:`Instrument._check`): duplicate
keys, weights, thresholds, references in skip logic, choices, translations.

Item types and their answers (``answers`` are JSON objects keyed by item key):

============  ===========================================  ==================================
type          answer value                                 score 0–100 (:mod:`surveys.scores`)
============  ===========================================  ==================================
likert5       1–5, or ``"na"`` if ``not_applicable``       (v−1)/4·100
scale1_4      1–4 (grids: courtesy, clarity), ``"na"``     (v−1)/3·100
scale0_10     0–10, ``"na"``                               v·10
smileys3      1 (bad), 2 (average), 3 (good), ``"na"``     0 / 50 / 100
yes_no        ``"yes"`` / ``"no"``, ``"na"``               100 / 0
yes_no_dk     ``"yes"`` / ``"no"`` / ``"dk"``              100 / 0 / missing
graded        0, 0.5, 1, ``"na"``                          0 / 50 / 100
choice_one    one choice value (text)                      the choice's ``score``, if scored
choice_many   list of choice values                        not scored
count         integer ≥ 0 (e.g. rings)                     thresholds
duration      seconds ≥ 0 (stopwatch)                      thresholds
date          ``"YYYY-MM-DD"``                             not scored
delay         computed: working days from ``start`` to     thresholds; ``"never"`` (start
              ``end`` (two date items); never typed        date, no end date) scores 0
text          string up to ``max_length`` (default 2000)   not scored
note          no answer (text shown to the respondent)     not scored
============  ===========================================  ==================================

``"na"`` (not applicable) and ``"dk"`` (don't know) are recorded but score as missing, never 0.
Thresholds are "lower is better": full credit at or under ``full``, 50 at or under ``partial``,
else 0. Profile items (age band, sex) are ``choice_one`` items with ``role: weighting``; a
choice with ``missing: true`` (e.g. "prefer not to say") counts as no answer in analysis.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from surveys.channels import CHANNELS, ChannelCode
from surveys.errors import ExpressionError
from surveys.expressions import (
    KEYWORDS,
    Compare,
    Current,
    Expression,
    Reference,
    Selected,
    parse_expression,
)
from surveys.expressions import (
    Literal as LiteralNode,
)

ItemType = Literal[
    "likert5",
    "scale1_4",
    "scale0_10",
    "smileys3",
    "yes_no",
    "yes_no_dk",
    "graded",
    "choice_one",
    "choice_many",
    "count",
    "duration",
    "date",
    "delay",
    "text",
    "note",
]
ITEM_TYPES: tuple[str, ...] = ItemType.__args__  # type: ignore[attr-defined]

NOT_APPLICABLE = "na"
DONT_KNOW = "dk"
NEVER = "never"  # value of a delay whose end date never came
DEFAULT_TEXT_MAX_LENGTH = 2000

#: Types whose options are fixed by the type (labels may be overridden through ``choices``).
SCALE_TYPES = frozenset(
    {"likert5", "scale1_4", "scale0_10", "smileys3", "yes_no", "yes_no_dk", "graded"}
)
CHOICE_TYPES = frozenset({"choice_one", "choice_many"})
CLOSED_TYPES = SCALE_TYPES | CHOICE_TYPES
NUMBER_TYPES = frozenset({"count", "duration"})
THRESHOLD_TYPES = frozenset({"count", "duration", "delay"})
NA_TYPES = frozenset({"likert5", "scale1_4", "scale0_10", "smileys3", "yes_no", "graded"})
#: Types that never take an answer from the respondent.
UNANSWERED_TYPES = frozenset({"note", "delay"})

Role = Literal["channel", "weighting"]
KnockOutUnit = Literal["working_days", "calendar_days", "months"]

_KEY_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
_CHOICE_VALUE = re.compile(r"^[A-Za-z0-9_.\-]+$")

# (value, French label, English label) of the types with fixed options.
_AGREE = (
    (1, "Pas du tout d'accord", "Strongly disagree"),
    (2, "Plutôt pas d'accord", "Disagree"),
    (3, "Ni d'accord ni pas d'accord", "Neither agree nor disagree"),
    (4, "Plutôt d'accord", "Agree"),
    (5, "Tout à fait d'accord", "Strongly agree"),
)
_DEFAULT_OPTIONS: dict[str, tuple[tuple[str | int | float, str, str], ...]] = {
    "likert5": _AGREE,
    "scale1_4": (
        (1, "Très insuffisant", "Very poor"),
        (2, "Insuffisant", "Poor"),
        (3, "Satisfaisant", "Good"),
        (4, "Très satisfaisant", "Very good"),
    ),
    "scale0_10": tuple((v, str(v), str(v)) for v in range(11)),
    "smileys3": ((1, "Mal", "Badly"), (2, "Moyennement", "So-so"), (3, "Bien", "Well")),
    "yes_no": (("yes", "Oui", "Yes"), ("no", "Non", "No")),
    "yes_no_dk": (
        ("yes", "Oui", "Yes"),
        ("no", "Non", "No"),
        ("dk", "Je ne sais pas", "Don't know"),
    ),
    "graded": ((0, "Non", "No"), (0.5, "En partie", "Partly"), (1, "Oui", "Yes")),
}
_NA_OPTION = (NOT_APPLICABLE, "Non concerné", "Not applicable")
#: Options whose answer counts as missing in scores.
_MISSING_VALUES = frozenset({NOT_APPLICABLE, DONT_KNOW})


Loc = tuple[str | int, ...]
Problem = tuple[Loc, str, str]


def _problem(loc: Loc, code: str, message: str) -> Problem:
    return loc, code, message


class SchemaProblems(ValueError):
    """Problems found by a model's own checks: ``(relative location, code, message)``.

    Raised inside pydantic validation; the loader turns each into a
    :class:`surveys.errors.DefinitionProblem` with the file, line and path.
    """

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{_dotted(loc)}: {message}" for loc, _, message in problems))


def _dotted(loc: Loc) -> str:
    return ".".join(str(part) for part in loc) or "(instrument)"


def _check_key(value: str) -> str:
    if value in KEYWORDS:
        raise PydanticCustomError(
            "reserved_key", "{key!r} is reserved by the expression language", {"key": value}
        )
    return value


Key = Annotated[
    str, Field(min_length=1, max_length=64, pattern=_KEY_PATTERN), AfterValidator(_check_key)
]
InstrumentKey = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_-]*$")]
ChoiceValue = Annotated[str | int | float, Field(union_mode="left_to_right")]


def _private(model: BaseModel, name: str) -> Any:
    """A private attribute, read without pydantic's slow ``__getattr__`` (hot loops)."""
    return model.__pydantic_private__[name]  # type: ignore[index]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class LocalizedText(_Frozen):
    """A text in French and English; both are required and non-empty."""

    fr: str
    en: str

    @model_validator(mode="before")
    @classmethod
    def _needs_both(cls, data: Any) -> Any:
        if isinstance(data, str):
            raise PydanticCustomError(
                "missing_translation",
                "a translated text needs both 'fr' and 'en', e.g. fr: '…' and en: '…'",
            )
        return data

    @field_validator("fr", "en")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        value = unicodedata.normalize("NFC", value).strip()
        if not value:
            raise PydanticCustomError("missing_translation", "the translation is empty")
        return value

    def get(self, language: str) -> str:
        """The text in ``language`` (``"fr"`` or ``"en"``; anything else gives French)."""
        return self.en if language == "en" else self.fr


class Choice(_Frozen):
    """One option of a closed question."""

    value: ChoiceValue
    label: LocalizedText
    #: Score 0–100 of this choice (``choice_one`` items that count in scores).
    score: float | None = Field(None, ge=0, le=100)
    #: Recorded, but counts as no answer in scores and weighting (e.g. "prefer not to say").
    missing: bool = False

    @field_validator("value", mode="before")
    @classmethod
    def _no_boolean(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise PydanticCustomError(
                "invalid_value", "a choice value cannot be a boolean; quote it ('yes', 'no')"
            )
        return value


class Thresholds(_Frozen):
    """Lower is better: full credit at or under ``full``, 50 at or under ``partial``, else 0."""

    full: float = Field(ge=0)
    partial: float | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _in_order(self) -> Thresholds:
        if self.partial is not None and self.partial <= self.full:
            raise PydanticCustomError(
                "threshold_order",
                "thresholds out of order: partial ({partial}) must be above full ({full})",
                {"partial": self.partial, "full": self.full},
            )
        return self


class KnockOut(_Frozen):
    """A failed knock-out sets the visit's channel score to 0.

    Either ``fail_if`` (answers that fail, for closed items) or ``above`` (a limit for counts,
    durations and delays). For a delay, the knock-out also fails when the end date never came
    (start date recorded, no end date): "no answer by working day 30" is ``above: 30``; the limit
    may be counted in ``working_days`` (default), ``calendar_days`` or calendar ``months``.
    """

    fail_if: tuple[ChoiceValue, ...] = ()
    above: float | None = Field(None, ge=0)
    unit: KnockOutUnit = "working_days"

    @field_validator("fail_if", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise PydanticCustomError(
                "invalid_value", "a knock-out value cannot be a boolean; quote it ('yes', 'no')"
            )
        return value if isinstance(value, list | tuple) else [value]

    @model_validator(mode="after")
    def _one_rule(self) -> KnockOut:
        if bool(self.fail_if) == (self.above is not None):
            raise PydanticCustomError(
                "invalid_knockout", "a knock-out needs exactly one of 'fail_if' and 'above'"
            )
        return self


class Theme(_Frozen):
    """A group of items scored together across sections (e.g. an engagement, a driver)."""

    key: Key
    label: LocalizedText
    source: str | None = None


class Item(_Frozen):
    """A question, an observation or a computed value."""

    key: Key
    type: ItemType
    label: LocalizedText
    help: LocalizedText | None = None
    required: bool = False
    weight: float = Field(0, ge=0)
    theme: Key | None = None
    source: str | None = None
    thresholds: Thresholds | None = None
    knockout: KnockOut | None = None
    relevant: str | None = None
    constraint: str | None = None
    constraint_message: LocalizedText | None = None
    #: Options of choice items; for fixed scales, optional relabelling of all their options.
    choices: tuple[Choice, ...] = ()
    #: Offer "not applicable" (value ``"na"``), which scores as missing.
    not_applicable: bool = False
    min: float | None = None
    max: float | None = None
    max_length: int | None = Field(None, ge=1)
    #: Delay items: the two date items the working days are counted between.
    start: Key | None = None
    end: Key | None = None
    #: ``channel``: the answer names the channel used; ``weighting``: a weighting variable.
    role: Role | None = None
    #: Text items: e-mail addresses and phone numbers are masked when answers are validated.
    redact_contacts: bool = False

    _options: tuple[Choice, ...] = PrivateAttr(default=())
    _values: dict[str, Choice] = PrivateAttr(default_factory=dict)
    _relevant: Expression | None = PrivateAttr(default=None)
    _constraint: Expression | None = PrivateAttr(default=None)

    @model_validator(mode="before")
    @classmethod
    def _choice_values_are_text(cls, data: Any) -> Any:
        # Choice values of choice items are text ("1" and 1 are the same choice).
        if isinstance(data, dict) and data.get("type") in CHOICE_TYPES:
            choices = data.get("choices")
            if isinstance(choices, list | tuple):
                data = dict(data)
                data["choices"] = [
                    {**choice, "value": _choice_text(choice["value"])}
                    if isinstance(choice, dict) and "value" in choice
                    else choice
                    for choice in choices
                ]
        return data

    @model_validator(mode="after")
    def _check(self) -> Item:
        problems = list(self._problems())
        if problems:
            raise SchemaProblems(problems)
        self._options = self._build_options()
        self._values = {option_key(choice.value): choice for choice in self._options}
        self._relevant = parse_expression(self.relevant) if self.relevant else None
        self._constraint = parse_expression(self.constraint) if self.constraint else None
        return self

    # ------------------------------------------------------------------ public helpers

    @property
    def options(self) -> tuple[Choice, ...]:
        """The options to render, "not applicable" / "don't know" included (closed types)."""
        return _private(self, "_options")

    def option(self, value: object) -> Choice | None:
        """The option whose value is ``value`` (``1`` and ``"1"`` are the same), or None."""
        return _private(self, "_values").get(option_key(value))

    @property
    def scorable(self) -> bool:
        """Whether the item's answers have a 0–100 score."""
        if self.type == "choice_one":
            return any(choice.score is not None for choice in self.choices)
        return self.type in SCALE_TYPES or self.type in THRESHOLD_TYPES

    @property
    def answerable(self) -> bool:
        """Whether the respondent answers it (notes and computed delays are not answered)."""
        return self.type not in UNANSWERED_TYPES

    @property
    def is_weighting_variable(self) -> bool:
        return self.role == "weighting"

    @property
    def text_max_length(self) -> int:
        return self.max_length or DEFAULT_TEXT_MAX_LENGTH

    @property
    def relevant_expression(self) -> Expression | None:
        return _private(self, "_relevant")

    @property
    def constraint_expression(self) -> Expression | None:
        return _private(self, "_constraint")

    # ------------------------------------------------------------------ checks

    def _build_options(self) -> tuple[Choice, ...]:
        if self.type not in SCALE_TYPES:
            return self.choices
        if not self.choices:
            return default_options(self.type, self.not_applicable)
        # relabelled scale: "na" and "dk" keep counting as missing
        return tuple(
            choice.model_copy(update={"missing": True})
            if choice.value in _MISSING_VALUES
            else choice
            for choice in self.choices
        )

    def _problems(self) -> Iterator[Problem]:
        kind = self.type
        yield from self._check_choices()
        if self.not_applicable and kind not in NA_TYPES:
            yield _problem(("not_applicable",), "not_allowed", f"a {kind} item cannot offer 'na'")
        if self.weight > 0 and not self.scorable:
            why = "give its choices a score" if kind == "choice_one" else "it has no score"
            yield _problem(
                ("weight",), "not_scorable", f"a {kind} item cannot carry a weight: {why}"
            )
        if self.thresholds is not None and kind not in THRESHOLD_TYPES:
            yield _problem(("thresholds",), "not_allowed", f"a {kind} item takes no thresholds")
        if self.thresholds is None and kind in THRESHOLD_TYPES and self.weight > 0:
            yield _problem(("thresholds",), "missing_threshold", "a weighted item needs thresholds")
        yield from self._check_knockout()
        if (self.min is not None or self.max is not None) and kind not in NUMBER_TYPES:
            yield _problem(("min",), "not_allowed", f"a {kind} item takes no min/max")
        if self.min is not None and self.max is not None and self.min > self.max:
            yield _problem(("max",), "invalid_range", f"max ({self.max}) is below min ({self.min})")
        if self.min is not None and self.min < 0:
            yield _problem(("min",), "invalid_range", "counts and durations cannot be negative")
        if self.max_length is not None and kind != "text":
            yield _problem(("max_length",), "not_allowed", f"a {kind} item takes no max_length")
        if self.redact_contacts and kind != "text":
            yield _problem(("redact_contacts",), "not_allowed", "only text items are redacted")
        if kind == "delay":
            for name in ("start", "end"):
                if getattr(self, name) is None:
                    yield _problem(
                        (name,), "missing_field", f"a delay item needs '{name}' (a date item)"
                    )
            if self.start is not None and self.start == self.end:
                yield _problem(("end",), "invalid_reference", "start and end are the same item")
        else:
            for name in ("start", "end"):
                if getattr(self, name) is not None:
                    yield _problem((name,), "not_allowed", f"only delay items take '{name}'")
        if kind in UNANSWERED_TYPES:
            for name in ("required", "constraint"):
                if getattr(self, name):
                    yield _problem(
                        (name,), "not_allowed", f"a {kind} item is not answered: no {name}"
                    )
        if self.constraint_message is not None and not self.constraint:
            yield _problem(
                ("constraint_message",), "not_allowed", "a constraint message needs a constraint"
            )
        if self.role is not None:
            if kind != "choice_one":
                yield _problem(("role",), "invalid_role", "a role is given to choice_one items")
            if self.weight > 0:
                yield _problem(
                    ("weight",), "invalid_role", f"a {self.role} item is not scored (weight 0)"
                )
            if self.role == "channel":
                unknown = [c.value for c in self.choices if c.value not in CHANNELS]
                if unknown:
                    yield _problem(
                        ("choices",),
                        "invalid_role",
                        f"channel choices must be channel codes, not {unknown}",
                    )
        yield from _expression_problems("relevant", self.relevant)
        yield from _expression_problems("constraint", self.constraint)

    def _check_choices(self) -> Iterator[Problem]:
        kind = self.type
        if kind in CHOICE_TYPES and not self.choices:
            yield _problem(
                ("choices",), "empty_choices", f"a {kind} item needs at least one choice"
            )
        if self.choices and kind not in CLOSED_TYPES:
            yield _problem(("choices",), "not_allowed", f"a {kind} item takes no choices")
        seen: set[str] = set()
        for index, choice in enumerate(self.choices):
            value_key = option_key(choice.value)
            if value_key in seen:
                yield _problem(
                    ("choices", index, "value"),
                    "duplicate_key",
                    f"choice {choice.value!r} appears twice",
                )
            seen.add(value_key)
            if kind in CHOICE_TYPES and not _CHOICE_VALUE.match(str(choice.value)):
                yield _problem(
                    ("choices", index, "value"),
                    "invalid_value",
                    f"choice value {choice.value!r}: letters, digits, '_', '-', '.' only",
                )
            if choice.score is not None and kind != "choice_one":
                yield _problem(
                    ("choices", index, "score"), "not_allowed", "only choice_one is scored"
                )
            if choice.missing and kind in SCALE_TYPES:
                yield _problem(
                    ("choices", index, "missing"),
                    "not_allowed",
                    "on a scale, only 'na' and 'dk' count as missing, and they always do",
                )
            if choice.score is not None and choice.missing:
                yield _problem(
                    ("choices", index, "score"), "not_allowed", "a missing choice has no score"
                )
        if kind in SCALE_TYPES and self.choices:
            expected = [option_key(value) for value, _, _ in _DEFAULT_OPTIONS[kind]]
            if self.not_applicable:
                expected.append(NOT_APPLICABLE)
            given = [option_key(choice.value) for choice in self.choices]
            if given != expected:
                yield _problem(
                    ("choices",),
                    "invalid_choices",
                    f"relabelling a {kind} scale needs exactly the values {expected}, got {given}",
                )
        if kind == "choice_one" and self.scorable:
            for index, choice in enumerate(self.choices):
                if choice.score is None and not choice.missing:
                    yield _problem(
                        ("choices", index, "score"),
                        "missing_score",
                        "in a scored item every choice needs a score (or missing: true)",
                    )

    def _check_knockout(self) -> Iterator[Problem]:
        rule = self.knockout
        if rule is None:
            return
        kind = self.type
        if rule.fail_if:
            if kind not in CLOSED_TYPES:
                yield _problem(
                    ("knockout", "fail_if"), "invalid_knockout", f"a {kind} item uses 'above'"
                )
                return
            values = {option_key(value) for value, _, _ in _DEFAULT_OPTIONS.get(kind, ())}
            values |= {option_key(choice.value) for choice in self.choices}
            for value in rule.fail_if:
                if option_key(value) not in values:
                    yield _problem(
                        ("knockout", "fail_if"),
                        "invalid_knockout",
                        f"{value!r} is not an option of this item",
                    )
        else:
            if kind not in THRESHOLD_TYPES:
                yield _problem(
                    ("knockout", "above"), "invalid_knockout", f"a {kind} item uses 'fail_if'"
                )
            if rule.unit != "working_days" and kind != "delay":
                yield _problem(("knockout", "unit"), "invalid_knockout", "only delays take a unit")
            if rule.unit == "months" and rule.above is not None and not rule.above.is_integer():
                yield _problem(
                    ("knockout", "above"), "invalid_knockout", "months are whole numbers"
                )


def _expression_problems(name: str, source: str | None) -> Iterator[Problem]:
    """Syntax of a ``relevant`` or ``constraint`` (only constraints may use ``.``)."""
    if source is None:
        return
    try:
        parsed = parse_expression(source)
    except ExpressionError as error:
        yield _problem((name,), "invalid_expression", str(error).splitlines()[0])
        return
    if name == "relevant" and parsed.uses_current:
        yield _problem((name,), "invalid_expression", "'.' is only meaningful in a constraint")


@lru_cache(maxsize=64)
def default_options(kind: str, not_applicable: bool = False) -> tuple[Choice, ...]:
    """The options of a fixed scale with their default labels (``"na"`` last if offered)."""
    rows = list(_DEFAULT_OPTIONS[kind])
    if not_applicable:
        rows.append(_NA_OPTION)
    return tuple(
        Choice(value=value, label=LocalizedText(fr=fr, en=en), missing=value in _MISSING_VALUES)
        for value, fr, en in rows
    )


def option_key(value: object) -> str:
    """Comparable text form of an option value: ``1``, ``1.0`` and ``"1"`` are the same."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _choice_text(value: Any) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return option_key(value)
    return value


class Section(_Frozen):
    """A group of items, shown as one page of a form."""

    key: Key
    title: LocalizedText
    help: LocalizedText | None = None
    relevant: str | None = None
    #: A scored section gets a score; an unscored one (profile, comments) has no weights.
    scored: bool = True
    items: tuple[Item, ...] = Field(min_length=1)

    _relevant: Expression | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _parse(self) -> Section:
        problems = list(_expression_problems("relevant", self.relevant))
        if problems:
            raise SchemaProblems(problems)
        self._relevant = parse_expression(self.relevant) if self.relevant else None
        return self

    @property
    def relevant_expression(self) -> Expression | None:
        return _private(self, "_relevant")

    @property
    def weight(self) -> float:
        return sum(item.weight for item in self.items)


class Instrument(_Frozen):
    """A versioned instrument: the citizen questionnaire or one channel's grid."""

    key: InstrumentKey
    version: str = Field(min_length=1, max_length=64, pattern=r"^\S+$")
    kind: Literal["survey", "grid"]
    channel: ChannelCode | None = None
    title: LocalizedText
    introduction: LocalizedText | None = None
    source: str | None = None
    themes: tuple[Theme, ...] = ()
    sections: tuple[Section, ...] = Field(min_length=1)

    _items: dict[str, Item] = PrivateAttr(default_factory=dict)
    _order: dict[str, int] = PrivateAttr(default_factory=dict)
    _section_of: dict[str, Section] = PrivateAttr(default_factory=dict)
    _item_tuple: tuple[Item, ...] = PrivateAttr(default=())

    @model_validator(mode="after")
    def _check(self) -> Instrument:
        self._items = {}
        self._order = {}
        self._section_of = {}
        for section in self.sections:
            for item in section.items:
                if item.key not in self._items:
                    self._items[item.key] = item
                    self._order[item.key] = len(self._order)
                    self._section_of[item.key] = section
        self._item_tuple = tuple(self._items.values())
        problems = list(self._problems())
        if problems:
            raise SchemaProblems(problems)
        return self

    # ------------------------------------------------------------------ public helpers

    @property
    def items(self) -> tuple[Item, ...]:
        """Every item, in form order."""
        return _private(self, "_item_tuple")

    def item(self, key: str) -> Item:
        """The item with this key (``KeyError`` if none)."""
        return _private(self, "_items")[key]

    def has_item(self, key: str) -> bool:
        return key in _private(self, "_items")

    def section(self, key: str) -> Section:
        for section in self.sections:
            if section.key == key:
                return section
        raise KeyError(key)

    def section_of(self, item_key: str) -> Section:
        return _private(self, "_section_of")[item_key]

    def theme(self, key: str) -> Theme:
        for theme in self.themes:
            if theme.key == key:
                return theme
        raise KeyError(key)

    @property
    def weight(self) -> float:
        return sum(item.weight for item in self.items)

    @property
    def channel_item(self) -> Item | None:
        """The survey item whose answer is the channel used, if any."""
        return next((item for item in self.items if item.role == "channel"), None)

    @property
    def weighting_variables(self) -> tuple[Item, ...]:
        return tuple(item for item in self.items if item.role == "weighting")

    # ------------------------------------------------------------------ checks

    def _problems(self) -> Iterator[Problem]:
        if self.kind == "grid" and self.channel is None:
            yield _problem(("channel",), "missing_field", "a grid needs its channel")
        if self.kind == "survey" and self.channel is not None:
            yield _problem(
                ("channel",), "not_allowed", "a survey has no channel (use a role: channel item)"
            )
        seen: dict[str, Loc] = {}
        for s, section in enumerate(self.sections):
            loc: Loc = ("sections", s, "key")
            if section.key in seen:
                yield _problem(loc, "duplicate_key", f"key {section.key!r} is already used")
            seen.setdefault(section.key, loc)
            for i, item in enumerate(section.items):
                loc = ("sections", s, "items", i, "key")
                if item.key in seen:
                    yield _problem(loc, "duplicate_key", f"key {item.key!r} is already used")
                seen.setdefault(item.key, loc)
        theme_keys: set[str] = set()
        for t, theme in enumerate(self.themes):
            if theme.key in theme_keys:
                yield _problem(
                    ("themes", t, "key"), "duplicate_key", f"theme {theme.key!r} is repeated"
                )
            theme_keys.add(theme.key)
        if sum(1 for item in self.items if item.role == "channel") > 1:
            yield _problem(("sections",), "invalid_role", "only one item may have role: channel")
        if self.kind == "grid" and self.channel_item is not None:
            yield _problem(
                ("sections",), "invalid_role", "a grid's channel is fixed: no role: channel item"
            )
        yield from self._check_weights(theme_keys)
        yield from self._check_references()

    def _check_weights(self, theme_keys: set[str]) -> Iterator[Problem]:
        if self.weight <= 0:
            yield _problem(("sections",), "zero_weight", "the instrument's weights sum to 0")
        for s, section in enumerate(self.sections):
            if section.scored and section.weight <= 0:
                yield _problem(
                    ("sections", s, "scored"),
                    "zero_weight",
                    "the section's weights sum to 0: give weights or set scored: false",
                )
            if not section.scored and section.weight > 0:
                yield _problem(
                    ("sections", s, "scored"),
                    "weight_in_unscored",
                    "an unscored section cannot hold weighted items",
                )
            for i, item in enumerate(section.items):
                if item.theme is not None and item.theme not in theme_keys:
                    yield _problem(
                        ("sections", s, "items", i, "theme"),
                        "unknown_reference",
                        f"unknown theme {item.theme!r}",
                    )
        for t, theme in enumerate(self.themes):
            weight = sum(item.weight for item in self.items if item.theme == theme.key)
            if weight <= 0:
                yield _problem(
                    ("themes", t),
                    "zero_weight",
                    f"theme {theme.key!r} has no weighted item: its weights sum to 0",
                )

    def _check_references(self) -> Iterator[Problem]:
        for s, section in enumerate(self.sections):
            first = self._order[section.items[0].key]
            if section.relevant_expression is not None:
                yield from self._check_expression(
                    section.relevant_expression, ("sections", s, "relevant"), before=first
                )
            for i, item in enumerate(section.items):
                loc: Loc = ("sections", s, "items", i)
                position = self._order.get(item.key, -1)
                if item.relevant_expression is not None:
                    yield from self._check_expression(
                        item.relevant_expression, (*loc, "relevant"), before=position
                    )
                if item.constraint_expression is not None:
                    yield from self._check_expression(
                        item.constraint_expression,
                        (*loc, "constraint"),
                        before=position,
                        current=item,
                    )
                if item.type == "delay":
                    for name in ("start", "end"):
                        key = getattr(item, name)
                        if key is None:
                            continue
                        target = self._items.get(key)
                        if target is None:
                            yield _problem(
                                (*loc, name), "unknown_reference", f"unknown item {key!r}"
                            )
                        elif self._order[key] >= position:
                            yield _problem(
                                (*loc, name),
                                "later_reference",
                                f"{key!r} must come before the delay",
                            )
                        elif target.type != "date":
                            yield _problem(
                                (*loc, name), "invalid_reference", f"{key!r} is not a date item"
                            )

    def _check_expression(
        self,
        expression: Expression,
        loc: Loc,
        *,
        before: int,
        current: Item | None = None,
    ) -> Iterator[Problem]:
        def at(position: int) -> str:
            return f"(column {position + 1} of {expression.source!r})"

        for reference in expression.references:
            where = at(reference.position)
            target = self._items.get(reference.key)
            if target is None:
                yield _problem(loc, "unknown_reference", f"unknown item {reference.key!r} {where}")
            elif self._order[reference.key] >= before:
                yield _problem(
                    loc, "later_reference", f"{reference.key!r} is not an earlier item {where}"
                )
            elif not target.answerable:
                yield _problem(loc, "invalid_reference", f"{reference.key!r} has no answer {where}")
        for node in expression.nodes():
            if isinstance(node, Selected):
                target = self._target(node.target, current)
                if target is None:
                    continue
                if target.type not in CLOSED_TYPES:
                    yield _problem(
                        loc,
                        "invalid_reference",
                        f"selected() needs a choice item, {target.key!r} is {target.type} "
                        + at(node.position),
                    )
                elif target.option(node.value.value) is None:
                    yield _problem(
                        loc,
                        "unknown_choice",
                        f"{node.value.value!r} is not a choice of {target.key!r} "
                        + at(node.value.position),
                    )
            elif isinstance(node, Compare) and node.op in ("=", "!="):
                for side, other in ((node.left, node.right), (node.right, node.left)):
                    target = self._target(side, current)
                    if (
                        target is not None
                        and target.type in CLOSED_TYPES
                        and target.type != "choice_many"
                        and isinstance(other, LiteralNode)
                        and not isinstance(other.value, bool)
                        and target.option(other.value) is None
                    ):
                        yield _problem(
                            loc,
                            "unknown_choice",
                            f"{other.value!r} is not a choice of {target.key!r} "
                            + at(other.position),
                        )

    def _target(self, node: object, current: Item | None) -> Item | None:
        if isinstance(node, Reference):
            return self._items.get(node.key)
        if isinstance(node, Current):
            return current
        return None
