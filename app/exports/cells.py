"""What the SPSS and Stata writers check alike in a cell, and how they say it is wrong.

A cell that does not fit its variable is the caller's bug: the writers raise
:class:`CellError` from their encoders, and :func:`raise_cell_error` names the variable
and the row, so that a corrupt file is never written.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from app.exports.variables import Variable

CODE_RANGE = range(-100, 101)  # variables.py: "a small code, −100…100"


class CellError(ValueError):
    """A cell does not fit its variable; the row loop adds the variable and the row."""


def describe(cell: Any) -> str:
    text = repr(cell)
    return text if len(text) <= 60 else text[:57] + "..."


def raise_cell_error(
    variables: Sequence[Variable],
    encoders: Sequence[Callable[[Any], Any]],
    row: Sequence[Any],
    count: int,
) -> None:
    """Find the cell that failed and raise a ValueError naming its variable and row."""
    for variable, encode, cell in zip(variables, encoders, row, strict=True):
        try:
            encode(cell)
        except CellError as error:
            raise ValueError(f"{variable.name}: row {count}: {error}") from None
    raise AssertionError("unreachable: a cell failed once")  # pragma: no cover


def truncate_utf8(text: str, limit: int) -> bytes:
    """``text`` in UTF-8, cut to at most ``limit`` bytes without splitting a character."""
    raw = text.encode("utf-8", errors="replace")
    if len(raw) <= limit:
        return raw
    return raw[:limit].decode("utf-8", errors="ignore").encode("utf-8")


def text_bytes(cell: Any, width: int) -> bytes:
    """A text cell in UTF-8, refused when it is not text, too wide, or holds a NUL (C
    readers end a string there; Stata pads strN and ends strL with NULs: the rest would be
    lost silently)."""
    if not isinstance(cell, str):
        raise CellError(f"{describe(cell)} is not a text")
    try:
        raw = cell.encode("utf-8")
    except UnicodeEncodeError:
        raise CellError(f"{describe(cell)} cannot be encoded in UTF-8") from None
    if len(raw) > width:
        raise CellError(f"text of {len(raw)} bytes, wider than the declared {width}")
    if b"\0" in raw:
        raise CellError("text contains a NUL character")
    return raw


def microseconds_since(epoch: datetime, cell: Any) -> int:
    """Exact microseconds from ``epoch`` to a naive (local) datetime cell."""
    if not isinstance(cell, datetime):
        raise CellError(f"{describe(cell)} is not a datetime")
    if cell.tzinfo is not None:
        raise CellError(f"{describe(cell)} is not a naive (local) datetime")
    delta = cell - epoch
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds
