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
rank_low/high      simultaneous rank confidence interval (all of a category's intervals hold
                   together at the confidence level: the award table's family)
in_top1_set        cannot be excluded from the first place: rank_low ≤ 1
in_top3_set        cannot be excluded from the first three: rank_low ≤ 3
p_best             share of simulations in which the authority comes first (descriptive)
laureate           true for the category's laureate (overall rows)
=================  ==========================================================================

``flags`` includes ``ci_cut_low`` / ``ci_cut_high`` when a bound of the interval was cut at 0 or
100 (the computed interval reaches beyond the scale). Rows flagged ``fewer_than_5`` (fewer than
5 respondents) are published without their numbers (anonymity, METHODOLOGY.md §6). Item-level
scores are not published.

The campaign's publication policy decides whom public pages and open data name: every
candidate, the laureates and the top k of each category (by point rank), or the laureates only.
The others are left out of the rows and counted (``publication.not_named`` in the JSON).

The files themselves (the two CSV dialects, the licence, the Table Schema, the data package and
the data dictionary) are written by :mod:`app.publication.opendata`; this module reads the rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

from sqlmodel import Session

from app import plots
from app.accounts.models import Role, User
from app.campaigns import repository as campaigns_repository
from app.campaigns.models import Campaign, CampaignState
from app.campaigns.schemas import PublicationPolicy, PublicationScope
from app.campaigns.service import parse_config
from app.core.db import row_id
from app.core.errors import Forbidden, NotAuthenticated, NotFound
from app.core.i18n import _
from app.core.timeutil import LOCAL_ZONE
from app.jury import repository as jury_repository
from app.jury.models import AwardDecision
from app.results import repository as results_repository
from app.results.compute import ScoreLevel
from app.results.labels import describe_ineligibility
from app.results.models import RANK_POSITION_COLUMNS, SCORE_ESTIMATE_COLUMNS, RankRow, ScoringRun
from app.results.schemas import CategoryRanking, RankingEntry, RankingsResponse, RunInfo
from app.scorecards.svg import score_box
from app.scorecards.views import (
    CUT_HIGH_FLAG,
    CUT_LOW_FLAG,
    SUPPRESSED_FLAGS,
    CandidateLine,
    CategoryView,
    category_labels,
    category_stats,
    category_view,
    in_top_set,
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
    # When the campaign moved to published: the open data's date (its last modification, since a
    # published campaign never changes state again).
    published_at: datetime

    @property
    def policy(self) -> PublicationPolicy:
        return parse_config(self.campaign.config).publication

    @property
    def laureate_codes(self) -> set[str]:
        return {d.laureate_code for d in self.decisions.values()}

    @property
    def published_on(self) -> date:
        """The publication day in France (the date a reuser credits)."""
        return self.published_at.astimezone(LOCAL_ZONE).date()


def is_named(policy: PublicationPolicy, rank: RankRow | None, laureates: set[str]) -> bool:
    """Whether public pages and open data name this candidate under the campaign's policy.

    Laureates are always named; with ``laureates_and_top``, so is every ranked candidate whose
    point rank is within the top k of its category (candidates tied at rank k included).
    """
    if policy.scope == PublicationScope.all:
        return True
    if rank is None:
        return False
    if rank.authority_code in laureates:
        return True
    if policy.scope == PublicationScope.laureates_and_top:
        return rank.eligible and rank.rank is not None and rank.rank <= policy.top_k
    return False


def get_published(session: Session, *, organiser: str, year: int) -> Published:
    campaign = campaigns_repository.get_by_year(session, organiser=organiser, year=year)
    if campaign is None or campaign.state != CampaignState.published:
        raise NotFound(_("The results of %(year)d are not published.") % {"year": year})
    run = results_repository.current_run(session, campaign_id=row_id(campaign))
    if run is None:
        raise NotFound(_("The results of %(year)d are not published.") % {"year": year})
    decisions = {d.category: d for d in jury_repository.decisions(session, row_id(campaign))}
    published_at = next(
        (
            step.at
            for step in reversed(campaigns_repository.transitions(session, row_id(campaign)))
            if step.to_state == CampaignState.published
        ),
        # A campaign published without a recorded transition (hand-made data): the run's date.
        run.completed_at or campaign.created_at,
    )
    return Published(campaign=campaign, run=run, decisions=decisions, published_at=published_at)


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
                tied=sum(1 for row in rows if in_top_set(row, 1)) > 1,
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


@dataclass(frozen=True)
class PublicCategory:
    """A category as the public sees it: the aggregates of every candidate, the names the
    publication policy allows, and how many it leaves unnamed."""

    view: CategoryView  # every candidate: statistics, tie, set sizes
    policy: PublicationPolicy
    named: list[CandidateLine]  # ranked candidates the policy names, in rank order
    named_unranked: list[CandidateLine]
    not_named: int  # ranked candidates left unnamed
    not_named_top1: int  # of whom cannot be excluded from first place
    not_named_unranked: int

    @property
    def public_view(self) -> CategoryView:
        """The view the public table and plot draw: only named candidates are listed."""
        return replace(self.view, eligible=self.named, ineligible=self.named_unranked)


def published_category(session: Session, published: Published, category: str) -> PublicCategory:
    view = category_view(
        session,
        run=published.run,
        config=parse_config(published.campaign.config),
        category=category,
    )
    policy, laureates = published.policy, published.laureate_codes
    named = [line for line in view.eligible if is_named(policy, line.rank, laureates)]
    hidden = [line for line in view.eligible if not is_named(policy, line.rank, laureates)]
    named_unranked = [line for line in view.ineligible if is_named(policy, line.rank, laureates)]
    return PublicCategory(
        view=view,
        policy=policy,
        named=named,
        named_unranked=named_unranked,
        not_named=len(hidden),
        not_named_top1=sum(1 for line in hidden if line.in_top1),
        not_named_unranked=len(view.ineligible) - len(named_unranked),
    )


def _cell(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def open_data_rows(session: Session, published: Published) -> list[dict[str, Any]]:
    """The open-data rows of the candidates the publication policy names."""
    laureate_codes = published.laureate_codes
    policy = published.policy
    level = parse_config(published.campaign.config).confidence_level
    rows = []
    for score, rank, name in results_repository.published_scores(
        session, run_id=row_id(published.run), levels=OPEN_DATA_LEVELS
    ):
        if not is_named(policy, rank, laureate_codes):
            continue
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
                "in_top1_set": bool(rank and is_overall and in_top_set(rank, 1)),
                "in_top3_set": bool(rank and is_overall and in_top_set(rank, 3)),
                "p_best": _cell(rank.p_best) if rank and eligible and is_overall else None,
                "laureate": is_overall and score.authority_code in laureate_codes,
            }
        )
    return rows


def not_named_counts(session: Session, published: Published) -> dict[str, int]:
    """Per category, how many candidates the publication policy leaves unnamed."""
    counts: dict[str, int] = {}
    policy, laureates = published.policy, published.laureate_codes
    for rank in results_repository.rank_rows(session, run_id=row_id(published.run)):
        counts.setdefault(rank.category, 0)
        if not is_named(policy, rank, laureates):
            counts[rank.category] += 1
    return counts


# --- the rankings API ---------------------------------------------------------------------------

RANKINGS_ROLES = {Role.admin, Role.jury}


def rankings(
    session: Session, *, organiser: str, year: int, user: User | None, methodology_url: str
) -> RankingsResponse:
    """The award table of the campaign's current frozen run, per category.

    Public once the campaign is published, and then it names whom the publication policy
    names (the others are counted); the organiser and the jury see every candidate, at any
    state from scored on.
    """
    campaign = campaigns_repository.get_by_year(session, organiser=organiser, year=year)
    if campaign is None:
        raise NotFound(_("There is no %(year)d campaign.") % {"year": year}, field="year")
    sees_all = user is not None and Role(user.role) in RANKINGS_ROLES
    if CampaignState(campaign.state) != CampaignState.published and not sees_all:
        if user is None:
            raise NotAuthenticated(_("The rankings are public once the campaign is published."))
        raise Forbidden(_("Before publication, only the organiser and the jury see rankings."))
    run = results_repository.current_run(session, campaign_id=row_id(campaign))
    if run is None:
        raise NotFound(_("The %(year)d campaign has not been scored yet.") % {"year": year})
    config = parse_config(campaign.config)
    policy = config.publication
    laureates = {d.laureate_code for d in jury_repository.decisions(session, row_id(campaign))}
    run_id = row_id(run)
    ranks = results_repository.rank_rows(session, run_id=run_id)
    overall = {
        row.authority_code: row
        for row in results_repository.score_rows(session, run_id=run_id, level=ScoreLevel.overall)
    }
    names = results_repository.authority_names(session, {row.authority_code for row in ranks})
    by_category: dict[str, list[RankingEntry]] = {}
    ranked: dict[str, int] = {}
    not_named: dict[str, int] = {}
    for row in ranks:
        by_category.setdefault(row.category, [])
        ranked[row.category] = ranked.get(row.category, 0) + int(row.eligible)
        if not sees_all and not is_named(policy, row, laureates):
            not_named[row.category] = not_named.get(row.category, 0) + 1
            continue
        score = overall.get(row.authority_code)
        flags = list(score.flags) if score else []
        by_category[row.category].append(
            RankingEntry(
                authority_code=row.authority_code,
                authority_name=names.get(row.authority_code, row.authority_code),
                eligible=row.eligible,
                ineligible_reason=describe_ineligibility(row.ineligible_reason),
                estimate=row.estimate,
                se=row.se,
                ci_low=score.ci_low if score else None,
                ci_high=score.ci_high if score else None,
                ci_cut_low=CUT_LOW_FLAG in flags,
                ci_cut_high=CUT_HIGH_FLAG in flags,
                rank=row.rank,
                rank_low=row.rank_low,
                rank_high=row.rank_high,
                in_top1_set=in_top_set(row, 1),
                in_top3_set=in_top_set(row, 3),
                p_best=row.p_best,
                percentile=row.percentile,
                flags=flags,
            )
        )
    order = [category.key for category in config.categories]
    order += sorted(set(by_category) - set(order))
    labels = {category.key: category for category in config.categories}
    tied = {
        key: sum(1 for row in ranks if row.category == key and in_top_set(row, 1)) > 1
        for key in by_category
    }
    categories = []
    for key in order:
        if key not in by_category:
            continue
        entries = sorted(
            by_category[key], key=lambda e: (e.rank is None, e.rank or 0, -(e.estimate or 0.0))
        )
        rule = labels.get(key)
        categories.append(
            CategoryRanking(
                key=key,
                label_fr=rule.label_fr if rule else key,
                label_en=rule.label_en if rule else key,
                statistical_tie=tied[key],
                ranked=ranked.get(key, 0),
                not_named=not_named.get(key, 0),
                candidates=entries,
            )
        )
    return RankingsResponse(
        year=campaign.year,
        campaign_state=campaign.state,
        run=RunInfo(
            id=run_id,
            inputs_sha256=run.inputs_sha256,
            seed=run.seed,
            code_version=run.code_version,
            completed_at=run.completed_at,
            confidence_level=config.confidence_level,
        ),
        publication_scope="all" if sees_all else policy.scope.value,
        publication_top_k=policy.top_k,
        methodology_url=methodology_url,
        categories=categories,
    )
