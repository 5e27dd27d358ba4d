"""CSV for people and for machines: one place for dialects, numbers and formula cells.

Two dialects, chosen by whoever downloads:

* ``international``: ``,`` between cells, ``.`` in numbers, UTF-8 without BOM (R, Python,
  every database loader);
* ``french``: what French Excel and LibreOffice open with a double click: ``;`` between
  cells, decimal comma, UTF-8 *with* a byte-order mark (without it, Excel on Windows reads
  the accents as cp1252).

Numbers are never grouped (``1234,5``, not ``1 234,5``): a spreadsheet would read a grouped
number as text. A text cell that starts like a formula gets a leading apostrophe (OWASP
"CSV injection"): names and comments are typed by people.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any

BOM = "\ufeff"
# A cell starting with one of these is a formula to a spreadsheet.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class CsvDialect(StrEnum):
    international = "international"
    french = "french"


@dataclass(frozen=True)
class CsvFormat:
    delimiter: str
    decimal: str
    bom: bool

    @classmethod
    def of(cls, dialect: CsvDialect | str) -> CsvFormat:
        if CsvDialect(dialect) is CsvDialect.french:
            return cls(delimiter=";", decimal=",", bom=True)
        return cls(delimiter=",", decimal=".", bom=False)


def neutral_text(cell: str) -> str:
    """The cell as text for spreadsheets too: a leading quote defuses a formula."""
    return "'" + cell if cell.startswith(FORMULA_STARTS) else cell


def format_number(value: float | int, decimal: str = ".", digits: int | None = None) -> str:
    """``value`` with ``decimal`` as the separator; ``digits`` significant digits if given.

    Integers (and floats holding one) print without a fraction; nothing is grouped.
    """
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int):
        return str(value)
    if not math.isfinite(value):
        return ""
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    text = f"{value:.{digits}g}" if digits is not None else repr(value)
    return text.replace(".", decimal) if decimal != "." else text


def format_cell(value: Any, fmt: CsvFormat, digits: int | None = None) -> str:
    """One cell: None and NaN empty, numbers in the dialect, dates ISO 8601, text defused."""
    # The common cases first, by exact type: an export formats tens of millions of cells.
    kind = type(value)
    if value is None:
        return ""
    if kind is int:
        return str(value)
    if kind is str:
        return "'" + value if value.startswith(FORMULA_STARTS) else value
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float):
        return format_number(value, fmt.decimal, digits)
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    return neutral_text(str(value))


class CsvWriter:
    """Rows to CSV text in a dialect, a chunk at a time (for streamed responses and files)."""

    def __init__(
        self, dialect: CsvDialect | str = CsvDialect.international, digits: int | None = None
    ):
        self.format = CsvFormat.of(dialect)
        self.digits = digits
        self._buffer = io.StringIO()
        self._writer = csv.writer(
            self._buffer, delimiter=self.format.delimiter, lineterminator="\r\n"
        )
        self._started = False

    def row(self, cells: Sequence[Any]) -> None:
        if not self._started:
            self._started = True
            if self.format.bom:
                self._buffer.write(BOM)
        self._writer.writerow([format_cell(cell, self.format, self.digits) for cell in cells])

    def take(self) -> str:
        """What was written since the last call (and forget it: memory stays flat)."""
        text = self._buffer.getvalue()
        self._buffer.seek(0)
        self._buffer.truncate()
        return text


def csv_text(
    header: Sequence[str],
    rows: Iterable[Sequence[Any]],
    dialect: CsvDialect | str = CsvDialect.international,
    digits: int | None = None,
) -> str:
    """A whole (small) table as CSV text."""
    writer = CsvWriter(dialect, digits)
    writer.row(header)
    for row in rows:
        writer.row(row)
    return writer.take()


def csv_chunks(
    header: Sequence[str],
    rows: Iterable[Sequence[Any]],
    dialect: CsvDialect | str = CsvDialect.international,
    digits: int | None = None,
    chunk_rows: int = 5_000,
) -> Iterator[bytes]:
    """A large table as UTF-8 chunks of ``chunk_rows`` rows (for a streamed response)."""
    writer = CsvWriter(dialect, digits)
    writer.row(header)
    pending = 0
    for row in rows:
        writer.row(row)
        pending += 1
        if pending >= chunk_rows:
            yield writer.take().encode("utf-8")
            pending = 0
    yield writer.take().encode("utf-8")
