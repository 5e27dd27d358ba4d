"""Mystery-shopper channels, component combination, precision flags, year over year.

Expected values are derived by hand in the comments.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy import stats

from scoring import (
    Estimates,
    channel_scores,
    combine_components,
    precision_flags,
    stack_components,
    yoy_difference,
)


@pytest.fixture(scope="module")
def visits() -> pd.DataFrame:
    rows = [
        ("A", "phone", "X", 60), ("A", "phone", "X", 80), ("A", "web", "X", 90),
        ("A", "web", "X", 70), ("B", "phone", "X", 50), ("C", "phone", "X", 40),
        ("C", "phone", "X", 50), ("C", "phone", "X", 60), ("C", "web", "X", 30),
        ("D", "phone", "Y", 55), ("D", "web", "Y", np.nan),
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=["authority", "channel", "category", "score"])


@pytest.fixture(scope="module")
def channels(visits) -> Estimates:
    return channel_scores(
        visits["score"],
        visits["authority"],
        visits["channel"],
        visits["category"],
        variance_model="constant",
    )


def test_channel_scores_hand_derived(channels):
    frame = channels.to_frame()
    # X phone: SS 200 (A) + 0 (B) + 200 (C) on N − A = 6 − 3 df: s² = 400/3 for every k
    # (the national pool has no more df, D being single).
    s2 = 400 / 3
    assert_allclose(frame.loc[("A", "phone"), ["estimate", "se", "df"]], [70, np.sqrt(s2 / 2), 3])
    assert_allclose(frame.loc[("C", "phone"), ["estimate", "se", "df"]], [50, np.sqrt(s2 / 3), 3])
    assert_allclose(frame.loc[("B", "phone"), ["estimate", "se", "df"]], [50, np.sqrt(s2), 3])
    # X web: only A replicated, 200 on 1 df.
    assert_allclose(frame.loc[("C", "web"), ["estimate", "se", "df"]], [30, np.sqrt(200), 1])
    # D phone: alone in category Y, borrows the national phone pool; NaN web visit ignored.
    assert_allclose(frame.loc[("D", "phone"), ["se", "df"]], [np.sqrt(s2), 3])
    assert ("D", "web") not in frame.index
    t = stats.t.ppf(0.975, 3)
    assert_allclose(frame.loc[("A", "phone"), "ci_high"], 70 + t * np.sqrt(s2 / 2))


def test_combine_channels_welch_satterthwaite(channels):
    mystery = combine_components(channels, {"phone": 0.5, "web": 0.5}).to_frame()
    s2 = 400 / 3  # the X phone pool (see above), on 3 df
    # A: 0.5*70 + 0.5*80 = 75; var 0.25*s2/2 + 0.25*200/2; WS df by hand.
    v1, v2 = 0.25 * s2 / 2, 0.25 * 100
    df = (v1 + v2) ** 2 / (v1**2 / 3 + v2**2 / 1)
    assert_allclose(mystery.loc["A", ["estimate", "se", "df"]], [75, np.sqrt(v1 + v2), df])
    # B has phone only: weights renormalised (renormalise=True), the phone score itself.
    assert_allclose(mystery.loc["B", ["estimate", "se", "df"]], [50, np.sqrt(s2), 3])
    # C: 0.5*50 + 0.5*30 = 40; var 0.25*s2/3 + 0.25*200.
    v1, v2 = 0.25 * s2 / 3, 0.25 * 200
    df = (v1 + v2) ** 2 / (v1**2 / 3 + v2**2 / 1)
    assert_allclose(mystery.loc["C", ["estimate", "se", "df"]], [40, np.sqrt(v1 + v2), df])
    # D: its phone score, with the national phone pool's SE.
    assert_allclose(mystery.loc["D", ["estimate", "se"]], [55, np.sqrt(s2)])
    strict = combine_components(channels, {"phone": 0.5, "web": 0.5}, renormalise=False)
    assert np.isnan(strict.to_frame().loc["B", "estimate"])


def test_overall_from_stacked_components(channels):
    mystery = combine_components(channels, {"phone": 0.5, "web": 0.5})
    survey = Estimates(
        domains=pd.Index(["A", "B", "C", "D"]),
        estimate=[60.0, 70.0, 80.0, 90.0],
        se=[2.0, 3.0, 4.0, 5.0],
        df=[100.0, 50.0, np.inf, 30.0],
        ci_low=0.0,
        ci_high=0.0,
        n=[100, 50, 40, 30],
        n_eff=[90, 45, 40, 30],
        level=0.95,
        method="test",
    )
    overall = combine_components(
        stack_components({"survey": survey, "mystery": mystery}), {"survey": 0.6, "mystery": 0.4}
    ).to_frame()
    # A: 0.6*60 + 0.4*75 = 66; var 0.36*4 + 0.16*var_A; Welch–Satterthwaite df.
    var_a = mystery.se[0] ** 2
    var = 0.36 * 4 + 0.16 * var_a
    assert_allclose(overall.loc["A", "estimate"], 66)
    assert_allclose(overall.loc["A", "se"], np.sqrt(var))
    assert_allclose(
        overall.loc["A", "df"], var**2 / (1.44**2 / 100 + (0.16 * var_a) ** 2 / mystery.df[0])
    )
    with pytest.raises(ValueError, match="no weight"):
        combine_components(stack_components({"survey": survey}), {"mystery": 1.0})


def test_yoy_difference_hand_derived():
    def one(estimate, se, df):
        return Estimates(pd.Index(["A"]), estimate, se, df, 0.0, 0.0, 50, 50, 0.95, "test")

    change = yoy_difference(one(70.0, 3.0, 20.0), one(65.0, 4.0, 30.0))
    # diff 5, se sqrt(9 + 16) = 5, df 25^2 / (9^2/20 + 16^2/30).
    df = 625 / (81 / 20 + 256 / 30)
    assert_allclose([change.estimate[0], change.se[0], change.df[0]], [5, 5, df])
    assert not change.excludes(0)[0]
    big = yoy_difference(one(80.0, 1.0, 200.0), one(65.0, 1.0, 200.0))
    assert big.excludes(0)[0]


def test_precision_flags():
    result = Estimates(
        domains=pd.Index(["a", "b", "c"]),
        estimate=[50.0, 60.0, 70.0],
        se=[10.0, 2.5, 1.2],
        df=[2.0, 39.0, 99.0],
        ci_low=[30.0, 55.0, 67.5],
        ci_high=[70.0, 65.0, 72.5],
        n=[3, 40, 100],
        n_eff=[3, 25, 100],
        level=0.95,
        method="test",
    )
    flags = precision_flags(result)
    assert_array_equal(flags["insufficient_precision"], [True, True, False])
    assert_array_equal(flags["suppress"], [True, False, False])
    assert_allclose(flags["cv"], [0.2, 2.5 / 60, 1.2 / 70])
    assert_allclose(flags["ci_width"], [40, 10, 5])
