"""Plausible answers to an instrument, for the demo, the benchmark and the tests.

An authority's ``quality`` (0–1) moves every answer the same way: good authorities get higher
agreement, more "yes", shorter waits and quicker replies. Answers are drawn item by item from
the instrument's own definition (types, options, thresholds) and then cleaned by
``surveys.validate_answers``, so what comes out is what the collection would have stored.
"""

from __future__ import annotations

import datetime as dt
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


class Cleaner:
    """``clean_answers`` for many submissions: relevance computed by ``surveys`` once per
    combination of the answers that skip logic reads (the channel, for the citizen survey).

    Values are drawn from the items' own options, so what validation would change is which
    items are relevant; the first submission of each combination is validated in full and
    the cleaned result must equal the shortcut's.
    """

    def __init__(self, instrument: surveys.Instrument) -> None:
        self.instrument = instrument
        keys: set[str] = set()
        for item in instrument.items:
            if item.relevant_expression is not None:
                keys |= item.relevant_expression.keys
        for section in instrument.sections:
            expression = getattr(section, "relevant_expression", None)
            if expression is not None:
                keys |= expression.keys
        self.controlling = sorted(keys)
        self._relevant: dict[tuple[Any, ...], frozenset[str]] = {}

    def clean(self, raw: dict[str, Any]) -> dict[str, Any]:
        pattern = tuple(str(raw.get(key)) for key in self.controlling)
        relevant = self._relevant.get(pattern)
        if relevant is None:
            validation = surveys.validate_answers(self.instrument, raw)
            if not validation.ok:
                raise ValueError(f"synthetic answers do not validate: {validation.errors}")
            relevant = frozenset(validation.relevant)
            self._relevant[pattern] = relevant
            shortcut = {key: value for key, value in raw.items() if key in relevant}
            if shortcut != dict(validation.answers):
                raise ValueError("synthetic answers change under validation")
        return {key: value for key, value in raw.items() if key in relevant}
