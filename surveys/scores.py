"""Item and submission scores (METHODOLOGY.md, steps 1 and 2). Pure functions.

Item scores are 0–100 (see the table in :mod:`surveys.schema`); "not applicable", "don't
know" and choices marked ``missing`` are missing, never 0.

A node (the whole instrument, a scored section, a theme) scores the weighted mean of its
items' available scores, the weights renormalised over the items present; it is missing when
less than 50 % of its weight is present (irrelevant and unanswered items count as absent).
A failed knock-out sets the submission's total (the visit's channel score) to 0; section and
theme scores are left as measured, for diagnosis.

For the citizen questionnaire the total is the satisfaction index: the items carrying a weight
(items 3–11 of INSTRUMENTS.md, weight 1 each by default).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict

from surveys.answers import validate_answers
from surveys.errors import InvalidAnswersError
from surveys.schema import NEVER, SCALE_TYPES, THRESHOLD_TYPES, Instrument, Item, option_key
from surveys.workdays import add_months, working_days_between

__all__ = ["NodeScore", "SubmissionScores", "delay_value", "item_score", "submission_scores"]

COVERAGE_FLOOR = 0.5
PARTIAL_CREDIT = 50.0


class NodeScore(BaseModel):
    """A node's score (None when under the coverage floor), the share of its weight present
    (0–1) and its total weight."""

    model_config = ConfigDict(frozen=True)

    score: float | None
    coverage: float
    weight: float


class SubmissionScores(BaseModel):
    """Scores of one response or one visit.

    ``total`` is the visit's channel score (grids) or the satisfaction index (survey);
    ``items`` maps every scorable item to its score (None when missing or irrelevant);
    ``delays`` maps delay items to working days, ``"never"`` (start date, no end date) or None;
    ``knockouts`` lists the items whose knock-out failed (then ``total.score`` is 0).
    """

    model_config = ConfigDict(frozen=True)

    instrument: str
    version: str
    kind: str
    channel: str | None
    total: NodeScore
    sections: dict[str, NodeScore]
    themes: dict[str, NodeScore]
    items: dict[str, float | None]
    delays: dict[str, int | str | None]
    knockouts: tuple[str, ...]

    @property
    def knocked_out(self) -> bool:
        return bool(self.knockouts)


def _scale_score(kind: str, value: Any) -> float:
    if kind == "likert5":
        return (value - 1) / 4 * 100
    if kind == "scale1_4":
        return (value - 1) / 3 * 100
    if kind == "scale0_10":
        return value * 10.0
    if kind == "smileys3":
        return (value - 1) / 2 * 100
    if kind == "graded":
        return value * 100.0
    return 100.0 if value == "yes" else 0.0  # yes_no, yes_no_dk ("dk" is a missing option)


def item_score(item: Item, value: object) -> float | None:
    """Score 0–100 of a clean answer to ``item``; None when missing or the item is unscored.

    Delays take working days or ``"never"`` (scores 0). Raises ``ValueError`` for a value the
    item cannot have.
    """
    if value is None or not item.scorable:
        return None
    kind = item.type
    if kind in SCALE_TYPES or kind == "choice_one":
        option = item.option(value) if not isinstance(value, bool) else None
        if option is None:
            raise ValueError(f"{value!r} is not an option of item {item.key!r}")
        if option.missing:
            return None
        if kind == "choice_one":
            return option.score
        return _scale_score(kind, option.value)
    if kind in THRESHOLD_TYPES:
        if kind == "delay" and value == NEVER:
            return 0.0
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ValueError(f"{value!r} is not a valid {kind} for item {item.key!r}")
        thresholds = item.thresholds
        if thresholds is None:
            return None
        if value <= thresholds.full:
            return 100.0
        if thresholds.partial is not None and value <= thresholds.partial:
            return PARTIAL_CREDIT
        return 0.0
    return None


def delay_value(
    item: Item, answers: Mapping[str, Any], *, subdivision: str | None = None
) -> int | str | None:
    """Working days between the delay's start and end dates in clean ``answers``.

    ``"never"`` when the start date is recorded but the end date is not (no answer came);
    None without a start date.
    """
    if item.start is None or item.end is None:
        raise ValueError(f"item {item.key!r} is not a delay")
    start, end = answers.get(item.start), answers.get(item.end)
    if start is None:
        return None
    if end is None:
        return NEVER
    return working_days_between(
        dt.date.fromisoformat(start), dt.date.fromisoformat(end), subdivision=subdivision
    )


def _knocked_out(item: Item, value: Any, answers: Mapping[str, Any]) -> bool:
    rule = item.knockout
    if rule is None or value is None:
        return False
    if rule.fail_if:
        failing = {option_key(failing) for failing in rule.fail_if}
        if isinstance(value, list | tuple):  # a multiple choice fails with any failing choice
            return any(option_key(chosen) in failing for chosen in value)
        return option_key(value) in failing
    assert rule.above is not None
    if value == NEVER:
        return True
    if item.type == "delay" and rule.unit != "working_days":
        start = dt.date.fromisoformat(answers[item.start])  # type: ignore[index]
        end = dt.date.fromisoformat(answers[item.end])  # type: ignore[index]
        if rule.unit == "calendar_days":
            return (end - start).days > rule.above
        return end > add_months(start, int(rule.above))
    return bool(value > rule.above)


def _node(items: Iterable[Item], scores: Mapping[str, float | None]) -> NodeScore:
    weight = present = total = 0.0
    for item in items:
        if item.weight <= 0:
            continue
        weight += item.weight
        score = scores.get(item.key)
        if score is not None:
            present += item.weight
            total += item.weight * score
    if weight <= 0:
        return NodeScore(score=None, coverage=0.0, weight=0.0)
    coverage = present / weight
    enough = present > 0 and coverage >= COVERAGE_FLOOR - 1e-12
    return NodeScore(score=total / present if enough else None, coverage=coverage, weight=weight)


def submission_scores(
    instrument: Instrument, answers: Mapping[str, Any], *, subdivision: str | None = None
) -> SubmissionScores:
    """Score one submission (answers are validated first).

    ``subdivision`` selects regional public holidays for delays (see
    :func:`surveys.workdays.holiday_subdivision`). Raises :class:`InvalidAnswersError` when
    the answers do not validate.
    """
    validation = validate_answers(instrument, answers)
    if not validation.ok:
        raise InvalidAnswersError(validation.errors)
    clean = validation.answers
    relevant = set(validation.relevant)
    values: dict[str, Any] = dict(clean)
    delays: dict[str, int | str | None] = {}
    for item in instrument.items:
        if item.type == "delay":
            delay = (
                delay_value(item, clean, subdivision=subdivision) if item.key in relevant else None
            )
            delays[item.key] = delay
            values[item.key] = delay
    items = {
        item.key: item_score(item, values.get(item.key))
        for item in instrument.items
        if item.scorable
    }
    knockouts = tuple(
        item.key
        for item in instrument.items
        if item.knockout is not None
        and item.key in relevant
        and _knocked_out(item, values.get(item.key), clean)
    )
    total = _node(instrument.items, items)
    if knockouts:
        total = NodeScore(score=0.0, coverage=total.coverage, weight=total.weight)
    channel_item = instrument.channel_item
    channel = instrument.channel or (clean.get(channel_item.key) if channel_item else None)
    return SubmissionScores(
        instrument=instrument.key,
        version=instrument.version,
        kind=instrument.kind,
        channel=channel,
        total=total,
        sections={
            section.key: _node(section.items, items)
            for section in instrument.sections
            if section.scored
        },
        themes={
            theme.key: _node((i for i in instrument.items if i.theme == theme.key), items)
            for theme in instrument.themes
        },
        items=items,
        delays=delays,
        knockouts=knockouts,
    )
