"""Hints that a mystery-shopper report deserves a closer look: one pure function, no database.

Hints never block anything: they help a reviewer decide where to look first, and the queue can
show only the visits that carry one. Every rule reads plain values (the caller gathers them), so
the rules are unit-tested without a database or a web request.

Rules (thresholds are module constants, chosen from the grids and usual mystery-shopping
practice):

=====================  =======================================================================
code                   when
=====================  =======================================================================
outside_window         the visit (``visited_at``, or a date answered in the grid for the
                       visit/call/audit/sending) falls outside the mission's window
implausible_duration   a stopwatch answer that is negative, zero, or longer than
                       ``MAX_PLAUSIBLE_SECONDS``; or stopwatch timestamps that end before they
                       start
timing_mismatch        the stopwatch timestamps behind a duration item disagree with the
                       answer by more than ``TIMING_TOLERANCE_SECONDS`` (and 10 %); or the
                       taps of a ring counter are not the number answered
missing_proof          no evidence at all for a counter visit (``PROOF_CHANNELS``: its grid
                       asks for proof of the visit), or an item that asks for a proof of its
                       own without one
late_submission        submitted more than ``LATE_AFTER_DAYS`` days after the last date the
                       shopper observed (``LATE_AFTER_DAYS_WAITING`` when the awaited reply
                       never came, since the grid is then sent at the end of the wait)
burst                  the same shopper reported ``BURST_COUNT`` visits or more within
                       ``BURST_MINUTES`` minutes of one another
=====================  =======================================================================

The burst rule compares when the visits *happened* (``visited_at``), not when they reached the
server: a phone that was offline all day sends its queue in one go, which is innocent, whereas
three counter visits in different towns within ten minutes are not.

Stopwatch timings: ``timings[item_key]`` may be ``{"started_at": ISO, "stopped_at": ISO}``
(as the shopper's grid page records them; ``start``/``end`` and ``served_at`` are read as well)
or ``[start, end]``. A ring counter records ``{"taps": [ISO, ...]}``; a count typed by hand has
no taps and is not compared.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

MAX_PLAUSIBLE_SECONDS = 3 * 3600
TIMING_TOLERANCE_SECONDS = 60
TIMING_TOLERANCE_SHARE = 0.10
LATE_AFTER_DAYS = 7
LATE_AFTER_DAYS_WAITING = 75  # courrier: no answer within 2 months is a knock-out
BURST_COUNT = 3
BURST_MINUTES = 10
# A counter visit leaves nothing behind unless the shopper keeps it: its grid asks for a proof
# of the visit (photo of the entrance, queue ticket). The e-mails and letters of the other
# channels are kept by the shopper and asked for when a reviewer doubts.
PROOF_CHANNELS = frozenset({"guichet"})
# Grid items that record when the test took place (the first one found is the visit date).
VISIT_DATE_ITEMS = ("visit_date", "call_date", "audit_date", "sent_on")
# "yes/no" items whose "no" means the awaited reply never came.
AWAITED_REPLY_ITEMS = ("answer_received",)

ANOMALY_CODES = (
    "outside_window",
    "implausible_duration",
    "timing_mismatch",
    "missing_proof",
    "late_submission",
    "burst",
)


@dataclass(frozen=True)
class Anomaly:
    """One hint: a stable ``code``, the grid item it is about (if any) and figures for the text."""

    code: str
    item: str | None = None
    values: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class VisitFacts:
    """What the rules read about one visit, gathered by the caller."""

    channel: str
    window_start: date
    window_end: date
    submitted_at: datetime
    visited_at: datetime | None
    answers: Mapping[str, Any]
    timings: Mapping[str, Any]
    # Keys of the grid's duration (stopwatch), count (ring counter) and date items.
    duration_items: Collection[str] = ()
    count_items: Collection[str] = ()
    date_items: Collection[str] = ()
    # Items whose definition asks for a proof of their own (none in the default grids).
    proof_items: Collection[str] = ()
    evidence_count: int = 0
    evidence_items: Collection[str] = ()
    # When the same shopper's *other* visits happened (visited_at, else submitted_at).
    other_visits_of_shopper: Sequence[datetime] = ()


def _as_datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        # Milliseconds since the epoch, as a browser's Date.now() gives.
        try:
            moment = datetime.fromtimestamp(value / 1000, tz=UTC)
        except (OverflowError, OSError, ValueError):
            return None
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
    else:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _as_date(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip()[:10])
        except ValueError:
            return None
    return None


def stopwatch_span(timing: Any) -> tuple[datetime, datetime] | None:
    """The (start, stop) moments of one stopwatch timing, in any shape the module accepts."""
    start: Any = None
    stop: Any = None
    if isinstance(timing, Mapping):
        start = next((timing[k] for k in ("started_at", "start", "start_at") if k in timing), None)
        stop = next(
            (
                timing[k]
                for k in ("stopped_at", "stop", "end", "served_at", "end_at")
                if k in timing
            ),
            None,
        )
    elif isinstance(timing, list | tuple) and len(timing) == 2:
        start, stop = timing
    begin, end = _as_datetime(start), _as_datetime(stop)
    if begin is None or end is None:
        return None
    return begin, end


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def _window_hints(facts: VisitFacts) -> list[Anomaly]:
    observed: list[tuple[str | None, date]] = []
    if facts.visited_at is not None:
        observed.append((None, facts.visited_at.date()))
    for key in VISIT_DATE_ITEMS:
        answered = _as_date(facts.answers.get(key))
        if answered is not None:
            observed.append((key, answered))
            break
    for item, day in observed:
        if not facts.window_start <= day <= facts.window_end:
            return [
                Anomaly(
                    "outside_window",
                    item,
                    {
                        "date": day.isoformat(),
                        "start": facts.window_start.isoformat(),
                        "end": facts.window_end.isoformat(),
                    },
                )
            ]
    return []


def _duration_hints(facts: VisitFacts) -> list[Anomaly]:
    hints: list[Anomaly] = []
    keys = list(facts.duration_items) + [
        key for key in facts.timings if key not in facts.duration_items
    ]
    for key in keys:
        answered = _number(facts.answers.get(key)) if key in facts.duration_items else None
        span = stopwatch_span(facts.timings.get(key))
        measured = (span[1] - span[0]).total_seconds() if span is not None else None
        if answered is not None and not 0 < answered <= MAX_PLAUSIBLE_SECONDS:
            hints.append(Anomaly("implausible_duration", key, {"seconds": answered}))
            continue
        if measured is not None and measured <= 0:
            hints.append(Anomaly("implausible_duration", key, {"seconds": measured}))
            continue
        if answered is not None and measured is not None:
            gap = abs(answered - measured)
            if gap > max(TIMING_TOLERANCE_SECONDS, TIMING_TOLERANCE_SHARE * measured):
                hints.append(
                    Anomaly(
                        "timing_mismatch",
                        key,
                        {"answered": answered, "measured": round(measured)},
                    )
                )
    return hints


def _counter_hints(facts: VisitFacts) -> list[Anomaly]:
    hints: list[Anomaly] = []
    for key in facts.count_items:
        timing = facts.timings.get(key)
        taps = timing.get("taps") if isinstance(timing, Mapping) else None
        answered = _number(facts.answers.get(key))
        if isinstance(taps, list) and taps and answered is not None and len(taps) != answered:
            hints.append(
                Anomaly(
                    "timing_mismatch",
                    key,
                    {"answered": answered, "measured": len(taps), "unit": "taps"},
                )
            )
    return hints


def _proof_hints(facts: VisitFacts) -> list[Anomaly]:
    if facts.channel in PROOF_CHANNELS and facts.evidence_count == 0:
        return [Anomaly("missing_proof", None, {"channel": facts.channel})]
    missing = [key for key in facts.proof_items if key not in set(facts.evidence_items)]
    return [Anomaly("missing_proof", key, {"channel": facts.channel}) for key in missing]


def _last_observed(facts: VisitFacts) -> date | None:
    days = [day for day in (_as_date(facts.answers.get(key)) for key in facts.date_items) if day]
    if facts.visited_at is not None:
        days.append(facts.visited_at.date())
    return max(days) if days else None


def _late_hints(facts: VisitFacts) -> list[Anomaly]:
    last = _last_observed(facts)
    if last is None:
        return []
    waited = any(facts.answers.get(key) == "no" for key in AWAITED_REPLY_ITEMS)
    allowed = LATE_AFTER_DAYS_WAITING if waited else LATE_AFTER_DAYS
    days = (facts.submitted_at.date() - last).days
    if days > allowed:
        return [Anomaly("late_submission", None, {"days": days, "allowed": allowed})]
    return []


def _burst_hints(facts: VisitFacts) -> list[Anomaly]:
    moment = facts.visited_at or facts.submitted_at
    reach = timedelta(minutes=BURST_MINUTES)
    close = [other for other in facts.other_visits_of_shopper if abs(other - moment) <= reach]
    if len(close) + 1 >= BURST_COUNT:
        return [Anomaly("burst", None, {"count": len(close) + 1, "minutes": BURST_MINUTES})]
    return []


def visit_anomalies(facts: VisitFacts) -> tuple[Anomaly, ...]:
    """Every hint for one visit, in the order of ``ANOMALY_CODES``."""
    hints = (
        _window_hints(facts)
        + _duration_hints(facts)
        + _counter_hints(facts)
        + _proof_hints(facts)
        + _late_hints(facts)
        + _burst_hints(facts)
    )
    order = {code: index for index, code in enumerate(ANOMALY_CODES)}
    return tuple(sorted(hints, key=lambda hint: order[hint.code]))
