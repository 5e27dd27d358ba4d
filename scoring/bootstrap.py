"""Seeded Rao–Wu rescaling bootstrap over PSUs within strata."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import sparse

from scoring.design import Design, n_rows, resolve
from scoring.estimates import Estimates, _domains, _values, estimate_mean, t_quantile

__all__ = ["estimate_mean_replicates", "rao_wu_bootstrap"]


def rao_wu_bootstrap(
    data: Any,
    design: Design,
    *,
    n_replicates: int = 1000,
    seed: int = 0,
    tol: float = 1e-10,
    max_iter: int = 1000,
) -> np.ndarray:
    """Replicate weights of the Rao–Wu rescaling bootstrap, shape (n_rows, n_replicates).

    In each replicate and stratum ``h`` with ``n_h ≥ 2`` PSUs, ``m_h = n_h - 1`` PSUs are
    drawn with replacement; PSU ``i`` drawn ``r_hi`` times gets weight
    ``w · (1 - λ_h + λ_h (n_h / m_h) r_hi)`` with ``λ_h = sqrt(m_h (1 - f_h) / (n_h - 1))``.
    Strata with a single PSU keep their weights. A calibrated design is re-calibrated
    in every replicate (raking to the same totals), so the bootstrap variance includes
    the calibration, as the methodology requires.

    Rao & Wu, *JASA* 83, 1988, doi:10.1080/01621459.1988.10478591; Rao, Wu & Yue,
    *Survey Methodology* 18, 1992. Draws are seeded (``numpy.random.default_rng(seed)``).
    """
    if n_replicates < 2:
        raise ValueError("need at least 2 replicates")
    rd = resolve(data, design)
    rng = np.random.default_rng(seed)
    n_h = rd.psu_per_stratum
    m_h = np.maximum(n_h - 1.0, 0.0)
    # Recover 1 - f from the variance scale k_h = (1 - f) n_h / (n_h - 1).
    with np.errstate(divide="ignore", invalid="ignore"):
        one_minus_f = np.where(n_h > 1, rd.scale * (n_h - 1.0) / n_h, 1.0)
        lam = np.where(n_h > 1, np.sqrt(m_h * one_minus_f / (n_h - 1.0)), 0.0)
    order = np.argsort(rd.psu_stratum, kind="stable")  # PSUs grouped by stratum
    start = np.concatenate([[0], np.cumsum(n_h)[:-1]]).astype(np.int64)
    draws_per_stratum = m_h.astype(np.int64)
    stratum_of_draw = np.repeat(np.arange(rd.n_strata), draws_per_stratum)
    n_draw = len(stratum_of_draw)
    # All replicates at once: uniform picks within each stratum, counted per PSU.
    picks = start[stratum_of_draw] + np.floor(
        rng.random((n_replicates, n_draw)) * n_h[stratum_of_draw]
    ).astype(np.int64)
    psu_picked = order[picks]
    counts = np.bincount(
        (np.arange(n_replicates)[:, None] * rd.n_psu + psu_picked).ravel(),
        minlength=n_replicates * rd.n_psu,
    ).reshape(n_replicates, rd.n_psu)
    stratum = rd.psu_stratum
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where(
            (n_h > 1)[stratum][None, :],
            1.0 - lam[stratum] + lam[stratum] * (n_h / m_h)[stratum] * counts,
            1.0,
        )
    psu_of_row = np.arange(rd.n) if rd.psu is None else rd.psu
    replicate = rd.base_weights[:, None] * factor.T[psu_of_row]
    if rd.cells:
        replicate = _recalibrate(replicate, rd.cells, rd.weights, tol, max_iter)
    return replicate


def _recalibrate(
    weights: np.ndarray,
    cells: tuple[np.ndarray, ...],
    calibrated: np.ndarray,
    tol: float,
    max_iter: int,
) -> np.ndarray:
    n = len(calibrated)
    indicators = []
    targets = []
    for codes in cells:
        q = int(codes.max()) + 1
        matrix = sparse.csr_matrix((np.ones(n), (codes, np.arange(n))), shape=(q, n))
        indicators.append((matrix, codes))
        targets.append(matrix @ calibrated)
    weights = weights.copy()
    for _ in range(max_iter):
        for (matrix, codes), target in zip(indicators, targets, strict=True):
            current = matrix @ weights
            weights *= (target[:, None] / current)[codes]
        gap = max(
            np.max(np.abs((matrix @ weights) / target[:, None] - 1.0))
            for (matrix, _), target in zip(indicators, targets, strict=True)
        )
        if gap <= tol:
            return weights
    raise ValueError(f"replicate raking did not converge in {max_iter} cycles")


def estimate_mean_replicates(
    data: Any,
    y: str,
    design: Design,
    replicate_weights: np.ndarray,
    *,
    by: str | None = None,
    level: float = 0.95,
) -> Estimates:
    """Means with bootstrap SEs from replicate weights (e.g. :func:`rao_wu_bootstrap`).

    The point estimate uses the full-sample weights; the variance is
    ``sum_b (θ_b - mean θ)^2 / (B - 1)`` over replicates (R's ``svrepdesign`` with
    ``type="bootstrap"``); the interval is t on the design df.
    """
    full = estimate_mean(data, y, design, by=by, level=level)
    n = n_rows(data)
    weights = np.asarray(replicate_weights, dtype=float)
    if weights.ndim != 2 or weights.shape[0] != n:
        raise ValueError("replicate_weights must have shape (n_rows, n_replicates)")
    dom, labels = _domains(data, by, n)
    values = _values(data, y)
    used = (dom >= 0) & ~np.isnan(values)
    rows = np.flatnonzero(used)
    membership = sparse.csr_matrix((np.ones(len(rows)), (dom[rows], rows)), shape=(len(labels), n))
    totals = membership @ (weights * np.where(used, values, 0.0)[:, None])
    sizes = membership @ weights
    with np.errstate(divide="ignore", invalid="ignore"):
        replicates = totals / sizes
    se = np.std(replicates, axis=1, ddof=1)
    quantile = t_quantile(level, full.df)
    return Estimates(
        domains=full.domains,
        estimate=full.estimate,
        se=se,
        df=full.df,
        ci_low=full.estimate - quantile * se,
        ci_high=full.estimate + quantile * se,
        n=full.n,
        n_eff=full.n_eff,
        level=level,
        method=f"mean; bootstrap SE over {weights.shape[1]} replicates; t on design df",
    )
