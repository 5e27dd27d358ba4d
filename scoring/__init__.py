"""Survey statistics for the barometer: design-based estimates, composites, rankings.

Pure numpy/scipy/pandas/statsmodels: it takes arrays or frames and returns frozen,
documented result objects; it knows nothing of the web, the database or ``surveys``.
See docs/METHODOLOGY.md for the methods and the public API contract.
"""

from scoring.bootstrap import estimate_mean_replicates, rao_wu_bootstrap
from scoring.design import Design, poststratify, rake
from scoring.estimates import (
    Estimates,
    estimate_composite,
    estimate_mean,
    estimate_means,
    estimate_proportion,
    estimate_total,
)
from scoring.funnel import FunnelLimits, funnel_limits
from scoring.mystery import (
    ChannelEstimates,
    channel_scores,
    combine_components,
    impute_missing_channels,
    stack_components,
)
from scoring.planner import (
    AlternativeKind,
    FieldworkPlan,
    PlanAlternative,
    PrecisionForecast,
    VarianceComponents,
    compare_plans,
    forecast_precision,
)
from scoring.precision import precision_flags, yoy_difference
from scoring.ranks import RankSets, kww_rank_region, p_best, point_rank, rank_sets, top_set
from scoring.shrinkage import FayHerriot, fay_herriot

__all__ = [
    "AlternativeKind",
    "ChannelEstimates",
    "Design",
    "Estimates",
    "FayHerriot",
    "FieldworkPlan",
    "FunnelLimits",
    "PlanAlternative",
    "PrecisionForecast",
    "RankSets",
    "VarianceComponents",
    "channel_scores",
    "combine_components",
    "compare_plans",
    "estimate_composite",
    "estimate_mean",
    "estimate_mean_replicates",
    "estimate_means",
    "estimate_proportion",
    "estimate_total",
    "fay_herriot",
    "forecast_precision",
    "funnel_limits",
    "impute_missing_channels",
    "kww_rank_region",
    "p_best",
    "point_rank",
    "poststratify",
    "precision_flags",
    "rake",
    "rank_sets",
    "rao_wu_bootstrap",
    "stack_components",
    "top_set",
    "yoy_difference",
]
