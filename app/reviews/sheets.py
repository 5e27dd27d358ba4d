"""A visit's answers as a reviewer reads them: item labels, readable values, revision diffs."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import surveys
from app.core.i18n import _, get_locale
from app.core.timeutil import LOCAL_ZONE
from app.reviews.anomalies import stopwatch_span

NOT_ANSWERED = "–"


@dataclass(frozen=True)
class SheetLine:
    section: str
    key: str
    label: str
    value: str
    answered: bool


@dataclass(frozen=True)
class Change:
    key: str
    label: str
    before: str
    after: str


@dataclass(frozen=True)
class RevisionDiff:
    revision: int
    changes: tuple[Change, ...]


def _seconds(value: float) -> str:
    whole = round(value)
    sign = "-" if whole < 0 else ""
    whole = abs(whole)
    hours, rest = divmod(whole, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{sign}{hours} h {minutes:02d} min {seconds:02d} s"
    return f"{sign}{minutes} min {seconds:02d} s"


def format_answer(item: surveys.Item, answers: Mapping[str, Any], locale: str) -> str:
    if item.type == "delay":
        try:
            days = surveys.delay_value(item, answers)
        except (ValueError, TypeError):
            return NOT_ANSWERED
        if days is None:
            return NOT_ANSWERED
        if days == surveys.NEVER:
            return _("never")
        return _("%(days)s working days") % {"days": days}
    value = answers.get(item.key)
    if value is None or value == "" or value == []:
        return NOT_ANSWERED
    if item.type == "duration" and isinstance(value, int | float):
        return f"{_seconds(value)} ({value:g} s)"
    if item.type == "date" and isinstance(value, str):
        try:
            return date.fromisoformat(value).strftime("%d/%m/%Y")
        except ValueError:
            return value
    if item.options:
        values = value if isinstance(value, list) else [value]
        labels = []
        for one in values:
            option = item.option(one)
            labels.append(option.label.get(locale) if option is not None else str(one))
        return ", ".join(labels)
    return str(value)


def answer_sheet(instrument: surveys.Instrument, answers: Mapping[str, Any]) -> list[SheetLine]:
    """Every item of the grid in form order (notes left out), answered or not."""
    locale = get_locale()
    lines = []
    for section in instrument.sections:
        for item in section.items:
            if item.type == "note":
                continue
            value = format_answer(item, answers, locale)
            lines.append(
                SheetLine(
                    section=section.title.get(locale),
                    key=item.key,
                    label=item.label.get(locale),
                    value=value,
                    answered=value != NOT_ANSWERED,
                )
            )
    return lines


def _raw(value: Any) -> str:
    if value is None:
        return NOT_ANSWERED
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def format_timing(value: Any) -> str:
    """A stopwatch as "14:05:10 → 14:17:40 (12 min 30 s)" in Paris time; anything else raw."""
    span = stopwatch_span(value)
    if span is None:
        taps = value.get("taps") if isinstance(value, Mapping) else None
        if isinstance(taps, list):
            return _("%(count)d taps on the counter") % {"count": len(taps)}
        return _raw(value)
    start, stop = (moment.astimezone(LOCAL_ZONE) for moment in span)
    seconds = (stop - start).total_seconds()
    return f"{start:%d/%m/%Y %H:%M:%S} → {stop:%H:%M:%S} ({_seconds(seconds)})"


def timing_lines(timings: Mapping[str, Any]) -> list[tuple[str, str]]:
    return [(key, format_timing(value)) for key, value in timings.items()]


def diff_contents(
    instrument: surveys.Instrument | None,
    before: tuple[Mapping[str, Any], Mapping[str, Any], Any],
    after: tuple[Mapping[str, Any], Mapping[str, Any], Any],
) -> list[Change]:
    """What changed between two versions of (answers, timings, visited_at), in form order."""
    locale = get_locale()
    old_answers, old_timings, old_visited = before
    new_answers, new_timings, new_visited = after
    changes: list[Change] = []
    keys = list(dict.fromkeys([*old_answers, *new_answers]))
    if instrument is not None:
        order = {item.key: index for index, item in enumerate(instrument.items)}
        keys.sort(key=lambda key: order.get(key, len(order)))
    for key in keys:
        if old_answers.get(key) == new_answers.get(key):
            continue
        if instrument is not None and instrument.has_item(key):
            item = instrument.item(key)
            changes.append(
                Change(
                    key,
                    item.label.get(locale),
                    format_answer(item, old_answers, locale),
                    format_answer(item, new_answers, locale),
                )
            )
        else:
            changes.append(Change(key, key, _raw(old_answers.get(key)), _raw(new_answers.get(key))))
        if instrument is not None:
            # A changed date moves the delays computed from it: show them too.
            for item in instrument.items:
                if item.type == "delay" and key in (item.start, item.end):
                    old = format_answer(item, old_answers, locale)
                    new = format_answer(item, new_answers, locale)
                    if old != new and all(change.key != item.key for change in changes):
                        changes.append(Change(item.key, item.label.get(locale), old, new))
    for key in dict.fromkeys([*old_timings, *new_timings]):
        if old_timings.get(key) != new_timings.get(key):
            changes.append(
                Change(
                    f"timings.{key}",
                    _("Stopwatch: %(key)s") % {"key": key},
                    format_timing(old_timings.get(key)),
                    format_timing(new_timings.get(key)),
                )
            )
    if old_visited != new_visited:
        changes.append(Change("visited_at", _("Visit time"), _raw(old_visited), _raw(new_visited)))
    return changes
