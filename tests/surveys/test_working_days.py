"""Working days between two dates: weekends and French public holidays excluded."""

from __future__ import annotations

import datetime as dt

import holidays
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from surveys import add_working_days, holiday_subdivision, is_working_day, working_days_between
from surveys.workdays import add_months

D = dt.date


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        # weekends
        (D(2024, 6, 7), D(2024, 6, 7), 0),  # same day
        (D(2024, 6, 7), D(2024, 6, 8), 0),  # Friday → Saturday
        (D(2024, 6, 7), D(2024, 6, 9), 0),  # Friday → Sunday
        (D(2024, 6, 7), D(2024, 6, 10), 1),  # Friday → Monday
        (D(2024, 6, 8), D(2024, 6, 10), 1),  # Saturday → Monday
        (D(2024, 6, 3), D(2024, 6, 10), 5),  # Monday → next Monday
        (D(2024, 6, 3), D(2024, 6, 17), 10),
        # 1 May 2024 is a Wednesday
        (D(2024, 4, 30), D(2024, 5, 1), 0),
        (D(2024, 4, 30), D(2024, 5, 2), 1),
        (D(2024, 4, 29), D(2024, 5, 6), 4),  # also skips the weekend
        # 1 May 2027 is a Saturday: nothing more to take off
        (D(2027, 4, 30), D(2027, 5, 3), 1),
        # 14 July 2025 is a Monday
        (D(2025, 7, 11), D(2025, 7, 14), 0),
        (D(2025, 7, 11), D(2025, 7, 15), 1),
        (D(2025, 7, 10), D(2025, 7, 16), 3),
        # Easter Monday: 1 April 2024, 21 April 2025
        (D(2024, 3, 29), D(2024, 4, 1), 0),
        (D(2024, 3, 29), D(2024, 4, 2), 1),
        (D(2025, 4, 18), D(2025, 4, 22), 1),
        (D(2025, 4, 17), D(2025, 4, 22), 2),  # Good Friday is worked outside Alsace-Moselle
        # across the new year (1 January 2025 is a Wednesday)
        (D(2024, 12, 31), D(2025, 1, 2), 1),
        (D(2024, 12, 24), D(2024, 12, 26), 1),  # Christmas
    ],
)
def test_working_days_between(start: dt.date, end: dt.date, expected: int) -> None:
    assert working_days_between(start, end) == expected


def test_alsace_moselle_has_good_friday_and_saint_stephen() -> None:
    start, end = D(2025, 4, 17), D(2025, 4, 22)
    assert working_days_between(start, end, subdivision="57") == 1
    assert working_days_between(start, end, subdivision="6AE") == 1
    assert working_days_between(D(2024, 12, 24), D(2024, 12, 27)) == 2
    assert working_days_between(D(2024, 12, 24), D(2024, 12, 27), subdivision="57") == 1


def test_holiday_subdivisions_from_departements() -> None:
    assert holiday_subdivision("57") == "57"
    assert holiday_subdivision("67") == "6AE"
    assert holiday_subdivision("68") == "6AE"
    assert holiday_subdivision("974") == "974"
    assert holiday_subdivision("75") is None
    assert holiday_subdivision(None) is None


def test_end_before_start_is_refused() -> None:
    with pytest.raises(ValueError, match="before"):
        working_days_between(D(2024, 6, 10), D(2024, 6, 7))


def test_add_working_days() -> None:
    assert add_working_days(D(2024, 4, 30), 1) == D(2024, 5, 2)
    assert add_working_days(D(2024, 6, 7), 1) == D(2024, 6, 10)
    assert add_working_days(D(2024, 6, 7), 0) == D(2024, 6, 7)


def test_add_months_clamps_to_the_end_of_the_month() -> None:
    assert add_months(D(2024, 1, 31), 1) == D(2024, 2, 29)
    assert add_months(D(2023, 1, 31), 1) == D(2023, 2, 28)
    assert add_months(D(2024, 1, 31), 2) == D(2024, 3, 31)
    assert add_months(D(2024, 11, 15), 2) == D(2025, 1, 15)
    assert add_months(D(2024, 12, 31), 12) == D(2025, 12, 31)


def _reference(start: dt.date, end: dt.date) -> int:
    """Day by day, straight from holidays.France: an independent count."""
    public = holidays.France(years=range(start.year, end.year + 1))
    count, day = 0, start
    while day < end:
        day += dt.timedelta(days=1)
        if day.weekday() < 5 and day not in public:
            count += 1
    return count


dates = st.dates(min_value=D(2015, 1, 1), max_value=D(2035, 12, 31))


@settings(max_examples=200, deadline=None)
@given(dates, st.integers(min_value=0, max_value=800))
def test_agrees_with_a_day_by_day_count(start: dt.date, length: int) -> None:
    end = start + dt.timedelta(days=length)
    assert working_days_between(start, end) == _reference(start, end)


@settings(max_examples=200, deadline=None)
@given(dates, st.integers(min_value=0, max_value=200), st.integers(min_value=0, max_value=200))
def test_delays_add_up(start: dt.date, first: int, second: int) -> None:
    middle = start + dt.timedelta(days=first)
    end = middle + dt.timedelta(days=second)
    total = working_days_between(start, end)
    assert total == working_days_between(start, middle) + working_days_between(middle, end)
    assert 0 <= total <= first + second


@settings(max_examples=200, deadline=None)
@given(dates, st.integers(min_value=0, max_value=120))
def test_adding_working_days_inverts_counting(start: dt.date, days: int) -> None:
    target = add_working_days(start, days)
    assert working_days_between(start, target) == days
    assert days == 0 or is_working_day(target)
