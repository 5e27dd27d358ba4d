"""Published results: laureates, distributions and open data of a published campaign.

Nothing here is visible before the campaign is published: every entry point answers 404 until
then, so an unpublished ranking cannot leak through a guessed URL.

Open data (``scores.csv`` / ``scores.json``), one row per authority and score:

=================  ==========================================================================
year               edition of the barometer
run_id             the frozen scoring run the results come from
inputs_sha256      fingerprint of the run's inputs (reproducibility)
authority_code     INSEE code (communes), SIREN (EPCI), D/R + code (départements, régions)
authority_name     name in the registry
category           award category (population stratum)
level              overall | component | channel | theme
key                "" for overall; survey/mystery; the channel code; the theme code
estimate           score out of 100
se                 standard error
df                 degrees of freedom of the interval (empty: normal)
ci_low, ci_high    confidence interval at the campaign's level, cut at the 0–100 scale
confidence_level   e.g. 0.95
n                  respondents (survey) or approved visits (mystery) behind the score
n_eff              Kish effective sample size
flags              space-separated precision flags (e.g. insufficient_precision)
eligible           true when the authority is ranked in its category
rank               point rank in the category (1 = best); empty when not eligible
rank_low/high      rank confidence interval
in_top1_set        cannot be excluded from the first place
in_top3_set        cannot be excluded from the first three
p_best             share of simulations in which the authority comes first (descriptive)
laureate           true for the category's laureate (overall rows)
=================  ==========================================================================

Rows flagged ``fewer_than_5`` (fewer than 5 respondents) are published
without their numbers (anonymity, METHODOLOGY.md §6). Item-level scores are not published.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from app import plots
from app.campaigns import repository as campaigns_repository
from app.campaigns.models import Campaign, CampaignState
from app.campaigns.service import parse_config
from app.core.db import row_id
from app.core.errors import NotFound
from app.core.i18n import _
from app.jury import repository as jury_repository
from app.jury.models import AwardDecision
from app.results import repository as results_repository
from app.results.compute import ScoreLevel
from app.results.models import RANK_POSITION_COLUMNS, SCORE_ESTIMATE_COLUMNS, ScoringRun
from app.scorecards.svg import score_box
from app.scorecards.views import (
    SUPPRESSED_FLAGS,
    CategoryView,
    category_labels,
    category_stats,
    category_view,
)

OPEN_DATA_LEVELS = (
    ScoreLevel.overall.value,
    ScoreLevel.component.value,
    ScoreLevel.channel.value,
    ScoreLevel.theme.value,
)
OPEN_DATA_COLUMNS = [
    "year",
    "run_id",
    "inputs_sha256",
    "authority_code",
    "authority_name",
    "category",
    "level",
    "key",
    *SCORE_ESTIMATE_COLUMNS,
    "confidence_level",
    "n",
    "n_eff",
    "flags",
    "eligible",
    *RANK_POSITION_COLUMNS,
    "laureate",
]


@dataclass(frozen=True)
class Published:
    campaign: Campaign
    run: ScoringRun
    decisions: dict[str, AwardDecision]


def get_published(session: Session, *, organiser: str, year: int) -> Published:
    campaign = campaigns_repository.get_by_year(session, organiser=organiser, year=year)
    if campaign is None or campaign.state != CampaignState.published:
        raise NotFound(_("The results of %(year)d are not published.") % {"year": year})
    run = results_repository.current_run(session, campaign_id=row_id(campaign))
    if run is None:
        raise NotFound(_("The results of %(year)d are not published.") % {"year": year})
    decisions = {d.category: d for d in jury_repository.decisions(session, row_id(campaign))}
    return Published(campaign=campaign, run=run, decisions=decisions)


@dataclass(frozen=True)
class Laureate:
    category: str
    label: str
    code: str
    name: str
    estimate: float | None
    justification: str
    tied: bool


def laureates(session: Session, published: Published) -> list[Laureate]:
    labels = category_labels(parse_config(published.campaign.config))
    names = results_repository.authority_names(
        session, [d.laureate_code for d in published.decisions.values()]
    )
    result = []
    for key, label in labels.items():
        decision = published.decisions.get(key)
        if decision is None:
            continue
        rows = results_repository.rank_rows(session, run_id=row_id(published.run), category=key)
        own = next((row for row in rows if row.authority_code == decision.laureate_code), None)
        result.append(
            Laureate(
                category=key,
                label=label,
                code=decision.laureate_code,
                name=names.get(decision.laureate_code, decision.laureate_code),
                estimate=own.estimate if own else None,
                justification=decision.justification,
                tied=sum(1 for row in rows if row.eligible and row.in_top1_set) > 1,
            )
        )
    return result


def distribution(session: Session, published: Published) -> tuple[list[plots.BoxRow], str]:
    """Per category five-number summaries of the ranked scores, and the national one first."""
    labels = category_labels(parse_config(published.campaign.config))
    ranks = results_repository.rank_rows(session, run_id=row_id(published.run))
    rows = [row for row in ranks if row.eligible]
    boxes = []
    groups: list[tuple[str, str, list[float]]] = [
        ("national", _("All categories"), [r.estimate for r in rows if r.estimate is not None])
    ]
    for key, label in labels.items():
        values = [r.estimate for r in rows if r.category == key and r.estimate is not None]
        groups.append((key, label, values))
    for key, label, values in groups:
        box = score_box(category_stats(values), key=key, label=label)
        if box is not None:
            boxes.append(box)
    svg = plots.distribution_plot(
        boxes,
        plot_id="distribution",
        title=_("Distribution of the scores, nationally and per category"),
        desc=_(
            "One box per group: first to third quartile, thick line at the median, whiskers "
            "from the lowest to the best score. The table gives the same figures."
        ),
        axis_label=_("Score out of 100"),
    )
    return boxes, svg


def published_category(session: Session, published: Published, category: str) -> CategoryView:
    return category_view(
        session,
        run=published.run,
        config=parse_config(published.campaign.config),
        category=category,
    )


def _cell(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def open_data_rows(session: Session, published: Published) -> list[dict[str, Any]]:
    laureate_codes = {d.laureate_code for d in published.decisions.values()}
    level = parse_config(published.campaign.config).confidence_level
    rows = []
    for score, rank, name in results_repository.published_scores(
        session, run_id=row_id(published.run), levels=OPEN_DATA_LEVELS
    ):
        suppressed = bool(SUPPRESSED_FLAGS & set(score.flags))
        eligible = bool(rank and rank.eligible)

        def number(value: float | None, hide: bool = suppressed) -> Any:
            return None if hide else _cell(value)

        is_overall = score.level == ScoreLevel.overall
        rows.append(
            {
                "year": published.campaign.year,
                "run_id": published.run.id,
                "inputs_sha256": published.run.inputs_sha256,
                "authority_code": score.authority_code,
                "authority_name": name,
                "category": rank.category if rank else "",
                "level": score.level,
                "key": score.key,
                "estimate": number(score.estimate),
                "se": number(score.se),
                "df": number(score.df),
                "ci_low": number(score.ci_low),
                "ci_high": number(score.ci_high),
                "confidence_level": level,
                "n": score.n,
                "n_eff": number(score.n_eff),
                "flags": " ".join(score.flags),
                "eligible": eligible,
                "rank": rank.rank if rank and eligible and is_overall else None,
                "rank_low": rank.rank_low if rank and eligible and is_overall else None,
                "rank_high": rank.rank_high if rank and eligible and is_overall else None,
                "in_top1_set": bool(rank and eligible and is_overall and rank.in_top1_set),
                "in_top3_set": bool(rank and eligible and is_overall and rank.in_top3_set),
                "p_best": _cell(rank.p_best) if rank and eligible and is_overall else None,
                "laureate": is_overall and score.authority_code in laureate_codes,
            }
        )
    return rows


def open_data_csv(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=OPEN_DATA_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(
            {
                key: ("true" if value else "false")
                if isinstance(value, bool)
                else ("" if value is None else value)
                for key, value in row.items()
            }
        )
    return buffer.getvalue()
