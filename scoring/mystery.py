"""Mystery-shopper channel scores and the combination of independent components.

A channel score is the mean of an authority's k approved visits (k = 1 to 4). Its own
spread estimates nothing at such k (two visits give t(1) intervals of ±130 points, two
equal grid scores an SE of 0), so for every k the SE comes from a variance pooled over the
authorities of the same (category, channel): METHODOLOGY.md step 4.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import optimize

from scoring.design import factorize
from scoring.estimates import Estimates, t_quantile

__all__ = [
    "ChannelEstimates",
    "VarianceModel",
    "channel_scores",
    "combine_components",
    "impute_missing_channels",
    "stack_components",
]

VarianceModel = Literal["constant", "quasi_binomial"]

# Where the within-authority variance of a channel score comes from (``variance_source``).
CATEGORY_POOL = "category_pool"  # the (category, channel) pool, at least ``min_pool_df`` df
NATIONAL_POOL = "national_pool"  # the channel's pool over all categories
PREVIOUS_EDITION = "previous_edition"  # the channel's pool of the previous edition
BETWEEN_CANDIDATES = "between_candidates"  # spread of the candidates' scores (conservative)
IMPUTED = "imputed"  # no visit: the category's channel mean (impute_missing_channels)
NO_VARIANCE = "none"  # nothing to pool: SE unknown

SCALE = 100.0


@dataclass(frozen=True, eq=False)
class ChannelEstimates(Estimates):
    """Channel scores with where each one's variance comes from.

    Attributes
    ----------
    variance_source : str array aligned with ``domains``
        ``"category_pool"``, ``"national_pool"``, ``"previous_edition"``,
        ``"between_candidates"``, ``"imputed"`` or ``"none"`` (no SE).
    pools : pandas.DataFrame
        One row per (category, channel): ``visits`` (N), ``authorities`` (A), ``df``
        (N − A), ``residual_mean_square`` (s², the one-way ANOVA's), ``dispersion`` (s²
        under the constant model, the quasi-binomial φ otherwise), then the ``source``
        its authorities use and the ``used_dispersion`` / ``used_df`` it supplied. The
        rows with ``category`` None are the channels' national pools: stored, they are
        next edition's ``previous_pools`` (channel → (dispersion, df)).
    variance_model : str
        ``"constant"`` or ``"quasi_binomial"``.
    """

    variance_source: np.ndarray
    pools: pd.DataFrame
    variance_model: str

    def __post_init__(self) -> None:
        super().__post_init__()
        source = np.array(
            np.broadcast_to(self.variance_source, (len(self.domains),)), dtype=object, copy=True
        )
        source.flags.writeable = False
        object.__setattr__(self, "variance_source", source)


def _dispersion(sum_sq: np.ndarray, k: np.ndarray, mean: np.ndarray) -> float:
    """Pooled quasi-binomial dispersion φ of one pool's replicated authorities.

    With Var(visit) = φ·μ(100 − μ), E[SS_i] = (k_i − 1)·φ·μ_i(100 − μ_i) and
    E[ȳ_i(100 − ȳ_i)] = μ_i(100 − μ_i)·(k_i − φ)/k_i, so the moment equation
    Σ SS_i = φ Σ (k_i − 1)·k_i·ȳ_i(100 − ȳ_i)/(k_i − φ) is solved for φ in [0, 1]
    (a 0–100 variable has Var ≤ μ(100 − μ), so φ ≤ 1, and the root exists because
    SS_i ≤ k_i·ȳ_i(100 − ȳ_i) for such a variable). 0/1 visits give φ = 1 exactly.
    """
    replicated = k >= 2
    if not replicated.any():
        return float("nan")
    ss, kk, level = sum_sq[replicated], k[replicated], mean[replicated]
    bernoulli = kk * level * (SCALE - level)
    total = float(ss.sum())
    if total <= 0:
        return 0.0

    def excess(phi: float) -> float:
        return phi * float(np.sum((kk - 1) * bernoulli / (kk - phi))) - total

    if excess(1.0) <= 0:
        return 1.0
    return float(optimize.brentq(excess, 0.0, 1.0, xtol=1e-14, rtol=1e-14))


def _variance_level(
    mean: np.ndarray, k: np.ndarray, pool: np.ndarray, n_pools: int, within: np.ndarray
) -> np.ndarray:
    """The level μ̃ at which the quasi-binomial variance of each channel score is read.

    ȳ itself fails at small k: two visits at 100 would give Var = 0. μ̃ shrinks ȳ toward
    its pool's mean by the empirical-Bayes factor B = τ²/(τ² + σ²/k) (Morris 1983,
    doi:10.1080/01621459.1983.10477920), with σ² the pool's constant within variance and τ²
    the method-of-moments between-authority variance; μ̃ = 100 only if every score is.
    """
    count = np.bincount(pool, minlength=n_pools).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        centre = np.bincount(pool, weights=mean, minlength=n_pools) / count
        spread = np.bincount(pool, weights=(mean - centre[pool]) ** 2, minlength=n_pools)
        between = spread / (count - 1)
        noise = np.bincount(pool, weights=within[pool] / k, minlength=n_pools) / count
        tau2 = np.where(count >= 2, np.maximum(between - noise, 0.0), np.nan)
        shrink = tau2[pool] / (tau2[pool] + within[pool] / k)
    shrink = np.where(np.isfinite(shrink), shrink, 1.0)
    return centre[pool] + shrink * (mean - centre[pool])


def channel_scores(
    visit_score: Any,
    authority: Any,
    channel: Any,
    category: Any,
    *,
    level: float = 0.95,
    variance_model: VarianceModel = "quasi_binomial",
    min_pool_df: int = 5,
    previous_pools: Mapping[Any, tuple[float, float]] | None = None,
) -> ChannelEstimates:
    """Per-authority, per-channel mean of approved visit scores, SE from a pooled variance.

    Parameters
    ----------
    visit_score : array (n_visits,)
        Score 0–100 of each approved visit (0 after a knock-out); NaN visits are ignored.
    authority, channel, category : arrays (n_visits,)
        Labels of each visit; an authority belongs to one category.
    level : float
        Confidence level of the t intervals.
    variance_model : {"constant", "quasi_binomial"}
        ``"quasi_binomial"`` (default): Var(visit) = φ·μ(100 − μ), φ pooled (see Notes).
        ``"constant"``: every visit of a pool has the variance s²_pool (SE √(s²_pool/k)).
    min_pool_df : int
        A (category, channel) pool on fewer df borrows the channel's national pool.
    previous_pools : mapping channel → (dispersion, df), optional
        The previous edition's national pool of each channel, in the terms of
        ``variance_model`` (s² or φ), used when a channel has no replicate at all.

    Returns
    -------
    ChannelEstimates
        Domains a MultiIndex ``(authority, channel)``; ``n`` = ``n_eff`` = k.
        ``estimate`` = ȳ; ``se`` = √(φ·μ̃(100 − μ̃) / k), or √(s²_pool / k) under the
        constant model; ``df`` = the pool's N − A; t interval
        (not cut to 0–100: the caller marks a cut). ``variance_source`` and ``pools``
        say where each variance comes from.

    Notes
    -----
    s²_pool is the residual mean square of the one-way ANOVA of the visit scores on
    authority within the (category, channel), on N − A df (R:
    ``anova(lm(score ~ factor(authority)))``; checked against R in
    ``tests/scoring/r/``). Which pool an authority's channel uses, first that applies:

    1. its (category, channel) pool when it has at least ``min_pool_df`` df;
    2. the channel's national pool (all categories) when it has more df (``national_pool``);
    3. the category pool itself when it has any df (few df: a wide t interval);
    4. ``previous_pools[channel]`` (``previous_edition``);
    5. the variance of the single-visit scores across the category's candidates, on
       m − 1 df (``between_candidates``): between plus within, hence conservative.

    Scores pile up at 100 (ceilings, grid steps, knock-outs at 0), so the within spread
    shrinks near the top. The quasi-binomial option reads the variance at an
    empirically-Bayes-shrunk level μ̃ (never 100 unless every score is) with a φ pooled by
    moments (Wedderburn 1974, doi:10.1093/biomet/61.3.439); where μ̃ is 0 or 100 (a lone
    authority in its pool) the same pool's constant s² is used instead. Simulated coverage of 95 %
    intervals, 35-candidate categories with grid steps, ceilings and knock-outs
    (``tests/scoring/test_scoring_mystery_pool.py``), top fifth / bottom fifth:

    =====  ====================  ====================  ====================
    k      constant, mean ≈ 66   quasi-binomial, ≈ 66  ceilings, mean ≈ 85
    =====  ====================  ====================  ====================
    1      98.1 / 93.3           98.2 / 93.3           98.9 / 88.1 (c. 99.1 / 81.9)
    2      98.2 / 93.0           98.0 / 94.0           99.3 / 90.6 (c. 99.2 / 84.6)
    3      98.4 / 91.6           97.6 / 93.7           99.4 / 90.7 (c. 99.4 / 84.8)
    4      98.2 / 92.1           96.9 / 93.9           98.9 / 92.3 (c. 99.1 / 84.6)
    =====  ====================  ====================  ====================

    (last column: quasi-binomial, constant in brackets; 300 categories × 35 candidates per
    cell; k = 1 with 10 replicated candidates of 35.) The quasi-binomial rule is the
    default: it holds the bottom fifth in 93–97 % at AFNOR-like levels where the constant
    pool falls to 92 %, and loses far less than it when scores pile up at 100 (88–92 %
    against 82–85 %). Neither rule brings the top fifth under 97 %: near the ceiling the
    scores are discrete (most visits exactly 100), so any interval that does not collapse
    to a point at 100 over-covers there; both err on the leaders' side by the same amount.

    References
    ----------
    Welch, B. L. (1947). The generalization of "Student's" problem when several different
    population variances are involved. Biometrika 34, 28–35. doi:10.2307/2332510.
    """
    score = np.asarray(visit_score, dtype=float)
    authority = np.asarray(authority)
    channel = np.asarray(channel)
    category = np.asarray(category)
    if not (len(score) == len(authority) == len(channel) == len(category)):
        raise ValueError("visit_score, authority, channel and category must align")
    if variance_model not in ("constant", "quasi_binomial"):
        raise ValueError(f"unknown variance_model {variance_model!r}")
    keep = ~np.isnan(score)
    score, authority, channel, category = (
        score[keep],
        authority[keep],
        channel[keep],
        category[keep],
    )
    auth_code, auth_labels = factorize(authority)
    chan_code, chan_labels = factorize(channel)
    cat_code, cat_labels = factorize(category)
    if np.any(auth_code < 0) or np.any(chan_code < 0) or np.any(cat_code < 0):
        raise ValueError("authority, channel and category labels must not be missing")
    auth_category = np.full(len(auth_labels), -1, dtype=np.int64)
    auth_category[auth_code] = cat_code
    if np.any(auth_category[auth_code] != cat_code):
        raise ValueError("an authority appears in several categories")
    n_chan = len(chan_labels)
    pair, pair_keys = factorize(auth_code * n_chan + chan_code)
    n_pair = len(pair_keys)
    pair_auth = np.asarray(pair_keys, dtype=np.int64) // n_chan
    pair_chan = np.asarray(pair_keys, dtype=np.int64) % n_chan
    k = np.bincount(pair, minlength=n_pair).astype(float)
    mean = np.bincount(pair, weights=score, minlength=n_pair) / k
    sum_sq = np.bincount(pair, weights=(score - mean[pair]) ** 2, minlength=n_pair)

    # One-way ANOVA residual sums of squares: per (category, channel), then per channel.
    pool, pool_keys = factorize(auth_category[pair_auth] * n_chan + pair_chan)
    n_pools = len(pool_keys)
    pool_cat = np.asarray(pool_keys, dtype=np.int64) // n_chan
    pool_chan = np.asarray(pool_keys, dtype=np.int64) % n_chan
    pool_ss = np.bincount(pool, weights=sum_sq, minlength=n_pools)
    pool_visits = np.bincount(pool, weights=k, minlength=n_pools)
    pool_authorities = np.bincount(pool, minlength=n_pools).astype(float)
    pool_df = pool_visits - pool_authorities
    nat_ss = np.bincount(pair_chan, weights=sum_sq, minlength=n_chan)
    nat_df = np.bincount(pair_chan, weights=k - 1.0, minlength=n_chan)
    with np.errstate(divide="ignore", invalid="ignore"):
        pool_s2 = np.where(pool_df > 0, pool_ss / pool_df, np.nan)
        nat_s2 = np.where(nat_df > 0, nat_ss / nat_df, np.nan)
    if variance_model == "quasi_binomial":
        pool_disp = np.array([_dispersion(sum_sq[pool == p], k[pool == p], mean[pool == p])
                              for p in range(n_pools)])  # fmt: skip
        nat_disp = np.array([_dispersion(sum_sq[pair_chan == c], k[pair_chan == c],
                                         mean[pair_chan == c]) for c in range(n_chan)])  # fmt: skip
    else:
        pool_disp, nat_disp = pool_s2, nat_s2

    # Single-visit spread across the category's candidates: the last resort.
    single = k == 1
    single_n = np.bincount(pool[single], minlength=n_pools).astype(float)
    single_mean = np.bincount(pool[single], weights=mean[single], minlength=n_pools)
    with np.errstate(divide="ignore", invalid="ignore"):
        single_mean = single_mean / single_n
        single_ss = np.bincount(
            pool[single], weights=(mean[single] - single_mean[pool[single]]) ** 2, minlength=n_pools
        )
        between_s2 = np.where(single_n >= 2, single_ss / (single_n - 1), np.nan)

    previous = previous_pools or {}
    source = np.full(n_pools, NO_VARIANCE, dtype=object)
    used_disp = np.full(n_pools, np.nan)
    used_df = np.full(n_pools, np.nan)
    used_s2 = np.full(n_pools, np.nan)  # the same source's constant variance
    constant_fallback = np.zeros(n_pools, dtype=bool)  # a plain variance whatever the model
    for p in range(n_pools):
        c = pool_chan[p]
        if pool_df[p] >= min_pool_df:
            source[p], used_disp[p], used_df[p] = CATEGORY_POOL, pool_disp[p], pool_df[p]
            used_s2[p] = pool_s2[p]
        elif nat_df[c] > pool_df[p]:
            source[p], used_disp[p], used_df[p] = NATIONAL_POOL, nat_disp[c], nat_df[c]
            used_s2[p] = nat_s2[c]
        elif pool_df[p] > 0:
            source[p], used_disp[p], used_df[p] = CATEGORY_POOL, pool_disp[p], pool_df[p]
            used_s2[p] = pool_s2[p]
        elif chan_labels[c] in previous:
            dispersion, dof = previous[chan_labels[c]]
            source[p], used_disp[p], used_df[p] = PREVIOUS_EDITION, dispersion, dof
        elif np.isfinite(between_s2[p]):
            source[p], used_disp[p], used_df[p] = (
                BETWEEN_CANDIDATES,
                between_s2[p],
                single_n[p] - 1,
            )
            constant_fallback[p] = True

    if variance_model == "quasi_binomial":
        # The level is shrunk toward the pool's mean with the constant within variance.
        within = np.where(np.isfinite(pool_s2), pool_s2, nat_s2[pool_chan])
        within = np.where(np.isfinite(within), within, between_s2)
        mu = _variance_level(mean, k, pool, n_pools, within)
        visit_var = np.where(
            constant_fallback[pool], used_disp[pool], used_disp[pool] * mu * (SCALE - mu)
        )
        # A level at the edge (μ̃ = 0 or 100: a lone authority, or a pool tied at the
        # extremes) would claim an exact score: read the same pool's constant variance.
        degenerate = ~(visit_var > 0) & np.isfinite(used_s2[pool])
        visit_var = np.where(degenerate, used_s2[pool], visit_var)
    else:
        visit_var = used_disp[pool]
    se = np.sqrt(visit_var / k)
    df = used_df[pool]
    quantile = t_quantile(level, np.nan_to_num(df, nan=0.0))
    domains = pd.MultiIndex.from_arrays(
        [auth_labels[pair_auth], chan_labels[pair_chan]], names=["authority", "channel"]
    )
    pools = pd.DataFrame(
        {
            "category": np.asarray(cat_labels, dtype=object)[pool_cat],
            "channel": np.asarray(chan_labels, dtype=object)[pool_chan],
            "visits": pool_visits,
            "authorities": pool_authorities,
            "df": pool_df,
            "residual_mean_square": pool_s2,
            "dispersion": pool_disp,
            "source": source,
            "used_dispersion": used_disp,
            "used_df": used_df,
        }
    )
    national = pd.DataFrame(
        {
            "category": None,
            "channel": np.asarray(chan_labels, dtype=object),
            "visits": np.bincount(pair_chan, weights=k, minlength=n_chan),
            "authorities": np.bincount(pair_chan, minlength=n_chan).astype(float),
            "df": nat_df,
            "residual_mean_square": nat_s2,
            "dispersion": nat_disp,
            "source": NATIONAL_POOL,
            "used_dispersion": nat_disp,
            "used_df": nat_df,
        }
    )
    return ChannelEstimates(
        domains=domains,
        estimate=mean,
        se=se,
        df=df,
        ci_low=mean - quantile * se,
        ci_high=mean + quantile * se,
        n=k,
        n_eff=k,
        level=level,
        method=(
            "channel mean of visits; SE sqrt(s2_pool/k), s2_pool the one-way ANOVA residual "
            f"mean square of its category and channel on N - A df ({variance_model} model); "
            f"national pool under {min_pool_df} df, then previous edition, then the spread "
            "across candidates"
        ),
        variance_source=source[pool],
        pools=pd.concat([pools, national], ignore_index=True),
        variance_model=variance_model,
    )


def impute_missing_channels(
    channels: ChannelEstimates,
    category_of: Mapping[Any, Any],
    weighted: Any,
    *,
    level: float = 0.95,
) -> ChannelEstimates:
    """Add a row for every weighted channel an authority lacks: its category's mean.

    Renormalising the channel weights over the channels present would reward a missing
    channel whenever it scores below the others (a missing letter gains about +1.25 points):
    METHODOLOGY.md step 4 forbids it. An authority (a unit of ``channels``) without a score
    on a weighted channel that other candidates of its category have gets the category's mean
    channel score m̄ of the m candidates tested, with the prediction variance of an unseen
    candidate, s²_between·(1 + 1/m) on m − 1 df (s²_between: variance of the m scores,
    between plus within), ``n`` = 0 and ``variance_source`` ``"imputed"``. In expectation
    over which candidate misses the channel, the imputed score equals the one measured.
    A channel no candidate of the category was tested on gets no row: it carries no
    information there, for anyone.

    Parameters
    ----------
    channels : ChannelEstimates
        From :func:`channel_scores`.
    category_of : mapping authority → category
        For every authority of ``channels``.
    weighted : iterable of channel labels
        The channels that carry a positive weight.
    level : float
    """
    authority = np.asarray(channels.domains.get_level_values(0), dtype=object)
    label = np.asarray(channels.domains.get_level_values(1), dtype=object)
    category = np.array([category_of[a] for a in authority], dtype=object)
    present = ~np.isnan(channels.estimate)
    units = pd.unique(authority)
    unit_category = np.array([category_of[u] for u in units], dtype=object)
    have = set(zip(authority[present], label[present], strict=True))
    new_unit, new_label, new_mean, new_var, new_df = [], [], [], [], []
    for c in dict.fromkeys(weighted):
        for cat in pd.unique(unit_category):
            tested = present & (label == c) & (category == cat)
            m = int(tested.sum())
            if m == 0:
                continue
            values = channels.estimate[tested]
            mean = float(values.mean())
            variance = float(values.var(ddof=1)) * (1 + 1 / m) if m >= 2 else float("nan")
            for u in units[unit_category == cat]:
                if (u, c) not in have:
                    new_unit.append(u)
                    new_label.append(c)
                    new_mean.append(mean)
                    new_var.append(variance)
                    new_df.append(m - 1.0 if m >= 2 else np.nan)
    if not new_unit:
        return channels
    keep = present
    se = np.sqrt(np.asarray(new_var))
    df = np.asarray(new_df)
    quantile = t_quantile(level, np.nan_to_num(df, nan=0.0))
    estimate = np.asarray(new_mean)
    domains = pd.MultiIndex.from_arrays(
        [
            np.concatenate([authority[keep], np.asarray(new_unit, dtype=object)]),
            np.concatenate([label[keep], np.asarray(new_label, dtype=object)]),
        ],
        names=channels.domains.names,
    )
    return ChannelEstimates(
        domains=domains,
        estimate=np.concatenate([channels.estimate[keep], estimate]),
        se=np.concatenate([channels.se[keep], se]),
        df=np.concatenate([channels.df[keep], df]),
        ci_low=np.concatenate([channels.ci_low[keep], estimate - quantile * se]),
        ci_high=np.concatenate([channels.ci_high[keep], estimate + quantile * se]),
        n=np.concatenate([channels.n[keep], np.zeros(len(estimate))]),
        n_eff=np.concatenate([channels.n_eff[keep], np.zeros(len(estimate))]),
        level=channels.level,
        method=channels.method + "; missing weighted channels imputed at the category mean",
        variance_source=np.concatenate(
            [channels.variance_source[keep], np.full(len(estimate), IMPUTED, dtype=object)]
        ),
        pools=channels.pools,
        variance_model=channels.variance_model,
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
        components it actually has (the choice is reported in ``method``). False: the
        weights are divided by their total and a missing component makes the unit's
        combination missing. **Channels of the mystery component must use False** after
        :func:`impute_missing_channels`: renormalising over the channels present rewards a
        missing channel that scores below the others (METHODOLOGY.md step 4).

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
