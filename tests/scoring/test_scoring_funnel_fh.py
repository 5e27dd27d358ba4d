"""Funnel limits (Spiegelhalter 2005) and Fay–Herriot (Rao & Molina 2015), hand-derived."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy import optimize

from scoring import fay_herriot, funnel_limits

Z95, Z998 = 1.959963984540054, 3.090232306167813  # qnorm(0.975), qnorm(0.999)


def test_funnel_limits_without_overdispersion():
    # Spiegelhalter 2005, eq. (1): theta0 +- z_p * se.
    se = np.array([1.0, 2.0, 4.0])
    limits = funnel_limits(50.0, se, overdispersion=False)
    assert_allclose(limits.lower, [50 - Z95 * se, 50 - Z998 * se])
    assert_allclose(limits.upper, [50 + Z95 * se, 50 + Z998 * se])
    assert limits.phi == 1.0


def test_funnel_overdispersion_hand_computed():
    # z-scores chosen directly (se = 1, target 0). 10 % winsorisation with linear
    # quantiles: 10th percentile -3 + 0.9*(-1 - -3) = -1.2, 90th 2 + 0.1*(5 - 2) = 2.3.
    z = np.array([-3.0, -1.0, -0.5, 0.0, 0.2, 0.4, 0.6, 1.0, 2.0, 5.0])
    winsorised = np.array([-1.2, -1.0, -0.5, 0.0, 0.2, 0.4, 0.6, 1.0, 2.0, 2.3])
    phi = np.mean(winsorised**2)  # = 13.54 / 10 = 1.354 (Spiegelhalter 2005, §3.2)
    assert_allclose(phi, 1.354)
    limits = funnel_limits(0.0, np.ones(10), estimate=z)
    assert_allclose(limits.phi, 1.354)
    assert_allclose(limits.upper[0], Z95 * np.sqrt(1.354))
    assert_array_equal(limits.outside[0], np.abs(z) > Z95 * np.sqrt(1.354))
    # Scores given as the first argument: centred on their precision-weighted mean.
    as_scores = funnel_limits(z + 10.0, np.ones(10))
    assert_allclose(as_scores.target, np.mean(z + 10.0))
    explicit = funnel_limits(np.mean(z + 10.0), np.ones(10), estimate=z + 10.0)
    assert_allclose(as_scores.phi, explicit.phi)
    assert_allclose(as_scores.upper, explicit.upper)
    # Without scores there is nothing to estimate phi from.
    assert funnel_limits(0.0, np.ones(10)).phi == 1.0
    with pytest.raises(ValueError):
        funnel_limits(z, np.ones(10), estimate=z)


def test_funnel_underdispersion_keeps_phi_one():
    limits = funnel_limits(0.0, np.ones(5), estimate=np.array([0.1, -0.1, 0.2, 0.0, -0.2]))
    assert limits.phi == 1.0
    assert limits.phi_estimate < 1


def test_fay_herriot_equal_variances_closed_form():
    # With psi_i = psi and X = 1, REML of sigma2 + psi is the sample variance s^2, so
    # sigma2 = max(0, s^2 - psi) (Rao & Molina 2015, §6.1). EBLUP gamma*y + (1-gamma)*ybar;
    # MSE g1 + g2 + 2 g3 = gamma*psi + (1-gamma)^2 (sigma2+psi)/m + 2*2 psi^2/(m (sigma2+psi)).
    rng = np.random.default_rng(12)
    m, psi = 25, 9.0
    y = rng.normal(60, 5, m)
    fit = fay_herriot(y, np.full(m, psi))
    sigma2 = np.var(y, ddof=1) - psi
    gamma = sigma2 / (sigma2 + psi)
    assert_allclose(fit.sigma2_u, sigma2, rtol=1e-8)
    assert_allclose(fit.beta, [y.mean()], rtol=1e-10)
    assert_allclose(fit.eblup, gamma * y + (1 - gamma) * y.mean(), rtol=1e-8)
    mse = gamma * psi + (1 - gamma) ** 2 * (sigma2 + psi) / m + 4 * psi**2 / (m * (sigma2 + psi))
    assert_allclose(fit.mse, mse, rtol=1e-8)


def test_fay_herriot_truncates_at_zero():
    y = np.array([50.0, 50.5, 49.5, 50.2, 49.8])
    fit = fay_herriot(y, np.full(5, 25.0))
    assert fit.sigma2_u == 0.0
    assert_allclose(fit.eblup, y.mean())


def test_fay_herriot_reml_matches_direct_maximisation():
    # Independent check: maximise the restricted log-likelihood
    # -1/2 [sum log v_i + log det(X'V^-1 X) + r'V^-1 r] numerically (scipy), r = y - X b_GLS.
    rng = np.random.default_rng(21)
    m = 40
    x = np.column_stack([np.ones(m), rng.normal(0, 1, m)])
    psi = rng.uniform(2, 20, m)
    y = x @ [60.0, 4.0] + rng.normal(0, 3, m) + rng.normal(0, np.sqrt(psi))

    def negative_restricted(sigma2: float) -> float:
        v = sigma2 + psi
        xtvx = x.T @ (x / v[:, None])
        beta = np.linalg.solve(xtvx, x.T @ (y / v))
        r = y - x @ beta
        return 0.5 * (np.sum(np.log(v)) + np.linalg.slogdet(xtvx)[1] + np.sum(r**2 / v))

    best = optimize.minimize_scalar(negative_restricted, bounds=(0, 200), method="bounded",
                                    options={"xatol": 1e-10})  # fmt: skip
    fit = fay_herriot(y, psi, x)
    assert_allclose(fit.sigma2_u, best.x, rtol=1e-5)
    v = fit.sigma2_u + psi
    beta = np.linalg.solve(x.T @ (x / v[:, None]), x.T @ (y / v))
    assert_allclose(fit.beta, beta, rtol=1e-10)
    assert np.all(fit.mse < psi)  # shrinkage gains precision over the direct estimate
    assert np.all((fit.gamma > 0) & (fit.gamma < 1))
