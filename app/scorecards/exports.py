"""The scorecard as CSV for people: every stored score of the authority in the run, in words.

One row per stored score row, in the page's order: the overall score, the components, the
channels, the themes, then the criteria (items) the strengths and irritants are read from;
within a level by key, as the page sorts its tables.

Columns come in two groups, words first and codes after:

* **labels**, titled in the reader's language (English msgids): year, authority, category,
  level, label (the channel, theme, component or criterion in words), score, standard error,
  the interval's bounds, degrees of freedom, number of observations, effective sample size,
  flags in words, whether the authority is ranked and why not. Numbers are rounded as the page
  shows them: scores and bounds to 1 decimal, standard errors to 2, ``n`` an integer;
* **codes**, named in English ``snake_case`` whatever the language (what an analyst's script
  joins on, stable across languages): ``authority_code``, ``category_code``, ``level_code``,
  ``key_code`` (``""`` for the overall score), ``flag_codes`` (space-separated), ``eligible``
  (1 or 0), ``ineligibility_code``.

The spreadsheet dialect (:class:`app.core.spreadsheet.CsvDialect`) follows the reader's
language unless asked for: French reads ``;``, decimal comma and a BOM, English the
international one. Unrounded values are in the API and the open data.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlmodel import Session

from app.campaigns.service import parse_config
from app.core.db import row_id
from app.core.i18n import _, get_locale
from app.core.spreadsheet import CsvDialect, csv_text
from app.core.text import search_key
from app.results import repository as results_repository
from app.results.compute import ScoreLevel
from app.results.labels import (
    channel_label,
    component_label,
    describe_ineligibility,
    flag_label,
    level_label,
)
from app.results.models import ScoreRow
from app.scorecards.views import Scorecard, item_labels, pinned_instruments

# Codes after the words, never translated: a script reads them in any language.
CODE_COLUMNS = (
    "authority_code",
    "category_code",
    "level_code",
    "key_code",
    "flag_codes",
    "eligible",
    "ineligibility_code",
)
# Rounded as the scorecard page shows them (its ``score`` filter and its tables).
SCORE_DECIMALS = 1
SE_DECIMALS = 2
CSV_MEDIA_TYPE = "text/csv; charset=utf-8"


def default_dialect() -> CsvDialect:
    """The dialect of the reader's language: a French reader opens the file in French Excel."""
    return CsvDialect.french if get_locale() == "fr" else CsvDialect.international


def scorecard_csv_header(confidence_level: float = 0.95) -> list[str]:
    """The column titles in the reader's language, then the code columns."""
    level = {"level": round(confidence_level * 100)}
    return [
        _("Year"),
        _("Authority"),
        _("Category"),
        _("Level"),
        _("Label"),
        _("Score"),
        _("Standard error"),
        _("Lower bound (%(level)s %% interval)") % level,
        _("Upper bound (%(level)s %% interval)") % level,
        _("Degrees of freedom"),
        _("Number of observations"),
        _("Effective sample size"),
        _("Flags"),
        _("Ranked in its category"),
        _("Reason not ranked"),
        *CODE_COLUMNS,
    ]


def _rounded(value: float | None, decimals: int) -> float | None:
    """Rounded like the page; the spreadsheet module writes the dialect's decimal mark."""
    return None if value is None else round(value, decimals)


def _key_labeller(
    session: Session, card: Scorecard, rows: Sequence[ScoreRow]
) -> Callable[[ScoreRow], str]:
    """A score row's key in words, with the label functions the page uses for each level."""
    items: dict[str, str] = {}
    # The instruments are read only when there are criteria to name.
    if any(row.level == ScoreLevel.item for row in rows):
        items = item_labels(pinned_instruments(session, card.campaign))

    def label(row: ScoreRow) -> str:
        if row.level == ScoreLevel.overall:
            return level_label(row.level)
        if row.level == ScoreLevel.component:
            return component_label(row.key)
        if row.level == ScoreLevel.channel:
            return channel_label(row.key)
        if row.level == ScoreLevel.theme:
            return card.theme_names.get(row.key) or _(row.key)
        return items.get(row.key, row.key)

    return label


def _rows(session: Session, card: Scorecard) -> list[ScoreRow]:
    """The authority's score rows in the page's order (levels as ScoreLevel lists them)."""
    order = {level.value: index for index, level in enumerate(ScoreLevel)}
    return sorted(
        results_repository.score_rows(session, run_id=row_id(card.run), codes=[card.code]),
        key=lambda row: (order.get(row.level, len(order)), row.key),
    )


def scorecard_rows(session: Session, card: Scorecard) -> list[Sequence[Any]]:
    """One list of cells per score row, in the order of :func:`scorecard_csv_header`."""
    rows = _rows(session, card)
    key_label = _key_labeller(session, card, rows)
    rank = card.rank
    # An authority without a rank row (no position computed) is not said to be ranked or not.
    ranked = "" if rank is None else (_("yes") if rank.eligible else _("no"))
    reason = describe_ineligibility(rank.ineligible_reason) if rank and not rank.eligible else ""
    return [
        [
            card.campaign.year,
            card.name,
            card.category_label,
            level_label(row.level),
            key_label(row),
            _rounded(row.estimate, SCORE_DECIMALS),
            _rounded(row.se, SE_DECIMALS),
            _rounded(row.ci_low, SCORE_DECIMALS),
            _rounded(row.ci_high, SCORE_DECIMALS),
            _rounded(row.df, SCORE_DECIMALS),
            row.n,
            _rounded(row.n_eff, SCORE_DECIMALS),
            ", ".join(flag_label(flag) for flag in row.flags),
            ranked,
            reason,
            card.code,
            card.category,
            row.level,
            row.key,
            " ".join(row.flags),
            None if rank is None else rank.eligible,
            rank.ineligible_reason if rank else "",
        ]
        for row in rows
    ]


def scorecard_csv(session: Session, card: Scorecard, dialect: CsvDialect | None = None) -> str:
    """The scorecard's CSV text in ``dialect`` (the reader's language's one by default)."""
    return csv_text(
        scorecard_csv_header(parse_config(card.campaign.config).confidence_level),
        scorecard_rows(session, card),
        dialect or default_dialect(),
    )


def scorecard_filename(card: Scorecard, suffix: str) -> str:
    """``scorecard-2030-saint-etienne-42218.csv``: the year, the name's slug, then the code
    (two communes may share a name). ASCII only, so the header needs no encoding."""
    slug = search_key(card.name).replace(" ", "-") or "authority"
    return f"scorecard-{card.campaign.year}-{slug}-{card.code.lower()}.{suffix}"
