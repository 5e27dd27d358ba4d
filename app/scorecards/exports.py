"""The scorecard as CSV: every stored score row of the authority in the run.

The columns are the authority's, then a score row's stored columns
(:data:`app.results.models.SCORE_ROW_COLUMNS`), named as stored.
"""

from __future__ import annotations

import csv
import io
import math
from typing import Any

from sqlmodel import Session

from app.core.db import row_id
from app.results import repository as results_repository
from app.results.compute import ScoreLevel
from app.results.models import SCORE_ROW_COLUMNS
from app.scorecards.views import Scorecard

# What a score row says about its authority (the authority comes first, with its name).
_ROW_COLUMNS = tuple(name for name in SCORE_ROW_COLUMNS if name != "authority_code")
SCORECARD_CSV_COLUMNS = ["year", "authority_code", "authority_name", "category", *_ROW_COLUMNS]


def _cell(value: Any) -> Any:
    """Numbers to six significant digits, nothing for a missing one, flags space-separated."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list):
        return " ".join(value)
    return value


def scorecard_csv(session: Session, card: Scorecard) -> str:
    """Every score row of the authority in the run (one per level and key), UTF-8 CSV."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(SCORECARD_CSV_COLUMNS)
    order = {level.value: index for index, level in enumerate(ScoreLevel)}
    rows = sorted(
        results_repository.score_rows(session, run_id=row_id(card.run), codes=[card.code]),
        key=lambda row: (order.get(row.level, 99), row.key),
    )
    for row in rows:
        writer.writerow(
            [
                card.campaign.year,
                card.code,
                card.name,
                card.category,
                *(_cell(getattr(row, name)) for name in _ROW_COLUMNS),
            ]
        )
    return buffer.getvalue()
