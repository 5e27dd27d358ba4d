"""Writing an export's files: stage the rows once, then every format from the stage.

The rows are read from the database once (:func:`stage`) into a temporary file of pickled
chunks, while the longest text of each text column is measured (SPSS and Stata declare a
string's width before its first row). Every format then streams the staged rows: the
memory an export needs does not grow with its size.

Formats: CSV in two dialects (:mod:`app.core.spreadsheet`) with a ``labels.csv``
dictionary; XLSX (openpyxl's write-only mode, one sheet per table split at Excel's row
limit, and a dictionary sheet); SPSS ``.sav`` and Stata ``.dta`` (:mod:`app.exports.sav`,
:mod:`app.exports.dta`); a README of the columns in the reader's language.
"""

from __future__ import annotations

import pickle
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlmodel import Session

from app.core.i18n import _
from app.core.spreadsheet import CsvDialect, CsvWriter
from app.exports.codebook import NEVER_CODE, Column
from app.exports.datasets import Dataset

STAGE_CHUNK_ROWS = 2_000
# Excel's last row is 1,048,576: the header and 1,048,575 data rows a sheet.
XLSX_MAX_ROWS = 1_048_575
LABELS_HEADER = ("table", "variable", "type", "code", "label", "missing", "instrument_value")


@dataclass(frozen=True)
class Staged:
    """A table read from the database: its columns (text widths measured) and its rows."""

    key: str
    title: str
    columns: tuple[Column, ...]
    path: Path
    rows: int

    def iter_rows(self) -> Iterator[list[Any]]:
        with self.path.open("rb") as handle:
            while True:
                try:
                    chunk = pickle.load(handle)
                except EOFError:
                    return
                yield from chunk


def stage(session: Session, dataset: Dataset, directory: Path) -> Staged:
    """Read ``dataset``'s rows once into ``directory``, measuring its texts."""
    text_columns = [i for i, c in enumerate(dataset.columns) if c.variable.kind == "text"]
    widths = dict.fromkeys(text_columns, 1)
    path = directory / f"{dataset.key}.stage"
    count = 0
    with path.open("wb") as handle:
        chunk: list[list[Any]] = []
        for row in dataset.rows(session):
            for i in text_columns:
                value = row[i]
                # Four bytes a character at most: encode only when it could be the longest.
                if value and len(value) * 4 > widths[i]:
                    widths[i] = max(widths[i], len(value.encode("utf-8")))
            chunk.append(row)
            if len(chunk) >= STAGE_CHUNK_ROWS:
                pickle.dump(chunk, handle, protocol=pickle.HIGHEST_PROTOCOL)
                count += len(chunk)
                chunk = []
        if chunk:
            pickle.dump(chunk, handle, protocol=pickle.HIGHEST_PROTOCOL)
            count += len(chunk)
    columns = tuple(
        replace(c, variable=replace(c.variable, width=widths[i])) if i in widths else c
        for i, c in enumerate(dataset.columns)
    )
    return Staged(dataset.key, dataset.title, columns, path, count)


# --- CSV --------------------------------------------------------------------------------


def write_csv(staged: Staged, path: Path, dialect: CsvDialect) -> None:
    writer = CsvWriter(dialect)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer.row([c.name for c in staged.columns])
        for index, row in enumerate(staged.iter_rows(), 1):
            writer.row(row)
            if index % 5_000 == 0:
                handle.write(writer.take())
        handle.write(writer.take())


def _kind_word(column: Column) -> str:
    return column.variable.kind


def dictionary_rows(tables: Sequence[Staged]) -> Iterator[list[Any]]:
    """The dictionary, one row per variable then one per code (``LABELS_HEADER``)."""
    for table in tables:
        for column in table.columns:
            yield [
                table.key,
                column.name,
                _kind_word(column),
                None,
                column.variable.label,
                None,
                None,
            ]
            for coded in column.codes:
                yield [
                    table.key,
                    column.name,
                    None,
                    coded.code,
                    coded.label,
                    1 if coded.missing else 0,
                    coded.value,
                ]


def write_labels_csv(tables: Sequence[Staged], path: Path, dialect: CsvDialect) -> None:
    writer = CsvWriter(dialect)
    writer.row(LABELS_HEADER)
    for row in dictionary_rows(tables):
        writer.row(row)
    path.write_text(writer.take(), encoding="utf-8", newline="")


# --- XLSX -------------------------------------------------------------------------------


def write_xlsx(tables: Sequence[Staged], path: Path, *, max_rows: int = XLSX_MAX_ROWS) -> None:
    """One sheet per table (``name_2``… past Excel's row limit) and a dictionary sheet."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    workbook = Workbook(write_only=True)

    def text_cell(sheet: Any, value: str) -> Any:
        # openpyxl takes a string starting with "=" for a formula: keep it text.
        cell = WriteOnlyCell(sheet, value=value)
        cell.data_type = "s"
        return cell

    def cells(sheet: Any, row: list[Any]) -> list[Any]:
        return [
            text_cell(sheet, value) if isinstance(value, str) and value.startswith("=") else value
            for value in row
        ]

    for table in tables:
        header = [c.name for c in table.columns]
        part, written = 1, 0
        sheet = workbook.create_sheet(table.key[:31])
        sheet.append(header)
        for row in table.iter_rows():
            if written >= max_rows:
                part += 1
                suffix = f"_{part}"
                sheet = workbook.create_sheet(table.key[: 31 - len(suffix)] + suffix)
                sheet.append(header)
                written = 0
            sheet.append(cells(sheet, row))
            written += 1
    dictionary = workbook.create_sheet("dictionary")
    dictionary.append(list(LABELS_HEADER))
    for row in dictionary_rows(tables):
        dictionary.append(cells(dictionary, row))
    workbook.save(path)


# --- SPSS and Stata ---------------------------------------------------------------------


def write_statfile(staged: Staged, path: Path, kind: str) -> None:
    from app.exports import dta, sav

    write = sav.write_sav if kind == "sav" else dta.write_dta
    variables = [c.variable for c in staged.columns]
    with path.open("wb") as handle:
        write(handle, variables, staged.iter_rows(), file_label=staged.title)


# --- README -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ReadmeFacts:
    title: str
    scope: str
    generated_at: datetime
    retention_days: int
    files: Sequence[tuple[str, str]]  # (name in the archive, what it is)


def readme_text(facts: ReadmeFacts, tables: Sequence[Staged]) -> str:
    """The README of an archive, in the current language: files, coding, every column."""
    lines = [
        facts.title,
        "=" * len(facts.title),
        "",
        facts.scope,
        _("Generated on %(moment)s (local time).")
        % {"moment": facts.generated_at.strftime("%Y-%m-%d %H:%M")},
        "",
        _("Files"),
        "-" * len(_("Files")),
    ]
    lines += [f"- {name}: {what}" for name, what in facts.files]
    lines += [
        "",
        _("How answers are coded"),
        "-" * len(_("How answers are coded")),
        _(
            "- Each closed question is one column of codes; labels.csv (CSV), the dictionary "
            "sheet (XLSX) and the value labels (SPSS, Stata) give each code its label."
        ),
        _(
            "- An empty cell means the question was not asked or not answered (system "
            "missing value)."
        ),
        _(
            "- -1 = not applicable, -2 = don't know, %(never)d = no answer ever came (delays): "
            "real answers, declared as missing values (SPSS user-missing; Stata .a, .b, .c)."
        )
        % {"never": NEVER_CODE},
        _(
            "- A multiple-choice question is one 0/1 column per option (1 = selected), empty "
            "when the question was not answered."
        ),
        _("- score_* columns are the item scores 0–100 used by scoring."),
        _("- Dates and times are in the local time of metropolitan France."),
        "",
        _("Confidentiality"),
        "-" * len(_("Confidentiality")),
        _(
            "These files hold individual answers. Citizens answered anonymously: do not try "
            "to identify anyone, and do not publish them. The platform deletes this export "
            "%(days)d days after it was made."
        )
        % {"days": facts.retention_days},
    ]
    for table in tables:
        heading = f"{table.title} ({table.key}) — " + _("%(rows)d rows") % {"rows": table.rows}
        lines += ["", heading, "-" * len(heading)]
        for column in table.columns:
            lines.append(f"{column.name}  [{column.variable.kind}]  {column.variable.label}")
            for coded in column.codes:
                flag = " " + _("(missing)") if coded.missing else ""
                lines.append(f"    {coded.code} = {coded.label}{flag}")
    return "\n".join(lines) + "\n"


def zip_files(path: Path, members: Sequence[tuple[Path, str]]) -> None:
    """``members`` (file, name in the archive) into a deflated zip (ZIP64 past 4 GB)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
        for source, name in members:
            archive.write(source, name)
