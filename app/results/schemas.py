"""JSON shapes of the rankings API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict


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
    eligible: bool
    ineligible_reason: str
    estimate: float | None
    se: float | None
    ci_low: float | None
    ci_high: float | None
    rank: int | None
    rank_low: int | None
    rank_high: int | None
    in_top1_set: bool
    in_top3_set: bool
    p_best: float | None
    percentile: float | None
    flags: list[str]


class CategoryRanking(BaseModel):
    key: str
    label_fr: str
    label_en: str
    # More than one candidate in the top-1 set: the jury decides and must justify.
    statistical_tie: bool
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
                    "categories": [
                        {
                            "key": "communes-100000-plus",
                            "label_fr": "Communes de plus de 100 000 habitants",
                            "label_en": "Municipalities over 100,000",
                            "statistical_tie": True,
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
    categories: list[CategoryRanking]
