"""Mystery-shopper channel scores and the combination of independent components."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from scoring.design import factorize
from scoring.estimates import Estimates, t_quantile

__all__ = ["channel_scores", "combine_components", "stack_components"]


def channel_scores(
    visit_score: Any,
    authority: Any,
    channel: Any,
    category: Any,
    *,
    level: float = 0.95,
) -> Estimates:
    """Per-authority, per-channel mean of approved visit scores with a t interval.

    Parameters
    ----------
    visit_score : array (n_visits,)
        Score 0–100 of each approved visit; NaN visits are ignored.
    authority, channel, category : arrays (n_visits,)
        Labels of each visit; an authority belongs to one category.
    level : float

    Returns
    -------
    Estimates
        Domains form a MultiIndex ``(authority, channel)``. With ``k ≥ 2`` visits the SE
        is ``s / sqrt(k)`` on ``k - 1`` df; with a single visit the SE borrows the
        pooled within-authority variance of the same (category, channel),
        ``sum (y - mean)^2 / sum (k - 1)`` over the authorities with ``k ≥ 2``, and its df
        (the classical pooled two-sample variance, Welch 1947, doi:10.2307/2332510 for the
        unpooled alternative). With no such authority the SE is NaN.
    """
    score = np.asarray(visit_score, dtype=float)
    authority = np.asarray(authority)
    channel = np.asarray(channel)
    category = np.asarray(category)
    if not (len(score) == len(authority) == len(channel) == len(category)):
        raise ValueError("visit_score, authority, channel and category must align")
    keep = ~np.isnan(score)
    score, authority, channel, category = (
        score[keep],
        authority[keep],
        channel[keep],
        category[keep],
    )
    auth_code, auth_labels = factorize(authority)
    chan_code, chan_labels = factorize(channel)
    cat_code, _ = factorize(category)
    if np.any(auth_code < 0) or np.any(chan_code < 0) or np.any(cat_code < 0):
        raise ValueError("authority, channel and category labels must not be missing")
    auth_category = np.full(len(auth_labels), -1, dtype=np.int64)
    auth_category[auth_code] = cat_code
    if np.any(auth_category[auth_code] != cat_code):
        raise ValueError("an authority appears in several categories")
    n_chan = len(chan_labels)
    pair_key = auth_code * n_chan + chan_code
    pair, pair_keys = factorize(pair_key)
    n_pair = len(pair_keys)
    pair_auth = np.asarray(pair_keys, dtype=np.int64) // n_chan
    pair_chan = np.asarray(pair_keys, dtype=np.int64) % n_chan
    k = np.bincount(pair, minlength=n_pair).astype(float)
    mean = np.bincount(pair, weights=score, minlength=n_pair) / k
    sum_sq = np.bincount(pair, weights=(score - mean[pair]) ** 2, minlength=n_pair)
    # Pool within (category, channel) over authorities that have a variance of their own.
    pool_key = auth_category[pair_auth] * n_chan + pair_chan
    pool, pool_keys = factorize(pool_key)
    own = k >= 2
    pooled_ss = np.bincount(pool[own], weights=sum_sq[own], minlength=len(pool_keys))
    pooled_df = np.bincount(pool[own], weights=k[own] - 1.0, minlength=len(pool_keys))
    with np.errstate(divide="ignore", invalid="ignore"):
        pooled_var = np.where(pooled_df > 0, pooled_ss / pooled_df, np.nan)
        variance = np.where(own, sum_sq / (k - 1.0), pooled_var[pool])
    df = np.where(own, k - 1.0, np.where(pooled_df[pool] > 0, pooled_df[pool], np.nan))
    se = np.sqrt(variance / k)
    quantile = t_quantile(level, np.nan_to_num(df, nan=0.0))
    domains = pd.MultiIndex.from_arrays(
        [auth_labels[pair_auth], chan_labels[pair_chan]], names=["authority", "channel"]
    )
    return Estimates(
        domains=domains,
        estimate=mean,
        se=se,
        df=df,
        ci_low=mean - quantile * se,
        ci_high=mean + quantile * se,
        n=k,
        n_eff=k,
        level=level,
        method="channel mean of visits; t on k-1 df; pooled category×channel variance if k=1",
    )


def stack_components(components: Mapping[str, Estimates]) -> Estimates:
    """Stack per-unit results into one long result indexed by ``(unit, component)``.

    The input of :func:`combine_components` when components come from different sources
    (the survey estimate and the mystery-shopper estimate of each authority).
    """
    if not components:
        raise ValueError("no component to stack")
    frames = []
    for name, result in components.items():
        frame = result.to_frame().drop(columns=["level", "method"])
        frame.index = pd.MultiIndex.from_arrays(
            [frame.index, np.full(len(frame), name, dtype=object)], names=["unit", "component"]
        )
        frames.append(frame)
    long = pd.concat(frames)
    levels = {result.level for result in components.values()}
    return Estimates(
        domains=long.index,
        estimate=long["estimate"].to_numpy(),
        se=long["se"].to_numpy(),
        df=long["df"].to_numpy(),
        ci_low=long["ci_low"].to_numpy(),
        ci_high=long["ci_high"].to_numpy(),
        n=long["n"].to_numpy(),
        n_eff=long["n_eff"].to_numpy(),
        level=levels.pop() if len(levels) == 1 else float("nan"),
        method="stacked components: " + ", ".join(components),
    )


def combine_components(
    parts: Estimates,
    weights: Mapping[Any, float],
    *,
    level: float = 0.95,
    renormalise: bool = True,
) -> Estimates:
    """Weighted sum of independent components per unit, variances added.

    Parameters
    ----------
    parts : Estimates
        Domains a 2-level MultiIndex ``(unit, component)``: channel scores from
        :func:`channel_scores`, or components stacked with :func:`stack_components`.
    weights : mapping component → weight
    level : float
    renormalise : bool
        True (default): the weights of each unit are rescaled to sum to one over the
        components it actually has (a missing channel does not drag the score to 0;
        the choice is reported in ``method``). False: missing components make the
        unit's combination missing.

    Returns
    -------
    Estimates
        One row per unit: ``sum w_c x_c``, SE ``sqrt(sum w_c^2 se_c^2)`` (independent
        samples), Welch–Satterthwaite df ``(sum w^2 se^2)^2 / sum (w^2 se^2)^2 / df_c``
        (Satterthwaite 1946, doi:10.2307/3002019; Welch 1947, doi:10.2307/2332510).
        ``n`` and ``n_eff`` are summed over the components used.
    """
    if not isinstance(parts.domains, pd.MultiIndex) or parts.domains.nlevels != 2:
        raise ValueError("parts must be indexed by (unit, component)")
    unit_code, unit_labels = factorize(np.asarray(parts.domains.get_level_values(0)))
    components = parts.domains.get_level_values(1)
    unknown = set(components.unique()) - set(weights)
    if unknown:
        raise ValueError(f"no weight for component(s) {sorted(map(str, unknown))}")
    weight = np.asarray([weights[c] for c in components], dtype=float)
    n_units = len(unit_labels)
    # A component without an SE still counts: its NaN SE propagates to the unit's SE.
    present = ~np.isnan(parts.estimate) & (weight > 0)
    used_weight = np.bincount(unit_code[present], weights=weight[present], minlength=n_units)
    total_weight = sum(w for w in weights.values() if w > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        norm = used_weight if renormalise else np.full(n_units, total_weight)
        share = np.where(present, weight / norm[unit_code], 0.0)
        estimate_part = np.where(present, share * parts.estimate, 0.0)
        variance_part = np.where(present, share**2 * parts.se**2, 0.0)
        estimate = np.bincount(unit_code, weights=estimate_part, minlength=n_units)
        variance = np.bincount(unit_code, weights=variance_part, minlength=n_units)
        ws_part = np.where(present & (variance_part > 0), variance_part**2 / parts.df, 0.0)
        ws = np.bincount(unit_code, weights=ws_part, minlength=n_units)
        df = np.where(np.isnan(variance), np.nan, np.where(ws > 0, variance**2 / ws, np.inf))
    missing = used_weight <= 0
    if not renormalise:
        missing |= used_weight < total_weight * (1 - 1e-12)
    estimate = np.where(missing, np.nan, estimate)
    se = np.where(missing, np.nan, np.sqrt(variance))
    quantile = t_quantile(level, df)
    n = np.bincount(unit_code[present], weights=parts.n[present], minlength=n_units)
    n_eff = np.bincount(unit_code[present], weights=parts.n_eff[present], minlength=n_units)
    unit_labels.name = parts.domains.names[0]
    return Estimates(
        domains=unit_labels,
        estimate=estimate,
        se=se,
        df=df,
        ci_low=estimate - quantile * se,
        ci_high=estimate + quantile * se,
        n=n,
        n_eff=n_eff,
        level=level,
        method="weighted sum of independent components"
        + ("; weights renormalised over present components" if renormalise else "")
        + "; Welch–Satterthwaite df",
    )
