"""How the codes a scoring run stores read in the UI (the run itself stays language-neutral)."""

from __future__ import annotations

import re

from app.core.i18n import _
from app.core.labels import N_
from app.core.templating import templates
from app.results.compute import MISSING_CHANNEL, NO_OVERALL

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
