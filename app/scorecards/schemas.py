"""Response models of the scorecard API."""

from __future__ import annotations

from pydantic import BaseModel, Field


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
    """The authority's own position: the scorecard's family is the MARGINAL rank interval.

    The award table's simultaneous intervals and top-1/top-3 sets are in the rankings API;
    the two families are never mixed in one answer (METHODOLOGY.md, "One family per table").
    """

    category: str
    eligible: bool
    ineligible_reason: str
    rank: int | None = Field(description="Point rank in the category (1 = best).")
    marginal_rank_low: int | None = Field(
        description=(
            "Best rank of the authority's own rank interval, taken alone (marginal, Mogstad, "
            "Romano, Shaikh & Wilhelm 2024); narrower than the award table's simultaneous one."
        )
    )
    marginal_rank_high: int | None = Field(
        description="Worst rank of the authority's own (marginal) rank interval."
    )
    percentile: float | None
    p_best: float | None = Field(
        description="Descriptive: share of simulated draws in which the authority comes first."
    )


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
