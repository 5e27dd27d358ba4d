"""How the codes a scoring run stores read in the UI (the run itself stays language-neutral).

Levels, component and channel keys, precision flags and ineligibility codes each have one
function here returning the reader's words; a code without a label is shown as it is.
"""

from __future__ import annotations

import re

from app.core.i18n import _
from app.core.labels import N_
from app.core.templating import templates
from app.results.compute import MISSING_CHANNEL, NO_OVERALL, ScoreLevel

# Precision flags on score rows: templates translate them with _(flag).
FLAG_LABELS = [
    N_("insufficient_precision"),
    N_("fewer_than_5"),
    N_("borrowed_variance"),  # runs before the pooled channel variances
    N_("national_pool"),
    N_("previous_edition_pool"),
    N_("between_candidate_variance"),
    N_("imputed_channel"),
    N_("no_survey"),
    N_("no_mystery"),
]
# Flags whose code is not its own msgid. The page draws a cut bound as a mark on the interval;
# where there is no mark to draw (a CSV cell), the cut is said in words.
_FLAG_WORDS = {
    "ci_cut_low": N_("lower bound cut at the edge of the 0–100 scale"),
    "ci_cut_high": N_("upper bound cut at the edge of the 0–100 scale"),
}

# What a score row's level is (ScoreLevel); an item is one criterion of a grid or survey.
LEVEL_LABELS: dict[str, str] = {
    ScoreLevel.overall: N_("Overall score"),
    ScoreLevel.component: N_("Component"),
    ScoreLevel.channel: N_("Channel"),
    ScoreLevel.theme: N_("Theme"),
    ScoreLevel.item: N_("Criterion"),
}
# The keys of the component level: the two sources of a score.
COMPONENT_LABELS: dict[str, str] = {
    "survey": N_("Citizen survey"),
    "mystery": N_("Mystery shopping"),
}


def level_label(level: str) -> str:
    """A score row's level (``overall``, ``channel``…) in the reader's language."""
    return _(LEVEL_LABELS.get(level, level))


def component_label(key: str) -> str:
    """A component key (``survey`` or ``mystery``) in the reader's language."""
    return _(COMPONENT_LABELS.get(key, key))


def channel_label(key: str) -> str:
    """A channel code in the reader's language (the codes are msgids: ``core.labels.CHANNELS``)."""
    return _(key)


def flag_label(flag: str) -> str:
    """A score row's flag in words, the interval cut marks included."""
    return _(_FLAG_WORDS.get(flag, flag))


# The codes compute.ineligibility_code writes.
_RESPONDENTS = re.compile(r"respondents:(\d+)/(\d+)")
_CHANNELS = re.compile(r"channels:(\d+)/(\d+)")


def describe_ineligibility(code: str | None) -> str:
    """The reason a candidate is not ranked, in the reader's language."""
    if not code:
        return ""
    described = []
    for part in code.split("; "):
        if match := _RESPONDENTS.fullmatch(part):
            described.append(
                _("%(n)d respondents (minimum %(min)d)")
                % {"n": int(match[1]), "min": int(match[2])}
            )
        elif match := _CHANNELS.fullmatch(part):
            described.append(
                _("%(n)d channels tested (minimum %(min)d)")
                % {"n": int(match[1]), "min": int(match[2])}
            )
        elif part == NO_OVERALL:
            described.append(_("no overall score with a standard error"))
        elif part == MISSING_CHANNEL:
            described.append(_("a weighted channel was not tested"))
        else:  # written by hand or by an older run: shown as it is
            described.append(_(part))
    return "; ".join(described)


templates.env.filters["ineligibility"] = describe_ineligibility
templates.env.filters["flag_label"] = flag_label
