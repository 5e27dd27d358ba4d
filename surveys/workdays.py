"""Working days: weekends and French public holidays (the ``holidays`` package) excluded.

A delay counts the working days *after* the start date up to and including the end date: a
message sent on Friday and answered on Monday took 1 working day; answered the same day, 0.
"Answered within 5 working days" therefore means ``working_days_between(sent, answered) <= 5``.

Alsace-Moselle and the overseas départements have extra public holidays; pass their
``subdivision`` (see :func:`holiday_subdivision`) to count them.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

import holidays

__all__ = [
    "add_months",
    "add_working_days",
    "holiday_subdivision",
    "is_working_day",
    "public_holidays",
    "working_days_between",
]

_SUBDIVISIONS = {"57": "57", "67": "6AE", "68": "6AE", "6AE": "6AE"}
_OVERSEAS = {"971", "972", "973", "974", "976"}


def holiday_subdivision(departement: str | None) -> str | None:
    """The ``holidays.France`` subdivision for a département code, or None (metropolitan)."""
    if departement is None:
        return None
    code = departement.strip().upper()
    if code in _OVERSEAS:
        return code
    return _SUBDIVISIONS.get(code)


@lru_cache(maxsize=256)
def _holidays_of(year: int, subdivision: str | None) -> frozenset[dt.date]:
    return frozenset(holidays.France(years=year, subdiv=subdivision))


def public_holidays(year: int, subdivision: str | None = None) -> frozenset[dt.date]:
    """The French public holidays of ``year`` (metropolitan unless ``subdivision``)."""
    return _holidays_of(year, subdivision)


def is_working_day(day: dt.date, subdivision: str | None = None) -> bool:
    return day.weekday() < 5 and day not in _holidays_of(day.year, subdivision)


def _weekdays_after(start: dt.date, end: dt.date) -> int:
    """Monday–Friday days in ``(start, end]``."""
    days = (end - start).days
    weeks, rest = divmod(days, 7)
    count = weeks * 5
    weekday = start.weekday()
    for offset in range(1, rest + 1):
        if (weekday + offset) % 7 < 5:
            count += 1
    return count


def working_days_between(start: dt.date, end: dt.date, *, subdivision: str | None = None) -> int:
    """Working days after ``start`` up to and including ``end`` (``end`` ≥ ``start``)."""
    start, end = _as_date(start), _as_date(end)
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    count = _weekdays_after(start, end)
    for year in range(start.year, end.year + 1):
        for day in _holidays_of(year, subdivision):
            if start < day <= end and day.weekday() < 5:
                count -= 1
    return count


def add_working_days(start: dt.date, days: int, *, subdivision: str | None = None) -> dt.date:
    """The ``days``-th working day after ``start`` (``start`` itself when ``days`` is 0)."""
    if days < 0:
        raise ValueError("days must be ≥ 0")
    day = _as_date(start)
    while days > 0:
        day += dt.timedelta(days=1)
        if is_working_day(day, subdivision):
            days -= 1
    return day


def add_months(start: dt.date, months: int) -> dt.date:
    """Same day ``months`` later, clamped to the month's end (31 Jan + 1 month = 28/29 Feb)."""
    index = start.year * 12 + start.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    following = dt.date(year + (month == 12), month % 12 + 1, 1)
    last_day = (following - dt.timedelta(days=1)).day
    return dt.date(year, month, min(start.day, last_day))


def _as_date(value: dt.date) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if not isinstance(value, dt.date):
        raise TypeError(f"expected a date, got {type(value).__name__}")
    return value
