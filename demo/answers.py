"""Plausible answers to an instrument, drawn from a seeded generator and an authority's quality.

An authority's ``quality`` (0–1) moves every answer the same way: good authorities get higher
agreement, more "yes", shorter waits and quicker replies. Two generators:

- :func:`raw_answers` answers every item of any instrument (the citizen survey above all) from
  the item's own definition; relevance is left to validation, which drops the rest, as the
  collection does with what a client sends. :func:`clean_answers` validates them.
- :func:`grid_answers` answers a mystery-shopper grid the way a shopper fills it in: in form
  order, dates from the visit day, and always a remark (the grid asks one for every failing
  item), so that the report passes the visit service's checks.

Used by the demo, by the test factories (``tests/factories``) and by the benchmarks.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import random
from typing import Any

import numpy as np

import surveys
from surveys.schema import SCALE_TYPES

_SCALE_TOP = {"likert5": 5, "scale1_4": 4, "scale0_10": 10, "smileys3": 3}
_SCALE_BOTTOM = {"likert5": 1, "scale1_4": 1, "scale0_10": 0, "smileys3": 1}
_COMMENTS = (
    "Accueil très aimable, merci.",
    "Réponse rapide et claire.",
    "J'ai dû rappeler plusieurs fois avant d'avoir quelqu'un.",
    "Le site est difficile à utiliser sur téléphone.",
    "Personnel compétent mais longue attente.",
    "Démarche simple, tout s'est bien passé.",
    "Pas de réponse à mon courriel après deux semaines.",
)
# Grid items dated on the day of the visit itself; other dates follow the sending.
VISIT_DATE_ITEMS = ("visit_date", "call_date", "audit_date", "sent_on")


def authority_quality(codes: list[str], seed: int) -> dict[str, float]:
    """A stable quality level (0–1) per authority: the good and the weaker candidates."""
    out = {}
    for code in codes:
        digest = hashlib.sha256(f"{seed}:{code}".encode()).digest()
        u = int.from_bytes(digest[:8], "big") / 2**64
        out[code] = float(min(0.95, max(0.2, 0.62 + 0.16 * (u - 0.5) * 2.2)))
    return out


# --- any instrument (the citizen survey) -----------------------------------------------------


class _Draws:
    """Scalar draws from Python's generator (numpy's scalar calls cost ~1 µs each), seeded
    from the caller's numpy generator so results stay reproducible."""

    def __init__(self, rng: np.random.Generator) -> None:
        self._random = random.Random(int(rng.integers(2**63)))
        self.random = self._random.random

    def normal(self, mean: float, sd: float) -> float:
        return self._random.gauss(mean, sd)

    def exponential(self, scale: float) -> float:
        return self._random.expovariate(1.0 / scale) if scale > 0 else 0.0

    def poisson(self, lam: float) -> int:
        # Knuth's method: small means only (ring counts).
        limit, k, p = math.exp(-lam), 0, 1.0
        while True:
            p *= self._random.random()
            if p <= limit:
                return k
            k += 1

    def integers(self, high: int) -> int:
        return self._random.randrange(high)


def _scale_value(kind: str, quality: float, rng: _Draws) -> int:
    bottom, top = _SCALE_BOTTOM[kind], _SCALE_TOP[kind]
    centre = bottom + quality * (top - bottom)
    value = round(rng.normal(centre, 0.22 * (top - bottom) + 0.3))
    return int(min(top, max(bottom, value)))


def _chance(quality: float, rng: _Draws) -> bool:
    return bool(rng.random() < 0.15 + 0.8 * quality)


def raw_answers(
    instrument: surveys.Instrument,
    quality: float,
    rng: np.random.Generator,
    *,
    day: dt.date,
    channel: str | None = None,
    comment_rate: float = 0.15,
) -> dict[str, Any]:
    """Answers to every item (relevance is left to validation, which drops the rest)."""
    draws = _Draws(rng)
    answers: dict[str, Any] = {}
    last_date, first_date = day, True
    for item in instrument.items:
        kind = item.type
        if item.role == "channel" and channel is not None:
            answers[item.key] = channel
        elif kind in SCALE_TYPES and kind in _SCALE_TOP:
            if item.not_applicable and draws.random() < 0.05:
                answers[item.key] = surveys.NOT_APPLICABLE
            else:
                answers[item.key] = _scale_value(kind, quality, draws)
        elif kind in ("yes_no", "yes_no_dk"):
            if kind == "yes_no_dk" and draws.random() < 0.1:
                answers[item.key] = surveys.DONT_KNOW
            else:
                good = _chance(quality, draws)
                failing = item.knockout.fail_if if item.knockout else ()
                if "yes" in [str(value) for value in failing or ()]:
                    good = not good  # "answer refused: yes" is the bad answer
                answers[item.key] = "yes" if good else "no"
        elif kind == "graded":
            answers[item.key] = [0, 0.5, 1][min(2, int(draws.random() * 0.6 + quality * 2.2))]
        elif kind == "choice_one":
            options = [choice for choice in item.options if not choice.missing]
            scored = [choice for choice in options if choice.score is not None]
            if scored:
                best = max(scored, key=lambda choice: choice.score or 0.0)
                pick = best if _chance(quality, draws) else scored[int(draws.integers(len(scored)))]
            else:
                pick = options[int(draws.integers(len(options)))]
            answers[item.key] = pick.value
        elif kind == "duration":
            full = item.thresholds.full if item.thresholds else 900.0
            answers[item.key] = int(draws.exponential(full * (1.6 - quality)))
        elif kind == "count":
            full = item.thresholds.full if item.thresholds else 5.0
            answers[item.key] = int(draws.poisson(max(0.5, full * (1.5 - quality))))
        elif kind == "date":
            if first_date:
                last_date, first_date = day, False
            else:
                wait = int(draws.exponential(1.5 + 8 * (1 - quality)))
                last_date = surveys.add_working_days(last_date, max(1, wait))
            answers[item.key] = last_date.isoformat()
        elif kind == "text" and draws.random() < comment_rate:
            answers[item.key] = _COMMENTS[int(draws.integers(len(_COMMENTS)))]
    return answers


def clean_answers(
    instrument: surveys.Instrument,
    quality: float,
    rng: np.random.Generator,
    *,
    day: dt.date,
    channel: str | None = None,
    comment_rate: float = 0.15,
) -> dict[str, Any]:
    """Valid answers as the collection stores them (irrelevant answers dropped)."""
    raw = raw_answers(instrument, quality, rng, day=day, channel=channel, comment_rate=comment_rate)
    validation = surveys.validate_answers(instrument, raw)
    if not validation.ok:
        raise ValueError(f"synthetic answers do not validate: {validation.errors}")
    return dict(validation.answers)


# --- a mystery-shopper grid, as a shopper fills it in ------------------------------------------


def _yes(rng: random.Random, probability: float) -> str:
    return "yes" if rng.random() < probability else "no"


def _grid_item(
    item: surveys.Item, rng: random.Random, quality: float, answers: dict[str, Any], day: dt.date
) -> Any:
    kind = item.type
    if item.not_applicable and rng.random() < 0.1:
        return "na"
    if kind in ("yes_no", "yes_no_dk"):
        if item.knockout is not None and item.knockout.fail_if:
            failing = str(item.knockout.fail_if[0])
            fails = rng.random() < 0.2 * (1 - quality)
            return failing if fails else ("no" if failing == "yes" else "yes")
        if item.key.endswith("_received"):
            return _yes(rng, 0.55 + 0.45 * quality)
        return _yes(rng, quality)
    if kind == "graded":
        draw = rng.random()
        return 1 if draw < quality else (0.5 if draw < quality + (1 - quality) * 0.6 else 0)
    if kind in ("scale1_4", "likert5", "scale0_10", "smileys3"):
        values = [c.value for c in item.options if not c.missing and c.value != "na"]
        position = min(len(values) - 1, max(0, round(rng.gauss(quality, 0.18) * len(values))))
        return values[position]
    if kind == "choice_one":
        scored = [c for c in item.options if c.score is not None]
        if scored:
            good = [c.value for c in scored if (c.score or 0) >= 100]
            bad = [c.value for c in scored if (c.score or 0) < 100]
            return rng.choice(good if rng.random() < quality or not bad else bad)
        return rng.choice([c.value for c in item.options])
    if kind == "choice_many":
        return [rng.choice([c.value for c in item.options])]
    if kind == "count":
        return max(1, round(rng.gauss(2 + 8 * (1 - quality), 1.5)))
    if kind == "duration":
        seconds = rng.expovariate(1 / (240 + 1500 * (1 - quality)))
        return int(min(7200, max(20, seconds)))
    if kind == "date":
        if item.key in VISIT_DATE_ITEMS:
            return day.isoformat()
        # An acknowledgement or an answer: some working days after the sending.
        sent = dt.date.fromisoformat(answers.get("sent_on", day.isoformat()))
        if item.key.startswith("ack"):
            delay = max(0, round(rng.gauss(1 + 9 * (1 - quality), 2)))
        else:
            delay = max(1, round(rng.gauss(2 + 22 * (1 - quality), 4)))
        return surveys.add_working_days(sent, delay).isoformat()
    if kind == "text":
        negatives = [
            key
            for key, value in answers.items()
            if value == "no" or (value == 0 and not isinstance(value, bool))
        ]
        # Always a remark: the shopper's page requires one when an item fails.
        if negatives:
            return "Réponses négatives constatées (voir la grille) : " + ", ".join(negatives[:3])
        return "RAS"
    return None


def grid_answers(
    instrument: surveys.Instrument, *, rng: random.Random, quality: float, day: dt.date
) -> dict[str, Any]:
    """Valid answers for a grid (drawn in form order, then cleaned by surveys' validation)."""
    raw: dict[str, Any] = {}
    for item in instrument.items:
        if not item.answerable or item.type in ("delay", "note"):
            continue
        value = _grid_item(item, rng, quality, raw, day)
        if value is not None:
            raw[item.key] = value
    checked = surveys.validate_answers(instrument, raw)
    if not checked.ok:
        raise ValueError(f"grid answers refused for {instrument.key}: {checked.errors}")
    return dict(checked.answers)
