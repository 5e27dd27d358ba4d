"""Response models of the scorecard API."""

from __future__ import annotations

from pydantic import BaseModel


class ScoreOut(BaseModel):
    level: str
    key: str
    estimate: float | None
    se: float | None
    ci_low: float | None
    ci_high: float | None
    n: int
    n_eff: float | None
    flags: list[str]


class PositionOut(BaseModel):
    category: str
    eligible: bool
    ineligible_reason: str
    rank: int | None
    rank_low: int | None
    rank_high: int | None
    percentile: float | None
    in_top1_set: bool
    in_top3_set: bool
    p_best: float | None


class CategoryStatsOut(BaseModel):
    ranked: int
    median: float | None
    q1: float | None
    q3: float | None
    best: float | None


class ChangeOut(BaseModel):
    previous_year: int
    previous: float
    difference: float
    ci_low: float
    ci_high: float
    significant: bool


class ItemGapOut(BaseModel):
    key: str
    label: str
    estimate: float
    category_mean: float


class ScorecardOut(BaseModel):
    year: int
    run_id: int
    authority_code: str
    authority_name: str
    overall: ScoreOut | None
    position: PositionOut | None
    category: CategoryStatsOut
    components: list[ScoreOut]
    channels: list[ScoreOut]
    themes: list[ScoreOut]
    change: ChangeOut | None
    strengths: list[ItemGapOut]
    irritants: list[ItemGapOut]
    respondents: int
    comments: list[str]
