"""Rank inference: confidence sets for ranks, τ-best sets, joint rank regions, P(best)."""

from __future__ import annotations

import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

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
    unstable: np.ndarray | None = None

    def __post_init__(self) -> None:
        size = len(self.rank)
        flags = np.zeros(size, dtype=bool) if self.unstable is None else self.unstable
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


def _marginal_critical(
    draws: np.ndarray, rows: np.ndarray, plus: np.ndarray, minus: np.ndarray, level: float
) -> np.ndarray:
    return _order_statistic(_block_maxima(draws, rows, plus, minus), level)


# Memory allowed for the per-group maxima kept between stepdown steps.
_GROUP_BYTES = 600_000_000
_GROUP_SIZE = 32
# Units per block of the first step (a multiple of _GROUP_SIZE).
_PAIR_SIZE = 32
# First step by pairs of blocks when the weights are symmetric (False: row by row).
_PAIRED_FIRST_STEP = True
# Draws per block in the first step: a block of group × group × draws stays in cache.
_DRAW_BLOCK = 256


def _grouped_fits(p: int, n_draws: int) -> bool:
    padded = -(-p // _PAIR_SIZE) * _PAIR_SIZE
    return 2 * padded * (padded // _GROUP_SIZE) * n_draws * 4 <= _GROUP_BYTES


def _marginal_stepdown_grouped(
    draws: np.ndarray,
    values: np.ndarray,
    inverse: np.ndarray,
    t_stat: np.ndarray,
    worse: np.ndarray,
    better: np.ndarray,
    level: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Marginal stepdown keeping, per unit and draw, the maxima of groups of rivals.

    Units are sorted by estimate and cut into groups of ``_GROUP_SIZE`` rivals; the first
    step stores, for every unit ``j``, side (``H_jk`` or ``H_kj``), group and draw, the
    maximum over the group of the side's statistics. A stepdown step removes hypotheses:
    a side of a group whose rivals are all rejected drops to 0 (what a zero weight gives),
    a side with some rivals rejected is recomputed over its open rivals, the others are
    reused, so later steps cost a small fraction of the first one. The first step works
    on pairs of blocks of units: ``(Z_j - Z_k)·w_jk`` and ``(Z_k - Z_j)·w_kj`` are exact
    negatives in floating point when the weights are symmetric, so one block of products
    serves ``j``'s row and ``k``'s row, half the arithmetic, over blocks of draws that
    stay in cache. Results are identical to recomputing every maximum (tested).
    ``worse`` and ``better`` are updated in place.
    """
    p, n_draws = draws.shape
    order = np.argsort(values, kind="stable")
    size, pair = _GROUP_SIZE, _PAIR_SIZE
    padded = -(-p // pair) * pair
    groups, per_pair = padded // size, pair // size
    sorted_draws = np.zeros((padded, n_draws), dtype=np.float32)
    sorted_draws[:p] = draws[order]
    weights = np.zeros((padded, padded), dtype=np.float32)
    weights[:p, :p] = inverse[np.ix_(order, order)]
    t_sorted = t_stat[np.ix_(order, order)]
    worse_s = worse[np.ix_(order, order)]
    better_s = better[np.ix_(order, order)]
    # top[j, 0, g, r]: max over rivals k in group g of (Z_j - Z_k)·w_jk over the open H_jk;
    # top[j, 1, g, r]: the same for (Z_k - Z_j)·w_jk over the open H_kj; draw r.
    top = np.empty((padded, 2, groups, n_draws), dtype=np.float32)

    def side_weights(j: int) -> tuple[np.ndarray, np.ndarray]:
        plus = weights[j].copy()
        minus = weights[j].copy()
        plus[:p][worse_s[j]] = 0
        minus[:p][better_s[j]] = 0
        return plus, minus

    def group_maximum(j: int, side: int, g: int, side_weight: np.ndarray) -> None:
        # Only the rivals with a non-zero weight are computed; the others (rejected, j
        # itself, padding) would each contribute exactly 0 to the maximum.
        weight = side_weight[g * size : (g + 1) * size]
        rivals = np.flatnonzero(weight)
        out = top[j, side, g]
        if len(rivals) == 0:
            out[...] = 0.0
            return
        scaled = _scratch("group_scaled", (len(rivals), n_draws))
        first = g * size + rivals[0]
        if rivals[-1] - rivals[0] == len(rivals) - 1:
            np.subtract(sorted_draws[j], sorted_draws[first : first + len(rivals)], out=scaled)
        else:
            # mode="clip": with the default mode, take() buffers its output.
            np.take(sorted_draws, rivals + g * size, axis=0, out=scaled, mode="clip")
            np.subtract(sorted_draws[j], scaled, out=scaled)
        np.multiply(scaled, weight[rivals, None], out=scaled)
        if side == 0:
            np.maximum.reduce(scaled, axis=0, out=out)
        else:
            np.minimum.reduce(scaled, axis=0, out=out)
            np.negative(out, out=out)
        if len(rivals) < size:
            np.maximum(out, 0.0, out=out)

    def first_step_rows(rows: np.ndarray) -> None:
        for j in rows:
            plus, minus = side_weights(int(j))
            for g in range(groups):
                group_maximum(int(j), 0, g, plus)
                group_maximum(int(j), 1, g, minus)

    def first_step_pairs(pairs: list[tuple[int, int]]) -> None:
        for a, b in pairs:
            rows_a = slice(a * pair, (a + 1) * pair)
            rows_b = slice(b * pair, (b + 1) * pair)
            groups_a = slice(a * per_pair, (a + 1) * per_pair)
            groups_b = slice(b * per_pair, (b + 1) * per_pair)
            pair_weights = weights[rows_a, rows_b, None]
            for start in range(0, n_draws, _DRAW_BLOCK):
                cols = slice(start, min(start + _DRAW_BLOCK, n_draws))
                width = cols.stop - start
                block = _scratch("pair", (pair, pair, width))
                np.subtract(sorted_draws[rows_a, None, cols], sorted_draws[None, rows_b, cols],
                            out=block)  # fmt: skip
                np.multiply(block, pair_weights, out=block)
                # Rows of block a: P_jk = (Z_j - Z_k)·w_jk grouped over k in block b.
                by_row = block.reshape(pair, per_pair, size, width)
                np.maximum.reduce(by_row, axis=2, out=top[rows_a, 0, groups_b, cols])
                low = top[rows_a, 1, groups_b, cols]
                np.minimum.reduce(by_row, axis=2, out=low)
                np.negative(low, out=low)
                if a != b:
                    # Rows of block b: (Z_k - Z_j)·w_kj = -P_jk, grouped over j in block a.
                    # (Reduced into a contiguous buffer: strided outputs are slow.)
                    by_column = block.reshape(per_pair, size, pair, width)
                    reduced = _scratch("reduced", (per_pair, pair, width))
                    np.maximum.reduce(by_column, axis=1, out=reduced)
                    top[rows_b, 1, groups_a, cols] = reduced.transpose(1, 0, 2)
                    np.minimum.reduce(by_column, axis=1, out=reduced)
                    np.negative(reduced, out=reduced)
                    top[rows_b, 0, groups_a, cols] = reduced.transpose(1, 0, 2)

    workers = max(1, min(os.cpu_count() or 1, 4))
    nothing_rejected = not (worse_s.any() or better_s.any())
    if _PAIRED_FIRST_STEP and nothing_rejected and np.array_equal(weights, weights.T):
        n_pairs = padded // pair
        pairs = [(a, b) for a in range(n_pairs) for b in range(a, n_pairs)]
        # Interleaved so each worker gets diagonal and off-diagonal pairs alike.
        _parallel([partial(first_step_pairs, pairs[i::workers]) for i in range(workers)])
    else:
        chunks = [chunk for chunk in np.array_split(np.arange(p), workers) if len(chunk)]
        _parallel([partial(first_step_rows, chunk) for chunk in chunks])
    critical = np.full((p, 3), np.inf)
    todo = np.arange(p)
    unstable = np.zeros(p, dtype=bool)
    # stale[j, side, g]: 1 = recompute the side of the group, 2 = all its rivals rejected.
    stale = np.zeros((p, 2, groups), dtype=np.int8)
    live = np.zeros((p, padded), dtype=bool)
    live[:, :p] = weights[:p, :p] > 0

    def later_step(rows: np.ndarray) -> None:
        maxima = _scratch("maxima", (n_draws,))
        for j in rows:
            side_of, group_of = np.nonzero(stale[j])
            if len(side_of):
                plus, minus = side_weights(int(j))
                for side, g in zip(side_of.tolist(), group_of.tolist(), strict=True):
                    if stale[j, side, g] == 2:
                        top[j, side, g] = 0.0
                    else:
                        group_maximum(int(j), side, g, minus if side else plus)
            np.maximum.reduce(top[j].reshape(2 * groups, n_draws), axis=0, out=maxima)
            critical[j] = _order_statistic(maxima, level)

    while len(todo):
        # Interleaved: units needing recomputation cluster in the order.
        parts = [todo[i::workers] for i in range(workers) if len(todo[i::workers])]
        _parallel([partial(later_step, part) for part in parts])
        stale[:] = 0
        low, crit, high = (critical[todo, i, None] for i in range(3))
        t_rows = t_sorted[todo]
        open_worse, open_better = ~worse_s[todo], ~better_s[todo]
        open_better[np.arange(len(todo)), todo] = False
        near = (open_worse & (t_rows >= low) & (t_rows <= high)) | (
            open_better & (-t_rows >= low) & (-t_rows <= high)
        )
        unstable[todo] |= near.any(axis=1)
        new_worse = (t_sorted[todo] > crit) & ~worse_s[todo]
        new_better = (-t_sorted[todo] > crit) & ~better_s[todo]
        new_better[np.arange(len(todo)), todo] = False
        worse_s[todo] |= new_worse
        better_s[todo] |= new_better
        for side, new, done in ((0, new_worse, worse_s), (1, new_better, better_s)):
            padded_new = np.zeros((len(todo), padded), dtype=bool)
            padded_new[:, :p] = new
            padded_open = live[todo].copy()
            padded_open[:, :p] &= ~done[todo]
            touched = padded_new.reshape(len(todo), groups, size).any(axis=2)
            emptied = ~padded_open.reshape(len(todo), groups, size).any(axis=2)
            stale[todo, side] = np.where(touched, np.where(emptied, 2, 1), 0)
        todo = todo[stale[todo].reshape(len(todo), -1).any(axis=1)]
    inverse_order = np.empty(p, dtype=np.int64)
    inverse_order[order] = np.arange(p)
    worse[:] = worse_s[np.ix_(inverse_order, inverse_order)]
    better[:] = better_s[np.ix_(inverse_order, inverse_order)]
    return critical[inverse_order], unstable[inverse_order]


def _parallel(tasks: list[Any]) -> list[Any]:
    workers = min(len(tasks), os.cpu_count() or 1)
    if workers <= 1:
        return [task() for task in tasks]
    # numpy releases the GIL inside these array operations, so threads use every core.
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda task: task(), tasks))


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
        Normal draws for the max-t critical values. Raise it when a difference's
        t-statistic sits within Monte-Carlo error of a critical value.
    seed : int
    higher_is_better : bool
        Rank 1 goes to the highest estimate unless False.
    stepdown : bool
        Romano–Wolf stepdown: after each round of rejections the critical value is
        recomputed over the hypotheses not yet rejected, until nothing changes.
    max_draws : int, optional
        When a unit is ``unstable`` (a t-statistic of its family lies within the
        Monte-Carlo band of its critical value), rerun with four times the draws, up to
        this many. ``None`` (default) only flags such units, leaving the cost fixed.

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
    Wolf 2005, doi:10.1111/j.1468-0262.2005.00615.x. The same seed gives the same draws
    to the marginal and simultaneous versions, so simultaneous sets contain marginal ones.
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
    cov, diff_variance = _covariance(cov_or_se, p)
    sd = np.sqrt(diff_variance)
    off_diagonal = ~np.eye(p, dtype=bool)
    with np.errstate(divide="ignore", invalid="ignore"):
        inverse = np.where(off_diagonal & (sd > 0), 1.0 / sd, 0.0).astype(np.float32)
        t_stat = (values[:, None] - values[None, :]) / sd
    # Two units with no sampling error: their order is known exactly.
    t_stat = np.where(off_diagonal, np.nan_to_num(t_stat, nan=0.0, posinf=np.inf), -np.inf)
    se = np.sqrt(np.diag(cov)) if cov is not None else np.asarray(cov_or_se, dtype=float)
    draws = _draws(cov, se, n_draws, np.random.default_rng(seed))

    if simultaneous:
        # H_jk rejected: j better than k. Stepdown may start from the hypotheses beyond
        # the Bonferroni bound, which the first step rejects anyway (same fixed point).
        bound = stats.norm.ppf(1 - (1 - level) / (p * (p - 1))) if stepdown else np.inf
        rejected = t_stat > bound
        unstable = np.zeros(p, dtype=bool)
        critical = np.inf
        while True:
            plus = np.where(rejected, np.float32(0), inverse)
            tasks = [
                partial(_block_maxima, draws, np.arange(p)[rows], plus[rows], None)
                for rows in _blocks(p, p, n_draws)
            ]
            maxima = np.max(np.stack([m.max(axis=0) for m in _parallel(tasks)]), axis=0)
            band = _order_statistic(maxima, level)
            critical = float(band[1])
            near = ~rejected & (t_stat >= band[0]) & (t_stat <= band[2])
            unstable |= near.any(axis=1) | near.any(axis=0)
            now = (t_stat > critical) | rejected
            if not stepdown or np.array_equal(now, rejected):
                rejected = now
                break
            rejected = now
        lower = 1 + rejected.sum(axis=0)
        upper = p - rejected.sum(axis=1)
        critical_values = np.tile(band, (p, 1))
        kind = "simultaneous"
    else:
        # In j's family: worse[j, k] = H_jk rejected (j beats k), better[j, k] = H_kj
        # rejected (k beats j). Stepdown starts from what the Bonferroni bound over the
        # family's 2(p - 1) hypotheses rejects: the first step's critical value is below
        # that bound, so the stepdown reaches the same fixed point with one pass fewer.
        # (The grouped path below makes later steps cheap, so it starts from scratch and
        # its first step needs one product per unit instead of two.)
        grouped = stepdown and _grouped_fits(p, n_draws)
        bound = stats.norm.ppf(1 - (1 - level) / (2 * (p - 1)))
        if not stepdown or grouped:
            bound = np.inf
        worse = t_stat > bound
        better = (-t_stat > bound) & off_diagonal
        critical_values = np.full((p, 3), np.inf)
        unstable = np.zeros(p, dtype=bool)
        todo = np.arange(p)
        if grouped:
            critical_values, unstable = _marginal_stepdown_grouped(
                draws, values, inverse, t_stat, worse, better, level
            )
            todo = todo[:0]
        while len(todo):
            plus = np.where(worse[todo], np.float32(0), inverse[todo])
            minus = np.where(better[todo], np.float32(0), inverse[todo])
            blocks = _blocks(len(todo), p, n_draws)
            tasks = [
                partial(_marginal_critical, draws, todo[rows], plus[rows], minus[rows], level)
                for rows in blocks
            ]
            critical_values[todo] = np.concatenate(_parallel(tasks))
            low, crit, high = (critical_values[todo, i, None] for i in range(3))
            t_rows = t_stat[todo]
            near = (~worse[todo] & (t_rows >= low) & (t_rows <= high)) | (
                ~better[todo] & off_diagonal[todo] & (-t_rows >= low) & (-t_rows <= high)
            )
            unstable[todo] |= near.any(axis=1)
            new_worse = (t_stat[todo] > crit) | worse[todo]
            new_better = (-t_stat[todo] > crit) & off_diagonal[todo] | better[todo]
            changed = np.any(new_worse != worse[todo], axis=1) | np.any(
                new_better != better[todo], axis=1
            )
            worse[todo] = new_worse
            better[todo] = new_better
            if not stepdown:
                break
            todo = todo[changed]
        lower = 1 + better.sum(axis=1)
        upper = p - worse.sum(axis=1)
        kind = "marginal"
    if max_draws is not None and unstable.any() and 4 * n_draws <= max_draws:
        return rank_sets(
            estimate, cov_or_se, level=level, simultaneous=simultaneous,
            n_draws=4 * n_draws, seed=seed, higher_is_better=higher_is_better,
            stepdown=stepdown, max_draws=max_draws,
        )  # fmt: skip
    method = (
        f"{kind} rank confidence sets, max-t over pairwise differences"
        f"{' with stepdown' if stepdown else ''} (Mogstad, Romano, Shaikh & Wilhelm 2024)"
    )
    return RankSets(
        rank, lower, upper, level, method, simultaneous, critical_values[:, 1], n_draws, seed,
        unstable,
    )  # fmt: skip


def top_set(
    estimate: Any,
    cov_or_se: Any,
    tau: int,
    *,
    level: float = 0.95,
    n_draws: int = 10_000,
    seed: int = 0,
    higher_is_better: bool = True,
) -> np.ndarray:
    """Indices of the units that cannot be excluded from the τ best (τ-best set).

    A unit is excluded only when at least ``τ`` units are significantly better, using
    the simultaneous lower rank bounds; the set covers all true τ-best units with
    probability ``level`` (Mogstad, Romano, Shaikh & Wilhelm 2024, §4,
    doi:10.1093/restud/rdad006). With ``τ = 1`` a set of several units is a statistical
    tie for first place.
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


def p_best(
    estimate: Any,
    se: Any,
    n_draws: int = 10_000,
    seed: int = 0,
    *,
    higher_is_better: bool = True,
) -> np.ndarray:
    """Share of draws from ``N(estimate, se²)`` in which each unit comes first.

    Descriptive only (it is not a posterior probability without a prior); ``se`` may
    also be a covariance matrix. Seeded.
    """
    values = _oriented(estimate, higher_is_better)
    p = len(values)
    cov, _ = _covariance(se, p)
    errors = np.sqrt(np.diag(cov)) if cov is not None else np.asarray(se, dtype=float)
    wins = np.zeros(p)
    chunk = max(1, 20_000_000 // max(p, 1))
    rng = np.random.default_rng(seed)
    for start in range(0, n_draws, chunk):
        size = min(chunk, n_draws - start)
        draws = values[:, None] + _draws(cov, errors, size, rng).astype(float)
        wins += np.bincount(np.argmax(draws, axis=0), minlength=p)
    return wins / n_draws
