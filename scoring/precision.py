"""Precision flags and year-over-year differences."""

from __future__ import annotations

import numpy as np
import pandas as pd

from scoring.estimates import Estimates, t_quantile

__all__ = ["precision_flags", "yoy_difference"]


def precision_flags(
    estimates: Estimates,
    *,
    min_n_eff: float = 30.0,
    max_ci_width: float = 30.0,
    min_n: int = 5,
    respondents: bool = True,
    scale: tuple[float, float] = (0.0, 100.0),
) -> pd.DataFrame:
    """Precision indicators and publication flags, one row per domain.

    Columns: ``n``, ``n_eff`` (Kish), ``se``, ``cv``, ``ci_width`` (as computed, before
    any cut to the scale), ``insufficient_precision`` (``n_eff < min_n_eff`` or interval
    wider than ``max_ci_width`` points, or no SE), ``suppress`` (fewer than ``min_n``
    observations: never shown, k-anonymity threshold), ``ci_cut_low`` / ``ci_cut_high``
    (the computed bound lies outside ``scale``: a page shows it cut, and marked).

    ``respondents=False`` is for estimates made of mystery visits: the effective-n rule
    and the anonymity threshold concern respondents and never apply to visits (a visit
    identifies no one, and 1 to 4 visits per channel never reach an n_eff of 30);
    precision is then judged on the interval's width alone.
    """
    width = estimates.ci_high - estimates.ci_low
    frame = pd.DataFrame(
        {
            "n": estimates.n,
            "n_eff": estimates.n_eff,
            "se": estimates.se,
            "cv": estimates.cv,
            "ci_width": width,
        },
        index=estimates.domains,
    )
    too_wide = ~(width <= max_ci_width) | np.isnan(estimates.se)
    if respondents:
        frame["insufficient_precision"] = (estimates.n_eff < min_n_eff) | too_wide
        frame["suppress"] = estimates.n < min_n
    else:
        frame["insufficient_precision"] = too_wide
        frame["suppress"] = False
    frame["ci_cut_low"] = estimates.ci_low < scale[0]
    frame["ci_cut_high"] = estimates.ci_high > scale[1]
    return frame


def yoy_difference(current: Estimates, previous: Estimates, *, level: float = 0.95) -> Estimates:
    """Difference ``current - previous`` for the domains present in both years.

    Independent samples: SE ``sqrt(se1^2 + se2^2)``, Welch–Satterthwaite df
    (Satterthwaite 1946, doi:10.2307/3002019). A change is significant only when the
    interval excludes 0 (``result.excludes(0)``).
    """
    common = current.domains.intersection(previous.domains, sort=False)
    now = current.to_frame().loc[common]
    before = previous.to_frame().loc[common]
    var_now = now["se"].to_numpy() ** 2
    var_before = before["se"].to_numpy() ** 2
    variance = var_now + var_before
    with np.errstate(divide="ignore", invalid="ignore"):
        ws = np.where(var_now > 0, var_now**2 / now["df"].to_numpy(), 0.0) + np.where(
            var_before > 0, var_before**2 / before["df"].to_numpy(), 0.0
        )
        df = np.where(ws > 0, variance**2 / ws, np.inf)
    difference = now["estimate"].to_numpy() - before["estimate"].to_numpy()
    se = np.sqrt(variance)
    quantile = t_quantile(level, df)
    return Estimates(
        domains=common,
        estimate=difference,
        se=se,
        df=df,
        ci_low=difference - quantile * se,
        ci_high=difference + quantile * se,
        n=now["n"].to_numpy(),
        n_eff=now["n_eff"].to_numpy(),
        level=level,
        method="year-over-year difference; independent samples; Welch–Satterthwaite df",
    )
