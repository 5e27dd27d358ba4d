"""Survey statistics for the barometer: design-based estimates, composites, rankings.

Pure numpy/scipy/pandas/statsmodels; no knowledge of the web, the database or ``surveys``.
"""

from scoring.design import Design, poststratify, rake
from scoring.estimates import (
    Estimates,
    estimate_composite,
    estimate_mean,
    estimate_proportion,
    estimate_total,
)

__all__ = [
    "Design",
    "Estimates",
    "estimate_composite",
    "estimate_mean",
    "estimate_proportion",
    "estimate_total",
    "poststratify",
    "rake",
]
