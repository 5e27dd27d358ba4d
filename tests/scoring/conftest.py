"""Fixtures for the scoring tests: R's California API samples, shipped in ./data."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from scoring import Design

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def apistrat() -> pd.DataFrame:
    # R: data(api, package = "survey"); write.csv(apistrat) — 200 schools, strata stype.
    return pd.read_csv(DATA / "apistrat.csv")


@pytest.fixture(scope="session")
def apiclus1() -> pd.DataFrame:
    # R: data(api, package = "survey"); write.csv(apiclus1) — 15 districts, 183 schools.
    return pd.read_csv(DATA / "apiclus1.csv")


@pytest.fixture(scope="session")
def dstrat() -> Design:
    # R: svydesign(id=~1, strata=~stype, weights=~pw, data=apistrat, fpc=~fpc)
    return Design(weights="pw", strata="stype", fpc="fpc")


@pytest.fixture(scope="session")
def dclus1() -> Design:
    # R: svydesign(id=~dnum, weights=~pw, data=apiclus1, fpc=~fpc)
    return Design(weights="pw", psu="dnum", fpc="fpc")
