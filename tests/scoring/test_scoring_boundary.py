"""``scoring`` imports only numpy, scipy, pandas, statsmodels and the standard library."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import scoring

ALLOWED = {"numpy", "scipy", "pandas", "statsmodels", "scoring", "__future__"}


def test_scoring_imports_stay_inside_the_boundary():
    offenders = []
    for path in Path(scoring.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                root = name.split(".")[0]
                if root not in ALLOWED and root not in sys.stdlib_module_names:
                    offenders.append(f"{path.name}: {name}")
    assert not offenders, offenders


def test_public_api_names():
    expected = {
        "Design", "rake", "poststratify", "estimate_mean", "estimate_total",
        "estimate_proportion", "estimate_composite", "rank_sets", "top_set",
        "kww_rank_region", "funnel_limits", "fay_herriot", "Estimates", "RankSets",
        "FunnelLimits", "FayHerriot", "p_best", "precision_flags", "yoy_difference",
        "rao_wu_bootstrap", "channel_scores", "combine_components",
    }  # fmt: skip
    assert expected <= set(scoring.__all__)
    for name in scoring.__all__:
        assert getattr(scoring, name).__doc__
