"""The open data files of a published campaign, and what describes them.

``scores.csv`` (the rows of :func:`app.publication.service.open_data_rows`) comes in two
dialects of :mod:`app.core.spreadsheet`, chosen with ``?format=``:

* ``international`` (the default): ``,``, decimal point, UTF-8 without BOM, booleans
  ``true``/``false``: what R, Python and database loaders read as they are;
* ``french``: ``;``, decimal comma, UTF-8 with BOM, booleans ``1``/``0``: what French Excel and
  LibreOffice open with a double click (a spreadsheet sums and filters 1 and 0; ``true`` would
  be an English word in a French sheet).

A query parameter rather than a second file name: it is one table in two spellings, and the
same parameter gives the Table Schema (``decimalChar``, boolean values) and the dictionary of
each spelling.

Each file is described three ways, from one list of fields (:data:`FIELDS`):

* a Table Schema (frictionless, https://specs.frictionlessdata.io/table-schema/): type,
  constraints, ``missingValues: [""]`` and the primary key (year, authority_code, level, key);
* a data package descriptor (``datapackage.json``) with both CSV resources, their dialect and
  their schema inline, so that a downloaded descriptor validates without further requests;
* a data dictionary as CSV, for people.

Titles and descriptions are in the reader's language (the pages' locale). Everything is
published under the Licence Ouverte / Open Licence 2.0 of Etalab (SPDX ``etalab-2.0``), which
asks reusers to credit the source and the date of its last update: :func:`attribution` and the
publication date.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from app.core.i18n import _
from app.core.labels import N_
from app.core.spreadsheet import CsvDialect, CsvFormat, csv_chunks, csv_text
from app.publication.service import OPEN_DATA_COLUMNS, OPEN_DATA_LEVELS, Published


@dataclass(frozen=True)
class Licence:
    """A licence as a data package names it (``licenses`` entries: name, path, title)."""

    name: str  # SPDX identifier
    title: str  # the licence's own name, in both of its languages: never translated
    path: str

    def descriptor(self) -> dict[str, str]:
        return {"name": self.name, "path": self.path, "title": self.title}


LICENCE = Licence(
    name="etalab-2.0",
    title="Licence Ouverte / Open Licence 2.0",
    path="https://www.etalab.gouv.fr/licence-ouverte-open-licence/",
)


class FieldType(StrEnum):
    """The Table Schema types the open data uses."""

    string = "string"
    integer = "integer"
    number = "number"
    boolean = "boolean"
    year = "year"


# The type column of the dictionary, in words (the schema keeps the Table Schema name).
TYPE_WORDS = {
    FieldType.string: N_("text"),
    FieldType.integer: N_("whole number"),
    FieldType.number: N_("decimal number"),
    FieldType.boolean: N_("true or false"),
    FieldType.year: N_("year"),
}


@dataclass(frozen=True)
class OpenDataField:
    """One column of ``scores.csv``; ``title``, ``description``, ``unit`` and ``allowed`` are
    msgids, translated when a schema or a dictionary is written."""

    name: str
    type: FieldType
    title: str
    description: str
    unit: str = ""
    required: bool = False
    enum: tuple[str, ...] = ()
    minimum: int | None = None
    maximum: int | None = None
    pattern: str | None = None
    allowed: str = ""  # words for the allowed values when the constraints do not say it


SCORE_UNIT = N_("points out of 100")
PROPORTION_UNIT = N_("proportion (0 to 1)")

FIELDS: tuple[OpenDataField, ...] = (
    OpenDataField(
        "year",
        FieldType.year,
        N_("Edition"),
        N_("Year of the barometer's edition."),
        required=True,
    ),
    OpenDataField(
        "run_id",
        FieldType.integer,
        N_("Scoring run"),
        N_("Identifier of the frozen scoring run the results come from."),
        required=True,
        minimum=1,
    ),
    OpenDataField(
        "inputs_sha256",
        FieldType.string,
        N_("Fingerprint of the inputs"),
        N_(
            "SHA-256 of the run's inputs: the same inputs with the same seed give the same results."
        ),
        required=True,
        pattern="^[0-9a-f]{64}$",
        allowed=N_("64 hexadecimal characters"),
    ),
    OpenDataField(
        "authority_code",
        FieldType.string,
        N_("Authority code"),
        N_(
            "INSEE code for communes, SIREN for EPCI, D or R followed by the code for "
            "départements and régions."
        ),
        required=True,
    ),
    OpenDataField(
        "authority_name",
        FieldType.string,
        N_("Authority"),
        N_("Name of the authority in the registry."),
        required=True,
    ),
    OpenDataField(
        "category",
        FieldType.string,
        N_("Category"),
        N_("Award category (population stratum) the authority competes in."),
    ),
    OpenDataField(
        "level",
        FieldType.string,
        N_("Level"),
        N_(
            "What the score measures: overall (the composite score), component (citizen "
            "survey or mystery shopping), channel (one contact channel) or theme."
        ),
        required=True,
        enum=OPEN_DATA_LEVELS,
    ),
    OpenDataField(
        "key",
        FieldType.string,
        N_("Key"),
        N_(
            "Empty for the overall score; survey or mystery for a component; the channel's "
            "code; the theme's code."
        ),
    ),
    OpenDataField(
        "estimate",
        FieldType.number,
        N_("Score"),
        N_("Score out of 100; empty when fewer than 5 respondents answered (anonymity)."),
        unit=SCORE_UNIT,
        minimum=0,
        maximum=100,
    ),
    OpenDataField(
        "se",
        FieldType.number,
        N_("Standard error"),
        N_("Standard error of the score."),
        unit=N_("points"),
        minimum=0,
    ),
    OpenDataField(
        "df",
        FieldType.number,
        N_("Degrees of freedom"),
        N_("Degrees of freedom of the Student interval; empty for a normal interval."),
        minimum=0,
    ),
    OpenDataField(
        "ci_low",
        FieldType.number,
        N_("Interval, lower bound"),
        N_(
            "Lower bound of the confidence interval at the confidence level, cut at 0 "
            "(then flagged ci_cut_low)."
        ),
        unit=SCORE_UNIT,
        minimum=0,
        maximum=100,
    ),
    OpenDataField(
        "ci_high",
        FieldType.number,
        N_("Interval, upper bound"),
        N_(
            "Upper bound of the confidence interval at the confidence level, cut at 100 "
            "(then flagged ci_cut_high)."
        ),
        unit=SCORE_UNIT,
        minimum=0,
        maximum=100,
    ),
    OpenDataField(
        "confidence_level",
        FieldType.number,
        N_("Confidence level"),
        N_("Confidence level of the intervals, for example 0.95."),
        unit=PROPORTION_UNIT,
        required=True,
        minimum=0,
        maximum=1,
    ),
    OpenDataField(
        "n",
        FieldType.integer,
        N_("Sample size"),
        N_("Respondents (survey) or approved visits (mystery shopping) behind the score."),
        unit=N_("respondents or visits"),
        required=True,
        minimum=0,
    ),
    OpenDataField(
        "n_eff",
        FieldType.number,
        N_("Effective sample size"),
        N_("Kish effective sample size: the sample size the weighted estimate is worth."),
        unit=N_("respondents or visits"),
        minimum=0,
    ),
    OpenDataField(
        "flags",
        FieldType.string,
        N_("Flags"),
        N_(
            "Precision flags separated by spaces, for example insufficient_precision, "
            "ci_cut_low, ci_cut_high, fewer_than_5 (the figures are then not published)."
        ),
    ),
    OpenDataField(
        "eligible",
        FieldType.boolean,
        N_("Ranked in its category"),
        N_("Whether the authority meets the campaign's rules and is ranked in its category."),
        required=True,
    ),
    OpenDataField(
        "rank",
        FieldType.integer,
        N_("Rank"),
        N_("Point rank in the category (1 = best); overall rows of ranked authorities only."),
        minimum=1,
    ),
    OpenDataField(
        "rank_low",
        FieldType.integer,
        N_("Rank interval, best rank"),
        N_(
            "Best rank of the simultaneous rank confidence interval: all the intervals of a "
            "category hold together at the confidence level."
        ),
        minimum=1,
    ),
    OpenDataField(
        "rank_high",
        FieldType.integer,
        N_("Rank interval, worst rank"),
        N_("Worst rank of the simultaneous rank confidence interval."),
        minimum=1,
    ),
    OpenDataField(
        "in_top1_set",
        FieldType.boolean,
        N_("Could be first"),
        N_("Cannot be excluded from first place: the best rank of its interval is 1."),
        required=True,
    ),
    OpenDataField(
        "in_top3_set",
        FieldType.boolean,
        N_("Could be in the first three"),
        N_("Cannot be excluded from the first three: the best rank of its interval is 3 or less."),
        required=True,
    ),
    OpenDataField(
        "p_best",
        FieldType.number,
        N_("Probability of being first"),
        N_("Share of the simulations in which the authority comes first (descriptive)."),
        unit=PROPORTION_UNIT,
        minimum=0,
        maximum=1,
    ),
    OpenDataField(
        "laureate",
        FieldType.boolean,
        N_("Laureate"),
        N_("Whether the jury chose the authority as its category's laureate (overall row)."),
        required=True,
    ),
)
PRIMARY_KEY = ("year", "authority_code", "level", "key")
MISSING_VALUES = ("",)

if tuple(field.name for field in FIELDS) != tuple(OPEN_DATA_COLUMNS):  # pragma: no cover
    # A column added to the rows without its description would publish an undocumented file.
    raise RuntimeError("app.publication.opendata.FIELDS must describe OPEN_DATA_COLUMNS")

# How each dialect writes a boolean (see the module docstring): (true, false).
BOOLEAN_TOKENS = {
    CsvDialect.international: ("true", "false"),
    CsvDialect.french: ("1", "0"),
}


# --- the licence and its attribution --------------------------------------------------------


def source_name(organiser: str) -> str:
    """The barometer's name for the attribution: "Baromètre <organiser>", once.

    The default organiser is itself called "Baromètre": it is not doubled.
    """
    if organiser.casefold().startswith("baromètre"):
        return organiser
    return f"Baromètre {organiser}"


def attribution(published: Published) -> str:
    """The mention the licence asks reusers to make, e.g. "Source : Baromètre X, 2030"."""
    return _("Source: %(source)s, %(year)d") % {
        "source": source_name(published.campaign.organiser),
        "year": published.campaign.year,
    }


# --- the CSV files --------------------------------------------------------------------------


def scores_csv_chunks(rows: Iterable[Mapping[str, Any]], dialect: CsvDialect) -> Iterator[bytes]:
    """``scores.csv`` in ``dialect``, a chunk at a time (a national edition is large)."""
    true, false = BOOLEAN_TOKENS[dialect]

    def cells(row: Mapping[str, Any]) -> list[Any]:
        values = (row[column] for column in OPEN_DATA_COLUMNS)
        return [true if v is True else false if v is False else v for v in values]

    return csv_chunks(OPEN_DATA_COLUMNS, (cells(row) for row in rows), dialect)


def _type_words(type_: FieldType) -> str:
    """The type in words, with the Table Schema name the schema uses when they differ."""
    words = _(TYPE_WORDS[type_])
    return words if words == type_.value else f"{words} ({type_.value})"


def _allowed_values(field: OpenDataField) -> str:
    if field.type is FieldType.boolean:
        return _("true or false (1 or 0 in the French spreadsheet CSV)")
    if field.allowed:
        return _(field.allowed)
    if field.enum:
        return " | ".join(field.enum)
    if field.minimum is not None and field.maximum is not None:
        return f"{field.minimum}–{field.maximum}"
    if field.minimum is not None:
        return f"≥ {field.minimum}"
    return ""


def dictionary_csv(dialect: CsvDialect) -> str:
    """The data dictionary of ``scores.csv``, one line per column, in the reader's language."""
    header = [
        _("column"),
        _("title"),
        _("type"),
        _("required"),
        _("unit"),
        _("allowed values"),
        _("description"),
    ]
    rows = [
        [
            field.name,
            _(field.title),
            _type_words(field.type),
            _("yes") if field.required else _("no"),
            _(field.unit) if field.unit else "",
            _allowed_values(field),
            _(field.description),
        ]
        for field in FIELDS
    ]
    return csv_text(header, rows, dialect)


# --- the Table Schema and the data package --------------------------------------------------


def _field_descriptor(field: OpenDataField, dialect: CsvDialect) -> dict[str, Any]:
    descriptor: dict[str, Any] = {
        "name": field.name,
        "title": _(field.title),
        "description": _(field.description),
        "type": field.type.value,
    }
    if field.type is FieldType.number:
        descriptor["decimalChar"] = CsvFormat.of(dialect).decimal
    if field.type is FieldType.boolean:
        true, false = BOOLEAN_TOKENS[dialect]
        descriptor["trueValues"] = [true]
        descriptor["falseValues"] = [false]
    constraints: dict[str, Any] = {}
    if field.required:
        constraints["required"] = True
    if field.enum:
        constraints["enum"] = list(field.enum)
    if field.minimum is not None:
        constraints["minimum"] = field.minimum
    if field.maximum is not None:
        constraints["maximum"] = field.maximum
    if field.pattern is not None:
        constraints["pattern"] = field.pattern
    if constraints:
        descriptor["constraints"] = constraints
    return descriptor


def table_schema(dialect: CsvDialect = CsvDialect.international) -> dict[str, Any]:
    """The Table Schema of ``scores.csv`` in ``dialect`` (its numbers and booleans differ)."""
    return {
        "title": _("Published scores of the barometer"),
        "description": _(
            "One row per authority and score: overall, components, channels and themes."
        ),
        "fields": [_field_descriptor(field, dialect) for field in FIELDS],
        "missingValues": list(MISSING_VALUES),
        "primaryKey": list(PRIMARY_KEY),
        # Not a Table Schema property (extra properties are allowed): the schema travels alone
        # too, and says under which terms the file it describes may be reused.
        "licenses": [LICENCE.descriptor()],
    }


def csv_dialect_descriptor(dialect: CsvDialect) -> dict[str, Any]:
    """The CSV Dialect descriptor of what :mod:`app.core.spreadsheet` writes."""
    return {
        "delimiter": CsvFormat.of(dialect).delimiter,
        "lineTerminator": "\r\n",
        "quoteChar": '"',
        "doubleQuote": True,
        "header": True,
    }


@dataclass(frozen=True)
class OpenDataUrls:
    """Absolute addresses of the published files (a downloaded descriptor still points home)."""

    results: str
    scores_csv: str
    scores_csv_french: str
    scores_json: str
    schema: str
    data_package: str
    dictionary: str


def _csv_resource(dialect: CsvDialect, path: str, year: int) -> dict[str, Any]:
    if dialect is CsvDialect.french:
        name = "scores-tableur"
        title = _("Scores %(year)d, CSV for French spreadsheets") % {"year": year}
        description = _("Semicolons, decimal comma, UTF-8 with a byte-order mark; 1 and 0.")
    else:
        name = "scores"
        title = _("Scores %(year)d, CSV") % {"year": year}
        description = _("Commas, decimal point, UTF-8; true and false.")
    return {
        "name": name,
        "title": title,
        "description": description,
        "path": path,
        "profile": "tabular-data-resource",
        "format": "csv",
        "mediatype": "text/csv",
        "encoding": "utf-8",
        "dialect": csv_dialect_descriptor(dialect),
        "schema": table_schema(dialect),
    }


def data_package(published: Published, urls: OpenDataUrls) -> dict[str, Any]:
    """The data package descriptor (``datapackage.json``) of a published edition."""
    year = published.campaign.year
    source = source_name(published.campaign.organiser)
    return {
        "profile": "tabular-data-package",
        "name": f"barometre-{year}-scores",
        "title": _("%(source)s %(year)d: published scores") % {"source": source, "year": year},
        "description": _(
            "Scores of the authorities the publication policy names, with their confidence "
            "intervals, ranks and rank intervals. %(attribution)s."
        )
        % {"attribution": attribution(published)},
        "homepage": urls.results,
        "version": f"run-{published.run.id}",
        # The publication date: the licence's "date of last update" (published data is frozen).
        "created": published.published_at.isoformat(timespec="seconds"),
        "licenses": [LICENCE.descriptor()],
        "sources": [{"title": f"{source} {year}", "path": urls.results}],
        "contributors": [{"title": published.campaign.organiser, "role": "publisher"}],
        "resources": [
            _csv_resource(CsvDialect.international, urls.scores_csv, year),
            _csv_resource(CsvDialect.french, urls.scores_csv_french, year),
        ],
    }


def scores_json(
    published: Published,
    *,
    rows: list[dict[str, Any]],
    not_named: dict[str, int],
    urls: OpenDataUrls,
) -> dict[str, Any]:
    """The JSON open data: the rows with the run, the policy, the licence and the schema."""
    policy = published.policy
    return {
        "year": published.campaign.year,
        "run_id": published.run.id,
        "inputs_sha256": published.run.inputs_sha256,
        "published_at": published.published_at.isoformat(timespec="seconds"),
        "licenses": [LICENCE.descriptor()],
        "attribution": attribution(published),
        "schema": urls.schema,
        "datapackage": urls.data_package,
        "columns": OPEN_DATA_COLUMNS,
        "rank_interval_family": "simultaneous",
        "publication": {
            "scope": policy.scope.value,
            "top_k": policy.top_k,
            "not_named": not_named,
        },
        "rows": rows,
    }
