"""Values published by R's survey package (Lumley) on the California API samples.

Sources: survey's tests/testoutput/api.Rout.saved and documented examples, as listed in
shared/data/README.md. Tolerance: 1e-4 relative on the digits R prints.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.testing import assert_allclose
from statsmodels.stats.proportion import proportion_confint

from scoring import (
    Design,
    estimate_composite,
    estimate_mean,
    estimate_proportion,
    estimate_total,
    poststratify,
)

RTOL = 1e-4


def test_svymean_stratified(apistrat, dstrat):
    # R: svymean(~api00, dstrat) -> mean 662.29 (662.2874), SE 9.4089
    result = estimate_mean(apistrat, "api00", dstrat)
    assert_allclose(result.estimate, [662.2874], rtol=RTOL)
    assert_allclose(result.se, [9.4089], rtol=RTOL)


def test_svymean_stratified_intervals(apistrat, dstrat):
    # R: degf(dstrat) = 197; confint(svymean(~api00, dstrat), df = degf(dstrat))
    #    -> [643.7322, 680.8425]; confint(svymean(~api00, dstrat)) (normal) -> [643.8462, 680.7285]
    result = estimate_mean(apistrat, "api00", dstrat)
    assert result.df[0] == 197
    assert_allclose([result.ci_low[0], result.ci_high[0]], [643.7322, 680.8425], rtol=RTOL)
    z = 1.959963984540054
    normal = [result.estimate[0] - z * result.se[0], result.estimate[0] + z * result.se[0]]
    assert_allclose(normal, [643.8462, 680.7285], rtol=RTOL)


def test_svytotal_stratified(apistrat, dstrat):
    # R: svytotal(~enroll, dstrat, na.rm=TRUE) -> total 3687178, SE 114642
    result = estimate_total(apistrat, "enroll", dstrat)
    assert_allclose(result.estimate, [3_687_178], rtol=RTOL)
    assert_allclose(result.se, [114_642], rtol=RTOL)


def test_svymean_cluster(apiclus1, dclus1):
    # R: svymean(~api00, dclus1) -> mean 644.17 (644.1694), SE 23.542; degf(dclus1) = 14
    result = estimate_mean(apiclus1, "api00", dclus1)
    assert_allclose(result.estimate, [644.1694], rtol=RTOL)
    assert_allclose(result.se, [23.542], rtol=RTOL)
    assert result.df[0] == 14


def test_poststratified_cluster(apiclus1, dclus1):
    # R: pop.types <- data.frame(stype=c("E","H","M"), Freq=c(4421,755,1018))
    #    svymean(~api00, postStratify(dclus1, ~stype, pop.types)) -> 642.31, SE 23.921
    totals = {"E": 4421, "H": 755, "M": 1018}
    design = poststratify(apiclus1, dclus1, "stype", totals)
    result = estimate_mean(apiclus1, "api00", design)
    assert_allclose(result.estimate, [642.31], rtol=RTOL)
    assert_allclose(result.se, [23.921], rtol=RTOL)
    weighted = pd.Series(design.calibrated_weights).groupby(apiclus1["stype"]).sum()
    assert_allclose(weighted.to_dict()["E"], 4421, rtol=1e-12)


def test_svycontrast_composite(apistrat, dstrat):
    # R: svycontrast(svymean(~api00+api99, dstrat), c(api00=0.6, api99=0.4)) -> 649.13, SE 9.5822
    result = estimate_composite(apistrat, {"api00": 0.6, "api99": 0.4}, dstrat)
    assert_allclose(result.estimate, [649.13], rtol=RTOL)
    assert_allclose(result.se, [9.5822], rtol=RTOL)


def _four_of_twenty() -> pd.DataFrame:
    return pd.DataFrame({"y": [1] * 4 + [0] * 16})


def test_wilson_plain_proportion():
    # R: binom::binom.confint(4, 20, method="wilson") -> [0.0806577, 0.4160174]
    # (also statsmodels' own test values)
    result = estimate_proportion(_four_of_twenty(), "y", Design(), method="wilson")
    assert_allclose([result.ci_low[0], result.ci_high[0]], [0.0806577, 0.4160174], rtol=RTOL)
    statsmodels = proportion_confint(4, 20, method="wilson")
    assert_allclose([result.ci_low[0], result.ci_high[0]], statsmodels, rtol=1e-10)


def test_korn_graubard_reduces_to_clopper_pearson():
    # R: binom::binom.confint(4, 20, method="exact") -> [0.0573340, 0.4366140]
    result = estimate_proportion(_four_of_twenty(), "y", Design(), method="korn_graubard")
    assert_allclose([result.ci_low[0], result.ci_high[0]], [0.0573340, 0.4366140], rtol=RTOL)


def test_beta_method_follows_r_svyciprop():
    # R's svyciprop(method="beta") code: n.eff = p(1-p)/vcov * (qt(.025, n-1)/qt(.025, df))^2,
    # ci = qbeta(.025, n.eff p, n.eff (1-p) + 1), qbeta(.975, n.eff p + 1, n.eff (1-p)).
    # Under SRS of 4/20: vcov = p(1-p)/19, so n.eff = 19.
    from scipy import stats

    result = estimate_proportion(_four_of_twenty(), "y", Design(), method="beta")
    expected = [stats.beta.ppf(0.025, 3.8, 16.2), stats.beta.ppf(0.975, 4.8, 15.2)]
    assert_allclose([result.ci_low[0], result.ci_high[0]], expected, rtol=1e-10)


def test_logit_interval_matches_hand_computation():
    # R: svyciprop(~y, svydesign(id=~1, data=d), method="logit") is
    # expit(logit(p) +- qt(.975, 19) * SE(p) / (p (1 - p))), SE(p)^2 = p(1-p)/(n-1).
    result = estimate_proportion(_four_of_twenty(), "y", Design(), method="logit")
    p, n = 0.2, 20
    se_logit = np.sqrt(p * (1 - p) / (n - 1)) / (p * (1 - p))
    t = 2.093024054408263  # qt(0.975, 19)
    expected = 1 / (1 + np.exp(-(np.log(p / (1 - p)) + np.array([-t, t]) * se_logit)))
    assert_allclose([result.ci_low[0], result.ci_high[0]], expected, rtol=1e-9)


def test_wald_and_rejects_non_binary():
    result = estimate_proportion(_four_of_twenty(), "y", Design(), method="wald")
    se = np.sqrt(0.2 * 0.8 / 19)
    assert_allclose(result.se, [se], rtol=1e-12)
    bad = pd.DataFrame({"y": [0.0, 0.5, 1.0]})
    try:
        estimate_proportion(bad, "y", Design())
    except ValueError:
        pass
    else:  # pragma: no cover
        raise AssertionError("a non-binary proportion must be refused")
