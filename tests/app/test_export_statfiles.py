"""The SPSS and Stata writers, judged by the two real readers: pyreadstat and R haven.

Both readers are ReadStat underneath, but different releases wrapped differently (pyreadstat's
pandas conversion, haven's labelled vectors and tagged NAs), so each file is read by both. R
is required: the test fails, never skips, without ``Rscript`` and haven (``scripts/test.sh``
installs them).
"""

from __future__ import annotations

import io
import math
import shutil
import struct
import subprocess
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyreadstat
import pytest

from app.exports.dta import write_dta
from app.exports.sav import write_sav
from app.exports.variables import Variable

Writer = Callable[..., int]
WRITERS: dict[str, Writer] = {"sav": write_sav, "dta": write_dta}

SATISFACTION = {1: "Très satisfait", 2: "Satisfait", 3: "Pas satisfait"}
NOT_APPLICABLE, DONT_KNOW = -1, -2
# 213 bytes, above SPSS's 120: the cut falls in the middle of an é. No trailing space, as
# ReadStat strips trailing spaces from labels.
LONG_VALUE_LABEL = ("Voir" + "Réponse détaillée " * 10).strip()
NAME_32 = "a_variable_name_of_32_characters"
LABEL_300 = ("Question" + "Qualité de l'accueil ☺ — " * 13)[:300]  # the 255-byte cut splits an é
LONG_TEXT = "ab" + "é" * 2498 + "!!"  # 5,000 bytes; a character straddles each 255-byte cut
COMMENTS = ["Accueil chaleureux, merci ! 😀", "", None, "Ça va", "Zoë à l'œil", "x"]
COMMENT_WIDTH = max(len((c or "").encode()) for c in COMMENTS)

VARIABLES = [
    Variable(
        "satisfaction_accueil",
        "Satisfaction à l'accueil",
        "code",
        value_labels={**SATISFACTION, NOT_APPLICABLE: "Sans objet", DONT_KNOW: "Ne sait pas"},
        missing_codes=(NOT_APPLICABLE, DONT_KNOW),
    ),
    # Same first 8 characters as the one above: SPSS short names must still be unique.
    Variable(
        "satisfaction_attente",
        "Satisfaction : attente",
        "code",
        value_labels={1: "Oui", 2: LONG_VALUE_LABEL},
    ),
    Variable(NAME_32, LABEL_300, "integer"),
    Variable("score", "Score pondéré", "number"),
    Variable("comment", "Commentaire libre", "text", width=COMMENT_WIDTH),
    Variable("long_text", "Texte long", "text", width=len(LONG_TEXT.encode())),
    Variable("visit_date", "Date de visite", "date"),
    Variable("visit_at", "Heure de visite", "datetime"),
]
# In the first column, the first missing cell is the system-missing one: pyreadstat 1.3.8,
# with user_missing=True, returns garbage for a system-missing byte/long cell that follows an
# extended missing value in the same column (it casts an uninitialised integer buffer to
# object). Our file is right there too, as haven reads it; the last row has that order.
ROWS: list[list[Any]] = [
    [1, 1, 3, -2.5, COMMENTS[0], LONG_TEXT, date(2024, 3, 1), datetime(2024, 3, 1, 12, 30, 15)],
    [None, 2, None, None, COMMENTS[1], "", None, None],
    [NOT_APPLICABLE, None, -2147483647, 1e10, COMMENTS[2], None, date(1960, 1, 1), None],
    [2, 1, 0, 0.125, COMMENTS[3], "court", date(1582, 10, 14), datetime(1970, 1, 1)],
    [DONT_KNOW, 2, 2147483620, 3, COMMENTS[4], "é" * 300, date(2099, 12, 31), None],
    [
        None,
        1,
        42,
        -0.001,
        COMMENTS[5],
        "z",
        date(2000, 2, 29),
        datetime(1999, 12, 31, 23, 59, 59, 250000),
    ],
]


def write(kind: str, path: Path, rows: Sequence[Sequence[Any]] = ROWS) -> int:
    with path.open("wb") as handle:
        return WRITERS[kind](handle, VARIABLES, iter(rows), file_label="Baromètre — test 2024")


def utf8_cut(text: str, limit: int) -> str:
    return text.encode()[:limit].decode(errors="ignore")


def expected_label(kind: str, text: str) -> str:
    return utf8_cut(text, 255) if kind == "sav" else text[:80]


def expected_text(cell: str | None) -> str:
    return cell or ""  # neither format has a string missing value


def plain(value: Any) -> Any:
    """A reader's cell as a plain Python value: None for every kind of missing."""
    if value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return value


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("statfiles")
    paths = {}
    for kind in WRITERS:
        paths[kind] = folder / f"table.{kind}"
        assert write(kind, paths[kind]) == len(ROWS)
    return paths


# --- pyreadstat -------------------------------------------------------------------------


def test_pyreadstat_reads_the_sav_file(files: dict[str, Path]) -> None:
    frame, meta = pyreadstat.read_sav(str(files["sav"]), user_missing=True)

    assert list(frame.columns) == [v.name for v in VARIABLES]
    assert len(frame) == len(ROWS)
    assert meta.file_label == "Baromètre — test 2024"
    for variable in VARIABLES:
        assert meta.column_names_to_labels[variable.name] == expected_label("sav", variable.label)
    column = {v.name: [plain(x) for x in frame[v.name]] for v in VARIABLES}
    # Codes and numbers are doubles; user-missing codes keep their value.
    assert column["satisfaction_accueil"] == [1, None, -1, 2, -2, None]
    assert column["satisfaction_attente"] == [r[1] for r in ROWS]
    assert column[NAME_32] == [r[2] for r in ROWS]
    assert column["score"] == [r[3] for r in ROWS]
    assert column["comment"] == [expected_text(r[4]) for r in ROWS]
    assert column["long_text"] == [expected_text(r[5]) for r in ROWS]
    assert column["visit_date"] == [r[6] for r in ROWS]
    assert column["visit_at"] == [r[7] for r in ROWS]

    assert meta.variable_value_labels == {
        "satisfaction_accueil": {
            **{float(k): v for k, v in SATISFACTION.items()},
            -1.0: "Sans objet",
            -2.0: "Ne sait pas",
        },
        "satisfaction_attente": {1.0: "Oui", 2.0: utf8_cut(LONG_VALUE_LABEL, 120).rstrip()},
    }
    assert meta.missing_ranges == {
        "satisfaction_accueil": [{"lo": -1.0, "hi": -1.0}, {"lo": -2.0, "hi": -2.0}]
    }
    assert meta.original_variable_types == {
        "satisfaction_accueil": "F4.0",
        "satisfaction_attente": "F4.0",
        NAME_32: "F11.0",
        "score": "F12.4",
        "comment": f"A{COMMENT_WIDTH}",
        "long_text": "A5000",
        "visit_date": "DATE11",
        "visit_at": "DATETIME20",
    }


def test_pyreadstat_reads_the_dta_file(files: dict[str, Path]) -> None:
    frame, meta = pyreadstat.read_dta(str(files["dta"]), user_missing=True)

    assert list(frame.columns) == [v.name for v in VARIABLES]
    assert meta.file_label == "Baromètre — test 2024"
    for variable in VARIABLES:
        assert meta.column_names_to_labels[variable.name] == expected_label("dta", variable.label)
    column = {v.name: [plain(x) for x in frame[v.name]] for v in VARIABLES}
    # Declared missing codes come back as Stata's extended missing values .a and .b.
    assert column["satisfaction_accueil"] == [1, None, "a", 2, "b", None]
    assert column["satisfaction_attente"] == [r[1] for r in ROWS]
    assert column[NAME_32] == [r[2] for r in ROWS]
    assert column["score"] == [r[3] for r in ROWS]
    assert column["comment"] == [expected_text(r[4]) for r in ROWS]
    assert column["long_text"] == [expected_text(r[5]) for r in ROWS]
    assert column["visit_date"] == [r[6] for r in ROWS]
    assert column["visit_at"] == [r[7] for r in ROWS]

    assert meta.variable_value_labels == {
        "satisfaction_accueil": {**SATISFACTION, "a": "Sans objet", "b": "Ne sait pas"},
        "satisfaction_attente": {1: "Oui", 2: LONG_VALUE_LABEL},
    }
    assert meta.missing_user_values == {"satisfaction_accueil": ["a", "b"]}
    assert meta.original_variable_types == {
        "satisfaction_accueil": "%8.0g",
        "satisfaction_attente": "%8.0g",
        NAME_32: "%12.0g",
        "score": "%10.0g",
        "comment": f"%{COMMENT_WIDTH}s",
        "long_text": "%9s",  # a strL
        "visit_date": "%td",
        "visit_at": "%tc",
    }


# --- R haven ----------------------------------------------------------------------------

#: Prints, line by line, what haven read: texts as UTF-8 hex (no quoting to get wrong),
#: numbers with 17 significant digits, tagged NAs as NA(a).
R_SCRIPT = r"""
suppressPackageStartupMessages(library(haven))
args <- commandArgs(trailingOnly = TRUE)
kind <- args[2]
x <- if (kind == "sav") read_sav(args[1], user_na = TRUE) else read_dta(args[1])
hex <- function(s) {
  if (is.null(s)) return("NULL")
  if (is.na(s)) return("NA")
  r <- paste(as.character(charToRaw(enc2utf8(s))), collapse = "")
  if (r == "") "-" else r
}
num <- function(v) {
  d <- unclass(v)
  attributes(d) <- NULL
  out <- sprintf("%.17g", d)
  out[is.na(d)] <- "NA"
  if (kind == "dta" && is.double(d)) {
    tag <- na_tag(d)
    out[!is.na(tag)] <- paste0("NA(", tag[!is.na(tag)], ")")
  }
  out
}
cat("file_label", hex(attr(x, "label")), "\n")
for (name in names(x)) {
  v <- x[[name]]
  cat("var", name, class(v)[1], "\n")
  cat("label", hex(attr(v, "label", exact = TRUE)), "\n")
  if (is.character(v)) cat("values", vapply(v, hex, ""), "\n") else cat("values", num(v), "\n")
  labels <- attr(v, "labels", exact = TRUE)
  if (!is.null(labels)) {
    cat("labels", paste0(vapply(names(labels), hex, ""), "=", num(labels)), "\n")
  }
  na <- attr(v, "na_values", exact = TRUE)
  if (!is.null(na)) cat("na_values", num(na), "\n")
}
"""


def read_with_haven(path: Path, kind: str, tmp_path: Path) -> dict[str, Any]:
    rscript = shutil.which("Rscript")
    assert rscript, "Rscript is required (scripts/test.sh installs r-base-core and r-cran-haven)"
    script = tmp_path / "read.R"
    script.write_text(R_SCRIPT, encoding="utf-8")
    result = subprocess.run(
        [rscript, "--vanilla", str(script), str(path), kind],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    unhex = lambda token: "" if token == "-" else bytes.fromhex(token).decode()  # noqa: E731
    table: dict[str, Any] = {"variables": {}}
    current: dict[str, Any] = {}
    for line in result.stdout.splitlines():
        key, *tokens = line.split()
        if key == "file_label":
            table["file_label"] = unhex(tokens[0])
        elif key == "var":
            current = {"class": tokens[1]}
            table["variables"][tokens[0]] = current
        elif key == "label":
            current["label"] = None if tokens[0] == "NULL" else unhex(tokens[0])
        elif key == "values":
            text = current["class"] == "character"
            current["values"] = [unhex(t) if text else t for t in tokens]
        elif key == "labels":
            current["labels"] = {unhex(t.split("=")[0]): t.split("=")[1] for t in tokens}
        elif key == "na_values":
            current["na_values"] = tokens
    return table


def r_number(value: float | None) -> str:
    return "NA" if value is None else f"{value:.17g}"


def r_days(day: date | None) -> str:
    return r_number(None if day is None else float((day - date(1970, 1, 1)).days))


def r_seconds(moment: datetime | None) -> str:
    # haven reads naive SPSS/Stata datetimes as UTC POSIXct: seconds since 1970.
    return r_number(None if moment is None else (moment - datetime(1970, 1, 1)).total_seconds())


@pytest.mark.parametrize("kind", ["sav", "dta"])
def test_haven_reads_the_file(kind: str, files: dict[str, Path], tmp_path: Path) -> None:
    table = read_with_haven(files[kind], kind, tmp_path)
    got = table["variables"]

    assert table["file_label"] == "Baromètre — test 2024"
    assert list(got) == [v.name for v in VARIABLES]
    for variable in VARIABLES:
        assert got[variable.name]["label"] == expected_label(kind, variable.label)

    first = got["satisfaction_accueil"]
    if kind == "sav":
        # user_na = TRUE: the declared codes stay values, listed in na_values.
        assert first["values"] == ["1", "NA", "-1", "2", "-2", "NA"]
        assert first["na_values"] == ["-1", "-2"]
        assert first["labels"] == {
            "Ne sait pas": "-2",
            "Sans objet": "-1",
            **{text: str(code) for code, text in SATISFACTION.items()},
        }
    else:
        # Tagged NAs: .a and .b, labelled; the last NA is a plain (system) one.
        assert first["values"] == ["1", "NA", "NA(a)", "2", "NA(b)", "NA"]
        assert first["labels"] == {
            **{text: str(code) for code, text in SATISFACTION.items()},
            "Sans objet": "NA(a)",
            "Ne sait pas": "NA(b)",
        }
        assert "na_values" not in first
    long_label = utf8_cut(LONG_VALUE_LABEL, 120).rstrip() if kind == "sav" else LONG_VALUE_LABEL
    assert got["satisfaction_attente"]["labels"] == {"Oui": "1", long_label: "2"}
    assert got["satisfaction_attente"]["values"] == [r_number(r[1]) for r in ROWS]
    assert got[NAME_32]["values"] == [r_number(r[2]) for r in ROWS]
    assert got["score"]["values"] == [r_number(r[3]) for r in ROWS]
    assert got["comment"]["values"] == [expected_text(r[4]) for r in ROWS]
    assert got["long_text"]["values"] == [expected_text(r[5]) for r in ROWS]
    assert got["visit_date"]["class"] == "Date"
    assert got["visit_date"]["values"] == [r_days(r[6]) for r in ROWS]
    assert got["visit_at"]["class"] == "POSIXct"
    assert got["visit_at"]["values"] == [r_seconds(r[7]) for r in ROWS]


# --- streaming, and what the writers refuse ---------------------------------------------


@pytest.mark.parametrize("kind", ["sav", "dta"])
def test_rows_are_written_as_they_come(kind: str, tmp_path: Path) -> None:
    variables = [Variable("code", "Code", "code"), Variable("text", "Texte", "text", width=100)]
    seen: list[int] = []
    path = tmp_path / f"stream.{kind}"
    with path.open("wb") as handle:

        def rows() -> Iterator[list[Any]]:
            for i in range(30_000):
                if i == 25_000:
                    seen.append(handle.tell())  # what is on disk before the last rows
                yield [i % 5, "é" * 50]

        assert WRITERS[kind](handle, variables, rows()) == 30_000
    assert seen[0] > 1_000_000  # over a megabyte written while rows were still coming
    read = pyreadstat.read_sav if kind == "sav" else pyreadstat.read_dta
    frame, _ = read(str(path))
    assert len(frame) == 30_000
    assert frame["code"].iloc[-1] == 29_999 % 5


@pytest.mark.parametrize("kind", ["sav", "dta"])
def test_an_empty_table_is_a_valid_file(kind: str, tmp_path: Path) -> None:
    assert write(kind, tmp_path / f"empty.{kind}", rows=[]) == 0
    read = pyreadstat.read_sav if kind == "sav" else pyreadstat.read_dta
    frame, meta = read(str(tmp_path / f"empty.{kind}"))
    assert len(frame) == 0
    assert meta.column_names == [v.name for v in VARIABLES]


BAD_CELLS: list[tuple[str, int, Any, str]] = [
    # (variable, column, cell, what the message says)
    ("satisfaction_accueil", 0, 1.0, "not a code"),
    ("satisfaction_accueil", 0, True, "not a code"),
    ("satisfaction_accueil", 0, 101, "outside"),
    ("satisfaction_accueil", 0, "1", "not a code"),
    ("satisfaction_attente", 1, -101, "outside"),
    (NAME_32, 2, 2.5, "not an integer"),
    (NAME_32, 2, 2**31, "integer"),
    ("score", 3, math.nan, "finite"),
    ("score", 3, math.inf, "finite"),
    ("score", 3, "1.5", "not a number"),
    ("comment", 4, "x" * (COMMENT_WIDTH + 1), "wider than"),
    ("comment", 4, "é" * (COMMENT_WIDTH // 2 + 1), "wider than"),
    ("comment", 4, 12, "not a text"),
    ("comment", 4, "a\0b", "NUL"),
    ("visit_date", 6, datetime(2024, 1, 1), "not a date"),
    ("visit_date", 6, "2024-01-01", "not a date"),
    ("visit_at", 7, date(2024, 1, 1), "not a datetime"),
    ("visit_at", 7, datetime(2024, 1, 1, tzinfo=UTC), "naive"),
]


@pytest.mark.parametrize("kind", ["sav", "dta"])
@pytest.mark.parametrize(("name", "column", "cell", "message"), BAD_CELLS)
def test_a_cell_outside_its_kind_is_refused(
    kind: str, name: str, column: int, cell: Any, message: str
) -> None:
    bad = list(ROWS[3])
    bad[column] = cell
    handle = io.BytesIO()
    with pytest.raises(ValueError, match=message) as caught:
        WRITERS[kind](handle, VARIABLES, iter([ROWS[0], ROWS[1], bad, ROWS[2]]))
    assert str(caught.value).startswith(f"{name}: row 3: ")
    # What was written is not recognisable as a system file: no reader takes it for one.
    assert handle.getvalue()[:1] == b"\0"


def test_stata_long_range_is_narrower_than_32_bits() -> None:
    bad = list(ROWS[0])
    bad[2] = 2147483621  # Stata's "." for longs
    with pytest.raises(ValueError, match=f"^{NAME_32}: row 1: .*long range"):
        write_dta(io.BytesIO(), VARIABLES, [bad])
    # SPSS stores it as a double: fine.
    assert write_sav(io.BytesIO(), VARIABLES, [bad]) == 1


@pytest.mark.parametrize("kind", ["sav", "dta"])
def test_a_row_of_the_wrong_length_is_refused(kind: str) -> None:
    with pytest.raises(ValueError, match=r"^row 2: 7 cells for 8 variables"):
        WRITERS[kind](io.BytesIO(), VARIABLES, [ROWS[0], ROWS[1][:7]])


@pytest.mark.parametrize(
    ("kind", "variables", "message"),
    [
        ("sav", [Variable("Q1", "", "code"), Variable("q1", "", "code")], "duplicate"),
        ("dta", [Variable("q1", "", "code"), Variable("q1", "", "code")], "duplicate"),
        ("sav", [Variable("with", "", "code")], "reserved"),
        ("dta", [Variable("long", "", "integer")], "reserved"),
        ("dta", [Variable("str12", "", "integer")], "reserved"),
        ("sav", [Variable("t", "", "text", width=40_000)], "width"),
        ("dta", [Variable("x", "", "number", value_labels={0.5: "half"})], "integers only"),
        ("sav", [Variable("t", "", "text", width=4, value_labels={1: "a"})], "value labels"),
    ],
)
def test_variables_a_format_cannot_hold_are_refused(
    kind: str, variables: list[Variable], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        WRITERS[kind](io.BytesIO(), variables, [])


def test_stata_dates_count_days_and_milliseconds_from_1960() -> None:
    """The raw values, checked once without a reader: %td days and %tc milliseconds."""
    moment = datetime(1960, 1, 2, 0, 0, 1, 500000)
    variables = [Variable("d", "", "date"), Variable("t", "", "datetime")]
    handle = io.BytesIO()
    write_dta(handle, variables, [[date(1959, 12, 31), moment]])
    raw = handle.getvalue()
    start = raw.index(b"<data>") + len(b"<data>")
    assert raw[start : start + 4] == (-1).to_bytes(4, "little", signed=True)
    expected_ms = (moment - datetime(1960, 1, 1)) / timedelta(milliseconds=1)
    assert expected_ms == 86_401_500
    assert raw[start + 4 : start + 12] == struct.pack("<d", expected_ms)


@pytest.mark.parametrize("kind", ["sav", "dta"])
def test_extreme_codes_and_numpy_integers(kind: str, tmp_path: Path) -> None:
    """−100 is the one code SPSS cannot compress to a byte; numpy integers take the slow path."""
    variables = [
        Variable("a", "", "code", missing_codes=(-100,)),
        Variable("b", "", "code"),
        Variable("n", "", "integer"),
    ]
    rows = [[-100, 100, np.int64(7)], [np.int8(-99), -100, None], [100, None, np.int32(-5)]]
    path = tmp_path / f"edges.{kind}"
    with path.open("wb") as handle:
        assert WRITERS[kind](handle, variables, rows) == 3
    read = pyreadstat.read_sav if kind == "sav" else pyreadstat.read_dta
    frame, _ = read(str(path), user_missing=True)
    missing = -100 if kind == "sav" else "a"
    assert [plain(x) for x in frame["a"]] == [missing, -99, 100]
    assert [plain(x) for x in frame["b"]] == [100, -100, None]
    assert [plain(x) for x in frame["n"]] == [7, None, -5]
