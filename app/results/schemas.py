"""JSON shapes of the rankings API.

The rankings are the award table: one inferential family (METHODOLOGY.md, "One family per
table"). ``rank_low``/``rank_high`` are simultaneous rank intervals and the top-1/top-3 sets are
read from them (in the top τ exactly when ``rank_low`` ≤ τ). A candidate's own marginal
interval belongs to its scorecard (``GET /api/v1/campaigns/{year}/scorecards/{code}``), never
beside these sets.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class RunInfo(BaseModel):
    id: int
    inputs_sha256: str
    seed: int
    code_version: str
    completed_at: datetime | None
    confidence_level: float


class RankingEntry(BaseModel):
    authority_code: str
    authority_name: str
    eligible: bool = Field(description="Ranked in its category (the campaign's eligibility rules).")
    ineligible_reason: str = Field(description="Why the candidate is not ranked, in words.")
    estimate: float | None = Field(description="Overall score out of 100.")
    se: float | None = Field(description="Standard error of the overall score.")
    ci_low: float | None = Field(
        description="Lower bound of the score's confidence interval, on the 0–100 scale."
    )
    ci_high: float | None = Field(
        description="Upper bound of the score's confidence interval, on the 0–100 scale."
    )
    ci_cut_low: bool = Field(
        default=False,
        description="The computed lower bound lay below 0 and is shown cut at 0.",
    )
    ci_cut_high: bool = Field(
        default=False,
        description="The computed upper bound lay above 100 and is shown cut at 100.",
    )
    rank: int | None = Field(description="Point rank in the category (1 = best; ties share it).")
    rank_low: int | None = Field(
        description=(
            "Best rank of the simultaneous rank interval (Mogstad, Romano, Shaikh & Wilhelm "
            "2024): the category's intervals hold together at the confidence level."
        )
    )
    rank_high: int | None = Field(description="Worst rank of the simultaneous rank interval.")
    in_top1_set: bool = Field(
        description="Cannot be excluded from first place: exactly when rank_low is 1."
    )
    in_top3_set: bool = Field(
        description="Cannot be excluded from the first three: exactly when rank_low ≤ 3."
    )
    p_best: float | None = Field(
        description=(
            "Descriptive: share of draws from N(estimate, se²) in which the candidate comes "
            "first. Not a test; the top-1 set decides who can be first."
        )
    )
    percentile: float | None = Field(description="Percentile of the score in the category.")
    flags: list[str] = Field(description="Precision flags of the overall score.")


class CategoryRanking(BaseModel):
    key: str
    label_fr: str
    label_en: str
    statistical_tie: bool = Field(
        description=(
            "More than one candidate in the top-1 set: the design cannot separate them; the "
            "jury decides and must justify."
        )
    )
    ranked: int = Field(default=0, description="Candidates ranked in the category.")
    not_named: int = Field(
        default=0,
        description=(
            "Candidates the publication policy leaves unnamed in public (counted, not listed); "
            "0 for the organiser and the jury, who see everyone."
        ),
    )
    candidates: list[RankingEntry]


class RankingsResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "year": 2025,
                    "campaign_state": "published",
                    "run": {
                        "id": 3,
                        "inputs_sha256": "9f2c…64 hex digits",
                        "seed": 2025,
                        "code_version": "0.1.0+src.1a2b3c4d5e6f",
                        "completed_at": "2025-11-04T09:12:44Z",
                        "confidence_level": 0.95,
                    },
                    "rank_interval_family": "simultaneous",
                    "publication_scope": "laureates_and_top",
                    "publication_top_k": 10,
                    "methodology_url": "/methodologie",
                    "categories": [
                        {
                            "key": "communes-100000-plus",
                            "label_fr": "Communes de plus de 100 000 habitants",
                            "label_en": "Municipalities over 100,000",
                            "statistical_tie": True,
                            "ranked": 12,
                            "not_named": 0,
                            "candidates": [
                                {
                                    "authority_code": "69123",
                                    "authority_name": "Lyon",
                                    "eligible": True,
                                    "ineligible_reason": "",
                                    "estimate": 71.4,
                                    "se": 1.9,
                                    "ci_low": 67.6,
                                    "ci_high": 75.2,
                                    "ci_cut_low": False,
                                    "ci_cut_high": False,
                                    "rank": 1,
                                    "rank_low": 1,
                                    "rank_high": 3,
                                    "in_top1_set": True,
                                    "in_top3_set": True,
                                    "p_best": 0.41,
                                    "percentile": 100.0,
                                    "flags": [],
                                },
                                {
                                    "authority_code": "13055",
                                    "authority_name": "Marseille",
                                    "eligible": False,
                                    "ineligible_reason": "2 channels tested (minimum 4)",
                                    "estimate": 64.0,
                                    "se": 4.2,
                                    "ci_low": 55.3,
                                    "ci_high": 72.7,
                                    "ci_cut_low": False,
                                    "ci_cut_high": False,
                                    "rank": None,
                                    "rank_low": None,
                                    "rank_high": None,
                                    "in_top1_set": False,
                                    "in_top3_set": False,
                                    "p_best": None,
                                    "percentile": None,
                                    "flags": ["insufficient_precision"],
                                },
                            ],
                        }
                    ],
                }
            ]
        }
    )

    year: int
    campaign_state: str
    run: RunInfo
    rank_interval_family: Literal["simultaneous"] = Field(
        default="simultaneous",
        description=(
            "The family of every rank interval and top set here: simultaneous (the award "
            "table), explained at methodology_url."
        ),
    )
    publication_scope: str = Field(
        description=(
            "Whom the public answer names: all, laureates_and_top (the laureates and the top "
            "publication_top_k of each category) or laureates; the organiser and the jury see all."
        )
    )
    publication_top_k: int
    methodology_url: str = Field(description="The public page explaining these statistics.")
    categories: list[CategoryRanking]
