"""Rao–Wu bootstrap cross-checked against the linearised SEs (R values in the reference file)."""

from __future__ import annotations

import numpy as np
from numpy.testing import assert_allclose, assert_array_equal

from scoring import estimate_mean, estimate_mean_replicates, poststratify, rao_wu_bootstrap

REPLICATES = 2_000


def test_bootstrap_se_matches_linearisation_stratified(apistrat, dstrat):
    weights = rao_wu_bootstrap(apistrat, dstrat, n_replicates=REPLICATES, seed=1)
    assert weights.shape == (len(apistrat), REPLICATES)
    result = estimate_mean_replicates(apistrat, "api00", dstrat, weights)
    linear = estimate_mean(apistrat, "api00", dstrat)
    # MC relative SD of a bootstrap SE with B = 2,000 is about 1/sqrt(2B) = 1.6 %.
    assert_allclose(result.se, linear.se, rtol=0.06)
    assert_allclose(result.estimate, linear.estimate)
    by = estimate_mean_replicates(apistrat, "api00", dstrat, weights, by="stype")
    assert_allclose(by.se, estimate_mean(apistrat, "api00", dstrat, by="stype").se, rtol=0.1)


def test_bootstrap_recalibrates_poststratified_cluster(apiclus1, dclus1):
    totals = {"E": 4421, "H": 755, "M": 1018}
    design = poststratify(apiclus1, dclus1, "stype", totals)
    weights = rao_wu_bootstrap(apiclus1, design, n_replicates=REPLICATES, seed=2)
    # Every replicate reproduces the population counts.
    stype = apiclus1["stype"].to_numpy()
    assert_allclose(weights[stype == "H"].sum(axis=0), 755, rtol=1e-8)
    result = estimate_mean_replicates(apiclus1, "api00", design, weights)
    # R: svymean(~api00, postStratify(dclus1, ~stype, pop.types)) SE 23.921 (15 PSUs).
    assert_allclose(result.se, [23.921], rtol=0.1)


def test_bootstrap_is_seeded(apistrat, dstrat):
    a = rao_wu_bootstrap(apistrat, dstrat, n_replicates=50, seed=7)
    b = rao_wu_bootstrap(apistrat, dstrat, n_replicates=50, seed=7)
    c = rao_wu_bootstrap(apistrat, dstrat, n_replicates=50, seed=8)
    assert_array_equal(a, b)
    assert not np.array_equal(a, c)
