"""SPSS system file (``.sav``) writer, streaming and memory-flat (domain-free).

Why our own writer: pyreadstat (ReadStat) writes only from a whole in-memory pandas or polars
data frame, and a national campaign export (1,000,000 rows × ~40 columns) must stay under
300 MB of peak memory. This writer takes the rows one at a time, writes them as they come and
seeks back at the end to patch the case count, so its memory does not grow with the rows. The
format is documented (GNU PSPP Developers Guide, "System File Format"); our files are judged
by the two real readers, pyreadstat and R haven (both ReadStat, tested in
``tests/app/test_export_statfiles.py``).

Layout written (little-endian, UTF-8, bytecode compression)::

    file header (176 bytes, "$FL2", compression = 1, bias 100, case count patched)
    variable records (type 2): one per 8-byte unit, continuations typed -1
    value label records (types 3 + 4), one pair per distinct label set
    machine integer info (7.3: character code 65001), machine floating-point info (7.4)
    variable display parameters (7.11), long variable names (7.13),
    very long string widths (7.14), 64-bit case count (7.16), character encoding (7.20)
    dictionary termination (999), then the compressed cases

Choices worth knowing:

- Bytecode compression (header compression = 1, the SPSS default): a code is one byte
  instead of eight, so a survey file is several times smaller. zlib ("$FL3") is not used:
  older SPSS releases and some readers do not open it.
- Strings are space-padded (SPSS has no string missing value): None and ``""`` are both read
  back as ``""``, and trailing spaces of a text are lost, as with any SPSS file.
- A string wider than 255 bytes is a "very long string": segments of width 255 (the last one
  narrower), 255 bytes of data in each 256-byte segment, named in record 7.14 (PSPP guide,
  "Very Long String Record").
- Variable labels are cut at 255 bytes, value labels at 120 bytes and the file label at
  64 bytes, always at a UTF-8 character boundary (SPSS's documented limits).
- The file begins with a NUL instead of ``$`` until the last row is written: a file left
  behind by an error is not recognised as an SPSS file by any reader.
"""

from __future__ import annotations

import math
import numbers
import struct
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

__all__ = ["write_sav"]

#: SPSS keywords that cannot name a variable (PSPP guide, "Variable Record" / SPSS syntax).
RESERVED_NAMES = frozenset(
    {"ALL", "AND", "BY", "EQ", "GE", "GT", "LE", "LT", "NE", "NOT", "OR", "TO", "WITH"}
)
MAX_STRING_WIDTH = 32767  # SPSS's widest string, in bytes
MAX_VARIABLE_LABEL = 255  # bytes (SPSS documents 256, PSPP keeps 255: the smaller one)
MAX_VALUE_LABEL = 120  # bytes, SPSS 14+
MAX_FILE_LABEL = 64  # bytes, a fixed field of the header
INT32_RANGE = range(-(2**31), 2**31)

# Short (8-byte) names and very long strings.
SHORT_NAME_LEN = 8
VLS_SEGMENT_WIDTH = 255  # declared width of every segment but the last
VLS_EFFECTIVE = 252  # a very long string of width w has (w + 251) // 252 segments
VLS_SEGMENT_DATA = 255  # bytes of the string held by each full segment

# Formats: (type << 16) | (width << 8) | decimals (PSPP guide, "Variable Record").
FMT_A, FMT_F, FMT_DATE, FMT_DATETIME = 1, 5, 20, 22

# Measurement levels and alignments of record 7.11.
NOMINAL, SCALE = 1, 3
LEFT, RIGHT = 0, 1

# Bytecode compression (PSPP guide, "Data Record").
BIAS = 100.0
OP_RAW, OP_SPACES, OP_SYSMIS = 253, 254, 255
SPACES8 = b" " * 8
_OP = [bytes([i]) for i in range(256)]
_RAW, _SPACES, _SYSMIS = _OP[OP_RAW], _OP[OP_SPACES], _OP[OP_SYSMIS]

_DOUBLE = struct.Struct("<d")
#: The doubles that compress to one byte: integers −99…151 (codes 1…251 with bias 100),
#: looked up by their exact bytes so that −0.0 (not 0.0) keeps its eight bytes.
_COMPRESSIBLE = {_DOUBLE.pack(float(k)): _OP[k + int(BIAS)] for k in range(-99, 152)}

SYSMIS = -1.7976931348623157e308  # -DBL_MAX, the system-missing value
_HIGHEST = b"\xff\xff\xff\xff\xff\xff\xef\x7f"  # DBL_MAX
_LOWEST = b"\xfe\xff\xff\xff\xff\xff\xef\xff"  # the double just above -DBL_MAX
_SYSMIS_BYTES = _DOUBLE.pack(SYSMIS)

#: SPSS dates count seconds from the start of the Gregorian calendar.
_SPSS_EPOCH = date(1582, 10, 14)
_SPSS_EPOCH_ORDINAL = _SPSS_EPOCH.toordinal()
_SPSS_EPOCH_DT = datetime(1582, 10, 14)

_FLUSH_OPS = 1 << 15  # opcodes buffered before whole blocks are written out
_FLUSH_BYTES = 1 << 20  # output bytes buffered before a write


Encoder = Callable[[Any], tuple[bytes, bytes]]


def write_sav(
    file: BinaryIO,
    variables: Sequence[Variable],
    rows: Iterable[Sequence[Any]],
    *,
    file_label: str = "",
) -> int:
    """Write an SPSS system file, one row at a time.

    Parameters
    ----------
    file
        A binary, seekable file open for writing; the system file starts at its current
        position (the case count is patched there at the end).
    variables
        The columns, in order (see :mod:`app.exports.variables` for the cells of each kind).
    rows
        Sequences of cells in the variables' order, consumed one at a time (a generator of a
        million rows is never materialised).
    file_label
        The file label (cut at 64 bytes).

    Returns
    -------
    int
        The number of rows written.

    Raises
    ------
    ValueError
        When the variables cannot be written (duplicate or reserved name, string too wide,
        value labels on a non-numeric variable), or when a cell is outside its variable's
        kind: the message names the variable and the row (1 = first row). The file is then
        incomplete and unrecognisable; the caller discards it.

    Notes
    -----
    GNU PSPP Developers Guide, "System File Format"
    (https://www.gnu.org/software/pspp/pspp-dev/html_node/System-File-Format.html);
    ReadStat's ``readstat_sav_write.c`` / ``readstat_sav_read.c`` for what the readers check.
    """
    layout = _Layout(variables)
    base = file.tell()
    header, patch_ncases = _header(layout, file_label)
    dictionary, patch_ncases64 = _dictionary(layout)
    file.write(header)
    file.write(dictionary)
    patch_ncases64 += len(header)

    encoders = [_encoder(v) for v in variables]
    row_encoders = _row_encoders(variables, encoders)
    width = len(variables)
    ops = bytearray()
    data = bytearray()
    out = bytearray()
    count = 0
    for count, row in enumerate(rows, 1):
        if len(row) != width:
            raise ValueError(f"row {count}: {len(row)} cells for {width} variables")
        try:
            for encode in row_encoders:
                cell_ops, cell_data = encode(row)
                ops += cell_ops
                data += cell_data
        except CellError:
            raise_cell_error(variables, encoders, row, count)
        if len(ops) >= _FLUSH_OPS:
            _move_blocks(ops, data, out)
            if len(out) >= _FLUSH_BYTES:
                file.write(out)
                out.clear()
    if len(ops) % 8:
        ops += bytes(8 - len(ops) % 8)  # opcode 0 is padding: readers skip it
    _move_blocks(ops, data, out)
    file.write(out)

    end = file.tell()
    file.seek(base + patch_ncases)
    file.write(struct.pack("<i", count if count in INT32_RANGE else -1))
    file.seek(base + patch_ncases64)
    file.write(struct.pack("<q", count))
    file.seek(base)
    file.write(b"$")  # the file is complete: make it recognisable
    file.seek(end)
    return count


# --- the dictionary ---------------------------------------------------------------------


class _Segment:
    """One SPSS dictionary variable: a whole variable, or a piece of a very long string."""

    __slots__ = ("index", "short_name", "units", "width")

    def __init__(self, short_name: str, width: int, index: int) -> None:
        self.short_name = short_name
        self.width = width  # 0 numeric, else string width in bytes
        self.units = 1 if width == 0 else (width + 7) // 8
        self.index = index  # 1-based dictionary index (counts continuation records)


class _Layout:
    """Validated variables with their short names and segments."""

    def __init__(self, variables: Sequence[Variable]) -> None:
        seen: set[str] = set()
        for variable in variables:
            upper = variable.name.upper()
            if upper in seen:
                raise ValueError(f"{variable.name}: duplicate variable name (SPSS ignores case)")
            if upper in RESERVED_NAMES:
                raise ValueError(f"{variable.name}: a reserved word in SPSS")
            seen.add(upper)
            if variable.kind == "text" and variable.width > MAX_STRING_WIDTH:
                raise ValueError(
                    f"{variable.name}: width {variable.width} above SPSS's {MAX_STRING_WIDTH}"
                )
            if variable.value_labels and not variable.numeric:
                raise ValueError(f"{variable.name}: value labels on a {variable.kind} variable")
            for key in variable.value_labels:
                if isinstance(key, bool) or not isinstance(key, int | float):
                    raise ValueError(f"{variable.name}: value label key {key!r} is not a number")
                if not math.isfinite(key):
                    raise ValueError(f"{variable.name}: value label key {key!r}")
            for code in variable.missing_codes:
                if type(code) is not int or code not in CODE_RANGE:
                    raise ValueError(f"{variable.name}: missing code {code!r} is not a code")
        self.variables = list(variables)
        self.short_names = _short_names(self.variables)
        self.segments: list[list[_Segment]] = []
        taken = {name.upper() for name in self.short_names}
        index = 1
        for variable, short in zip(self.variables, self.short_names, strict=True):
            segments = []
            for number, width in enumerate(_segment_widths(variable)):
                name = short if number == 0 else _segment_name(short, number, taken)
                segment = _Segment(name, width, index)
                segments.append(segment)
                index += segment.units
            self.segments.append(segments)
        self.case_units = index - 1


def _segment_widths(variable: Variable) -> list[int]:
    """The widths of a variable's dictionary entries (PSPP guide, "Very Long String Record")."""
    if variable.kind != "text":
        return [0]
    width = variable.width
    if width <= VLS_SEGMENT_WIDTH:
        return [width]
    count = (width + VLS_EFFECTIVE - 1) // VLS_EFFECTIVE
    return [VLS_SEGMENT_WIDTH] * (count - 1) + [width - (count - 1) * VLS_EFFECTIVE]


def _short_names(variables: Sequence[Variable]) -> list[str]:
    """Unique 8-byte names: a variable's own (upper-cased) name when it fits, else a prefix.

    Names that fit are given first so that no generated name takes one of them (SPSS
    matches short names without regard to case, like the record 7.13 readers).
    """
    names: list[str | None] = [None] * len(variables)
    taken: set[str] = set()
    for i, variable in enumerate(variables):
        if len(variable.name) <= SHORT_NAME_LEN:
            names[i] = variable.name.upper()
            taken.add(names[i] or "")
    for i, variable in enumerate(variables):
        if names[i] is None:
            candidate = variable.name[:SHORT_NAME_LEN].upper()
            trial = 0
            while candidate in taken:
                trial += 1
                suffix = f"_{trial}"
                candidate = variable.name[: SHORT_NAME_LEN - len(suffix)].upper() + suffix
            names[i] = candidate
            taken.add(candidate)
    return [name or "" for name in names]


def _segment_name(short: str, number: int, taken: set[str]) -> str:
    """A unique name for segment ``number`` (≥ 1) of a very long string: ``PREFI1``, ``PREFI2``…"""
    suffix = str(number)
    candidate = short[: SHORT_NAME_LEN - len(suffix)] + suffix
    trial = 0
    while candidate in taken:
        trial += 1
        suffix = f"{number}_{trial}"
        candidate = short[: max(1, SHORT_NAME_LEN - len(suffix))] + suffix
        candidate = candidate[:SHORT_NAME_LEN]
    taken.add(candidate)
    return candidate


def _pad(raw: bytes, size: int, fill: bytes = b" ") -> bytes:
    return raw + fill * (size - len(raw))


def _header(layout: _Layout, file_label: str) -> tuple[bytes, int]:
    """The 176-byte file header, with the offset of its case count."""
    now = datetime.now()
    months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    header = struct.pack(
        "<4s60siiiiid9s8s64s3x",
        b"\0FL2",  # "$FL2" once the last row is written
        _pad(b"@(#) SPSS DATA FILE - Barometre streaming writer", 60),
        2,  # layout code
        layout.case_units,  # nominal case size, in 8-byte units
        1,  # bytecode compression
        0,  # no weight variable
        -1,  # case count, patched at the end
        BIAS,
        f"{now.day:02d} {months[now.month - 1]} {now.year % 100:02d}".encode("ascii"),
        now.strftime("%H:%M:%S").encode("ascii"),
        _pad(truncate_utf8(file_label, MAX_FILE_LABEL), MAX_FILE_LABEL),
    )
    return header, struct.calcsize("<4s60siiii")


def _format(kind: str, width: int) -> int:
    spec = {
        "code": (FMT_F, 4, 0),
        "integer": (FMT_F, 11, 0),
        "number": (FMT_F, 12, 4),
        "date": (FMT_DATE, 11, 0),
        "datetime": (FMT_DATETIME, 20, 0),
    }.get(kind, (FMT_A, min(width, VLS_SEGMENT_WIDTH), 0))
    return (spec[0] << 16) | (spec[1] << 8) | spec[2]


def _dictionary(layout: _Layout) -> tuple[bytes, int]:
    """Every record between the header and the data, with the offset of the 64-bit count."""
    out = bytearray()
    for variable, segments in zip(layout.variables, layout.segments, strict=True):
        for number, segment in enumerate(segments):
            first = number == 0
            label = truncate_utf8(variable.label, MAX_VARIABLE_LABEL) if first else b""
            missing = variable.missing_codes if first else ()
            fmt = (
                _format(variable.kind, variable.width) if first else _format("text", segment.width)
            )
            out += struct.pack(
                "<iiiiii8s",
                2,
                segment.width,
                1 if label else 0,
                len(missing),
                fmt,
                fmt,
                _pad(segment.short_name.encode("ascii"), 8),
            )
            if label:
                out += struct.pack("<i", len(label)) + _pad(label, -(-len(label) // 4) * 4)
            for code in missing:
                out += _DOUBLE.pack(float(code))
            for _ in range(segment.units - 1):
                out += struct.pack("<iiiiii8s", 2, -1, 0, 0, 0, 0, SPACES8)

    # Value labels: one record pair per distinct set, listing every variable that uses it.
    label_sets: dict[tuple[tuple[float, str], ...], list[int]] = {}
    for variable, segments in zip(layout.variables, layout.segments, strict=True):
        if variable.value_labels:
            key = tuple(sorted((float(k), v) for k, v in variable.value_labels.items()))
            label_sets.setdefault(key, []).append(segments[0].index)
    for labels, indexes in label_sets.items():
        out += struct.pack("<ii", 3, len(labels))
        for value, text in labels:
            raw = truncate_utf8(text, MAX_VALUE_LABEL)
            out += (
                _DOUBLE.pack(value) + bytes([len(raw)]) + _pad(raw, -(-(len(raw) + 1) // 8) * 8 - 1)
            )
        out += struct.pack("<ii", 4, len(indexes)) + struct.pack(f"<{len(indexes)}i", *indexes)

    # 7.3 machine integer info: version 20.0.0, unknown machine, IEEE 754, little-endian,
    # character code 65001 (UTF-8).
    out += struct.pack("<iiii8i", 7, 3, 4, 8, 20, 0, 0, -1, 1, 1, 2, 65001)
    # 7.4 machine floating-point info: system-missing, highest and lowest values.
    out += struct.pack("<iiii", 7, 4, 8, 3) + _SYSMIS_BYTES + _HIGHEST + _LOWEST

    # 7.11 variable display parameters: one (measure, width, alignment) per segment, as SPSS
    # and ReadStat ≥ 1.1.9 write and read them.
    display = []
    for variable, segments in zip(layout.variables, layout.segments, strict=True):
        measure, columns, align = _display(variable)
        display += [(measure, columns, align)] * len(segments)
    out += struct.pack("<iiii", 7, 11, 4, 3 * len(display))
    out += b"".join(struct.pack("<iii", *d) for d in display)

    # 7.13 long variable names: SHORT=Long pairs separated by tabs.
    names = "\t".join(
        f"{short}={v.name}" for short, v in zip(layout.short_names, layout.variables, strict=True)
    ).encode("utf-8")
    out += struct.pack("<iiii", 7, 13, 1, len(names)) + names

    # 7.14 very long strings: SHORT=width (five digits), each pair ended by NUL and tab.
    very_long = b"".join(
        f"{segments[0].short_name}={v.width:05d}".encode("ascii") + b"\0\t"
        for v, segments in zip(layout.variables, layout.segments, strict=True)
        if len(segments) > 1
    )
    if very_long:
        out += struct.pack("<iiii", 7, 14, 1, len(very_long)) + very_long

    # 7.16 64-bit case count (patched at the end), then 7.20 character encoding.
    out += struct.pack("<iiii", 7, 16, 8, 2) + struct.pack("<q", 1)
    patch_ncases64 = len(out)
    out += struct.pack("<q", -1)
    out += struct.pack("<iiii", 7, 20, 1, 5) + b"UTF-8"

    out += struct.pack("<ii", 999, 0)
    return bytes(out), patch_ncases64


def _display(variable: Variable) -> tuple[int, int, int]:
    """Measurement level, display columns and alignment, for SPSS's data view."""
    if variable.kind == "code":
        return NOMINAL, 8, RIGHT
    if variable.kind == "text":
        return NOMINAL, max(1, min(variable.width, 40)), LEFT
    columns = {"integer": 11, "number": 12, "date": 11, "datetime": 20}[variable.kind]
    return SCALE, columns, RIGHT


# --- the data ---------------------------------------------------------------------------


def _move_blocks(ops: bytearray, data: bytearray, out: bytearray) -> None:
    """Append the whole 8-opcode blocks of ``ops`` to ``out``, each followed by its data.

    Opcode 253 is the only one followed by data (eight bytes each), so only the blocks
    holding a 253 need a step of their own; the blocks between them are copied at once.
    """
    whole = len(ops) - len(ops) % 8
    copied = 0  # opcodes already in `out`
    position = 0  # data bytes already in `out`
    raw = ops.find(OP_RAW, 0, whole)
    while raw != -1:
        end = raw - raw % 8 + 8  # the end of the block holding this 253
        out += ops[copied:end]
        size = ops.count(OP_RAW, raw, end) * 8
        out += data[position : position + size]
        position += size
        copied = end
        raw = ops.find(OP_RAW, end, whole)
    out += ops[copied:whole]
    del ops[:whole]
    del data[:position]


RowEncoder = Callable[[Sequence[Any]], tuple[bytes, bytes]]
_CODE_TYPES = frozenset({int, type(None)})


def _row_encoders(variables: Sequence[Variable], encoders: Sequence[Encoder]) -> list[RowEncoder]:
    """Functions encoding a whole row, one per run of code variables or per other variable.

    A survey row is mostly codes: a run of adjacent code columns is encoded by one call, its
    opcodes looked up in C (``bytes(map(...))``) once a C-level type check has ruled out
    floats and bools (equal to ints as dict keys). Anything unusual (an out-of-range code,
    −100, which is not compressible, a numpy integer) takes the cell-by-cell path.
    """
    result: list[RowEncoder] = []
    i = 0
    while i < len(variables):
        if variables[i].kind != "code":
            result.append(_single(encoders[i], i))
            i += 1
            continue
        stop = i
        while stop < len(variables) and variables[stop].kind == "code":
            stop += 1
        result.append(_code_run(encoders[i:stop], i, stop))
        i = stop
    return result


def _single(encode: Encoder, index: int) -> RowEncoder:
    def encode_row(row: Sequence[Any]) -> tuple[bytes, bytes]:
        return encode(row[index])

    return encode_row


def _code_run(encoders: Sequence[Encoder], start: int, stop: int) -> RowEncoder:
    opcode = {None: OP_SYSMIS} | {code: code + int(BIAS) for code in range(-99, CODE_RANGE.stop)}

    def encode_row(row: Sequence[Any]) -> tuple[bytes, bytes]:
        cells = row[start:stop]
        if _CODE_TYPES.issuperset(map(type, cells)):
            try:
                return bytes(map(opcode.__getitem__, cells)), b""
            except KeyError:
                pass
        parts = [encode(cell) for encode, cell in zip(encoders, cells, strict=True)]
        return b"".join(p[0] for p in parts), b"".join(p[1] for p in parts)

    return encode_row


def _number_ops(value: float) -> tuple[bytes, bytes]:
    raw = _DOUBLE.pack(value)
    op = _COMPRESSIBLE.get(raw)
    return (op, b"") if op is not None else (_RAW, raw)


def _encoder(variable: Variable) -> Encoder:
    """The function turning one cell of ``variable`` into (opcodes, data)."""
    if variable.kind == "code":
        return _code_encoder()
    if variable.kind == "integer":
        return _integer_encoder()
    if variable.kind == "number":
        return _number_encoder()
    if variable.kind == "date":
        return _date_encoder()
    if variable.kind == "datetime":
        return _datetime_encoder()
    if variable.width <= VLS_SEGMENT_WIDTH:
        return _short_text_encoder(variable.width)
    return _very_long_text_encoder(variable.width, _segment_widths(variable))


def _code_encoder() -> Encoder:
    table: dict[int | None, tuple[bytes, bytes]] = {None: (_SYSMIS, b"")}
    for code in CODE_RANGE:
        table[code] = _number_ops(float(code))

    def encode(cell: Any) -> tuple[bytes, bytes]:
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
    def encode(cell: Any) -> tuple[bytes, bytes]:
        if type(cell) is int:
            if cell in INT32_RANGE:
                return _number_ops(float(cell))
            raise CellError(f"integer {cell} does not fit in 32 bits")
        if cell is None:
            return _SYSMIS, b""
        if isinstance(cell, numbers.Integral) and not isinstance(cell, bool):
            return encode(int(cell))
        raise CellError(f"{describe(cell)} is not an integer")

    return encode


def _number_encoder() -> Encoder:
    def encode(cell: Any) -> tuple[bytes, bytes]:
        if cell is None:
            return _SYSMIS, b""
        if isinstance(cell, bool) or not isinstance(cell, numbers.Real):
            raise CellError(f"{describe(cell)} is not a number")
        try:
            value = float(cell)
        except OverflowError:
            raise CellError(f"{describe(cell)} is too large for a double") from None
        if not math.isfinite(value) or value == SYSMIS:
            raise CellError(f"{describe(cell)} is not a finite number")
        return _number_ops(value)

    return encode


def _date_encoder() -> Encoder:
    def encode(cell: Any) -> tuple[bytes, bytes]:
        if cell is None:
            return _SYSMIS, b""
        if not isinstance(cell, date) or isinstance(cell, datetime):
            raise CellError(f"{describe(cell)} is not a date")
        return _RAW, _DOUBLE.pack((cell.toordinal() - _SPSS_EPOCH_ORDINAL) * 86400.0)

    return encode


def _datetime_encoder() -> Encoder:
    def encode(cell: Any) -> tuple[bytes, bytes]:
        if cell is None:
            return _SYSMIS, b""
        micros = microseconds_since(_SPSS_EPOCH_DT, cell)
        return _RAW, _DOUBLE.pack(micros / 1e6)  # one rounding, from exact microseconds

    return encode


def _short_text_encoder(width: int) -> Encoder:
    units = (width + 7) // 8
    # Units holding text are written raw (253), the space padding after them as 254: the
    # text itself is rarely eight spaces, and compressing only the tail is exact and cheap.
    ops_for = [_RAW * k + _SPACES * (units - k) for k in range(units + 1)]
    blank = (ops_for[0], b"")

    def encode(cell: Any) -> tuple[bytes, bytes]:
        if cell is None or cell == "":
            return blank
        raw = text_bytes(cell, width)
        used = (len(raw) + 7) // 8
        return ops_for[used], raw + b" " * (used * 8 - len(raw))

    return encode


def _very_long_text_encoder(width: int, widths: list[int]) -> Encoder:
    seg_units = [(w + 7) // 8 for w in widths]
    # The opcodes of segments left blank by a text, from segment k on (254s only).
    blank_from = [b"".join(_SPACES * u for u in seg_units[k:]) for k in range(len(widths) + 1)]
    blank = (blank_from[0], b"")
    last = len(widths) - 1

    def encode(cell: Any) -> tuple[bytes, bytes]:
        if cell is None or cell == "":
            return blank
        raw = text_bytes(cell, width)
        ops = bytearray()
        data = bytearray()
        # Each segment holds the next 255 bytes of the text (the last one: what is left),
        # padded with spaces to its 8-byte units (PSPP guide, "Very Long String Record").
        # Segments after the text are blank: their opcodes are precomputed.
        filled = min(len(widths), -(-len(raw) // VLS_SEGMENT_DATA))
        for number in range(filled):
            start = number * VLS_SEGMENT_DATA
            piece = raw[start : start + (VLS_SEGMENT_DATA if number < last else widths[-1])]
            used = (len(piece) + 7) // 8
            ops += _RAW * used + _SPACES * (seg_units[number] - used)
            data += piece + b" " * (used * 8 - len(piece))
        ops += blank_from[filled]
        return bytes(ops), bytes(data)

    return encode
