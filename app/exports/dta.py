"""Stata ``.dta`` writer, format 118 (Stata 14+, UTF-8), streaming and memory-flat (domain-free).

Why our own writer: pyreadstat (ReadStat) writes only from a whole in-memory pandas or polars
data frame, and needs object columns to carry Stata's extended missing values (``.a``, ``.b``…);
a national campaign export (1,000,000 rows × ~40 columns) must stay under 300 MB of peak
memory. This writer takes the rows one at a time, writes them as they come, spills long texts
(strL) to a temporary file and seeks back at the end to patch the row count and the section
map. The format is documented (Stata's "dta file format 118", ``help dta``); our files are
judged by the two real readers, pyreadstat and R haven (both ReadStat, tested in
``tests/app/test_export_statfiles.py``).

Layout written (little-endian, "LSF")::

    <stata_dta><header> release 118, K, N (patched), data label, timestamp </header>
    <map> 14 offsets (patched) </map>
    <variable_types> <varnames> <sortlist> <formats> <value_label_names> <variable_labels>
    <characteristics></characteristics>
    <data> fixed-width rows </data>
    <strls> GSO records, in (observation, variable) order </strls>
    <value_labels> one <lbl> table per labelled variable, named after it </value_labels>
    </stata_dta>

Storage by kind: ``code`` → byte (``.`` = 101, ``.a`` = 102…), ``integer`` → long,
``number`` → double, ``text`` → strN (N = width ≤ 244) or strL above, ``date`` → long
``%td`` (days since 1960-01-01), ``datetime`` → double ``%tc`` (milliseconds since
1960-01-01 00:00). A declared missing code (``Variable.missing_codes``) is written as the
extended missing value ``.a``, ``.b``… in that order, and the variable's value label set
labels that missing value (key ``.a`` = 2,147,483,622, as Stata and ReadStat store it) with
the code's label; the code itself is not labelled again, since it never appears in the data.

Stata has no string missing value: None and ``""`` are both read back as ``""``. Variable
labels and the data label are cut at 80 characters. The file begins with a NUL instead of
``<`` until the last row is written: a file left behind by an error is not recognised as a
Stata file by any reader.
"""

from __future__ import annotations

import numbers
import shutil
import struct
import tempfile
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime
from typing import Any, BinaryIO

from app.exports.cells import (
    CODE_RANGE,
    CellError,
    describe,
    microseconds_since,
    raise_cell_error,
    text_bytes,
    truncate_utf8,
)
from app.exports.variables import Variable

__all__ = ["write_dta"]

RELEASE = b"118"
MAX_VARIABLES = 32767  # Stata/MP's limit for format 118
# strN is fixed width: a 2,000-byte comment column would cost 2 GB a million rows even when
# most comments are empty. Past Stata's classic str244, texts are strL (8 bytes a cell, and
# the text itself only where there is one). Format 118 allows strN up to 2045.
MAX_STR_WIDTH = 244
MAX_LABEL_CHARS = 80  # variable labels and the data label
MAX_VALUE_LABEL_BYTES = 32000
NAME_FIELD = 129  # varnames, value label names: 128 bytes of UTF-8 + NUL
FORMAT_FIELD = 57
VARIABLE_LABEL_FIELD = 321  # 80 characters × 4 bytes + NUL

# Variable types of format 118 (strN is N itself).
TYPE_STRL, TYPE_DOUBLE, TYPE_LONG, TYPE_BYTE = 32768, 65526, 65528, 65530

# Missing values. Bytes: valid −127…100, "." = 101, ".a"… ".z" = 102…127.
BYTE_MISSING = 101
# Longs: valid −2,147,483,647…2,147,483,620, "." = 2,147,483,621, ".a" = 2,147,483,622…
LONG_MIN, LONG_MAX = -2_147_483_647, 2_147_483_620
LONG_MISSING = 2_147_483_621
LONG_MISSING_A = LONG_MISSING + 1  # value label tables key ".a"… with the long values
# Doubles: "." is 2**1023 (0x7fe0000000000000); every valid double is below it.
DOUBLE_MISSING = 2.0**1023
DOUBLE_MAX = 8.98846567431157854e307  # 0x7fdfffffffffffff


#: Stata's reserved words, which no variable may be named (``help reswords``).
RESERVED_NAMES = frozenset(
    {"byte", "double", "float", "if", "in", "int", "long", "strL", "using", "with"}
)

GSO_ASCII = 130  # a GSO holding a NUL-terminated text (129 would be binary)
_GSO = struct.Struct("<3sIQBI")

_STATA_EPOCH_ORDINAL = date(1960, 1, 1).toordinal()
_STATA_EPOCH_DT = datetime(1960, 1, 1)

_FLUSH_BYTES = 1 << 20


Encoder = Callable[[Any], Any]


def write_dta(
    file: BinaryIO,
    variables: Sequence[Variable],
    rows: Iterable[Sequence[Any]],
    *,
    file_label: str = "",
) -> int:
    """Write a Stata 14+ data file (format 118), one row at a time.

    Parameters
    ----------
    file
        A binary, seekable file open for writing; the data file starts at its current
        position (the map offsets are relative to it).
    variables
        The columns, in order (see :mod:`app.exports.variables` for the cells of each kind).
    rows
        Sequences of cells in the variables' order, consumed one at a time (a generator of a
        million rows is never materialised).
    file_label
        The data label (cut at 80 characters).

    Returns
    -------
    int
        The number of rows written.

    Raises
    ------
    ValueError
        When the variables cannot be written (duplicate or reserved name, too many
        variables, value label keys Stata cannot hold), or when a cell is outside its
        variable's kind: the message names the variable and the row (1 = first row). The
        file is then incomplete and unrecognisable; the caller discards it.

    Notes
    -----
    Stata, "dta file format 118" (``help dta``, https://www.stata.com/help.cgi?dta);
    ReadStat's ``readstat_dta_write.c`` / ``readstat_dta_read.c`` for what the readers check.
    """
    _validate(variables)
    base = file.tell()
    out = bytearray()

    def tag(name: str) -> None:
        out.extend(name.encode("ascii"))

    # Header, with N zero until the last row is written.
    out += b"\0stata_dta>"  # "<stata_dta>" once complete
    tag("<header><release>")
    out += RELEASE
    tag("</release><byteorder>LSF</byteorder><K>")
    out += struct.pack("<H", len(variables))
    tag("</K><N>")
    patch_n = len(out)
    out += struct.pack("<Q", 0)
    tag("</N><label>")
    label = _label_bytes(file_label)
    out += struct.pack("<H", len(label)) + label
    tag("</label><timestamp>")
    stamp = _timestamp().encode("ascii")
    out += struct.pack("<B", len(stamp)) + stamp
    tag("</timestamp></header>")

    offsets = [0] * 14  # <stata_dta>, <map>, … </stata_dta>, end of file
    offsets[1] = len(out)
    tag("<map>")
    patch_map = len(out)
    out += bytes(8 * 14)
    tag("</map>")

    types = [_storage_type(v) for v in variables]
    offsets[2] = len(out)
    tag("<variable_types>")
    out += struct.pack(f"<{len(types)}H", *types)
    tag("</variable_types>")

    offsets[3] = len(out)
    tag("<varnames>")
    for variable in variables:
        out += _field(variable.name.encode("utf-8"), NAME_FIELD)
    tag("</varnames>")

    offsets[4] = len(out)
    tag("<sortlist>")
    out += bytes(2 * (len(variables) + 1))  # not sorted
    tag("</sortlist>")

    offsets[5] = len(out)
    tag("<formats>")
    for variable in variables:
        out += _field(_display_format(variable).encode("ascii"), FORMAT_FIELD)
    tag("</formats>")

    label_sets = [_value_label_set(v) for v in variables]
    offsets[6] = len(out)
    tag("<value_label_names>")
    for variable, labels in zip(variables, label_sets, strict=True):
        out += _field(variable.name.encode("utf-8") if labels else b"", NAME_FIELD)
    tag("</value_label_names>")

    offsets[7] = len(out)
    tag("<variable_labels>")
    for variable in variables:
        out += _field(_label_bytes(variable.label), VARIABLE_LABEL_FIELD)
    tag("</variable_labels>")

    offsets[8] = len(out)
    tag("<characteristics></characteristics>")
    offsets[9] = len(out)
    tag("<data>")
    file.write(out)
    out.clear()

    # Rows: one struct for the whole record; strL cells point at a GSO spilled on the side.
    record = struct.Struct("<" + "".join(_struct_codes(variables)))
    row_number = [0]  # the observation number o of a strL, shared with its encoders
    with tempfile.TemporaryFile(prefix="dta-strls-") as spill:
        gso = bytearray()
        encoders = [
            _encoder(variable, position, row_number, gso)
            for position, variable in enumerate(variables, 1)
        ]
        row_encoders = _row_encoders(variables, encoders)
        width = len(variables)
        count = 0
        for count, row in enumerate(rows, 1):
            if len(row) != width:
                raise ValueError(f"row {count}: {len(row)} cells for {width} variables")
            row_number[0] = count
            try:
                out += record.pack(*[encode(row) for encode in row_encoders])
            except CellError:
                raise_cell_error(variables, encoders, row, count)
            if len(out) >= _FLUSH_BYTES:
                file.write(out)
                out.clear()
            if len(gso) >= _FLUSH_BYTES:
                spill.write(gso)
                gso.clear()
        spill.write(gso)
        gso.clear()
        tag("</data>")
        file.write(out)
        out.clear()

        offsets[10] = file.tell() - base
        file.write(b"<strls>")
        spill.seek(0)
        shutil.copyfileobj(spill, file, 1 << 20)
        file.write(b"</strls>")

    offsets[11] = file.tell() - base
    file.write(_value_labels_section(variables, label_sets))
    offsets[12] = file.tell() - base
    file.write(b"</stata_dta>")
    end = file.tell()
    offsets[13] = end - base

    file.seek(base + patch_n)
    file.write(struct.pack("<Q", count))
    file.seek(base + patch_map)
    file.write(struct.pack("<14Q", *offsets))
    file.seek(base)
    file.write(b"<")  # the file is complete: make it recognisable
    file.seek(end)
    return count


# --- the descriptors ----------------------------------------------------------------------


def _validate(variables: Sequence[Variable]) -> None:
    if len(variables) > MAX_VARIABLES:
        raise ValueError(f"{len(variables)} variables, above Stata's {MAX_VARIABLES}")
    seen: set[str] = set()
    for variable in variables:
        name = variable.name
        if name in seen:
            raise ValueError(f"{name}: duplicate variable name")
        seen.add(name)
        if name in RESERVED_NAMES or (name.startswith("str") and name[3:].isdigit()):
            raise ValueError(f"{name}: a reserved word in Stata")
        if variable.value_labels and not variable.numeric:
            raise ValueError(f"{name}: value labels on a {variable.kind} variable")
        for key in variable.value_labels:
            _label_key(variable, key)
        for code in variable.missing_codes:
            if type(code) is not int or code not in CODE_RANGE:
                raise ValueError(f"{name}: missing code {code!r} is not a code")
        if len(set(variable.missing_codes)) != len(variable.missing_codes):
            raise ValueError(f"{name}: a missing code is declared twice")


def _label_key(variable: Variable, key: Any) -> int:
    """A value label key as Stata stores it: an integer of the long range."""
    if isinstance(key, bool) or not isinstance(key, int | float):
        raise ValueError(f"{variable.name}: value label key {key!r} is not a number")
    if isinstance(key, float) and not key.is_integer():
        raise ValueError(f"{variable.name}: value label key {key!r}: Stata labels integers only")
    value = int(key)
    if not LONG_MIN <= value <= LONG_MAX:
        raise ValueError(f"{variable.name}: value label key {key!r} outside Stata's long range")
    return value


def _storage_type(variable: Variable) -> int:
    if variable.kind == "text":
        return variable.width if variable.width <= MAX_STR_WIDTH else TYPE_STRL
    return {
        "code": TYPE_BYTE,
        "integer": TYPE_LONG,
        "number": TYPE_DOUBLE,
        "date": TYPE_LONG,
        "datetime": TYPE_DOUBLE,
    }[variable.kind]


def _struct_codes(variables: Sequence[Variable]) -> list[str]:
    """The struct fields of a record: a run of code (byte) variables is one bytes field."""
    codes = []
    for is_code, run in _runs(variables):
        if is_code:
            codes.append(f"{len(run)}s")
        else:
            codes += [_struct_code(v) for v in run]
    return codes


def _runs(variables: Sequence[Variable]) -> list[tuple[bool, list[Variable]]]:
    """The variables cut into runs of adjacent code variables and runs of others."""
    runs: list[tuple[bool, list[Variable]]] = []
    for variable in variables:
        is_code = variable.kind == "code"
        if runs and runs[-1][0] == is_code:
            runs[-1][1].append(variable)
        else:
            runs.append((is_code, [variable]))
    return runs


def _struct_code(variable: Variable) -> str:
    """The struct field of a variable outside a run of codes."""
    if variable.kind == "text":
        # A strL cell is 8 bytes: v (2 bytes) then o (6 bytes), one little-endian integer.
        return f"{variable.width}s" if variable.width <= MAX_STR_WIDTH else "Q"
    return {"integer": "i", "number": "d", "date": "i", "datetime": "d"}[variable.kind]


def _display_format(variable: Variable) -> str:
    if variable.kind == "text":
        return f"%{variable.width}s" if variable.width <= MAX_STR_WIDTH else "%9s"
    return {
        "code": "%8.0g",
        "integer": "%12.0g",
        "number": "%10.0g",
        "date": "%td",
        "datetime": "%tc",
    }[variable.kind]


def _field(raw: bytes, size: int) -> bytes:
    """A fixed-size, NUL-padded field (the caller keeps ``raw`` below ``size``)."""
    return raw[: size - 1] + bytes(size - min(len(raw), size - 1))


def _label_bytes(text: str) -> bytes:
    """A variable or data label: at most 80 characters (so at most 320 bytes) of UTF-8."""
    return text[:MAX_LABEL_CHARS].encode("utf-8", errors="replace")


def _timestamp() -> str:
    """``dd Mon yyyy hh:mm``, with English month names whatever the locale."""
    now = datetime.now()
    month = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"][
        now.month - 1
    ]
    return f"{now.day:02d} {month} {now.year:04d} {now.hour:02d}:{now.minute:02d}"


def _value_label_set(variable: Variable) -> list[tuple[int, str]]:
    """The (key, label) pairs of a variable's value label table, sorted by key.

    Declared missing codes are labelled through their extended missing values: the code's
    position i in ``missing_codes`` is ``.a`` + i, keyed 2,147,483,622 + i.
    """
    missing = variable.missing_codes
    pairs = [
        (_label_key(variable, key), text)
        for key, text in variable.value_labels.items()
        if not (type(key) is int and key in missing)
    ]
    for position, code in enumerate(missing):
        pairs.append((LONG_MISSING_A + position, variable.value_labels.get(code, str(code))))
    return sorted(pairs)


def _value_labels_section(
    variables: Sequence[Variable], label_sets: Sequence[list[tuple[int, str]]]
) -> bytes:
    """``<value_labels>``: per set its length, name and 3 padding bytes, then the table:
    n, txtlen, off[n], val[n], txt (NUL-terminated labels)."""
    out = bytearray(b"<value_labels>")
    for variable, pairs in zip(variables, label_sets, strict=True):
        if not pairs:
            continue
        texts = [truncate_utf8(text, MAX_VALUE_LABEL_BYTES) + b"\0" for _, text in pairs]
        offsets = []
        position = 0
        for text in texts:
            offsets.append(position)
            position += len(text)
        n = len(pairs)
        table = (
            struct.pack("<ii", n, position)
            + struct.pack(f"<{n}i", *offsets)
            + struct.pack(f"<{n}i", *(key for key, _ in pairs))
            + b"".join(texts)
        )
        out += b"<lbl>" + struct.pack("<i", len(table))
        out += _field(variable.name.encode("utf-8"), NAME_FIELD) + bytes(3)
        out += table + b"</lbl>"
    out += b"</value_labels>"
    return bytes(out)


# --- the data -------------------------------------------------------------------------------


RowEncoder = Callable[[Sequence[Any]], Any]
_CODE_TYPES = frozenset({int, type(None)})


def _row_encoders(variables: Sequence[Variable], encoders: Sequence[Encoder]) -> list[RowEncoder]:
    """Functions giving the struct fields of a row: one per run of codes or per other variable.

    A survey row is mostly codes: a run of adjacent code columns becomes one bytes field,
    looked up in C (``bytes(map(...))``) once a C-level type check has ruled out floats and
    bools (equal to ints as dict keys). Anything unusual (an out-of-range code, a numpy
    integer) takes the cell-by-cell path, which raises on a bad cell.
    """
    result: list[RowEncoder] = []
    start = 0
    for is_code, run in _runs(variables):
        stop = start + len(run)
        if is_code:
            result.append(_code_run(variables[start:stop], encoders[start:stop], start, stop))
        else:
            result += [_single(encoders[i], i) for i in range(start, stop)]
        start = stop
    return result


def _single(encode: Encoder, index: int) -> RowEncoder:
    def encode_row(row: Sequence[Any]) -> Any:
        return encode(row[index])

    return encode_row


def _code_run(
    variables: Sequence[Variable], encoders: Sequence[Encoder], start: int, stop: int
) -> RowEncoder:
    if all(v.missing_codes == variables[0].missing_codes for v in variables):
        # One table serves the whole run (the usual case: a grid of questions).
        tables = [_code_table(variables[0].missing_codes)]
    else:
        tables = [_code_table(v.missing_codes) for v in variables]
    shared = tables[0].__getitem__ if len(tables) == 1 else None

    def encode_row(row: Sequence[Any]) -> bytes:
        cells = row[start:stop]
        if _CODE_TYPES.issuperset(map(type, cells)):
            try:
                if shared is not None:
                    return bytes(map(shared, cells))
                return bytes(table[cell] for table, cell in zip(tables, cells, strict=True))
            except KeyError:
                pass
        return bytes(encode(cell) for encode, cell in zip(encoders, cells, strict=True))

    return encode_row


def _code_table(missing_codes: tuple[int, ...]) -> dict[int | None, int]:
    """Code (or None) → the stored int8, as an unsigned value for a bytes field."""
    table: dict[int | None, int] = {code: code & 0xFF for code in CODE_RANGE}
    table[None] = BYTE_MISSING
    for position, code in enumerate(missing_codes):
        table[code] = BYTE_MISSING + 1 + position  # .a, .b, …
    return table


def _encoder(variable: Variable, position: int, row_number: list[int], gso: bytearray) -> Encoder:
    """The function turning one cell of ``variable`` into the value its struct field packs."""
    if variable.kind == "code":
        return _code_encoder(variable.missing_codes)
    if variable.kind == "integer":
        return _integer_encoder()
    if variable.kind == "number":
        return _number_encoder()
    if variable.kind == "date":
        return _date_encoder()
    if variable.kind == "datetime":
        return _datetime_encoder()
    if variable.width <= MAX_STR_WIDTH:
        return _str_encoder(variable.width)
    return _strl_encoder(variable.width, position, row_number, gso)


def _code_encoder(missing_codes: tuple[int, ...]) -> Encoder:
    """A code as its stored byte, unsigned (codes always sit in a run's bytes field)."""
    table = _code_table(missing_codes)

    def encode(cell: Any) -> int:
        # `type(...) is int` first: a float or a bool equal to a code must not pass.
        if type(cell) is int or cell is None:
            found = table.get(cell)
            if found is not None:
                return found
            raise CellError(f"code {cell} outside {CODE_RANGE.start}…{CODE_RANGE.stop - 1}")
        if isinstance(cell, numbers.Integral) and not isinstance(cell, bool):
            return encode(int(cell))
        raise CellError(f"{describe(cell)} is not a code (an int)")

    return encode


def _integer_encoder() -> Encoder:
    def encode(cell: Any) -> int:
        if type(cell) is int:
            if LONG_MIN <= cell <= LONG_MAX:
                return cell
            raise CellError(f"integer {cell} outside Stata's long range {LONG_MIN}…{LONG_MAX}")
        if cell is None:
            return LONG_MISSING
        if isinstance(cell, numbers.Integral) and not isinstance(cell, bool):
            return encode(int(cell))
        raise CellError(f"{describe(cell)} is not an integer")

    return encode


def _number_encoder() -> Encoder:
    def encode(cell: Any) -> float:
        if type(cell) is float:
            value = cell
        elif cell is None:
            return DOUBLE_MISSING
        elif isinstance(cell, bool) or not isinstance(cell, numbers.Real):
            raise CellError(f"{describe(cell)} is not a number")
        else:
            try:
                value = float(cell)
            except OverflowError:
                raise CellError(f"{describe(cell)} is too large for a double") from None
        if not -DOUBLE_MAX <= value <= DOUBLE_MAX:  # also false for NaN
            raise CellError(f"{describe(cell)} is not a finite number Stata can hold")
        return value

    return encode


def _date_encoder() -> Encoder:
    def encode(cell: Any) -> int:
        if cell is None:
            return LONG_MISSING
        if not isinstance(cell, date) or isinstance(cell, datetime):
            raise CellError(f"{describe(cell)} is not a date")
        return cell.toordinal() - _STATA_EPOCH_ORDINAL

    return encode


def _datetime_encoder() -> Encoder:
    def encode(cell: Any) -> float:
        if cell is None:
            return DOUBLE_MISSING
        micros = microseconds_since(_STATA_EPOCH_DT, cell)
        return micros / 1000  # one rounding, from exact microseconds

    return encode


def _str_encoder(width: int) -> Encoder:
    def encode(cell: Any) -> bytes:
        if cell is None or cell == "":
            return b""  # struct pads the field with NULs
        return text_bytes(cell, width)

    return encode


def _strl_encoder(width: int, position: int, row_number: list[int], gso: bytearray) -> Encoder:
    def encode(cell: Any) -> int:
        if cell is None or cell == "":
            return 0  # (v, o) = (0, 0): the empty strL, no GSO needed
        raw = text_bytes(cell, width)
        observation = row_number[0]
        gso.extend(_GSO.pack(b"GSO", position, observation, GSO_ASCII, len(raw) + 1))
        gso.extend(raw)
        gso.append(0)
        return (observation << 16) | position  # v in the low 2 bytes, o in the high 6

    return encode
