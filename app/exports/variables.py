"""The columns of an export, as every format writer reads them (domain-free).

A :class:`Variable` says what a column holds, in words (its label) and in codes (its value
labels and declared missing codes). The codebook (``surveys.codebook``) builds them from an
instrument; the CSV, XLSX, SPSS and Stata writers turn the same variables and the same rows
into their own format, so that every file of an export carries the same table.

Cells handed to a writer, one row at a time (a sequence in the variables' order):

==========  ========================================================================
kind        cell
==========  ========================================================================
code        ``int`` (a small code, −100…100; declared missing codes included), None
integer     ``int`` (fits in 32 bits; declared missing codes included), None
number      ``float`` or ``int``, None
text        ``str`` (its UTF-8 length never above ``width``), None or ``""``
date        ``datetime.date``, None
datetime    naive ``datetime.datetime`` (local time of the campaign), None
==========  ========================================================================

None is the system missing value (not asked, not answered). A declared missing code (e.g.
−1 "not applicable") is a real answer that analysis treats as missing: SPSS declares it as a
user-missing value, Stata writes it as an extended missing value (``.a``, ``.b``… in the
order of ``missing_codes``) carrying the same label.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

VariableKind = Literal["code", "integer", "number", "text", "date", "datetime"]
NUMERIC_KINDS = frozenset({"code", "integer", "number"})

#: Names every format accepts: SPSS and Stata identifiers, at most Stata's 32 characters.
NAME_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,31}$")
MAX_MISSING_CODES = 3  # SPSS declares at most three discrete missing values


@dataclass(frozen=True)
class Variable:
    """One column of an export."""

    name: str
    label: str
    kind: VariableKind
    #: Code → label, for ``code`` (and optionally ``integer``/``number``) variables.
    value_labels: Mapping[int | float, str] = field(default_factory=dict)
    #: Codes that are answers analysis treats as missing ("not applicable", "don't know");
    #: ``code`` and ``integer`` variables only (a delay that never ended is an integer's).
    missing_codes: tuple[int, ...] = ()
    #: ``text``: the longest cell in UTF-8 bytes (at least 1), known before the file is written.
    width: int = 0

    def __post_init__(self) -> None:
        if not NAME_PATTERN.match(self.name):
            raise ValueError(f"variable name {self.name!r} is not a valid SPSS/Stata name")
        if len(self.missing_codes) > MAX_MISSING_CODES:
            raise ValueError(f"{self.name}: at most {MAX_MISSING_CODES} declared missing codes")
        if self.missing_codes and self.kind not in ("code", "integer"):
            raise ValueError(f"{self.name}: only code and integer variables declare missing codes")
        if self.kind == "text" and self.width < 1:
            raise ValueError(f"{self.name}: a text variable needs its width in bytes")

    @property
    def numeric(self) -> bool:
        return self.kind in NUMERIC_KINDS
