"""The SVG plots of a frozen run's pages, built on :mod:`app.plots`.

A category's forest plot (scores with intervals) and funnel plot (scores against precision,
control limits), cached per run like the category's rows; an authority's profile (its
component, channel and theme scores) and its position in its category.
"""

from __future__ import annotations

import math

import numpy as np
from sqlmodel import Session

from app import plots
from app.core.cache import BoundedCache
from app.core.i18n import _, get_locale
from app.results.compute import ScoreLevel
from app.results.models import ScoringRun
from app.scorecards.views import (
    CUT_HIGH_FLAG,
    CUT_LOW_FLAG,
    RUN_CACHE_ENTRIES,
    CategoryStats,
    CategoryView,
    Scorecard,
    run_cache_key,
    sort_key,
)
from scoring import funnel_limits

# A frozen run's plots never change: keyed like the category rows (database, run, creation
# time) plus what the drawing depends on (category, language, laureate); bounded for memory.
_PLOTS_CACHE: BoundedCache[tuple[str, ...], tuple[str, str | None]] = BoundedCache(
    "scorecards.category_plots", max_entries=RUN_CACHE_ENTRIES
)


def cut_note() -> str:
    """What a cut mark means, in the reader's language (plots and tables say the same)."""
    return _("cut at the edge of the 0–100 scale: the computed interval reaches beyond it")


def category_plots(
    session: Session, run: ScoringRun, view: CategoryView, *, laureate: str | None
) -> tuple[str, str | None]:
    """The forest and funnel plots of a category (cached like its rows: a run is frozen)."""
    key = (*run_cache_key(session, run), view.key, get_locale(), laureate or "")
    return _PLOTS_CACHE.get_or_load(
        key,
        lambda: (
            forest_svg(view, plot_id="forest", laureate=laureate),
            funnel_svg(view, plot_id="funnel", laureate=laureate),
        ),
    )


def forest_svg(
    view: CategoryView, *, plot_id: str, laureate: str | None = None, highlight: str | None = None
) -> str:
    ordered = sorted(view.eligible, key=sort_key("estimate"), reverse=True)
    rows = []
    for line in ordered:
        if line.rank.estimate is None:
            continue
        emphasis = ""
        if line.code in (laureate, highlight):
            emphasis = "laureate"
        elif line.in_top1:
            emphasis = "top1"
        elif line.in_top3:
            emphasis = "top3"
        rows.append(
            plots.ForestRow(
                key=line.code,
                label=line.name,
                estimate=line.rank.estimate,
                ci_low=line.ci_low,
                ci_high=line.ci_high,
                emphasis=emphasis,
                cut_low=line.ci_cut_low,
                cut_high=line.ci_cut_high,
            )
        )
    stats = view.stats
    desc = _(
        "%(count)d candidates sorted by score, each with its confidence interval. "
        "Median %(median)s; best %(best)s. %(top1)d in the top-1 set, "
        "%(top3)d in the top-3 set. The table below gives every value."
    ) % {
        "count": len(rows),
        "median": _one(stats.median),
        "best": _one(stats.best),
        "top1": len(view.top1),
        "top3": len(view.top3),
    }
    cut = sum(1 for row in rows if row.cut_low or row.cut_high)
    if cut:
        desc += " " + _(
            "%(count)d intervals reach the edge of the 0–100 scale and are cut there "
            "(open arrowhead)."
        ) % {"count": cut}
    return plots.forest_plot(
        rows,
        plot_id=plot_id,
        title=_("Forest plot: %(category)s") % {"category": view.label},
        desc=desc,
        reference=stats.median,
        reference_label=_("median"),
        axis_label=_("Score out of 100, with its confidence interval"),
        cut_note=cut_note(),
    )


def funnel_svg(view: CategoryView, *, plot_id: str, laureate: str | None = None) -> str | None:
    scored = [
        line for line in view.eligible if line.rank.estimate is not None and (line.rank.se or 0) > 0
    ]
    if len(scored) < 3:
        return None
    estimates = np.array([line.rank.estimate for line in scored], dtype=float)
    errors = np.array([line.rank.se for line in scored], dtype=float)
    limits = funnel_limits(estimates, errors)
    grid = np.linspace(errors.min() * 0.8, errors.max() * 1.25, 40)
    widening = math.sqrt(limits.phi)
    curves = []
    for level in limits.levels:
        base = funnel_limits(limits.target, grid, levels=(level,), overdispersion=False)
        curves.append(
            plots.FunnelCurve(
                level=level,
                se=list(grid),
                lower=list(limits.target - (limits.target - base.lower[0]) * widening),
                upper=list(limits.target + (base.upper[0] - limits.target) * widening),
            )
        )
    points = [
        plots.FunnelPoint(
            key=line.code,
            label=line.name,
            estimate=float(line.rank.estimate or 0.0),
            se=float(line.rank.se or 0.0),
            emphasis="laureate" if line.code == laureate else "",
        )
        for line in scored
    ]
    above = sum(1 for side in view.outliers.values() if side == "above")
    below = sum(1 for side in view.outliers.values() if side == "below")
    desc = _(
        "Each candidate's score against its precision (1/SE), with 95 %% and 99.8 %% control "
        "limits around the precision-weighted category mean %(target)s "
        "(over-dispersion factor %(phi)s). Above the 99.8 %% limit: %(above)d; "
        "below it: %(below)d."
    ) % {
        "target": _one(limits.target),
        "phi": f"{limits.phi:.2f}",
        "above": above,
        "below": below,
    }
    return plots.funnel_plot(
        points,
        curves,
        target=limits.target,
        plot_id=plot_id,
        title=_("Funnel plot: %(category)s") % {"category": view.label},
        desc=desc,
        x_label=_("Precision (1 / standard error)"),
        y_label=_("Score"),
    )


def _one(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def scorecard_profile_svg(card: Scorecard, *, plot_id: str) -> str | None:
    """The authority's channel and theme scores with intervals, against its overall score."""
    component_names = {"survey": _("Citizen survey"), "mystery": _("Mystery shopping")}
    rows = []
    for row in [*card.components, *card.channels, *card.themes]:
        if row.estimate is None:
            continue
        if row.level == ScoreLevel.component:
            label = component_names.get(row.key, row.key)
        elif row.level == ScoreLevel.channel:
            label = _(row.key)
        else:
            label = card.theme_names.get(row.key, row.key)
        rows.append(
            plots.ForestRow(
                key=f"{row.level}:{row.key}",
                label=label,
                estimate=row.estimate,
                ci_low=row.ci_low,
                ci_high=row.ci_high,
                cut_low=CUT_LOW_FLAG in row.flags,
                cut_high=CUT_HIGH_FLAG in row.flags,
            )
        )
    if not rows:
        return None
    overall = card.overall.estimate if card.overall else None
    return plots.forest_plot(
        rows,
        plot_id=plot_id,
        title=_("Scores of %(name)s by component, channel and theme") % {"name": card.name},
        desc=_(
            "%(count)d scores, each with its confidence interval; the dashed line is the overall "
            "score %(overall)s. The tables give every value."
        )
        % {"count": len(rows), "overall": _one(overall)},
        reference=overall,
        reference_label=_("overall"),
        axis_label=_("Score out of 100, with its confidence interval"),
        cut_note=cut_note(),
    )


def score_box(
    stats: CategoryStats, *, key: str, label: str, marker: float | None = None
) -> plots.BoxRow | None:
    """Five-number summary of some ranked scores as a box (None without any score)."""
    if stats.count == 0 or stats.median is None:
        return None
    return plots.BoxRow(
        key=key,
        label=label,
        minimum=stats.worst or 0.0,
        q1=stats.q1 or 0.0,
        median=stats.median,
        q3=stats.q3 or 0.0,
        maximum=stats.best or 0.0,
        count=stats.count,
        marker=marker,
    )


def scorecard_position_svg(card: Scorecard, *, plot_id: str) -> str | None:
    stats = card.stats
    box = score_box(
        stats,
        key=card.category,
        label=card.category_label,
        marker=card.overall.estimate if card.overall else None,
    )
    if box is None:
        return None
    return plots.distribution_plot(
        [box],
        plot_id=plot_id,
        title=_("Position of %(name)s in its category") % {"name": card.name},
        desc=_(
            "Scores of the %(count)d ranked candidates of the category: quartiles %(q1)s–%(q3)s, "
            "median %(median)s, best %(best)s; the diamond is %(name)s at %(score)s."
        )
        % {
            "count": stats.count,
            "q1": _one(stats.q1),
            "q3": _one(stats.q3),
            "median": _one(stats.median),
            "best": _one(stats.best),
            "name": card.name,
            "score": _one(card.overall.estimate if card.overall else None),
        },
        axis_label=_("Score out of 100"),
    )
