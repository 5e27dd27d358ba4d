"""Scoring runs: compute a campaign's scores and rankings and store them as a frozen run.

``run_scoring`` reads the inputs (:mod:`app.results.inputs`), computes with ``scoring``
(METHODOLOGY.md) and, for a final run, stores the run and all its rows in the caller's
transaction (the caller commits once); a preview computes the same and stores nothing.

Score rows (``ScoreRow``), per candidate:

- ``overall`` (key ""): Σ component weight × component, variances added, Welch df;
- ``component`` ``survey``: Hájek mean of the respondents' satisfaction index (design weights
  1, Taylor SE, t on the authority's own df); ``mystery``: the channel scores combined with the
  campaign's channel weights (weights renormalised over the channels tested);
- ``channel`` (channel code): mean of the approved visits' scores, SE s/√k on k−1 df, a single
  visit borrowing the pooled variance of its category and channel (``borrowed_variance``),
  or, when no candidate of the category has two visits there, the variance of the
  single-visit scores across the category (conservative, see ``_fill_unreplicated``);
- ``theme``: survey themes as Hájek means of the respondents' theme scores, grid themes as
  means of the visits' theme scores (same rule as channels);
- ``item``: key ``"<instrument key>:<item key>"`` (e.g. ``citizen:courtesy``,
  ``grid-guichet:wait``), the item's mean score, for strengths and irritants.

Flags: ``insufficient_precision`` (effective n < 30 on survey figures, or interval wider than
30 points, or no SE), ``fewer_than_5`` (never shown: anonymity), ``borrowed_variance``,
``no_survey`` / ``no_mystery`` (the overall score stands on one component only).

Rank rows (``RankRow``), per candidate of each category: eligible candidates (campaign rules)
with a finite estimate and SE are ranked: point rank, marginal rank interval at the campaign's
confidence level (Mogstad et al. 2024, stepdown, seeded), membership of the τ=1 and τ=3
sets (from the single-step simultaneous sets: valid, slightly conservative), P(best)
(descriptive) and percentile (share of the other ranked candidates scoring lower, ties
counting half). Ineligible candidates keep their estimate and the reason.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from app.accounts.models import User
from app.audit.models import record_audit
from app.campaigns.models import Campaign, CampaignState
from app.campaigns.service import parse_config
from app.core.errors import Conflict
from app.core.i18n import _
from app.core.timeutil import utcnow
from app.results import repository
from app.results.inputs import ScoringInputs, gather_inputs
from app.results.labels import ineligibility_code
from app.results.models import RunKind, RunStatus, ScoreLevel, ScoringRun
from scoring import (
    Design,
    Estimates,
    channel_scores,
    combine_components,
    estimate_means,
    p_best,
    precision_flags,
    rank_sets,
    stack_components,
)
from scoring.estimates import t_quantile

Progress = Callable[[int, str], None]

N_DRAWS = 10_000
MIN_N_EFF = 30.0
MAX_CI_WIDTH = 30.0
MIN_SHOWN = 5
# Once the jury has deliberated, its signed decisions rest on the current run: a new run would
# silently change the scores under them (and under published results).
FINAL_STATES = {CampaignState.closed, CampaignState.scored}
DECIDED_STATES = {CampaignState.deliberated, CampaignState.published}
PREVIEW_STATES = {CampaignState.open}
_SOURCE_ROOT = Path(__file__).resolve().parents[2]


@lru_cache(maxsize=1)
def code_version() -> str:
    """Package version and a digest of the code that computes the numbers."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        base = version("barometre")
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        base = "0"
    digest = hashlib.sha256()
    for folder in ("scoring", "surveys", "app/results"):
        for path in sorted((_SOURCE_ROOT / folder).glob("*.py")):
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return f"{base}+src.{digest.hexdigest()[:12]}"


@dataclass
class RunResult:
    """What a run computed (stored or not): counts, hash and the rows themselves."""

    kind: str
    inputs_sha256: str
    seed: int
    params: dict[str, Any]
    summary: dict[str, Any]
    score_rows: list[dict[str, Any]] = field(default_factory=list)
    rank_rows: list[dict[str, Any]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    run: ScoringRun | None = None


def _num(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) or math.isinf(value) else value


def _on_scale(bound: Any) -> float | None:
    """A confidence bound truncated to the 0–100 score scale.

    A t interval on few degrees of freedom (two visits: t(1) = 12.7) can reach far outside
    the scale; no score lies there, so the bound is cut at the scale's edge. The standard
    error is kept as computed, so rankings and the precision flags (decided on the raw
    width, before this cut) are unchanged.
    """
    value = _num(bound)
    return None if value is None else min(max(value, 0.0), 100.0)


def _rows_from(
    estimates: Estimates,
    *,
    codes: list[str],
    level: str,
    key: str | Callable[[Any], str],
    min_n_eff: float,
    extra_flags: Callable[[int], list[str]] | None = None,
) -> list[dict[str, Any]]:
    """Score rows of one result whose domains are candidate indices (or (candidate, key))."""
    flags = precision_flags(
        estimates, min_n_eff=min_n_eff, max_ci_width=MAX_CI_WIDTH, min_n=MIN_SHOWN
    )
    insufficient = flags["insufficient_precision"].to_numpy()
    suppress = flags["suppress"].to_numpy()
    rows = []
    for i, domain in enumerate(estimates.domains):
        if isinstance(domain, tuple):
            candidate, label = int(domain[0]), domain[1]
            row_key = key(label) if callable(key) else key
        else:
            candidate = int(domain)
            row_key = key if isinstance(key, str) else key(domain)
        estimate = _num(estimates.estimate[i])
        row_flags = []
        if estimate is not None and insufficient[i]:
            row_flags.append("insufficient_precision")
        if suppress[i]:
            row_flags.append("fewer_than_5")
        if extra_flags is not None:
            row_flags.extend(extra_flags(i))
        rows.append(
            {
                "authority_code": codes[candidate],
                "level": level,
                "key": row_key,
                "estimate": estimate,
                "se": _num(estimates.se[i]),
                "df": _num(estimates.df[i]),
                "ci_low": _on_scale(estimates.ci_low[i]),
                "ci_high": _on_scale(estimates.ci_high[i]),
                "n": int(estimates.n[i]),
                "n_eff": _num(estimates.n_eff[i]),
                "flags": row_flags,
            }
        )
    return rows


def _survey_estimates(inputs: ScoringInputs, level: float) -> dict[str, Estimates]:
    """Hájek means per candidate of the index, the themes and the items."""
    scores = inputs.item_scores
    weights = np.array([item.weight for item in inputs.survey_items])
    columns: dict[str, np.ndarray] = {"authority": inputs.response_candidate.astype(np.int64)}

    def node(mask: np.ndarray) -> np.ndarray:
        w = np.where(mask, weights, 0.0)
        total_weight = w.sum()
        if scores.shape[0] == 0 or total_weight <= 0:
            return np.full(scores.shape[0], np.nan)
        present = ~np.isnan(scores)
        covered = present.astype(float) @ w
        summed = np.where(present, scores, 0.0) @ w
        with np.errstate(divide="ignore", invalid="ignore"):
            value = summed / covered
        # surveys.scores: missing below 50 % of the node's weight.
        enough = (covered > 0) & (covered / total_weight >= 0.5 - 1e-12)
        return np.where(enough, value, np.nan)

    everything = weights > 0
    columns["__index"] = node(everything)
    for theme in inputs.themes:
        mask = np.array([item.theme == theme for item in inputs.survey_items]) & everything
        if mask.any():
            columns[f"__theme:{theme}"] = node(mask)
    for j, item in enumerate(inputs.survey_items):
        columns[f"{inputs.survey_key}:{item.key}"] = scores[:, j]
    ys = [name for name in columns if name != "authority"]
    if scores.shape[0] == 0:
        return {}
    return estimate_means(columns, ys, Design(), by="authority", level=level, df="domain")


MIN_POOLED_DF = 5


def _fill_unreplicated(estimates: Estimates, categories: np.ndarray, level: float) -> Estimates:
    """Variance of single-visit means when the category's pool is too thin.

    ``channel_scores`` gives a single visit the pooled within-authority variance of its
    category and channel, with that pool's df. When fewer than ``MIN_POOLED_DF`` df back it
    (one replicated authority gives df = 1, hence t ≈ 12.7 and a useless interval), the
    same channel's pool over all categories is used if it has more df: the within-authority
    spread of a channel's visits does not depend on the town's size. With no replicated
    authority at all (the default tests have one letter, one website audit and one social
    message), the variance of the single-visit scores across the category's candidates
    (between + within, so an upper bound of the within variance) is used with m − 1 df.
    Such rows stay flagged ``borrowed_variance``.
    """
    se = np.array(estimates.se, dtype=float)
    df = np.array(estimates.df, dtype=float)
    single = estimates.n == 1
    if not single.any():
        return estimates
    n = np.asarray(estimates.n, dtype=float)
    candidate = np.asarray(estimates.domains.get_level_values(0), dtype=np.int64)
    label = np.asarray(estimates.domains.get_level_values(1), dtype=object)
    category = categories[candidate]
    own = (n >= 2) & ~np.isnan(estimates.se)
    # Within-authority sums of squares of the replicated rows: (k − 1)·s² = (k − 1)·k·se².
    sum_sq = np.where(own, (n - 1) * n * np.nan_to_num(estimates.se) ** 2, 0.0)
    pools: dict[tuple[Any, ...], tuple[float, float]] = {}
    for i in np.flatnonzero(own):
        for key in ((category[i], label[i]), (None, label[i])):
            ss, dof = pools.get(key, (0.0, 0.0))
            pools[key] = (ss + sum_sq[i], dof + n[i] - 1)
    between: dict[tuple[Any, Any], tuple[float, float]] = {}
    for i in np.flatnonzero(single):
        _local_ss, local_df = pools.get((category[i], label[i]), (0.0, 0.0))
        if local_df >= MIN_POOLED_DF:
            continue  # channel_scores' own choice stands
        national_ss, national_df = pools.get((None, label[i]), (0.0, 0.0))
        if national_df > local_df:
            se[i], df[i] = math.sqrt(national_ss / national_df), national_df
        elif local_df <= 0:
            key = (category[i], label[i])
            if key not in between:
                members = (category == category[i]) & (label == label[i]) & single
                values = estimates.estimate[members]
                values = values[~np.isnan(values)]
                between[key] = (
                    (float(np.std(values, ddof=1)), float(len(values) - 1))
                    if len(values) >= 2
                    else (math.nan, math.nan)
                )
            se[i], df[i] = between[key]
    quantile = t_quantile(level, np.nan_to_num(df, nan=0.0))
    return Estimates(
        domains=estimates.domains,
        estimate=estimates.estimate,
        se=se,
        df=df,
        ci_low=estimates.estimate - quantile * se,
        ci_high=estimates.estimate + quantile * se,
        n=estimates.n,
        n_eff=estimates.n_eff,
        level=level,
        method=estimates.method
        + f"; single visits: category pool if ≥ {MIN_POOLED_DF} df, else the channel's "
        "national pool, else the variance across the category's candidates",
    )


def _grouped_visits(
    inputs: ScoringInputs, values: dict[str, np.ndarray], level: float
) -> Estimates | None:
    """Mean per (candidate, label) of visit-level values, as channel scores are computed."""
    visits = inputs.visits
    categories = np.asarray(inputs.categories, dtype=object)
    parts_score, parts_candidate, parts_label = [], [], []
    for label, column in values.items():
        keep = ~np.isnan(column)
        if keep.any():
            parts_score.append(column[keep])
            parts_candidate.append(visits.candidate[keep])
            parts_label.append(np.full(int(keep.sum()), label, dtype=object))
    if not parts_score:
        return None
    candidate = np.concatenate(parts_candidate).astype(np.int64)
    result = channel_scores(
        np.concatenate(parts_score),
        candidate,
        np.concatenate(parts_label),
        categories[candidate],
        level=level,
    )
    return _fill_unreplicated(result, categories, level)


def _eligibility(
    inputs: ScoringInputs, n_respondents: np.ndarray, overall: dict[str, np.ndarray]
) -> tuple[np.ndarray, list[str]]:
    rules = inputs.config.eligibility
    n_candidates = len(inputs.codes)
    visits = inputs.visits
    channels_tested = np.zeros(n_candidates, dtype=int)
    if len(visits.ids):
        pairs: dict[tuple[int, str], int] = {}
        for candidate, channel in zip(visits.candidate, visits.channel, strict=True):
            pairs[(int(candidate), str(channel))] = pairs.get((int(candidate), str(channel)), 0) + 1
        for (candidate, _channel), count in pairs.items():
            if count >= rules.min_visits_per_tested_channel:
                channels_tested[candidate] += 1
    eligible = np.ones(n_candidates, dtype=bool)
    reasons: list[str] = []
    for i in range(n_candidates):
        few_respondents = n_respondents[i] < rules.min_respondents
        few_channels = channels_tested[i] < rules.min_channels_tested
        no_overall = (
            not few_respondents
            and not few_channels
            and (_num(overall["estimate"][i]) is None or _num(overall["se"][i]) is None)
        )
        reason = ineligibility_code(
            respondents=(int(n_respondents[i]), rules.min_respondents) if few_respondents else None,
            channels=(int(channels_tested[i]), rules.min_channels_tested) if few_channels else None,
            no_overall=no_overall,
        )
        eligible[i] = not reason
        reasons.append(reason)
    return eligible, reasons


def _category_seed(seed: int, position: int) -> int:
    return (seed + 1009 * position) % 2**32


def _rank_category(
    members: np.ndarray,
    estimate: np.ndarray,
    se: np.ndarray,
    *,
    level: float,
    seed: int,
    n_draws: int,
) -> dict[int, dict[str, Any]]:
    """Rank fields of the ranked members of one category (indices into candidates)."""
    p = len(members)
    if p == 0:
        return {}
    est, err = estimate[members], se[members]
    marginal = rank_sets(est, err, level=level, n_draws=n_draws, seed=seed)
    # τ-best sets from the simultaneous intervals, single step: valid (a stepdown only adds
    # power) and half the cost of a stepdown at national scale (see bench/results.py).
    joint = rank_sets(
        est, err, level=level, simultaneous=True, n_draws=n_draws, seed=seed, stepdown=False
    )
    best = p_best(est, err, n_draws=n_draws, seed=seed)
    out: dict[int, dict[str, Any]] = {}
    for j, candidate in enumerate(members):
        others = p - 1
        below = int(np.sum(est < est[j]))
        ties = int(np.sum(est == est[j])) - 1
        percentile = 100.0 if others == 0 else 100.0 * (below + 0.5 * ties) / others
        out[int(candidate)] = {
            "rank": int(marginal.rank[j]),
            "rank_low": int(marginal.lower[j]),
            "rank_high": int(marginal.upper[j]),
            "in_top1_set": bool(joint.lower[j] <= 1),
            "in_top3_set": bool(joint.lower[j] <= 3),
            "p_best": float(best[j]),
            "percentile": round(percentile, 6),
        }
    return out


def compute(
    inputs: ScoringInputs, *, seed: int, n_draws: int = N_DRAWS, progress: Progress | None = None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    """Score rows, rank rows and per-category counts from flattened inputs. Pure."""
    config = inputs.config
    level = config.confidence_level
    codes = inputs.codes
    n_candidates = len(codes)
    report = progress or (lambda _p, _m: None)
    rows: list[dict[str, Any]] = []

    report(55, "survey estimates")
    survey = _survey_estimates(inputs, level)
    survey_index = survey.get("__index")
    if survey_index is not None:
        rows += _rows_from(
            survey_index, codes=codes, level=ScoreLevel.component, key="survey", min_n_eff=MIN_N_EFF
        )
    for name, estimates in survey.items():
        if name.startswith("__theme:"):
            rows += _rows_from(
                estimates,
                codes=codes,
                level=ScoreLevel.theme,
                key=name.removeprefix("__theme:"),
                min_n_eff=MIN_N_EFF,
            )
        elif not name.startswith("__"):
            rows += _rows_from(
                estimates, codes=codes, level=ScoreLevel.item, key=name, min_n_eff=MIN_N_EFF
            )

    report(65, "mystery-shopper estimates")
    visits = inputs.visits
    categories = np.asarray(inputs.categories, dtype=object)
    mystery: Estimates | None = None
    if len(visits.ids) and not np.all(np.isnan(visits.score)):
        candidate = visits.candidate.astype(np.int64)
        channels = _fill_unreplicated(
            channel_scores(
                visits.score, candidate, visits.channel, categories[candidate], level=level
            ),
            categories,
            level,
        )
        borrowed = channels.n == 1
        rows += _rows_from(
            channels,
            codes=codes,
            level=ScoreLevel.channel,
            key=str,
            min_n_eff=0.0,
            extra_flags=lambda i: ["borrowed_variance"] if borrowed[i] else [],
        )
        tested = set(channels.domains.get_level_values(1))
        channel_weights: dict[Any, float] = {
            channel: float(config.channel_weights.get(channel, 0.0)) for channel in tested
        }
        if any(weight > 0 for weight in channel_weights.values()):
            mystery = combine_components(channels, channel_weights, level=level)
            rows += _rows_from(
                mystery, codes=codes, level=ScoreLevel.component, key="mystery", min_n_eff=0.0
            )
        themes = _grouped_visits(inputs, visits.themes, level)
        if themes is not None:
            rows += _rows_from(themes, codes=codes, level=ScoreLevel.theme, key=str, min_n_eff=0.0)
        items = _grouped_visits(inputs, visits.items, level)
        if items is not None:
            rows += _rows_from(items, codes=codes, level=ScoreLevel.item, key=str, min_n_eff=0.0)

    report(72, "overall scores")
    components: dict[str, Estimates] = {}
    if survey_index is not None:
        components["survey"] = survey_index
    if mystery is not None:
        components["mystery"] = mystery
    overall_values = {
        name: np.full(n_candidates, np.nan) for name in ("estimate", "se", "df", "n_eff")
    }
    n_respondents = np.zeros(n_candidates)
    if survey_index is not None:
        where = np.asarray(survey_index.domains, dtype=np.int64)
        n_respondents[where] = survey_index.n
    if components:
        component_weights = config.component_weights
        overall = combine_components(
            stack_components(components),
            {"survey": component_weights.survey, "mystery": component_weights.mystery},
            level=level,
        )
        survey_present = np.zeros(n_candidates, dtype=bool)
        mystery_present = np.zeros(n_candidates, dtype=bool)
        for name, present in (("survey", survey_present), ("mystery", mystery_present)):
            if name in components:
                component = components[name]
                indices = np.asarray(component.domains, dtype=np.int64)
                present[indices] = ~np.isnan(component.estimate)
        overall_index = np.asarray(overall.domains, dtype=np.int64)

        def missing_component(i: int) -> list[str]:
            candidate = overall_index[i]
            flags = []
            if component_weights.survey > 0 and not survey_present[candidate]:
                flags.append("no_survey")
            if component_weights.mystery > 0 and not mystery_present[candidate]:
                flags.append("no_mystery")
            return flags

        rows += _rows_from(
            overall,
            codes=codes,
            level=ScoreLevel.overall,
            key="",
            min_n_eff=MIN_N_EFF,
            extra_flags=missing_component,
        )
        for name in overall_values:
            overall_values[name][overall_index] = getattr(overall, name)

    report(78, "eligibility and rankings")
    eligible, reasons = _eligibility(inputs, n_respondents, overall_values)
    estimate, se = overall_values["estimate"], overall_values["se"]
    rank_rows: list[dict[str, Any]] = []
    per_category: dict[str, dict[str, int]] = {}
    order = [category.key for category in config.categories]
    order += sorted(set(inputs.categories) - set(order))
    for position, category in enumerate(order):
        members = np.flatnonzero(categories == category)
        if len(members) == 0:
            continue
        ranked = members[eligible[members]]
        report(78 + int(12 * position / len(order)), f"ranking {category}")
        ranks = _rank_category(
            ranked,
            estimate,
            se,
            level=level,
            seed=_category_seed(seed, position),
            n_draws=n_draws,
        )
        per_category[category] = {
            "candidates": len(members),
            "scored": int(np.sum(~np.isnan(estimate[members]))),
            "eligible": len(ranked),
        }
        for member in members:
            index = int(member)
            fields = ranks.get(index, {})
            rank_rows.append(
                {
                    "category": category,
                    "authority_code": codes[index],
                    "eligible": bool(eligible[index]),
                    "ineligible_reason": reasons[index][:200],
                    "estimate": _num(estimate[index]),
                    "se": _num(se[index]),
                    "rank": fields.get("rank"),
                    "rank_low": fields.get("rank_low"),
                    "rank_high": fields.get("rank_high"),
                    "in_top1_set": fields.get("in_top1_set", False),
                    "in_top3_set": fields.get("in_top3_set", False),
                    "p_best": fields.get("p_best"),
                    "percentile": fields.get("percentile"),
                }
            )
    report(90, "sorting rows")
    rows.sort(key=lambda row: (row["authority_code"], row["level"], row["key"]))
    rank_rows.sort(key=lambda row: (row["category"], row["authority_code"]))
    return rows, rank_rows, per_category


def _check_state(campaign: Campaign, *, preview: bool) -> None:
    state = CampaignState(campaign.state)
    if preview and state not in PREVIEW_STATES:
        raise Conflict(
            _("A preview is for a campaign still collecting; this one is %(state)s.")
            % {"state": state.value}
        )
    if not preview and state in DECIDED_STATES:
        raise Conflict(
            _(
                "The jury's decisions of this campaign rest on its current run (the campaign is "
                "%(state)s): it cannot be scored again."
            )
            % {"state": state.value}
        )
    if not preview and state not in FINAL_STATES:
        raise Conflict(
            _("Close the campaign before scoring it (it is %(state)s); a preview is possible.")
            % {"state": state.value}
        )


_SCORE_COLUMNS = (
    "authority_code",
    "level",
    "key",
    "estimate",
    "se",
    "df",
    "ci_low",
    "ci_high",
    "n",
    "n_eff",
    "flags",
)
_RANK_COLUMNS = (
    "category",
    "authority_code",
    "eligible",
    "ineligible_reason",
    "estimate",
    "se",
    "rank",
    "rank_low",
    "rank_high",
    "in_top1_set",
    "in_top3_set",
    "p_best",
    "percentile",
)


def _bulk_insert(
    session: Session, table: str, columns: tuple[str, ...], run_id: int, rows: list[dict]
) -> None:
    """One executemany of plain tuples (a national run writes ~150,000 score rows)."""
    if not rows:
        return
    postgres = session.get_bind().dialect.name == "postgresql"
    mark = "%s" if postgres else "?"
    names = ", ".join(("run_id", *(f'"{name}"' for name in columns)))
    marks = ", ".join([mark] * (len(columns) + 1))
    values = [
        (
            run_id,
            *(json.dumps(row[name]) if name == "flags" else row[name] for name in columns),
        )
        for row in rows
    ]
    session.connection().exec_driver_sql(f"INSERT INTO {table} ({names}) VALUES ({marks})", values)


def _insert_rows(session: Session, run_id: int, result: RunResult) -> None:
    _bulk_insert(session, "score_rows", _SCORE_COLUMNS, run_id, result.score_rows)
    _bulk_insert(session, "rank_rows", _RANK_COLUMNS, run_id, result.rank_rows)


def run_scoring(
    session: Session,
    *,
    campaign: Campaign,
    actor: User | None,
    preview: bool = False,
    progress: Progress | None = None,
    run: ScoringRun | None = None,
    n_draws: int = N_DRAWS,
) -> RunResult:
    """Score ``campaign``; a final run is stored (flushed, not committed), a preview is not.

    ``run``: a ``running`` row created beforehand (the web button's background job shows its
    progress); without it a new row is created. The previous current final run is
    superseded, and a closed campaign moves to scored. Refused (409) when the campaign's
    state does not allow it.
    """
    _check_state(campaign, preview=preview)
    report = progress or (lambda _p, _m: None)
    started = time.perf_counter()
    inputs = gather_inputs(session, campaign=campaign, progress=report)
    read_seconds = time.perf_counter() - started
    config = inputs.config
    seed = config.seed
    params = {
        "channel_weights": {str(k): v for k, v in sorted(config.channel_weights.items())},
        "component_weights": config.component_weights.model_dump(),
        "eligibility": config.eligibility.model_dump(),
        "confidence_level": config.confidence_level,
        "rank_draws": n_draws,
        "rank_method": "marginal rank intervals with stepdown (Mogstad et al. 2024); "
        "top-1 and top-3 sets from single-step simultaneous intervals; P(best) descriptive",
        "design": "Hájek mean, design weights 1, Taylor linearisation, t on domain df",
        "min_n_eff": MIN_N_EFF,
        "max_ci_width": MAX_CI_WIDTH,
        "ci_bounds": "truncated to the 0–100 scale; precision flags use the untruncated width",
        "instruments": inputs.instruments,
    }
    compute_started = time.perf_counter()
    score_rows, rank_rows, per_category = compute(
        inputs, seed=seed, n_draws=n_draws, progress=report
    )
    compute_seconds = time.perf_counter() - compute_started
    summary = {
        **inputs.counts,
        "categories": per_category,
        "score_rows": len(score_rows),
        "rank_rows": len(rank_rows),
    }
    result = RunResult(
        kind=RunKind.preview if preview else RunKind.final,
        inputs_sha256=inputs.inputs_sha256,
        seed=seed,
        params=params,
        summary=summary,
        score_rows=score_rows,
        rank_rows=rank_rows,
        timings={"read_seconds": read_seconds, "compute_seconds": compute_seconds},
    )
    if preview:
        result.timings["write_seconds"] = 0.0
        report(100, "preview ready")
        return result

    report(92, "writing the run")
    write_started = time.perf_counter()
    if run is None:
        run = ScoringRun(
            campaign_id=campaign.id or 0,
            seed=seed,
            code_version=code_version(),
            created_by=actor.id if actor else None,
        )
    run.kind = RunKind.final
    run.params = params
    run.seed = seed
    run.inputs_sha256 = inputs.inputs_sha256
    run.code_version = code_version()
    run.summary = summary
    session.add(run)
    session.flush()
    assert run.id is not None
    _insert_rows(session, run.id, result)
    previous = repository.current_runs(session, campaign_id=campaign.id or 0, excluding=run.id)
    for old in previous:
        old.superseded_by = run.id
        session.add(old)
    run.status = RunStatus.complete
    run.progress = 100
    run.progress_message = "complete"
    run.completed_at = utcnow()
    session.add(run)
    if CampaignState(campaign.state) == CampaignState.closed:
        from app.campaigns.service import transition

        transition(
            session,
            campaign=campaign,
            to_state=CampaignState.scored,
            actor=actor,
            comment=f"scoring run {run.id}",
        )
    record_audit(
        session,
        actor=actor,
        action="results.score",
        object_type="scoring_run",
        object_id=run.id,
        before={"superseded": [old.id for old in previous]} if previous else None,
        after={
            "campaign": campaign.id,
            "inputs_sha256": inputs.inputs_sha256,
            "seed": seed,
            "code_version": run.code_version,
            "score_rows": len(score_rows),
            "rank_rows": len(rank_rows),
        },
    )
    session.flush()
    result.timings["write_seconds"] = time.perf_counter() - write_started
    result.run = run
    report(100, "complete")
    return result


# ------------------------------------------------------------------ the web button's job

STALE_AFTER_SECONDS = 3600
_JOBS: dict[int, threading.Thread] = {}


def start_run(session: Session, *, campaign: Campaign, actor: User | None) -> ScoringRun:
    """Create the ``running`` row a background job will complete (refused when one runs)."""
    _check_state(campaign, preview=False)
    running = repository.running_run(session, campaign_id=campaign.id or 0)
    if running is not None:
        age = (utcnow() - running.created_at).total_seconds()
        job = _JOBS.get(running.id or 0)
        if (job is not None and job.is_alive()) or age < STALE_AFTER_SECONDS:
            raise Conflict(_("A scoring run of this campaign is already in progress."))
        running.status = RunStatus.failed
        running.error = "interrupted (no progress for an hour)"
        session.add(running)
    config = parse_config(campaign.config)
    run = ScoringRun(
        campaign_id=campaign.id or 0,
        kind=RunKind.final,
        status=RunStatus.running,
        progress=1,
        progress_message="queued",
        seed=config.seed,
        code_version=code_version(),
        created_by=actor.id if actor else None,
    )
    session.add(run)
    session.flush()
    return run


def _set_progress(engine: Engine, run_id: int, percent: int, message: str) -> None:
    table = ScoringRun.__table__  # type: ignore[attr-defined]
    with engine.begin() as connection:
        connection.execute(
            sa.update(table)
            .where(table.c.id == run_id, table.c.status == RunStatus.running)
            .values(progress=max(1, min(99, percent)), progress_message=message[:200])
        )


def run_job(engine: Engine, run_id: int) -> None:
    """Complete the running row ``run_id`` (its own session; progress in short transactions).

    Progress stops being written once the run's rows are being written: the job's own
    transaction then holds the run row (and SQLite's write lock).
    """
    writing = False

    def progress(percent: int, message: str) -> None:
        nonlocal writing
        if writing:
            return
        writing = percent >= 92
        _set_progress(engine, run_id, percent, message)

    try:
        with Session(engine, expire_on_commit=False) as session:
            run = session.get(ScoringRun, run_id)
            assert run is not None
            campaign = session.get(Campaign, run.campaign_id)
            actor = session.get(User, run.created_by) if run.created_by else None
            assert campaign is not None
            run_scoring(session, campaign=campaign, actor=actor, progress=progress, run=run)
            session.commit()
    except Exception as exc:  # the job reports any failure on the run itself
        table = ScoringRun.__table__  # type: ignore[attr-defined]
        message = str(exc) or exc.__class__.__name__
        with engine.begin() as connection:
            connection.execute(
                sa.update(table)
                .where(table.c.id == run_id)
                .values(status=RunStatus.failed, error=message[:2000], completed_at=utcnow())
            )


def launch(engine: Engine, run_id: int) -> threading.Thread:
    """Run the job in a background thread (after the request that created the row commits)."""
    thread = threading.Thread(target=run_job, args=(engine, run_id), daemon=True)
    _JOBS[run_id] = thread
    thread.start()
    return thread


def job(run_id: int) -> threading.Thread | None:
    return _JOBS.get(run_id)
