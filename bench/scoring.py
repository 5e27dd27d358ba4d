"""National-scale benchmark of ``scoring``; prints JSON figures.

A synthetic campaign: 2,000 authorities in 8 categories, 1,000,000 respondents × 12 items
with design weights (each authority its own stratum, each respondent its own PSU), 24,000
mystery visits over 6 channels. It times every authority's item, survey, channel,
component and overall estimate (SE, interval), the marginal rank sets per category
(10,000 draws, stepdown), and a straightforward per-authority loop (pandas groupby calling
a per-group function once per authority and estimate, as R's svyby does) computing the
same 13 survey estimates, then prints the ratio. A stricter loop computing all 13
estimates in one call per authority is timed too.

Run: ``uv run python bench/scoring.py`` (not part of the test suite).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time

import numpy as np
import pandas as pd

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from scoring import (
    Design,
    channel_scores,
    combine_components,
    estimate_means,
    rank_sets,
    stack_components,
)

N_AUTHORITIES = 2_000
N_CATEGORIES = 8
N_RESPONDENTS = 1_000_000
N_ITEMS = 12
N_CHANNELS = 6
N_VISITS = 24_000
SEED = 2024
ITEMS = [f"item_{i:02d}" for i in range(N_ITEMS)]


def build_campaign(seed: int = SEED) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    category = np.arange(N_AUTHORITIES) % N_CATEGORIES
    # Uneven authority sizes (a few large towns, many small ones), at least 20 each.
    share = rng.lognormal(0.0, 1.0, N_AUTHORITIES)
    sizes = 20 + rng.multinomial(N_RESPONDENTS - 20 * N_AUTHORITIES, share / share.sum())
    authority = np.repeat(np.arange(N_AUTHORITIES), sizes)
    level = rng.normal(65, 8, N_AUTHORITIES)
    columns: dict[str, np.ndarray] = {
        "authority": authority,
        "w": rng.uniform(0.5, 2.0, N_RESPONDENTS),
    }
    for item in ITEMS:
        score = np.clip(level[authority] + rng.normal(0, 20, N_RESPONDENTS), 0, 100)
        score[rng.random(N_RESPONDENTS) < 0.05] = np.nan  # "don't know" → missing
        columns[item] = score
    respondents = pd.DataFrame(columns)
    respondents["index"] = respondents[ITEMS].mean(axis=1)  # mean of available items
    # Mystery visits: two per authority and channel on average, some with a single visit.
    visit_authority = rng.integers(0, N_AUTHORITIES, N_VISITS)
    visit_channel = rng.integers(0, N_CHANNELS, N_VISITS)
    visits = pd.DataFrame(
        {
            "authority": visit_authority,
            "channel": visit_channel,
            "category": category[visit_authority],
            "score": np.clip(level[visit_authority] + rng.normal(0, 15, N_VISITS), 0, 100),
        }
    )
    return respondents, visits, category


def score_everything(respondents: pd.DataFrame, visits: pd.DataFrame) -> dict[str, object]:
    design = Design(weights="w", strata="authority")
    survey = estimate_means(respondents, [*ITEMS, "index"], design, by="authority", df="domain")
    channels = channel_scores(
        visits["score"], visits["authority"], visits["channel"], visits["category"]
    )
    mystery = combine_components(channels, dict.fromkeys(range(N_CHANNELS), 1 / N_CHANNELS))
    overall = combine_components(
        stack_components({"survey": survey["index"], "mystery": mystery}),
        {"survey": 0.6, "mystery": 0.4},
    )
    return {"survey": survey, "channels": channels, "mystery": mystery, "overall": overall}


def _authority_estimate(group: pd.DataFrame, column: str) -> pd.Series:
    """Weighted mean and linearised SE of one authority (its own stratum, SRS of people)."""
    y = group[column].to_numpy()
    keep = ~np.isnan(y)
    w_all = group["w"].to_numpy()
    w, v = w_all[keep], y[keep]
    total = w.sum()
    mean = np.sum(w * v) / total
    z = np.zeros(len(y))
    z[keep] = w * (v - mean) / total
    k = len(y)
    return pd.Series({"mean": mean, "se": np.sqrt(k / (k - 1) * np.sum((z - z.mean()) ** 2))})


def per_authority_loop(respondents: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The straightforward way, as svyby does: one function call per authority and estimate."""
    groups = respondents.groupby("authority")
    return {
        column: groups[["w", column]].apply(_authority_estimate, column=column)
        for column in [*ITEMS, "index"]
    }


def per_authority_loop_all_items(respondents: pd.DataFrame) -> pd.DataFrame:
    """A stricter baseline: one call per authority computing all 13 estimates inline."""

    def one_authority(group: pd.DataFrame) -> pd.Series:
        out = {}
        w_all = group["w"].to_numpy()
        for column in [*ITEMS, "index"]:
            y = group[column].to_numpy()
            keep = ~np.isnan(y)
            w, v = w_all[keep], y[keep]
            total = w.sum()
            mean = np.sum(w * v) / total
            z = np.zeros(len(y))
            z[keep] = w * (v - mean) / total
            k = len(y)
            out[f"{column}_mean"] = mean
            out[f"{column}_se"] = np.sqrt(k / (k - 1) * np.sum((z - z.mean()) ** 2))
        return pd.Series(out)

    return respondents.groupby("authority")[["w", *ITEMS, "index"]].apply(one_authority)


def main() -> None:
    respondents, visits, category = build_campaign()

    # Best of 3 for the fast paths (the machine is shared; the first run pays page faults).
    estimates_seconds = np.inf
    for _ in range(3):
        start = time.perf_counter()
        results = score_everything(respondents, visits)
        estimates_seconds = min(estimates_seconds, time.perf_counter() - start)

    overall = results["overall"]
    start = time.perf_counter()
    widths = []
    unstable = 0
    for cat in range(N_CATEGORIES):
        members = np.flatnonzero(category[np.asarray(overall.domains)] == cat)
        sets = rank_sets(overall.estimate[members], overall.se[members], n_draws=10_000, seed=cat)
        widths.append(float(np.mean(sets.upper - sets.lower + 1)))
        unstable += int(sets.unstable.sum())
    rank_seconds = time.perf_counter() - start
    start = time.perf_counter()
    for cat in range(N_CATEGORIES):
        members = np.flatnonzero(category[np.asarray(overall.domains)] == cat)
        rank_sets(
            overall.estimate[members], overall.se[members], n_draws=10_000, seed=cat,
            stepdown=False,
        )  # fmt: skip
    rank_single_step_seconds = time.perf_counter() - start

    columns = [*ITEMS, "index"]
    survey_seconds = np.inf
    for _ in range(3):
        start = time.perf_counter()
        survey_only = estimate_means(
            respondents, columns, Design(weights="w", strata="authority"), by="authority"
        )
        survey_seconds = min(survey_seconds, time.perf_counter() - start)

    start = time.perf_counter()
    loop = per_authority_loop(respondents)
    loop_seconds = time.perf_counter() - start
    difference = max(
        float(np.max(np.abs(loop[column]["se"].to_numpy() - survey_only[column].se)))
        for column in columns
    )
    start = time.perf_counter()
    per_authority_loop_all_items(respondents)
    loop_all_seconds = time.perf_counter() - start

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    load = os.getloadavg()[0]
    print(
        json.dumps(
            {
                "authorities": N_AUTHORITIES,
                "categories": N_CATEGORIES,
                "respondents": N_RESPONDENTS,
                "items": N_ITEMS,
                "visits": N_VISITS,
                "channels": N_CHANNELS,
                "all_estimates_seconds": round(estimates_seconds, 3),
                "rank_sets_seconds": round(rank_seconds, 3),
                "rank_sets_single_step_seconds": round(rank_single_step_seconds, 3),
                "rank_sets_draws": 10_000,
                "mean_rank_interval_length": round(float(np.mean(widths)), 1),
                "units_flagged_unstable_at_10000_draws": unstable,
                "survey_estimates_seconds": round(survey_seconds, 3),
                "per_authority_loop_seconds": round(loop_seconds, 3),
                "speedup_vs_loop": round(loop_seconds / survey_seconds, 1),
                "per_authority_loop_all_items_in_one_call_seconds": round(loop_all_seconds, 3),
                "speedup_vs_all_items_loop": round(loop_all_seconds / survey_seconds, 1),
                "max_abs_se_difference_vs_loop": difference,
                "peak_memory_mb": round(peak_mb, 1),
                "cpu_count": os.cpu_count(),
                "load_average_1min": round(load, 2),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
