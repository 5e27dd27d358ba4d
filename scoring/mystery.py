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

VarianceModel = Literal["constant", "quasi_binomial", "two_part"]

# Where the within-authority variance of a channel score comes from (``variance_source``).
CATEGORY_POOL = "category_pool"  # the (category, channel) pool, at least ``min_pool_df`` df
NATIONAL_POOL = "national_pool"  # the channel's pool over all categories
PREVIOUS_EDITION = "previous_edition"  # the channel's pool of the previous edition
BETWEEN_CANDIDATES = "between_candidates"  # spread of the candidates' scores (conservative)
IMPUTED = "imputed"  # no visit: the category's channel mean (impute_missing_channels)
NO_VARIANCE = "none"  # nothing to pool: SE unknown

SCALE = 100.0
HALF = SCALE / 2
MIN_POWER_AUTHORITIES = 20  # replicated authorities per half needed to estimate the power
POWER_RANGE = (0.5, 2.5)
PSEUDO_TRIALS = 1.0  # Jeffreys: half a pseudo-success and half a pseudo-failure (SE level)


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
        under the constant model, the quasi-binomial φ, or the two-part φ of the clean
        visits), then the ``source`` its authorities use, the ``used_dispersion`` /
        ``used_df`` it supplied, and under ``"two_part"`` the ``power`` p and the
        ``knockout_rate`` r (NaN otherwise). The
        rows with ``category`` None are the channels' national pools: stored, they are
        next edition's ``previous_pools`` (channel → (dispersion, df)).
    variance_model : str
        ``"two_part"``, ``"quasi_binomial"`` or ``"constant"``.
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


def _unbiased_level(sum_sq: np.ndarray, k: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """Unbiased estimate of v = μ(100 − μ)/2500 from k visits: [ȳ(100 − ȳ) + s²/k]/2500.

    E[ȳ(100 − ȳ)] = μ(100 − μ) − Var(ȳ) for any distribution and E[s²/k] = Var(ȳ); the
    correction also removes most of the dependence between ȳ(100 − ȳ) and the authority's own
    sum of squares (two visits at 100 give v = 0 and SS = 0 together).
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        own = np.where(k >= 2, sum_sq / (k * (k - 1)), 0.0)
        return np.clip(mean * (SCALE - mean) + own, 0.0, None) / (HALF * HALF)


def _power(sum_sq: np.ndarray, k: np.ndarray, mean: np.ndarray, proxy: np.ndarray) -> float:
    """Power p of the variance function Var = φ·v(μ)^p, v = μ(100 − μ)/2500, of clean visits.

    The replicated authorities (k ≥ 2) are split into two halves and p solves the two
    moment equations Σ SS_i = φ Σ (k_i − 1)·v̂_i^p, one per half, for a common φ (a
    two-group method of moments for a variance function: Davidian & Carroll 1987,
    doi:10.1080/01621459.1987.10478550), v̂ the unbiased level of :func:`_unbiased_level`.
    The split must not use the channel's own visits: authorities sorted by their own ȳ put
    the pairs that happen to agree at 100 in one half, which steepens p (1.7–2.4 instead of
    the true 1.1–1.3 in simulation). They are split instead by ``proxy``, v read at the
    channel's level predicted from the authority's *other* channels (:func:`_level_proxy`),
    whose visits are independent of this channel's within-authority errors (an
    instrument). p = 1 (quasi-binomial) when fewer than
    ``MIN_POWER_AUTHORITIES`` authorities fall in either half; the root is bounded to
    ``POWER_RANGE``.
    """
    level = _unbiased_level(sum_sq, k, mean)
    usable = (k >= 2) & np.isfinite(proxy)
    if usable.sum() < 2 * MIN_POWER_AUTHORITIES:
        return 1.0
    ss, dof, v, split = sum_sq[usable], k[usable] - 1, level[usable], proxy[usable]
    low = split <= np.median(split)
    if low.sum() < MIN_POWER_AUTHORITIES or (~low).sum() < MIN_POWER_AUTHORITIES:
        return 1.0
    if ss[low].sum() <= 0 or ss[~low].sum() <= 0 or not (v[low] > 0).any():
        return 1.0

    def gap(p: float) -> float:
        phi_low = ss[low].sum() / np.sum(dof[low] * v[low] ** p)
        phi_high = ss[~low].sum() / np.sum(dof[~low] * v[~low] ** p)
        return float(np.log(phi_low) - np.log(phi_high))

    lower, upper = POWER_RANGE
    if gap(lower) * gap(upper) > 0:
        return lower if abs(gap(lower)) < abs(gap(upper)) else upper
    return float(optimize.brentq(gap, lower, upper, xtol=1e-10))


def _level_proxy(
    mean: np.ndarray, others: np.ndarray, pair_chan: np.ndarray, n_chan: int
) -> np.ndarray:
    """Instrument of :func:`_power`: ŷ(100 − ŷ), ŷ the channel's level predicted from the others.

    Per channel, ŷ is the least-squares line of the authorities' ȳ on the mean of their
    *other* channels (the first stage of two-stage least squares: Sargan 1958), so the
    instrument comes from visits independent of this channel's within-authority errors and
    still carries the channel's own level. The raw mean of the other channels gives an
    authority's telephone (≈ 87) and its letters (≈ 56) the same instrument: the split of
    :func:`_power` then ignores the largest contrast of levels, between channels, and p is
    identified by the authorities' spread alone. On the study editions
    (``tests/scoring/coverage_rules_study.py --power 60``; the log-log slope of the true
    variance function is 1.24–1.29 by channel) the raw mean gave p = 1.47 on average with
    an SD of 0.49 across editions (0.52 to the bound 2.5), the predicted level 1.28 with an
    SD of 0.21 (0.72 to 1.78). NaN where the authority has no other channel.
    """
    proxy = np.full(len(mean), np.nan)
    for c in range(n_chan):
        rows = np.flatnonzero((pair_chan == c) & np.isfinite(others))
        if len(rows) < 3 or np.ptp(others[rows]) <= 0:
            continue
        slope, intercept = np.polyfit(others[rows], mean[rows], 1)
        level = np.clip(intercept + slope * others[rows], 0.0, SCALE)
        proxy[rows] = level * (SCALE - level)
    return proxy


def _power_dispersion(sum_sq: np.ndarray, k: np.ndarray, mean: np.ndarray, power: float) -> float:
    """φ of Var = φ·[μ(100 − μ)/2500]^p by the pooled moment Σ SS_i = φ Σ (k_i − 1)·v_i^p."""
    replicated = k >= 2
    if not replicated.any():
        return float("nan")
    level = _unbiased_level(sum_sq, k, mean)[replicated]
    weight = float(np.sum((k[replicated] - 1) * level**power))
    total = float(sum_sq[replicated].sum())
    if weight <= 0:
        return 0.0 if total <= 0 else float("nan")
    return total / weight


def _score_interval(
    mean: np.ndarray, scale2: np.ndarray, bias2: np.ndarray, power: np.ndarray, quantile: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """{μ in [0, 100] : (ȳ − μ)² ≤ t²·(scale2·[μ(100 − μ)/2500]^p + bias2)}, by bisection.

    The test-inversion ("score") interval of Wilson (1927, doi:10.1080/01621459.1927.10502953)
    for a variance that depends on the mean: the variance is read at each hypothesised μ, not
    at ȳ, so a high draw does not shrink its own interval. The set is an interval containing
    ȳ; 60 halvings locate each end to 100·2⁻⁶⁰.
    """

    def inside(mu: np.ndarray) -> np.ndarray:
        v = np.clip(mu * (SCALE - mu), 0.0, None) / (HALF * HALF)
        return (mean - mu) ** 2 <= quantile**2 * (scale2 * v**power + bias2)

    ends = []
    for edge in (0.0, SCALE):
        inner, outer = mean.copy(), np.full_like(mean, edge)
        reaches = inside(outer)
        for _ in range(60):
            middle = (inner + outer) / 2
            ok = inside(middle)
            inner = np.where(ok, middle, inner)
            outer = np.where(ok, outer, middle)
        ends.append(np.where(reaches, edge, inner))
    return ends[0], ends[1]


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
    variance_model: VarianceModel = "two_part",
    min_pool_df: int = 5,
    previous_pools: Mapping[Any, tuple[float, float]] | None = None,
    knocked_out: Any = None,
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
    variance_model : {"two_part", "quasi_binomial", "constant"}
        ``"two_part"`` (default): knock-outs apart, a power variance function of the clean
        visits and a score interval (see Notes). ``"quasi_binomial"``: Var(visit) =
        φ·μ(100 − μ), φ pooled, read at a shrunk level. ``"constant"``: every visit of a pool
        has the variance s²_pool (SE √(s²_pool/k)).
    min_pool_df : int
        A (category, channel) pool on fewer df borrows the channel's national pool.
    previous_pools : mapping channel → (dispersion, df), optional
        The previous edition's national pool of each channel, in the terms of
        ``variance_model`` (s² or φ), used when a channel has no replicate at all.
    knocked_out : bool array (n_visits,), optional
        Which visits a failed knock-out item set to 0 (``"two_part"`` only; None: no visit
        is treated as knocked out).

    Returns
    -------
    ChannelEstimates
        Domains a MultiIndex ``(authority, channel)``; ``n`` = ``n_eff`` = k.
        ``estimate`` = ȳ; ``df`` = the pool's N − A (of the clean visits under
        ``"two_part"``). ``"two_part"``: the score interval of the Notes, ``se`` its
        root mean squared error at Jeffreys' level (what combinations add); otherwise
        ``se`` = √(φ·μ̃(100 − μ̃) / k) or √(s²_pool / k) and the t interval ȳ ± t·se.
        A t interval is not cut to 0–100 (the caller marks a cut); a score interval lies in
        0–100 by construction. ``variance_source`` and ``pools``
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
    authority in its pool) the same pool's constant s² is used instead. Shrinking toward
    the pool's mean is what fails at both ends: it overstates the leaders' variance and
    understates the laggards'.

    **The two-part rule (default).** A visit is Y = (1 − J)·X: J = 1 when a knock-out
    zeroes it (rate r, rare: 0.2–2 %), X the clean score. Pooled over the clean visits
    only, Var(X) = φ·v(μ)^p with v = μ(100 − μ)/2500: the power p from a two-group method
    of moments over all channels with an instrument for the level, the channel's level
    predicted from the authority's other channels (:func:`_power`, :func:`_level_proxy`;
    p = 1 without one), φ of each (category, channel) by the pooled moment
    (:func:`_power_dispersion`), on the clean N − A df; r is the pool's knock-out share.
    Given the authority's own knock-out count j of k, ȳ = (k − j)/k·x̄ has the conditional
    variance (k − j)·Var(X)/k² and the conditional bias m·(r − j/k) (m the clean mean,
    estimated by x̄, by the pool's clean mean when j = k); averaged over j, variance plus
    squared bias is exactly the mixture variance [(1 − r)·Var(X) + r(1 − r)·m²]/k. The
    interval keeps ȳ (METHODOLOGY.md step 4) and inverts the test: all μ in 0–100 with
    (ȳ − μ)² ≤ t²·[(k − j)·φ·v(μ)^p/k² + b̂²] (Wilson 1927's score interval for a variance
    that depends on the mean; :func:`_score_interval`), so a run of 100s still gets a lower
    bound below 100 and a high draw does not narrow its own interval. The SE that the
    mystery component and the overall score add is the same root mean squared error read
    at Jeffreys' level (k·ȳ + φ/2500·50)/(k + φ/2500): half a pseudo-success and half a
    pseudo-failure, a visit being worth 2500/φ binomial trials at mid-scale (the Jeffreys
    prior of Brown, Cai & DasGupta 2001; Agresti & Coull 1998 read a Wald variance at a
    shrunk centre in the same way). Laplace's level (one pseudo-success and one
    pseudo-failure) gave 97.9 / 94.0 (mystery) and 96.7 / 94.2 (overall): the leaders'
    mystery component over-covered.

    Coverage of 95 % intervals through ``app.results.compute`` (``tests/app/
    test_results_coverage.py``'s editions: 35-candidate categories, design 2/3/2/1/1/1
    with 10 replicated single tests per category and a fourth call for a third; grids with
    ceilings, steps and knock-outs), top fifth / bottom fifth. Default: 200 editions × 8
    categories (``coverage_rules_study.py --compute 100 1000`` and ``--compute 100 2000``,
    the mean of the two; Monte-Carlo SE in brackets). The middle column is the same rule
    with the raw mean of the other channels as the power's instrument (60 editions for
    channels, 40 for the rest), the first the quasi-binomial rule (12 editions):

    ===============  ================  ===========================  ========================
    interval         quasi-binomial    two-part, raw instrument     two-part (default)
    ===============  ================  ===========================  ========================
    channel k = 1    97.2 / 93.1       95.6 / 96.3 (0.2 / 0.2)      95.8 / 96.3 (0.1 / 0.1)
    channel k = 2    97.8 / 94.2       94.6 / 94.6 (0.2 / 0.2)      95.8 / 94.8 (0.1 / 0.1)
    channel k = 3    99.2 / 91.1       91.7 / 95.1 (0.6 / 0.5)      95.9 / 94.8 (0.3 / 0.3)
    channel k = 4    99.0 / 92.7       92.3 / 94.7 (0.9 / 0.7)      96.2 / 95.2 (0.4 / 0.4)
    mystery          98.5 / 93.3       96.5 / 93.6 (0.4 / 0.5)      95.8 / 93.9 (0.2 / 0.2)
    overall          97.8 / 93.5       95.6 / 93.1 (0.4 / 0.5)      95.6 / 94.1 (0.2 / 0.2)
    survey           94.3 / 94.5       94.7 / 95.0 (0.5 / 0.5)      94.2 / 94.6 (0.2 / 0.2)
    ===============  ================  ===========================  ========================

    Every cell is in 93–97 %; so are the strict test's own 36 seeded editions (lowest: overall
    bottom 93.8 ± 0.5, mystery bottom 94.2, k = 4 top 94.6). With the raw instrument the
    telephone's leaders at k = 3–4 (true scores ≈ 95) under-covered: p varied from edition to
    edition between 0.5 and the bound 2.5 (:func:`_level_proxy`), and a steep p understates the
    variance near the ceiling, so one poor visit left the upper bound below the truth. Those
    cells follow p closely (``coverage_rules_study.py --power 40``, k = 3 / k = 4 top, fixed p =
    1.0: 97.7 / 97.7; 1.15: 96.7 / 97.3; 1.25: 96.0 / 96.9; 1.3: 95.7 / 96.2; p estimated with
    the raw instrument 89.4 / 89.1, with the predicted level 95.5 / 95.8): a fixed p of 1
    over-covers them, the p of one edition's own data holds them when its instrument carries the
    channel's level. Reading the variance at the shrunk level on the upper side as well (the
    union with the Wald interval) had moved them to 98–99.7 %. With one channel only there is no
    instrument and p = 1 (``tests/scoring/ test_scoring_mystery_pool.py``, 300 categories, k =
    1–4): at mean ≈ 66, 95.9/95.5, 97.7/94.3, 97.2/94.0, 97.4/94.5 (quasi-binomial 98.2/93.3,
    98.0/94.0, 97.6/93.7, 96.9/93.9); at mean ≈ 84, 96.8/93.8, 97.4/94.1, 97.9/94.2, 98.0/93.4
    (quasi-binomial 98.4/89.7, 99.0/91.0, 99.0/92.0, 98.5/92.0): without the power the leaders
    over-cover by up to 3 points, as before, and the bottom holds.

    References
    ----------
    Agresti, A., & Coull, B. A. (1998). Approximate is better than "exact" for interval
    estimation of binomial proportions. The American Statistician 52, 119–126.
    doi:10.1080/00031305.1998.10480550.
    Brown, L. D., Cai, T. T., & DasGupta, A. (2001). Interval estimation for a binomial
    proportion. Statistical Science 16, 101–133. doi:10.1214/ss/1009213286.
    Davidian, M., & Carroll, R. J. (1987). Variance function estimation. JASA 82,
    1079–1091. doi:10.1080/01621459.1987.10478550.
    Sargan, J. D. (1958). The estimation of economic relationships using instrumental
    variables. Econometrica 26, 393–415. doi:10.2307/1907619.
    Welch, B. L. (1947). The generalization of "Student's" problem when several different
    population variances are involved. Biometrika 34, 28–35. doi:10.2307/2332510.
    Wilson, E. B. (1927). Probable inference, the law of succession, and statistical
    inference. JASA 22, 209–212. doi:10.1080/01621459.1927.10502953.
    """
    score = np.asarray(visit_score, dtype=float)
    authority = np.asarray(authority)
    channel = np.asarray(channel)
    category = np.asarray(category)
    if not (len(score) == len(authority) == len(channel) == len(category)):
        raise ValueError("visit_score, authority, channel and category must align")
    if variance_model not in ("constant", "quasi_binomial", "two_part"):
        raise ValueError(f"unknown variance_model {variance_model!r}")
    if knocked_out is None:
        knocked = np.zeros(len(score), dtype=bool)
    else:
        knocked = np.asarray(knocked_out, dtype=bool)
        if len(knocked) != len(score):
            raise ValueError("knocked_out must align with visit_score")
    keep = ~np.isnan(score)
    score, authority, channel, category, knocked = (
        score[keep],
        authority[keep],
        channel[keep],
        category[keep],
        knocked[keep],
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
    if variance_model == "two_part":
        # Knock-outs apart: the variance function of the visits that were not knocked out.
        clean = ~knocked
        k_clean = np.bincount(pair, weights=clean.astype(float), minlength=n_pair)
        with np.errstate(divide="ignore", invalid="ignore"):
            mean_clean = np.bincount(pair, weights=score * clean, minlength=n_pair) / k_clean
        sum_sq_clean = np.bincount(
            pair, weights=clean * (score - np.nan_to_num(mean_clean)[pair]) ** 2, minlength=n_pair
        )
        # The instrument of _power: v at the channel's level predicted from the others.
        n_auth = len(auth_labels)
        channels_of = np.bincount(pair_auth, minlength=n_auth).astype(float)
        total_of = np.bincount(pair_auth, weights=mean, minlength=n_auth)
        with np.errstate(divide="ignore", invalid="ignore"):
            others = (total_of[pair_auth] - mean) / (channels_of[pair_auth] - 1)
        proxy = _level_proxy(mean, others, pair_chan, n_chan)
        power = np.full(n_chan, _power(sum_sq_clean, k_clean, mean_clean, proxy))
        pool_disp = np.array([_power_dispersion(sum_sq_clean[pool == p], k_clean[pool == p],
                              mean_clean[pool == p], power[pool_chan[p]])
                              for p in range(n_pools)])  # fmt: skip
        nat_disp = np.array([_power_dispersion(sum_sq_clean[pair_chan == c],
                             k_clean[pair_chan == c], mean_clean[pair_chan == c], power[c])
                             for c in range(n_chan)])  # fmt: skip
        clean_df = np.maximum(k_clean - 1.0, 0.0)
        pool_clean_df = np.bincount(pool, weights=clean_df, minlength=n_pools)
        nat_clean_df = np.bincount(pair_chan, weights=clean_df, minlength=n_chan)
        pool_rate = np.bincount(pool, weights=k - k_clean, minlength=n_pools) / pool_visits
        nat_visits = np.bincount(pair_chan, weights=k, minlength=n_chan)
        nat_rate = np.bincount(pair_chan, weights=k - k_clean, minlength=n_chan) / nat_visits
        with np.errstate(divide="ignore", invalid="ignore"):
            pool_clean_mean = np.bincount(
                pool, weights=np.nan_to_num(mean_clean) * k_clean, minlength=n_pools
            ) / np.bincount(pool, weights=k_clean, minlength=n_pools)
            nat_clean_mean = np.bincount(
                pair_chan, weights=np.nan_to_num(mean_clean) * k_clean, minlength=n_chan
            ) / np.bincount(pair_chan, weights=k_clean, minlength=n_chan)
        # A category whose visits of a channel were all knocked out: the channel's clean mean.
        pool_clean_mean = np.where(
            np.isfinite(pool_clean_mean), pool_clean_mean, nat_clean_mean[pool_chan]
        )
    elif variance_model == "quasi_binomial":
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
    from_national = np.zeros(n_pools, dtype=bool)
    for p in range(n_pools):
        c = pool_chan[p]
        if pool_df[p] >= min_pool_df:
            source[p], used_disp[p], used_df[p] = CATEGORY_POOL, pool_disp[p], pool_df[p]
            used_s2[p] = pool_s2[p]
        elif nat_df[c] > pool_df[p]:
            source[p], used_disp[p], used_df[p] = NATIONAL_POOL, nat_disp[c], nat_df[c]
            used_s2[p] = nat_s2[c]
            from_national[p] = True
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

    bounds: tuple[np.ndarray, np.ndarray] | None = None
    if variance_model != "two_part":
        power, pool_rate, nat_rate = (np.full(n_chan, np.nan), np.full(n_pools, np.nan),
                                      np.full(n_chan, np.nan))  # fmt: skip
        nat_clean_df = nat_df
    if variance_model == "two_part":
        # Per pool: the knock-out rate r and the df of the clean visits it was pooled on.
        rate = np.where(from_national, nat_rate[pool_chan], pool_rate)
        clean_dof = np.where(from_national, nat_clean_df[pool_chan], pool_clean_df)
        pooled = np.isin(source, [CATEGORY_POOL, NATIONAL_POOL])
        used_df = np.where(pooled, clean_dof, used_df)
        knocked_share = (k - k_clean) / k
        level_clean = np.where(k_clean > 0, mean_clean, pool_clean_mean[pool])
        bias2 = (level_clean * (rate[pool] - knocked_share)) ** 2
        # Every visit knocked out: no clean part, the bias term alone.
        scale2 = np.where(k_clean > 0, k_clean * used_disp[pool] / k**2, 0.0)
        exponent = power[pair_chan]
        df = used_df[pool]
        quantile = t_quantile(level, np.nan_to_num(df, nan=0.0))
        fallback = constant_fallback[pool]
        low, high = _score_interval(
            mean, np.where(fallback, 0.0, scale2), bias2, exponent, np.nan_to_num(quantile)
        )
        # The SE that combinations use is read at Jeffreys' level: half a pseudo-success and
        # half a pseudo-failure, a visit being worth 2500/φ trials at mid-scale.
        prior = PSEUDO_TRIALS * used_disp[pool] / (HALF * HALF)
        centre = (k * mean + prior * HALF) / (k + prior)
        visit_level = np.clip(centre * (SCALE - centre), 0.0, None) / (HALF * HALF)
        se = np.sqrt(scale2 * visit_level**exponent + bias2)
        se = np.where(fallback, np.sqrt(used_disp[pool] / k), se)
        unknown = ~np.isfinite(se) | ~np.isfinite(quantile)
        se = np.where(unknown, np.nan, se)
        low = np.where(fallback, mean - quantile * se, np.where(unknown, np.nan, low))
        high = np.where(fallback, mean + quantile * se, np.where(unknown, np.nan, high))
        bounds = (low, high)
    elif variance_model == "quasi_binomial":
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
    if bounds is None:
        se = np.sqrt(visit_var / k)
        df = used_df[pool]
        quantile = t_quantile(level, np.nan_to_num(df, nan=0.0))
        bounds = (mean - quantile * se, mean + quantile * se)
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
            "power": power[pool_chan],
            "knockout_rate": pool_rate,
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
            "used_df": nat_clean_df if variance_model == "two_part" else nat_df,
            "power": power,
            "knockout_rate": nat_rate,
        }
    )
    return ChannelEstimates(
        domains=domains,
        estimate=mean,
        se=se,
        df=df,
        ci_low=bounds[0],
        ci_high=bounds[1],
        n=k,
        n_eff=k,
        level=level,
        method=(
            "channel mean of visits; SE sqrt(s2_pool/k), s2_pool the one-way ANOVA residual "
            f"mean square of its category and channel on N - A df ({variance_model} model"
            + (
                ": knock-outs apart, power variance of clean visits, score interval"
                if variance_model == "two_part"
                else ""
            )
            + "); "
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
