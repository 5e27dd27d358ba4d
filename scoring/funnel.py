"""Funnel-plot control limits with multiplicative over-dispersion (Spiegelhalter 2005)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["FunnelLimits", "funnel_limits"]


@dataclass(frozen=True, eq=False)
class FunnelLimits:
    """Control limits ``target ± z_p sqrt(phi) se`` at each level, one column per unit.

    Attributes
    ----------
    target : float
    se : array (n,)
    levels : tuple of float
    lower, upper : arrays (len(levels), n)
    phi : float
        Over-dispersion factor applied (1 when none is detected or requested).
    phi_estimate : float
        Winsorised estimate ``mean(z_w^2)`` (NaN without estimates).
    z : array (n,)
        Standardised scores ``(estimate - target) / se`` (NaN without estimates).
    outside : array (len(levels), n) of bool
    method : str
    """

    target: float
    se: np.ndarray
    levels: tuple[float, ...]
    lower: np.ndarray
    upper: np.ndarray
    phi: float
    phi_estimate: float
    z: np.ndarray
    outside: np.ndarray
    method: str

    def __post_init__(self) -> None:
        for name in ("se", "lower", "upper", "z", "outside"):
            array = np.array(getattr(self, name), copy=True)
            array.flags.writeable = False
            object.__setattr__(self, name, array)

    def to_frame(self) -> pd.DataFrame:
        """One row per unit: se, z, and lower/upper/outside for each level."""
        frame = pd.DataFrame({"se": self.se, "z": self.z})
        for row, level in enumerate(self.levels):
            frame[f"lower_{level:g}"] = self.lower[row]
            frame[f"upper_{level:g}"] = self.upper[row]
            frame[f"outside_{level:g}"] = self.outside[row]
        frame["target"] = self.target
        frame["phi"] = self.phi
        return frame


def funnel_limits(
    target: Any,
    se: Any,
    *,
    levels: tuple[float, ...] = (0.95, 0.998),
    overdispersion: bool = True,
    estimate: Any = None,
    winsor: float = 0.10,
) -> FunnelLimits:
    """Funnel-plot limits around a target with optional over-dispersion adjustment.

    Parameters
    ----------
    target : float or array (n,)
        Centre of the funnel (the category mean). An array is read as the units'
        scores (the ``estimate``), centred on their precision-weighted mean.
    se : array (n,)
        Standard error of each unit's score (the precision axis).
    levels : tuple of float
        Two-sided coverage of each pair of limits (95 % and 99.8 % by default).
    overdispersion : bool
        Estimate a multiplicative factor ``phi`` from the units' standardised scores
        and widen the limits by ``sqrt(phi)`` when ``phi > 1``. Without the units'
        scores there is nothing to estimate it from: ``phi = 1`` (said in ``method``).
    estimate : array (n,), optional
        The units' scores.
    winsor : float
        Share winsorised in each tail of the z-scores before estimating ``phi``.

    Notes
    -----
    Spiegelhalter, "Funnel plots for comparing institutional performance", *Statistics
    in Medicine* 24(8), 2005, doi:10.1002/sim.1970: limits ``θ0 ± z_p σ``;
    over-dispersion ``φ̂ = (1/I) Σ z_i²`` over winsorised z-scores, applied as
    ``θ0 ± z_p sqrt(φ̂) σ`` when ``φ̂ > 1`` (Spiegelhalter et al. 2012,
    doi:10.1111/j.1467-985X.2011.01010.x, recommend 10 % winsorisation).
    """
    errors = np.asarray(se, dtype=float)
    if np.any(errors < 0):
        raise ValueError("se must be non-negative")
    if np.ndim(target) > 0:
        if estimate is not None:
            raise ValueError("pass the scores either as target or as estimate, not both")
        estimate = np.asarray(target, dtype=float)
        if estimate.shape != errors.shape:
            raise ValueError("estimate and se must align")
        usable = np.isfinite(estimate) & (errors > 0)
        precision = 1.0 / errors[usable] ** 2
        target = float(np.sum(precision * estimate[usable]) / np.sum(precision))
    for level in levels:
        if not 0 < level < 1:
            raise ValueError("levels must be in (0, 1)")
    z = np.full(errors.shape, np.nan)
    phi_estimate = float("nan")
    phi = 1.0
    if estimate is not None:
        values = np.asarray(estimate, dtype=float)
        if values.shape != errors.shape:
            raise ValueError("estimate and se must align")
        with np.errstate(divide="ignore", invalid="ignore"):
            z = (values - target) / errors
        finite = z[np.isfinite(z)]
        if len(finite):
            low, high = np.quantile(finite, [winsor, 1 - winsor])
            phi_estimate = float(np.mean(np.clip(finite, low, high) ** 2))
    if overdispersion and np.isfinite(phi_estimate):
        phi = max(1.0, phi_estimate)
    quantiles = stats.norm.ppf(0.5 + np.asarray(levels) / 2)[:, None]
    half = quantiles * np.sqrt(phi) * errors[None, :]
    lower, upper = target - half, target + half
    outside = np.zeros(lower.shape, dtype=bool)
    if estimate is not None:
        values = np.asarray(estimate, dtype=float)
        outside = (values[None, :] < lower) | (values[None, :] > upper)
    method = "funnel limits (Spiegelhalter 2005)"
    if overdispersion and estimate is not None:
        method += f"; multiplicative over-dispersion phi={phi:.4g} (winsorised {winsor:.0%})"
    elif overdispersion:
        method += "; no over-dispersion estimate without the units' scores (phi=1)"
    return FunnelLimits(
        float(target), errors, tuple(levels), lower, upper, phi, phi_estimate, z, outside, method
    )
