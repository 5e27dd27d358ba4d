"""Domain (``by=``) estimates and calibration checked against a plain dense implementation.

The reference below follows R's ``svyby`` / ``svyrecvar`` literally: an n × domains matrix
of influence values (zero outside the domain), calibration residuals from an explicit
weighted least-squares fit, then PSU totals and stratum-centred sums of squares. It is
quadratic in memory, so only small data go through it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from scipy import sparse

from scoring import Design, estimate_mean, estimate_total, poststratify, rake
from scoring.design import block_pinv


def dense_reference(
    data: pd.DataFrame,
    y: str,
    by: str | None,
    *,
    weights: str | None,
    strata: str | None,
    psu: str | None,
    fpc: str | None,
    calibrated: np.ndarray | None = None,
    cells: list[str] = (),
) -> tuple[np.ndarray, np.ndarray]:
    n = len(data)
    base = np.ones(n) if weights is None else data[weights].to_numpy(float)
    w = base if calibrated is None else calibrated
    values = data[y].to_numpy(float)
    labels = np.zeros(n) if by is None else data[by].to_numpy()
    domains = np.unique(labels)
    u = np.zeros((n, len(domains)))
    means = []
    for d, label in enumerate(domains):
        member = (labels == label) & ~np.isnan(values)
        total_w = w[member].sum()
        mean = (w[member] * values[member]).sum() / total_w
        means.append(mean)
        u[member, d] = (values[member] - mean) / total_w
    if cells:
        x = np.hstack([pd.get_dummies(data[c]).to_numpy(float) for c in cells])
        root = np.sqrt(base)[:, None]
        beta, *_ = np.linalg.lstsq(x * root, u * root, rcond=None)
        u = u - x @ beta
    z = w[:, None] * u
    stratum = np.zeros(n) if strata is None else data[strata].to_numpy()
    unit = np.arange(n) if psu is None else data[psu].to_numpy()
    variance = np.zeros(len(domains))
    for h in np.unique(stratum):
        in_h = stratum == h
        psus = np.unique(unit[in_h])
        totals = np.array([z[in_h & (unit == c)].sum(axis=0) for c in psus])
        n_h = len(psus)
        f = 0.0
        if fpc is not None:
            value = data[fpc].to_numpy(float)[in_h][0]
            f = value if value <= 1 else n_h / value
        variance += (1 - f) * n_h / (n_h - 1) * ((totals - totals.mean(axis=0)) ** 2).sum(axis=0)
    return np.array(means), np.sqrt(variance)


def test_domains_stratified_match_dense(apistrat, dstrat):
    result = estimate_mean(apistrat, "api00", dstrat, by="cname")
    mean, se = dense_reference(apistrat, "api00", "cname", weights="pw", strata="stype",
                               psu=None, fpc="fpc")  # fmt: skip
    assert_allclose(result.estimate, mean, rtol=1e-12)
    assert_allclose(result.se, se, rtol=1e-10)
    assert np.all(result.df == 197)  # svyby keeps degf(design)


def test_domains_cluster_match_dense(apiclus1, dclus1):
    result = estimate_mean(apiclus1, "api00", dclus1, by="stype")
    mean, se = dense_reference(apiclus1, "api00", "stype", weights="pw", strata=None,
                               psu="dnum", fpc="fpc")  # fmt: skip
    assert_allclose(result.estimate, mean, rtol=1e-12)
    assert_allclose(result.se, se, rtol=1e-10)


def test_domains_after_poststratification_match_dense(apiclus1, dclus1):
    totals = {"E": 4421, "H": 755, "M": 1018}
    design = poststratify(apiclus1, dclus1, "stype", totals)
    result = estimate_mean(apiclus1, "api00", design, by="awards")
    mean, se = dense_reference(apiclus1, "api00", "awards", weights="pw", strata=None,
                               psu="dnum", fpc="fpc", calibrated=design.calibrated_weights,
                               cells=["stype"])  # fmt: skip
    assert_allclose(result.estimate, mean, rtol=1e-12)
    assert_allclose(result.se, se, rtol=1e-9)


@pytest.fixture(scope="module")
def raked(apistrat, dstrat):
    margins = {"stype": {"E": 4421, "H": 755, "M": 1018}, "sch.wide": {"Yes": 5000, "No": 1194}}
    return rake(apistrat, dstrat, margins), margins


def test_raked_weights_reproduce_margins(apistrat, raked):
    design, margins = raked
    for column, totals in margins.items():
        sums = pd.Series(design.calibrated_weights).groupby(apistrat[column].to_numpy()).sum()
        assert_allclose(sums[list(totals)], list(totals.values()), rtol=1e-9)


def test_raked_domains_match_dense_greg(apistrat, raked):
    design, _ = raked
    for by in (None, "awards"):
        result = estimate_mean(apistrat, "api00", design, by=by)
        mean, se = dense_reference(apistrat, "api00", by, weights="pw", strata="stype",
                                   psu=None, fpc="fpc", calibrated=design.calibrated_weights,
                                   cells=["stype", "sch.wide"])  # fmt: skip
        assert_allclose(result.estimate, mean, rtol=1e-12)
        assert_allclose(result.se, se, rtol=1e-8)


def test_rake_on_one_margin_equals_poststratify(apiclus1, dclus1):
    totals = {"E": 4421, "H": 755, "M": 1018}
    post = poststratify(apiclus1, dclus1, "stype", totals)
    raked = rake(apiclus1, dclus1, {"stype": totals})
    assert_allclose(raked.calibrated_weights, post.calibrated_weights, rtol=1e-12)
    a = estimate_mean(apiclus1, "api00", post, by="awards")
    b = estimate_mean(apiclus1, "api00", raked, by="awards")
    assert_allclose(a.estimate, b.estimate, rtol=1e-12)
    assert_allclose(a.se, b.se, rtol=1e-12)


def test_calibration_errors(apiclus1, dclus1):
    with pytest.raises(ValueError, match="same total"):
        rake(apiclus1, dclus1, {"stype": {"E": 1, "H": 1, "M": 1}, "awards": {"Yes": 5, "No": 5}})
    with pytest.raises(ValueError, match="without a population total"):
        poststratify(apiclus1, dclus1, "stype", {"E": 4421, "H": 755})
    design = poststratify(apiclus1, dclus1, "stype", {"E": 4421, "H": 755, "M": 1018})
    with pytest.raises(ValueError, match="already calibrated"):
        rake(design=design, data=apiclus1, margins={"stype": {"E": 1, "H": 1, "M": 1}})


def _authorities(n_auth: int, seed: int, low: int = 3, high: int = 12) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    sizes = rng.integers(low, high, n_auth)
    authority = np.repeat(np.arange(n_auth), sizes)
    n = len(authority)
    return pd.DataFrame(
        {
            "authority": authority,
            "w": rng.uniform(0.5, 3.0, n),
            "y": rng.normal(60, 15, n) + authority % 7,
            "age": rng.integers(0, 3, n),
            "sex": rng.integers(0, 2, n),
        }
    )


def test_grouped_path_equals_general_path_and_textbook():
    data = _authorities(40, seed=11)
    design = Design(weights="w", strata="authority")
    grouped = estimate_mean(data, "y", design, by="authority")
    # General path: the same design, one domain at a time through a masked column.
    for index, authority in enumerate(grouped.domains[:8]):
        masked = data.assign(y=data["y"].where(data["authority"] == authority))
        single = estimate_mean(masked, "y", design)
        assert_allclose(single.estimate, grouped.estimate[index], rtol=1e-12)
        assert_allclose(single.se, grouped.se[index], rtol=1e-10)

    # Textbook: with each authority its own stratum, Var = n/(n-1) sum (z - zbar)^2.
    def textbook(group: pd.DataFrame) -> pd.Series:
        w, y = group["w"].to_numpy(), group["y"].to_numpy()
        mean = np.sum(w * y) / np.sum(w)
        z = w * (y - mean) / np.sum(w)
        k = len(z)
        return pd.Series({"mean": mean, "se": np.sqrt(k / (k - 1) * np.sum((z - z.mean()) ** 2))})

    expected = data.groupby("authority")[["w", "y"]].apply(textbook)
    assert_allclose(grouped.estimate, expected["mean"], rtol=1e-12)
    assert_allclose(grouped.se, expected["se"], rtol=1e-10)
    by_domain = estimate_mean(data, "y", design, by="authority", df="domain")
    assert_allclose(by_domain.df, data.groupby("authority").size() - 1)


def test_single_stratum_domains_match_dense():
    data = _authorities(30, seed=5)
    data.loc[::7, "y"] = np.nan
    result = estimate_mean(data, "y", Design(weights="w"), by="authority")
    mean, se = dense_reference(data, "y", "authority", weights="w", strata=None, psu=None,
                               fpc=None)  # fmt: skip
    assert_allclose(result.estimate, mean, rtol=1e-12)
    assert_allclose(result.se, se, rtol=1e-10)
    total = estimate_total(data, "y", Design(weights="w"), by="authority")
    assert_allclose(total.estimate, data.groupby("authority").apply(
        lambda g: np.nansum(g["w"] * g["y"]), include_groups=False), rtol=1e-12)  # fmt: skip


def test_per_authority_raking_matches_dense():
    data = _authorities(25, seed=3, low=20, high=40)
    # Cells nested within authorities: each authority is raked to its own margins.
    data["auth_age"] = data["authority"] * 3 + data["age"]
    data["auth_sex"] = data["authority"] * 2 + data["sex"]
    size = data.groupby("authority").size()
    margins = {
        "auth_age": {a * 3 + g: 100.0 * size[a] * s for a in size.index for g, s in
                     enumerate((0.3, 0.4, 0.3)) if (a * 3 + g) in set(data["auth_age"])},
        "auth_sex": {a * 2 + g: 100.0 * size[a] * s for a in size.index for g, s in
                     enumerate((0.5, 0.5)) if (a * 2 + g) in set(data["auth_sex"])},
    }  # fmt: skip
    # Keep only authorities where every cell is sampled (per-authority totals must agree).
    full = [a for a in size.index if all(a * 3 + g in margins["auth_age"] for g in range(3))
            and all(a * 2 + g in margins["auth_sex"] for g in range(2))]  # fmt: skip
    data = data[data["authority"].isin(full)].reset_index(drop=True)
    margins = {name: {k: v for k, v in totals.items() if k // (3 if name == "auth_age" else 2)
                      in full} for name, totals in margins.items()}  # fmt: skip
    design = rake(data, Design(weights="w", strata="authority"), margins)
    result = estimate_mean(data, "y", design, by="authority")
    mean, se = dense_reference(data, "y", "authority", weights="w", strata="authority",
                               psu=None, fpc=None, calibrated=design.calibrated_weights,
                               cells=["auth_age", "auth_sex"])  # fmt: skip
    assert_allclose(result.estimate, mean, rtol=1e-10)
    assert_allclose(result.se, se, rtol=1e-7)


def test_block_pinv_equals_dense_pinv():
    rng = np.random.default_rng(2)
    blocks = []
    for size in (1, 3, 3, 5, 2, 5):
        a = rng.normal(size=(size, max(1, size - 1)))
        blocks.append(a @ a.T)  # singular when size > 1
    matrix = sparse.block_diag(blocks).tocsr()
    assert_allclose(block_pinv(matrix).toarray(), np.linalg.pinv(matrix.toarray(), rcond=1e-10),
                    atol=1e-10)  # fmt: skip


@pytest.mark.parametrize("strata", [None, "authority"])
def test_fast_grouped_sums_equal_general_path(strata):
    from scoring.estimates import _estimate_means

    data = _authorities(60, seed=17)
    data["y2"] = data["y"] ** 0.5
    data.loc[::5, "y"] = np.nan
    data["f"] = 0.1
    design = Design(weights="w", strata=strata, fpc="f")
    for df in ("design", "domain"):
        fast = _estimate_means(data, ["y", "y2"], design, by="authority", level=0.9, df=df,
                               grouped_sums=True)  # fmt: skip
        general = _estimate_means(data, ["y", "y2"], design, by="authority", level=0.9, df=df,
                                  grouped_sums=False)  # fmt: skip
        for column in ("y", "y2"):
            a, b = fast[column].to_frame(), general[column].to_frame()
            numeric = ["estimate", "se", "df", "ci_low", "ci_high", "n", "n_eff"]
            assert_allclose(a[numeric], b[numeric], rtol=1e-10)
    _, se = dense_reference(data, "y", "authority", weights="w", strata=strata, psu=None,
                            fpc="f")  # fmt: skip
    assert_allclose(fast["y"].se, se, rtol=1e-10)
