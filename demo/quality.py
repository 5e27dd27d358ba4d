"""How good each demo authority is, channel by channel and year by year.

Real barometers find that channels differ more than authorities do: AFNOR's published channel
averages run from the mid-fifties for letters to the high eighties for the phone. The demo's
service quality (0–1, the input of :mod:`demo.answers`) has three layers:

- a national level per channel, calibrated so that the visit scores the real grids give come
  out near :data:`CHANNEL_TARGETS` (a national mean, not a rule: draws move it by a point or
  two);
- the authority's own effect (between-candidate spread): a general level shared by its channels,
  a channel-specific part, and a small drift from one edition to the next, so returning
  candidates' scorecards show a year-over-year change;
- each visit's own draw (within-candidate spread): another agent, another day. The answers
  then go through the real grids, whose ceilings (100) and steps shape the scores.

Everything is a pure function of the demo's seed, the authority's code and the year.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

# Channel means of the visit scores the demo aims at: AFNOR published channel averages (order
# of magnitude), letters lowest, the phone highest; the others plausible values in between.
CHANNEL_TARGETS = {
    "telephone": 87.0,
    "guichet": 81.0,
    "site": 75.0,
    "courriel": 68.0,
    "reseaux": 62.0,
    "courrier": 56.0,
}
# The national quality level per channel that gives those means through the real grids with
# the spreads below. ``python -m demo.quality`` recalibrates them; with these, 2,000 simulated
# visits a channel give 87.4, 81.4, 75.3, 68.6, 64.0 and 55.5 in the order above.
CHANNEL_LEVELS = {
    "telephone": 0.842,
    "guichet": 0.805,
    "site": 0.736,
    "courriel": 0.777,
    "reseaux": 0.711,
    "courrier": 0.533,
}
GENERAL_SD = 0.07  # an authority's general level: good at everything, or weaker
CHANNEL_SD = 0.05  # its strengths and weaknesses channel by channel
DRIFT_SD = 0.035  # what changes from one edition to the next
VISIT_SD = 0.05  # one visit to the next (on top of the answers' own draws)
CITIZEN_LEVEL = 0.64  # the residents' average satisfaction, as quality for their answers
DEFAULT_LEVEL = 0.7  # a channel the demo does not know (a campaign's own grid)


def _clip(value: float, low: float = 0.02, high: float = 1.0) -> float:
    return min(high, max(low, value))


def _normal(*key: object) -> float:
    """A standard normal draw fixed by its key (the same on every build)."""
    return random.Random(":".join(str(part) for part in key)).gauss(0.0, 1.0)


@dataclass(frozen=True)
class QualityModel:
    """The demo's service quality for one seed (the same authorities in every edition)."""

    seed: int

    def _authority_effect(self, code: str, year: int) -> float:
        return GENERAL_SD * _normal(self.seed, code) + DRIFT_SD * _normal(self.seed, code, year)

    def channel_level(self, code: str, channel: str, year: int) -> float:
        """The authority's quality on a channel in an edition, before any visit's own draw."""
        base = CHANNEL_LEVELS.get(channel, DEFAULT_LEVEL)
        own = CHANNEL_SD * _normal(self.seed, code, channel)
        return _clip(base + self._authority_effect(code, year) + own)

    def visit_level(self, code: str, channel: str, year: int, rng: random.Random) -> float:
        """The quality one visit meets (the caller's generator draws the visit's part)."""
        return _clip(self.channel_level(code, channel, year) + rng.gauss(0.0, VISIT_SD))

    def citizen_levels(self, codes: list[str], year: int) -> dict[str, float]:
        """The residents' average satisfaction with each authority in an edition."""
        return {
            code: _clip(CITIZEN_LEVEL + self._authority_effect(code, year), 0.2, 0.95)
            for code in codes
        }


def simulated_channel_means(
    levels: dict[str, float], *, visits: int = 2000, seed: int = 1
) -> dict[str, float]:
    """Mean visit score per channel through the real grids, for given national levels."""
    import datetime as dt

    import surveys
    from demo.answers import grid_answers

    grids = {
        instrument.channel: instrument
        for instrument in surveys.default_instruments().values()
        if instrument.kind == "grid" and instrument.channel
    }
    means: dict[str, float] = {}
    for channel, grid in grids.items():
        model = QualityModel(seed)
        rng = random.Random(f"{seed}:{channel}")
        total = 0.0
        for number in range(visits):
            code = f"sim{number % (visits // 2)}"  # two visits per simulated authority
            own = model.channel_level(code, channel, 2025) - CHANNEL_LEVELS.get(channel, 0.0)
            quality = _clip(levels[channel] + own + rng.gauss(0.0, VISIT_SD))
            answers = grid_answers(grid, rng=rng, quality=quality, day=dt.date(2025, 3, 3))
            total += surveys.submission_scores(grid, answers).total.score or 0.0
        means[channel] = total / visits
    return means


def calibrate_channel_levels(steps: int = 8) -> dict[str, float]:
    """The national levels whose simulated means meet :data:`CHANNEL_TARGETS` (bisection)."""
    low = dict.fromkeys(CHANNEL_TARGETS, 0.2)
    high = dict.fromkeys(CHANNEL_TARGETS, 1.0)
    for _ in range(steps):
        middle = {channel: (low[channel] + high[channel]) / 2 for channel in CHANNEL_TARGETS}
        means = simulated_channel_means(middle, visits=600)
        for channel, mean in means.items():
            if mean < CHANNEL_TARGETS[channel]:
                low[channel] = middle[channel]
            else:
                high[channel] = middle[channel]
    return {channel: round((low[channel] + high[channel]) / 2, 3) for channel in low}


if __name__ == "__main__":  # python -m demo.quality: recalibrate CHANNEL_LEVELS
    levels = calibrate_channel_levels()
    print(levels)
    print({channel: round(mean, 1) for channel, mean in simulated_channel_means(levels).items()})
