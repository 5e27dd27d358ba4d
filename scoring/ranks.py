"""Rank inference: confidence sets for ranks, τ-best sets, joint rank regions, P(best)."""

from __future__ import annotations

import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
from scipy import special, stats

__all__ = ["RankSets", "kww_rank_region", "p_best", "point_rank", "rank_sets", "top_set"]

# Bytes of draws × differences held at once per worker thread (small blocks stay in cache).
_BLOCK_BYTES = 10_000_000


@dataclass(frozen=True, eq=False)
class RankSets:
    """Point ranks and rank confidence intervals (1 = best).

    Attributes
    ----------
    rank : int array
        Point rank; ties share the best rank.
    lower, upper : int arrays
        Rank confidence interval ``[lower, upper]`` of each unit.
    level : float
    method : str
    simultaneous : bool
        Whether the intervals hold jointly for all units or for each unit separately.
    critical_value : float array
        Critical value(s) of the last step (one per unit for marginal sets).
    n_draws, seed : int
        Monte-Carlo draws and seed (0 draws for deterministic methods).
    unstable : bool array
        The unit's interval may depend on Monte-Carlo error: at some stepdown step, a
        t-statistic of a hypothesis still open lay within two binomial SDs (in order
        statistics) of the simulated critical value it was compared with.
        Rerun with more draws (``max_draws=``) before relying on it.
    """

    rank: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    level: float
    method: str
    simultaneous: bool
    critical_value: np.ndarray | float
    n_draws: int
    seed: int
    # Omitted: nothing unstable (deterministic methods); always a bool array once built.
    unstable: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))

    def __post_init__(self) -> None:
        size = len(self.rank)
        flags = self.unstable if len(self.unstable) else np.zeros(size, dtype=bool)
        flags = np.array(flags, dtype=bool, copy=True)
        flags.flags.writeable = False
        object.__setattr__(self, "unstable", flags)
        for name, dtype in (("rank", int), ("lower", int), ("upper", int)):
            array = np.array(getattr(self, name), dtype=dtype, copy=True)
            array.flags.writeable = False
            object.__setattr__(self, name, array)
        critical = np.array(np.broadcast_to(self.critical_value, (size,)), dtype=float)
        critical.flags.writeable = False
        object.__setattr__(self, "critical_value", critical)

    def __len__(self) -> int:
        return len(self.rank)

    def to_frame(self, index: Any = None) -> pd.DataFrame:
        """One row per unit: rank, lower, upper, critical_value, level, method, simultaneous."""
        frame = pd.DataFrame(
            {
                "rank": self.rank,
                "lower": self.lower,
                "upper": self.upper,
                "critical_value": self.critical_value,
                "unstable": self.unstable,
            },
            index=index,
        )
        frame["level"] = self.level
        frame["method"] = self.method
        frame["simultaneous"] = self.simultaneous
        return frame


def point_rank(estimate: Any, *, higher_is_better: bool = True) -> np.ndarray:
    """Rank 1 = best; tied estimates share the best (smallest) rank."""
    values = _oriented(estimate, higher_is_better)
    ordered = np.sort(values)
    return (len(values) - np.searchsorted(ordered, values, side="right") + 1).astype(int)


def _oriented(estimate: Any, higher_is_better: bool) -> np.ndarray:
    values = np.asarray(estimate, dtype=float)
    if values.ndim != 1:
        raise ValueError("estimate must be one-dimensional")
    if not np.all(np.isfinite(values)):
        raise ValueError("estimates must be finite")
    return values if higher_is_better else -values


def _check_level(level: float) -> None:
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")


def _covariance(cov_or_se: Any, p: int) -> tuple[np.ndarray | None, np.ndarray]:
    """(covariance or None when independent, variance of each difference p × p)."""
    matrix = np.asarray(cov_or_se, dtype=float)
    if matrix.ndim == 1:
        if matrix.shape != (p,):
            raise ValueError("se must have one entry per estimate")
        if np.any(matrix < 0) or not np.all(np.isfinite(matrix)):
            raise ValueError("standard errors must be finite and non-negative")
        variance = matrix**2
        return None, variance[:, None] + variance[None, :]
    if matrix.shape != (p, p):
        raise ValueError("covariance must be p × p")
    if not np.allclose(matrix, matrix.T, rtol=1e-10, atol=0):
        raise ValueError("covariance must be symmetric")
    diagonal = np.diag(matrix)
    return matrix, np.maximum(diagonal[:, None] + diagonal[None, :] - 2 * matrix, 0.0)


def _draws(
    cov: np.ndarray | None, se: np.ndarray, n_draws: int, rng: np.random.Generator
) -> np.ndarray:
    """Centred normal draws, shape (p, n_draws), float32 (the max-t needs no more)."""
    p = len(se)
    normal = rng.standard_normal((p, n_draws), dtype=np.float32)
    if cov is None:
        return normal * se.astype(np.float32)[:, None]
    values, vectors = np.linalg.eigh(cov)
    if values.min() < -1e-8 * max(values.max(), 1e-300):
        raise ValueError("covariance must be positive semi-definite")
    root = (vectors * np.sqrt(np.maximum(values, 0.0))).astype(np.float32)
    return root @ normal


def _order_statistic(maxima: np.ndarray, level: float) -> np.ndarray:
    """Empirical ``level`` quantile along the last axis with its Monte-Carlo band.

    Returns ``[low, quantile, high]`` in a last axis of 3: the quantile is the
    ceil(level·R)-th value; ``low``/``high`` are the order statistics two binomial SDs
    either side, a distribution-free ~95 % band for the true critical value.
    """
    n_draws = maxima.shape[-1]
    k = min(n_draws - 1, int(np.ceil(level * n_draws)) - 1)
    half = 2.0 * np.sqrt(n_draws * level * (1.0 - level))
    ranks = [max(0, int(np.floor(k - half))), k, min(n_draws - 1, int(np.ceil(k + half)))]
    # One partition at the lowest rank, then a sort of the (small) upper tail.
    tail = np.sort(np.partition(maxima, ranks[0], axis=-1)[..., ranks[0] :], axis=-1)
    return tail[..., [rank - ranks[0] for rank in ranks]].astype(float)


def _blocks(n_rows: int, p: int, n_draws: int) -> list[slice]:
    size = max(1, _BLOCK_BYTES // max(1, 4 * p * n_draws))
    return [slice(start, min(start + size, n_rows)) for start in range(0, n_rows, size)]


_buffers = threading.local()


def _scratch(name: str, shape: tuple[int, ...]) -> np.ndarray:
    """Per-thread reusable float32 buffer: fresh 10 MB arrays per block cost page faults."""
    size = math.prod(shape)
    cached = getattr(_buffers, name, None)
    if cached is None or cached.size < size:
        cached = np.empty(size, dtype=np.float32)
        setattr(_buffers, name, cached)
    return cached[:size].reshape(shape)


def _block_maxima(
    draws: np.ndarray, rows: np.ndarray, plus: np.ndarray, minus: np.ndarray | None
) -> np.ndarray:
    """max_k of (Z_j - Z_k)·plus_jk and (Z_k - Z_j)·minus_jk for each row j, per draw.

    A zero weight drops a hypothesis; dropping it can only raise the maximum to 0, which
    leaves upper quantiles (always positive here) unchanged.
    """
    shape = (len(rows), draws.shape[0], draws.shape[1])
    diff = _scratch("diff", shape)
    np.subtract(draws[rows, None, :], draws[None, :, :], out=diff)
    if minus is not None and np.array_equal(plus, minus):
        np.abs(diff, out=diff)
        minus = None
    if minus is None:
        np.multiply(diff, plus[:, :, None], out=diff)
        return diff.max(axis=1)
    scaled = _scratch("scaled", shape)
    np.multiply(diff, minus[:, :, None], out=scaled)
    low = scaled.min(axis=1)
    np.multiply(diff, plus[:, :, None], out=diff)
    return np.maximum(diff.max(axis=1), -low)


def _parallel(tasks: list[Any]) -> list[Any]:
    workers = min(len(tasks), os.cpu_count() or 1)
    if workers <= 1:
        return [task() for task in tasks]
    # numpy releases the GIL inside these array operations, so threads use every core.
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda task: task(), tasks))


# Integration range of the exact marginal integral: the standard normal density beyond
# ±8.3 carries less than 1e-16 of probability.
_HALF_RANGE = 8.3
# Trapezoid step as a fraction of the narrowest scale of the integrand (the ratio of a
# rival's SE to the unit's own). The rule is spectrally accurate, but the product of
# many Φ factors switching off at nearly the same z has a Gumbel-like edge much sharper
# than one factor (its scale shrinks like 1/√(2 log m) for m rivals): at 0.8 the error
# of P (or its derivative) reaches 6e-4 for 250 units, 4e-7 at 0.4, 2e-9 at 0.3, 7e-12
# at 0.25 (against a 0.06 grid; tests/scoring/test_scoring_ranks_exact.py).
# Newton runs on the coarse grid, then polishes on the fine one.
_COARSE_STEP = 0.45
_FINE_STEP = 0.2
_MAX_STEP = 0.4
# Factors (units × rivals × nodes) evaluated at once per thread.
_EXACT_BLOCK = 150_000
_NEWTON_TOL = 1e-11
# A Newton step this small is taken as final: the error left is ~|f''/2f'|·step² < 1e-11.
_ACCEPT_MOVE = 2e-6
# Units solved first to start the others' Newton iterations near their roots.
_SEED_UNITS = 12
# A coarse critical value (P within ~1e-6, c within ~2e-5) decides a stepdown step only
# when no open statistic lies this close to it; otherwise the fine value decides.
_DECISION_MARGIN = 1e-3
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def _nodes(
    own_se: np.ndarray, rival_se: np.ndarray, fraction: float = _FINE_STEP
) -> tuple[np.ndarray, np.ndarray]:
    """Trapezoid nodes and weights (including the normal density) for a block of units."""
    positive = rival_se[rival_se > 0]
    own = float(np.max(own_se)) if len(own_se) else 0.0
    narrowest = float(positive.min()) / own if len(positive) and own > 0 else 1.0
    step = min(_MAX_STEP, fraction * narrowest)
    count = 2 * int(np.ceil(_HALF_RANGE / step)) + 1
    z = np.linspace(-_HALF_RANGE, _HALF_RANGE, count)
    weights = (z[1] - z[0]) * stats.norm.pdf(z)
    return z, weights


def _family_probability_fast(
    units: np.ndarray,
    critical: np.ndarray,
    se: np.ndarray,
    sd: np.ndarray,
    worse_open: np.ndarray,
    better_open: np.ndarray,
    fraction: float = _FINE_STEP,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_family_probability` when every rival has sampling error (``σ_k > 0``).

    The same integral, arranged for speed: a closed hypothesis gets an infinite shift
    (its factor is then exactly 1 and its density 0), so the masks act on the small
    units × rivals arrays rather than on every node, and the block's scratch arrays are
    small enough to stay in cache. ``Φ`` is evaluated twice per open pair and node,
    which is what the time is (about 14 ns each).
    """
    own = se[units]
    inv_rival = 1.0 / se
    pair = sd[units]
    testable = pair > 0
    a_open = worse_open[units] & testable
    b_open = better_open[units] & testable
    z, weights = _nodes(own, se, fraction)
    ratio = pair * inv_rival
    scale = (own[:, None] * inv_rival)[:, :, None]
    shift = critical[:, None] * ratio
    # A_jk = 1 - Φ((σ_j z - cσ_jk)/σ_k) = Φ(cσ_jk/σ_k - (σ_j/σ_k) z).
    x = np.multiply(scale, z)
    a_arg = np.where(a_open, shift, np.inf)[:, :, None] - x
    factor = special.ndtr(a_arg)
    np.square(a_arg, out=a_arg)
    a_arg *= -0.5
    density = np.exp(a_arg, out=a_arg)
    if b_open.any():
        # B_jk = Φ((σ_j z + cσ_jk)/σ_k); F = A + B - 1.
        x += np.where(b_open, shift, np.inf)[:, :, None]
        factor += special.ndtr(x)
        factor -= 1.0
        np.maximum(factor, 0.0, out=factor)
        np.square(x, out=x)
        x *= -0.5
        density += np.exp(x, out=x)
    density *= (ratio * _INV_SQRT_2PI)[:, :, None]
    product = factor.prod(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        density /= factor
    density[~np.isfinite(density)] = 0.0
    share = density.sum(axis=1)
    return product @ weights, (product * share) @ weights


def _family_probability(
    units: np.ndarray,
    critical: np.ndarray,
    se: np.ndarray,
    sd: np.ndarray,
    worse_open: np.ndarray,
    better_open: np.ndarray,
    fraction: float = _FINE_STEP,
) -> tuple[np.ndarray, np.ndarray]:
    """P(max over unit j's open hypotheses ≤ c_j) and its derivative in c_j, exactly.

    Given ``Z_j = σ_j z`` the rivals' draws are independent, so the probability is
    ``∫ φ(z) Π_k F_jk(z) dz`` with ``F_jk = A_jk + B_jk - 1``, where
    ``B_jk = Φ((σ_j z + c σ_jk)/σ_k)`` if ``H_kj`` is open (else 1) and
    ``A_jk = 1 - Φ((σ_j z - c σ_jk)/σ_k)`` if ``H_jk`` is open (else 1). A rival without
    sampling error (σ_k = 0) gives step functions; a pair with σ_jk = 0 is known exactly
    and tests nothing.
    """
    own = se[units][:, None, None]
    rival = se[None, :, None]
    pair = sd[units][:, :, None]
    c = critical[:, None, None]
    z, weights = _nodes(se[units], se, fraction)
    x = own * z[None, None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        upper = (x + c * pair) / rival
        lower = (x - c * pair) / rival
    exact_rival = rival == 0
    if exact_rival.any():
        upper = np.where(exact_rival, np.where(x + c * pair > 0, np.inf, -np.inf), upper)
        lower = np.where(exact_rival, np.where(x - c * pair < 0, -np.inf, np.inf), lower)
    testable = pair > 0
    b_open = better_open[units][:, :, None] & testable
    a_open = worse_open[units][:, :, None] & testable
    # One-sided families (the simultaneous bound) have no open H_kj: skip that half.
    any_b = bool(b_open.any())
    a = special.ndtr(-lower)
    a[~np.broadcast_to(a_open, a.shape)] = 1.0
    if any_b:
        b = special.ndtr(upper)
        b[~np.broadcast_to(b_open, b.shape)] = 1.0
        factor = a + b - 1.0
        np.maximum(factor, 0.0, out=factor)
    else:
        factor = a
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        slope = np.where(exact_rival, 0.0, pair / rival) * _INV_SQRT_2PI
        lower *= lower
        density = np.exp(-0.5 * lower)
        density[~np.broadcast_to(a_open, density.shape)] = 0.0
        if any_b:
            upper *= upper
            other = np.exp(-0.5 * upper)
            other[~np.broadcast_to(b_open, other.shape)] = 0.0
            density += other
        density *= slope
        product = factor.prod(axis=1)
        density /= factor
        density[~np.isfinite(density)] = 0.0
        share = density.sum(axis=1)
    probability = product @ weights
    derivative = (product * share) @ weights
    return probability, derivative


def _family_probabilities(
    units: np.ndarray,
    critical: np.ndarray,
    se: np.ndarray,
    sd: np.ndarray,
    worse_open: np.ndarray,
    better_open: np.ndarray,
    fraction: float = _FINE_STEP,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_family_probability` over blocks of units, one block per thread at a time."""
    # Units sorted by their own SE share a node grid fitted to them (a small own SE needs
    # fewer nodes), in blocks small enough for the scratch arrays to stay in cache.
    function = _family_probability_fast if bool(np.all(se > 0)) else _family_probability
    order = np.argsort(se[units], kind="stable")
    size = max(1, _EXACT_BLOCK // max(1, len(se) * 40))
    blocks = [order[i : i + size] for i in range(0, len(units), size)]
    results = _parallel(
        [
            partial(
                function, units[block], critical[block], se, sd, worse_open, better_open, fraction
            )
            for block in blocks
        ]
    )
    probability = np.empty(len(units))
    derivative = np.empty(len(units))
    for block, (prob, deriv) in zip(blocks, results, strict=True):
        probability[block] = prob
        derivative[block] = deriv
    return probability, derivative


def _marginal_critical_exact(
    units: np.ndarray,
    start: np.ndarray,
    se: np.ndarray,
    sd: np.ndarray,
    worse_open: np.ndarray,
    better_open: np.ndarray,
    level: float,
    grids: tuple[float, ...] = (_COARSE_STEP, _FINE_STEP),
) -> np.ndarray:
    """Critical values solving P(max ≤ c_j) = level by safeguarded Newton, per unit.

    The root is bracketed by Φ⁻¹(level) (one hypothesis) and the Bonferroni bound over the
    family's open hypotheses; a Newton step leaving the bracket is replaced by bisection.
    Newton first converges on the coarse grid (cheap, P within ~1e-6), then polishes on
    the fine one (P within ~1e-12): a step below ``_ACCEPT_MOVE`` is taken without another
    evaluation, its error being of the order of the step squared. A family with nothing
    open gets NaN (nothing to reject).
    """
    counts = (worse_open[units] & (sd[units] > 0)).sum(axis=1) + (
        better_open[units] & (sd[units] > 0)
    ).sum(axis=1)
    floor = np.full(len(units), stats.norm.ppf(level))
    with np.errstate(divide="ignore"):
        ceiling = stats.norm.ppf(1.0 - (1.0 - level) / np.maximum(counts, 1)) + 1e-9
    fresh = ~np.isfinite(start) & (counts > 0)
    if fresh.sum() > 4 * _SEED_UNITS:
        # Start the others from a few solved units: critical values vary smoothly with the
        # unit's own SE, and Newton from nearby takes two steps instead of five.
        rows = np.flatnonzero(fresh)
        ordered = rows[np.argsort(se[units[rows]], kind="stable")]
        seeds = ordered[np.linspace(0, len(ordered) - 1, _SEED_UNITS).astype(int)]
        solved = _marginal_critical_exact(
            units[seeds], start[seeds], se, sd, worse_open, better_open, level, grids[:1]
        )
        start = start.copy()
        start[rows] = np.interp(se[units[rows]], se[units[seeds]], solved)
        start[seeds] = solved
    critical = np.clip(np.where(np.isfinite(start), start, ceiling), floor, ceiling)
    for fraction in grids:
        low, high = floor.copy(), ceiling.copy()
        active = counts > 0
        for _ in range(60):
            rows = np.flatnonzero(active)
            if not len(rows):
                break
            probability, derivative = _family_probabilities(
                units[rows], critical[rows], se, sd, worse_open, better_open, fraction
            )
            below = probability < level
            low[rows] = np.where(below, critical[rows], low[rows])
            high[rows] = np.where(below, high[rows], critical[rows])
            with np.errstate(divide="ignore", invalid="ignore"):
                newton = critical[rows] - (probability - level) / derivative
            inside = np.isfinite(newton) & (newton > low[rows]) & (newton < high[rows])
            proposal = np.where(inside, newton, 0.5 * (low[rows] + high[rows]))
            moved = np.abs(proposal - critical[rows])
            critical[rows] = proposal
            done = (inside & (moved < _ACCEPT_MOVE)) | (
                high[rows] - low[rows] < _NEWTON_TOL * high[rows]
            )
            active[rows[done]] = False
    critical[counts == 0] = np.nan
    return critical


def _simultaneous_critical_exact(
    start: float,
    se: np.ndarray,
    sd: np.ndarray,
    open_: np.ndarray,
    level: float,
    grids: tuple[float, ...] = (_COARSE_STEP, _FINE_STEP),
) -> float:
    """The simultaneous critical value from Boole's inequality over one-sided families.

    Every ordered pair ``(j, k)`` belongs to exactly one "upper" family
    ``U_j = max_k (Z_j - Z_k)/σ_jk`` over the open ``H_jk``; each family's law is the
    exact one-dimensional integral of :func:`_family_probability` (one-sided factors).
    ``c`` solves ``Σ_j P(U_j > c) = 1 - level``, so ``P(max_j U_j > c) ≤ 1 - level``:
    the simultaneous family holds with probability at least ``level``, with no draw and
    no seed (Boole's inequality; the max-t of the Monte-Carlo path is its sharp form).
    The price is small: families exceed together only when one low draw beats several
    rivals at once, and the critical value comes out about 2 % above the Monte-Carlo
    max-t quantile (3.87 vs 3.79 for 35 units, 4.74 vs 4.64 for 250, SEs 1.5–3.5;
    ``tests/scoring/test_scoring_ranks_exact.py`` checks the bound against draws).
    """
    units = np.flatnonzero((open_ & (sd > 0)).any(axis=1))
    if not len(units):
        return math.nan
    closed = np.zeros_like(open_)
    counts = int((open_ & (sd > 0)).sum())
    floor = float(stats.norm.ppf(level))
    ceiling = float(stats.norm.ppf(1.0 - (1.0 - level) / max(counts, 1))) + 1e-9
    critical = min(max(start, floor), ceiling) if math.isfinite(start) else ceiling
    for fraction in grids:
        low, high = floor, ceiling
        for _ in range(60):
            probability, derivative = _family_probabilities(
                units, np.full(len(units), critical), se, sd, open_, closed, fraction
            )
            excess = float((1.0 - probability).sum()) - (1.0 - level)
            slope = -float(derivative.sum())
            if excess > 0:
                low = critical
            else:
                high = critical
            newton = critical - excess / slope if slope < 0 else math.nan
            inside = low < newton < high
            proposal = newton if inside else 0.5 * (low + high)
            moved = abs(proposal - critical)
            critical = proposal
            if (inside and moved < _ACCEPT_MOVE) or high - low < _NEWTON_TOL * high:
                break
    return critical


def _simultaneous_exact(
    t_stat: np.ndarray, se: np.ndarray, sd: np.ndarray, level: float, stepdown: bool
) -> tuple[np.ndarray, float]:
    """Stepdown over all ordered pairs with the exact Boole critical value: (rejected, c).

    Each step solves on the coarse grid; its decisions stand when no open statistic lies
    within ``_DECISION_MARGIN`` of the coarse value (fifty times the coarse grid's worst
    error), and the fine value is computed when one does and at the last step.
    """
    p = len(se)
    off_diagonal = ~np.eye(p, dtype=bool)
    bound = stats.norm.ppf(1 - (1 - level) / (p * (p - 1))) if stepdown else np.inf
    rejected = t_stat > bound
    critical = math.inf
    while True:
        open_ = ~rejected & off_diagonal
        critical = _simultaneous_critical_exact(critical, se, sd, open_, level, (_COARSE_STEP,))
        cut = critical if math.isfinite(critical) else np.inf
        now = rejected | (t_stat > cut)
        near = bool(np.any(open_ & (np.abs(t_stat - cut) < _DECISION_MARGIN)))
        final = not stepdown or np.array_equal(now, rejected)
        if near or final:
            critical = _simultaneous_critical_exact(critical, se, sd, open_, level, (_FINE_STEP,))
            now = rejected | (t_stat > (critical if math.isfinite(critical) else np.inf))
            if not stepdown or np.array_equal(now, rejected):
                return now, critical
        rejected = now


def _simultaneous_maxima(
    draws: np.ndarray, inverse: np.ndarray, rejected: np.ndarray
) -> np.ndarray:
    p = draws.shape[0]
    plus = np.where(rejected, np.float32(0), inverse)
    tasks = [
        partial(_block_maxima, draws, np.arange(p)[rows], plus[rows], None)
        for rows in _blocks(p, p, draws.shape[1])
    ]
    return np.max(np.stack([m.max(axis=0) for m in _parallel(tasks)]), axis=0)


def _simultaneous_stepdown(
    draws: np.ndarray, inverse: np.ndarray, t_stat: np.ndarray, level: float, stepdown: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stepdown over all ordered pairs: (rejected, band of the last step, near-band pairs)."""
    p = draws.shape[0]
    bound = stats.norm.ppf(1 - (1 - level) / (p * (p - 1))) if stepdown else np.inf
    rejected = t_stat > bound
    near = np.zeros_like(rejected)
    band = np.full(3, np.inf)
    while True:
        band = _order_statistic(_simultaneous_maxima(draws, inverse, rejected), level)
        # A still-open decision inside the Monte-Carlo band could flip with the seed.
        # An open decision inside the Monte-Carlo band of its step could flip with the
        # seed (and with it every later step).
        near |= ~rejected & (t_stat >= band[0]) & (t_stat <= band[2])
        now = rejected | (t_stat > band[1])
        if not stepdown or np.array_equal(now, rejected):
            return now, band, near
        rejected = now


def _inflate_for_df(se: np.ndarray, df: Any, level: float, hypotheses: int) -> np.ndarray:
    """SEs scaled so a normal tail matches the t tail at the family's Bonferroni level.

    The rank decisions are made at per-hypothesis tail probabilities near
    ``(1 - level) / hypotheses``; at that tail, ``σ_j · t_ν⁻¹(q) / Φ⁻¹(q)`` gives the
    normal the same quantile as ``σ_j T`` with ``T ~ t(ν_j)``.
    """
    if df is None:
        return se
    freedom = np.asarray(df, dtype=float)
    if freedom.shape != se.shape:
        raise ValueError("df must have one entry per estimate")
    if np.any(~(freedom > 0)):
        raise ValueError("degrees of freedom must be positive (inf = known SE)")
    q = 1.0 - (1.0 - level) / max(1, hypotheses)
    ratio = np.where(np.isinf(freedom), 1.0, stats.t.ppf(q, np.minimum(freedom, 1e12)))
    ratio = np.where(np.isinf(freedom), 1.0, ratio / stats.norm.ppf(q))
    return se * ratio


def _marginal_step(
    todo: np.ndarray,
    critical: np.ndarray,
    t_stat: np.ndarray,
    worse: np.ndarray,
    better: np.ndarray,
    off_diagonal: np.ndarray,
    *,
    update: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """One stepdown step of the marginal families: (changed, near the critical value).

    ``worse[j, k]``: ``H_jk`` rejected (j beats k); ``better[j, k]``: ``H_kj`` rejected.
    With ``update`` the rejections are recorded in ``worse`` and ``better``.
    """
    crit = np.nan_to_num(critical[todo], nan=np.inf)[:, None]
    t = t_stat[todo]
    new_worse = worse[todo] | (t > crit)
    new_better = better[todo] | ((-t > crit) & off_diagonal[todo])
    changed = np.any(new_worse != worse[todo], axis=1) | np.any(new_better != better[todo], axis=1)
    near = np.any(~worse[todo] & (np.abs(t - crit) < _DECISION_MARGIN), axis=1) | np.any(
        ~better[todo] & off_diagonal[todo] & (np.abs(-t - crit) < _DECISION_MARGIN), axis=1
    )
    if update:
        worse[todo], better[todo] = new_worse, new_better
    return changed, near


def rank_sets(
    estimate: Any,
    cov_or_se: Any,
    *,
    level: float = 0.95,
    simultaneous: bool = False,
    n_draws: int = 10_000,
    seed: int = 0,
    higher_is_better: bool = True,
    stepdown: bool = True,
    max_draws: int | None = None,
    df: Any = None,
    exact_simultaneous: bool = True,
) -> RankSets:
    """Confidence sets for ranks (Mogstad, Romano, Shaikh & Wilhelm 2024).

    Parameters
    ----------
    estimate : array (p,)
    cov_or_se : array (p,) of standard errors (independent estimates) or (p, p) covariance
    level : float
        Coverage of each unit's interval (marginal) or of all intervals jointly.
    simultaneous : bool
    n_draws : int
        Normal draws of the first Monte-Carlo round (simultaneous sets, or any set from a
        full covariance matrix). Marginal sets from standard errors use no draws.
    seed : int
    higher_is_better : bool
        Rank 1 goes to the highest estimate unless False.
    stepdown : bool
        Romano–Wolf stepdown: after each round of rejections the critical value is
        recomputed over the hypotheses not yet rejected, until nothing changes.
    max_draws : int, optional
        Monte-Carlo paths draw again with four times as many draws while an open decision
        (a t-statistic of a hypothesis not yet rejected) lies within the Monte-Carlo band
        of its critical value, up to this many; units whose decision is still inside the
        band then are flagged ``unstable``. ``None`` (default): one round only, since each
        simultaneous round costs p² per draw (about 35 s at 160,000 draws for p = 250).
    exact_simultaneous : bool
        With standard errors (independent units), the simultaneous family uses the exact
        Boole bound of :func:`_simultaneous_critical_exact` (default: seed-free, never
        unstable, valid, about 2 % more conservative than the max-t; csranks' published
        simultaneous sets can be one rank wider). False: the Monte-Carlo max-t of
        csranks, with adaptive draws.
    df : array (p,), optional
        Degrees of freedom of each estimate's SE (``inf``: known). Estimates on few df
        get their SE scaled so that the normal tail equals the t tail at the family's
        Bonferroni level (see Notes).

    Returns
    -------
    RankSets

    Notes
    -----
    Differences ``Δ_jk = θ_j - θ_k`` are tested as one-sided hypotheses ``H_jk: Δ_jk ≤ 0``
    over ordered pairs with studentised statistics ``t_jk = Δ̂_jk / σ̂_jk``; the critical
    value is the ``level`` quantile of the maximum of ``(Z_j - Z_k) / σ_jk`` over the
    hypotheses in the family, ``Z ~ N(0, Σ)``. The marginal family of ``j`` holds
    ``H_jk`` and ``H_kj`` for all ``k ≠ j``; the simultaneous family holds all ordered
    pairs. The rank interval of ``j`` is ``[1 + #{k: H_kj rejected}, p - #{k: H_jk
    rejected}]``. Mogstad, Romano, Shaikh & Wilhelm, *Review of Economic Studies* 91(1),
    2024, doi:10.1093/restud/rdad006 (R package ``csranks``); stepdown after Romano &
    Wolf 2005, doi:10.1111/j.1468-0262.2005.00615.x.

    With standard errors (Σ diagonal) the marginal critical value is exact: given
    ``Z_j = σ_j z`` the other draws are independent, so
    ``P(max ≤ c) = ∫ φ(z) Π_k [Φ((σ_j z + cσ_jk)/σ_k) - Φ((σ_j z - cσ_jk)/σ_k)] dz``,
    with one-sided factors for the rivals whose other hypothesis the stepdown has
    rejected. A trapezoid rule (spectrally accurate here) and safeguarded Newton solve it
    to about 1e-11; no seed is involved. The simultaneous family has no such form: its
    draws grow fourfold per round until no open decision lies within two binomial SDs
    (in order statistics) of the simultaneous critical value.

    Few degrees of freedom: drawing ``σ_j T_j`` with ``T_j ~ t(ν_j)`` has no
    one-dimensional form for a sum of differences of t variables with different
    ν, so the SEs are scaled by ``t_ν⁻¹(q) / Φ⁻¹(q)`` with ``q = 1 - (1 - level)/m``
    (``m`` hypotheses in the family): the tail probability at which the decisions are
    taken then matches the t distribution's.
    """
    _check_level(level)
    if level <= 0.5:
        # Dropped hypotheses count as 0 in the simulated maxima, harmless above the median.
        raise ValueError("rank confidence sets need level > 0.5")
    values = _oriented(estimate, higher_is_better)
    p = len(values)
    rank = point_rank(values)
    if p == 1:
        one = np.ones(1, dtype=int)
        return RankSets(rank, one, one, level, "single unit", simultaneous, np.nan, 0, seed)
    matrix = np.asarray(cov_or_se, dtype=float)
    hypotheses = p * (p - 1) if simultaneous else 2 * (p - 1)
    if matrix.ndim == 1:
        _covariance(matrix, p)
        matrix = _inflate_for_df(matrix, df, level, hypotheses)
    elif df is not None:
        scale = _inflate_for_df(np.ones(p), df, level, hypotheses)
        matrix = matrix * np.outer(scale, scale)
    cov, diff_variance = _covariance(matrix, p)
    sd = np.sqrt(diff_variance)
    off_diagonal = ~np.eye(p, dtype=bool)
    with np.errstate(divide="ignore", invalid="ignore"):
        inverse = np.where(off_diagonal & (sd > 0), 1.0 / sd, 0.0).astype(np.float32)
        t_stat = (values[:, None] - values[None, :]) / sd
    # Two units with no sampling error: their order is known exactly.
    t_stat = np.where(off_diagonal, np.nan_to_num(t_stat, nan=0.0, posinf=np.inf), -np.inf)
    se = np.sqrt(np.diag(cov)) if cov is not None else matrix
    unstable = np.zeros(p, dtype=bool)
    draws_used = 0
    if not simultaneous and cov is None:
        # In j's family: worse[j, k] = H_jk rejected (j beats k), better[j, k] = H_kj
        # rejected (k beats j). The stepdown starts from what the Bonferroni bound over
        # the family's 2(p - 1) hypotheses rejects: the first critical value lies below
        # that bound, so the stepdown reaches the same fixed point with one pass fewer.
        bound = stats.norm.ppf(1 - (1 - level) / (2 * (p - 1))) if stepdown else np.inf
        worse = t_stat > bound
        better = (-t_stat > bound) & off_diagonal
        critical = np.full(p, np.nan)
        todo = np.arange(p)
        while len(todo):
            # Coarse values decide a step when no open statistic lies within the margin;
            # a unit whose family then stays as it is (or has one near) gets the fine value.
            worse_open, better_open = ~worse & off_diagonal, ~better & off_diagonal
            critical[todo] = _marginal_critical_exact(
                todo, critical[todo], se, sd, worse_open, better_open, level, (_COARSE_STEP,)
            )
            changed, near = _marginal_step(todo, critical, t_stat, worse, better, off_diagonal)
            polish = todo[~changed | near | (not stepdown)]
            if len(polish):
                critical[polish] = _marginal_critical_exact(
                    polish, critical[polish], se, sd, worse_open, better_open, level,
                    (_FINE_STEP,),
                )  # fmt: skip
            changed, _ = _marginal_step(
                todo, critical, t_stat, worse, better, off_diagonal, update=True
            )
            if not stepdown:
                break
            todo = todo[changed]
        lower = 1 + better.sum(axis=1)
        upper = p - worse.sum(axis=1)
        critical_values: np.ndarray | float = critical
        kind, how = "marginal", "exact critical values (quadrature)"
    elif cov is None and exact_simultaneous:
        rejected, critical_scalar = _simultaneous_exact(t_stat, se, sd, level, stepdown)
        worse, better = rejected, rejected.T
        lower = 1 + better.sum(axis=1)
        upper = p - worse.sum(axis=1)
        critical_values = critical_scalar
        kind, how = "simultaneous", "exact Boole critical value over one-sided families"
    else:
        rng = np.random.default_rng(seed)
        draws = _draws(cov, se, n_draws, rng)
        while True:
            if simultaneous:
                rejected, band, near = _simultaneous_stepdown(
                    draws, inverse, t_stat, level, stepdown
                )
                flags = near.any(axis=1) | near.any(axis=0)
                critical_values = float(band[1])
                worse, better = rejected, rejected.T
            else:
                worse, better, critical_values, flags = _marginal_monte_carlo(
                    draws, inverse, t_stat, off_diagonal, level, stepdown
                )
            draws_used = draws.shape[1]
            if not flags.any() or max_draws is None or 4 * draws_used > max_draws:
                unstable = np.asarray(flags, dtype=bool)
                break
            # Fresh draws from the same stream, appended: the result depends on the seed
            # only through decisions that stay inside the band at the cap (flagged).
            draws = np.concatenate([draws, _draws(cov, se, 3 * draws_used, rng)], axis=1)
        lower = 1 + better.sum(axis=1)
        upper = p - worse.sum(axis=1)
        kind = "simultaneous" if simultaneous else "marginal"
        how = f"Monte-Carlo critical values ({draws_used} draws)"
    method = (
        f"{kind} rank confidence sets, max-t over pairwise differences"
        f"{' with stepdown' if stepdown else ''}, {how}"
        f"{', t-adjusted SEs' if df is not None else ''} (Mogstad, Romano, Shaikh & Wilhelm 2024)"
    )
    return RankSets(
        rank, lower, upper, level, method, simultaneous, critical_values, draws_used, seed,
        unstable,
    )  # fmt: skip


def _marginal_monte_carlo(
    draws: np.ndarray,
    inverse: np.ndarray,
    t_stat: np.ndarray,
    off_diagonal: np.ndarray,
    level: float,
    stepdown: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Marginal stepdown from draws (full covariance): worse, better, critical, flags."""
    p = draws.shape[0]
    bound = stats.norm.ppf(1 - (1 - level) / (2 * (p - 1))) if stepdown else np.inf
    worse = t_stat > bound
    better = (-t_stat > bound) & off_diagonal
    bands = np.full((p, 3), np.inf)
    flags = np.zeros(p, dtype=bool)
    todo = np.arange(p)
    while len(todo):
        plus = np.where(worse[todo], np.float32(0), inverse[todo])
        minus = np.where(better[todo], np.float32(0), inverse[todo])
        tasks = [
            partial(_marginal_band, draws, todo[rows], plus[rows], minus[rows], level)
            for rows in _blocks(len(todo), p, draws.shape[1])
        ]
        bands[todo] = np.concatenate(_parallel(tasks))
        low, crit, high = (bands[todo, i, None] for i in range(3))
        t_rows = t_stat[todo]
        near = (~worse[todo] & (t_rows >= low) & (t_rows <= high)) | (
            ~better[todo] & off_diagonal[todo] & (-t_rows >= low) & (-t_rows <= high)
        )
        flags[todo] = near.any(axis=1)
        new_worse = worse[todo] | (t_rows > crit)
        new_better = better[todo] | ((-t_rows > crit) & off_diagonal[todo])
        changed = np.any(new_worse != worse[todo], axis=1) | np.any(
            new_better != better[todo], axis=1
        )
        worse[todo], better[todo] = new_worse, new_better
        if not stepdown:
            break
        todo = todo[changed]
    return worse, better, bands[:, 1], flags


def _marginal_band(
    draws: np.ndarray, rows: np.ndarray, plus: np.ndarray, minus: np.ndarray, level: float
) -> np.ndarray:
    return _order_statistic(_block_maxima(draws, rows, plus, minus), level)


def top_set(
    estimate: Any,
    cov_or_se: Any,
    tau: int,
    *,
    level: float = 0.95,
    n_draws: int = 10_000,
    seed: int = 0,
    higher_is_better: bool = True,
    max_draws: int | None = None,
    df: Any = None,
    exact_simultaneous: bool = True,
) -> np.ndarray:
    """Indices of the units that cannot be excluded from the τ best (τ-best set).

    A unit is excluded only when at least ``τ`` units are significantly better, using
    the simultaneous lower rank bounds; the set covers all true τ-best units with
    probability ``level`` (Mogstad, Romano, Shaikh & Wilhelm 2024, §4,
    doi:10.1093/restud/rdad006). With ``τ = 1`` a set of several units is a statistical
    tie for first place. ``max_draws``, ``df`` and ``exact_simultaneous`` as in
    :func:`rank_sets`.
    """
    if tau < 1:
        raise ValueError("tau must be at least 1")
    sets = rank_sets(
        estimate,
        cov_or_se,
        level=level,
        simultaneous=True,
        n_draws=n_draws,
        seed=seed,
        higher_is_better=higher_is_better,
        max_draws=max_draws,
        df=df,
        exact_simultaneous=exact_simultaneous,
    )
    return np.flatnonzero(sets.lower <= tau)


def kww_rank_region(
    estimate: Any, se: Any, *, alpha: float = 0.10, higher_is_better: bool = True
) -> RankSets:
    """Joint rank region from Šidák-adjusted intervals (Klein, Wright & Wieczorek 2020).

    Each unit gets the normal interval at individual level ``(1 - alpha)^(1/p)``, so
    independent estimates have all intervals jointly at ``1 - alpha``; unit ``k`` counts
    as better than ``j`` when its interval lies entirely above ``j``'s. Deterministic.
    Klein, Wright & Wieczorek, *JRSS C* 69(4), 2020, doi:10.1111/rssc.12402.
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError("alpha must be in (0, 1)")
    values = _oriented(estimate, higher_is_better)
    errors = np.asarray(se, dtype=float)
    if errors.shape != values.shape:
        raise ValueError("se must have one entry per estimate")
    p = len(values)
    individual = (1.0 - alpha) ** (1.0 / p)
    z = stats.norm.ppf(0.5 + individual / 2.0)
    low, high = values - z * errors, values + z * errors
    surely_better = p - np.searchsorted(np.sort(low), high, side="right")
    surely_worse = np.searchsorted(np.sort(high), low, side="left")
    return RankSets(
        point_rank(values),
        1 + surely_better,
        p - surely_worse,
        1.0 - alpha,
        "joint rank region, Šidák-adjusted intervals (Klein, Wright & Wieczorek 2020)",
        True,
        z,
        0,
        0,
    )


# Units whose chance of beating the leader is below this are given P(best) = 0 exactly.
_NEGLIGIBLE = 1e-13


def _p_best_exact(values: np.ndarray, errors: np.ndarray) -> np.ndarray:
    """P(unit j is first) = ∫ φ(z) Π_k Φ((θ_j + σ_j z - θ_k)/σ_k) dz for independent units.

    Rivals far enough below (every factor equal to 1 in double precision) and units with
    no chance of beating the leader are skipped, so the cost follows the leading group.
    """
    p = len(values)
    leader = int(np.argmax(values))
    pair_sd = np.sqrt(errors**2 + errors[leader] ** 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        beats_leader = stats.norm.cdf((values - values[leader]) / pair_sd)
    contenders = np.flatnonzero((beats_leader > _NEGLIGIBLE) | (np.arange(p) == leader))
    shares = np.zeros(p)
    for j in contenders:
        floor = values[j] - _HALF_RANGE * errors[j]
        rivals = np.flatnonzero((values + 9.0 * errors > floor) & (np.arange(p) != j))
        z, weights = _nodes(errors[j : j + 1], errors[rivals])
        x = values[j] + errors[j] * z
        factor = special.ndtr((x[None, :] - values[rivals, None]) / errors[rivals, None])
        shares[j] = float(factor.prod(axis=0) @ weights)
    return shares


def p_best(
    estimate: Any,
    se: Any,
    n_draws: int = 10_000,
    seed: int = 0,
    *,
    higher_is_better: bool = True,
    shrink: bool = False,
) -> np.ndarray:
    """Probability that each unit comes first.

    Parameters
    ----------
    estimate : array (p,)
    se : array (p,) of standard errors, or a (p, p) covariance matrix
    n_draws, seed : int
        Monte-Carlo draws and seed, used only with a covariance matrix.
    higher_is_better : bool
    shrink : bool
        ``False`` (default): the plug-in share of ``N(estimate, se²)`` in which the unit
        is first, descriptive only (it is not a posterior probability: it overstates
        the leaders' chances, since the largest estimate is biased upwards).
        ``True``: an empirical-Bayes posterior, ``θ_j ~ N(eblup_j, mse_j)`` from a
        Fay–Herriot fit with an intercept only (REML), whose P(best) is calibrated when
        the true values are spread as the model says (Fay & Herriot 1979,
        doi:10.1080/01621459.1979.10482505; Rao & Molina 2015, ch. 6).

    Returns
    -------
    array (p,) summing to 1.

    Notes
    -----
    With standard errors the probability is the exact one-dimensional integral
    ``∫ φ(z) Π_k Φ((θ_j + σ_j z - θ_k)/σ_k) dz`` (no seed); with a covariance matrix, or
    SEs of 0, a seeded Monte-Carlo share.
    """
    values = _oriented(estimate, higher_is_better)
    p = len(values)
    cov, _ = _covariance(se, p)
    errors = np.sqrt(np.diag(cov)) if cov is not None else np.asarray(se, dtype=float)
    # Fay–Herriot needs more units than its one covariate (the intercept); with two or
    # fewer, or SEs all 0, there is no between-unit variance to estimate: plug-in shares.
    if shrink and p > 2 and np.any(errors > 0):
        if cov is not None:
            raise ValueError("shrink=True needs independent estimates (standard errors)")
        from scoring.shrinkage import fay_herriot

        fit = fay_herriot(values, errors**2)
        values, errors = np.asarray(fit.eblup, dtype=float), np.sqrt(fit.mse)
    if cov is None and np.all(errors > 0):
        shares = _p_best_exact(values, errors)
        return shares / shares.sum()
    wins = np.zeros(p)
    chunk = max(1, 20_000_000 // max(p, 1))
    rng = np.random.default_rng(seed)
    for start in range(0, n_draws, chunk):
        size = min(chunk, n_draws - start)
        draws = values[:, None] + _draws(cov, errors, size, rng).astype(float)
        wins += np.bincount(np.argmax(draws, axis=0), minlength=p)
    return wins / n_draws
