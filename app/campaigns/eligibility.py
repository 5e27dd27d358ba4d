"""A campaign's eligibility rules (who is ranked), pure: one definition for everyone.

Scoring (:func:`app.results.compute._eligibility`) decides with these functions who is ranked
in a frozen run, and the collection's progress page (:mod:`app.collection.progress`) shows with
the same functions, while answers and visits come in, who is still short of the thresholds.
They live with the campaign's configuration (``CampaignConfig.eligibility``,
``tests_per_channel``) rather than in ``app.results``, which already imports
``app.collection``: the collection could not import scoring's package without a cycle.

The rules (METHODOLOGY.md step 6, "campaign eligibility rules"):

- a **respondent** is a valid response (a registered candidate's, with the pinned survey
  version, not excluded) whose satisfaction index is defined: at least
  :data:`surveys.scores.COVERAGE_FLOOR` of the weight of the index's items carries a score
  ("not applicable" and unanswered items carry none). It is the ``n`` of the survey estimate;
- a channel counts as **tested** when its approved visits, counted up to the channel's planned
  tests per candidate (``tests_per_channel``), reach ``min_visits_per_tested_channel``;
- a candidate is eligible once it has ``min_respondents`` respondents and
  ``min_channels_tested`` tested channels (a run can still leave it unranked for reasons of
  its own: no overall score with a standard error, or ``missing_channel = "unranked"``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from surveys.scores import COVERAGE_FLOOR

if TYPE_CHECKING:  # only read here: scoring imports this module without loading the models
    from app.campaigns.schemas import Eligibility

# The slack surveys.scores gives the coverage floor: a share of exactly one half that floating
# point sums land a hair below still counts.
COVERAGE_TOLERANCE = 1e-12


def index_has_coverage(covered: Any, total_weight: Any) -> Any:
    """Whether a node's score is defined given the weight ``covered`` by scored items out of
    ``total_weight`` (> 0): a response counts as a respondent when its satisfaction index has
    it. Works element-wise on numpy arrays as on plain numbers."""
    return (covered > 0) & (covered / total_weight >= COVERAGE_FLOOR - COVERAGE_TOLERANCE)


def counted_visits(approved: int, planned: int | None) -> int:
    """How many of a channel's approved visits count toward it being tested.

    A replicate (the planner's second test on a single-test channel, drawn for the pooled
    variance) must not make the channel count as tested for the drawn candidates only: visits
    count up to the channel's planned tests per candidate. A channel without a plan (absent
    or 0 in ``tests_per_channel``) counts all its visits.
    """
    return min(approved, planned or approved)


def channel_tested(*, approved: int, planned: int | None, min_visits: int) -> bool:
    """Whether a channel with ``approved`` visits counts as tested (see :func:`counted_visits`)."""
    return counted_visits(approved, planned) >= min_visits


def tests_planned(tests_per_channel: Mapping[Any, int]) -> dict[str, int]:
    """``tests_per_channel`` keyed by channel code (the configuration keys are enum members)."""
    return {str(channel): int(count) for channel, count in tests_per_channel.items()}


@dataclass(frozen=True)
class Shortfall:
    """What a candidate still lacks to be eligible: 0 where a threshold is reached."""

    respondents: int
    channels: int

    @property
    def met(self) -> bool:
        return self.respondents == 0 and self.channels == 0


def shortfall(*, respondents: int, channels_tested: int, rules: Eligibility) -> Shortfall:
    """How many respondents and tested channels a candidate lacks under ``rules``."""
    return Shortfall(
        respondents=max(0, rules.min_respondents - respondents),
        channels=max(0, rules.min_channels_tested - channels_tested),
    )
