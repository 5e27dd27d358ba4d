"""XLSForm export and import: same meaning after a round trip, refusals located precisely."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook, load_workbook

from surveys import (
    Instrument,
    XLSFormError,
    canonical_json,
    from_xlsform,
    load_instrument,
    read_xlsform,
    submission_scores,
    to_xlsform,
    validate_answers,
)


def _round_trip(instrument: Instrument) -> Instrument:
    buffer = io.BytesIO()
    to_xlsform(instrument, buffer)
    buffer.seek(0)
    return from_xlsform(buffer)


@pytest.mark.parametrize(
    "key",
    [
        "citizen",
        "grid-guichet",
        "grid-telephone",
        "grid-courriel",
        "grid-courrier",
        "grid-site",
        "grid-reseaux",
    ],
)
def test_every_default_survives_export_then_import(
    defaults: dict[str, Instrument], key: str
) -> None:
    original = defaults[key]
    again = _round_trip(original)
    assert canonical_json(again) == canonical_json(original)
    assert again == original


def test_every_feature_survives_a_round_trip(kitchen_sink: Instrument, tmp_path: Path) -> None:
    path = tmp_path / "kitchen-sink.xlsx"
    to_xlsform(kitchen_sink, path)
    again = load_instrument(path)
    assert canonical_json(again) == canonical_json(kitchen_sink)
    answers = {"channel": "telephone", "yn": "yes", "many": ["a"], "sent": "2024-01-02"}
    assert submission_scores(again, answers) == submission_scores(kitchen_sink, answers)


def test_every_item_field_has_a_column(kitchen_sink: Instrument) -> None:
    # a new schema field must be carried by the XLSForm too: the kitchen sink sets them all
    used = set()
    for item in kitchen_sink.items:
        used |= item.model_fields_set
    assert used == set(type(kitchen_sink.items[0]).model_fields)


def test_export_speaks_xlsform(defaults: dict[str, Instrument], tmp_path: Path) -> None:
    path = tmp_path / "guichet.xlsx"
    to_xlsform(defaults["grid-guichet"], path)
    workbook = load_workbook(path)
    assert workbook.sheetnames == ["survey", "choices", "settings", "themes"]
    survey = [row for row in workbook["survey"].iter_rows(values_only=True)]
    header = survey[0]
    for column in ("type", "name", "label::fr", "label::en", "relevant", "required", "weight"):
        assert column in header
    rows = {row[header.index("name")]: row for row in survey[1:] if row[1]}
    assert rows["wait"][header.index("type")] == "decimal"
    assert rows["wait"][header.index("threshold")] == 900
    assert rows["wait"][header.index("threshold_partial")] == 1200
    assert rows["answer_refused"][header.index("knockout")] == "yes"
    assert rows["answer_correct"][header.index("relevant")] == "${answer_refused} = 'no'"
    assert rows["courtesy"][header.index("type")] == "select_one courtesy"
    assert rows["access"][header.index("type")] == "begin_group"
    settings = list(workbook["settings"].iter_rows(values_only=True))
    assert dict(zip(settings[0], settings[1], strict=True))["form_id"] == "grid-guichet"


def _workbook(
    tmp_path: Path,
    survey: list[list[Any]],
    choices: list[list[Any]] | None = None,
    settings: list[list[Any]] | None = None,
    extra: dict[str, list[list[Any]]] | None = None,
) -> Path:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "survey"
    for row in survey:
        sheet.append(row)
    sheets = {
        "choices": choices
        or [
            ["list_name", "name", "label::fr", "label::en", "score"],
            ["yn", "yes", "Oui", "Yes", 100],
            ["yn", "no", "Non", "No", 0],
        ],
        "settings": settings
        or [
            ["form_id", "version", "form_title", "form_title::en", "kind", "channel"],
            ["hand-made", 3, "Fait main", "Hand made", "grid", "site"],
        ],
        **(extra or {}),
    }
    for name, rows in sheets.items():
        target = workbook.create_sheet(name)
        for row in rows:
            target.append(row)
    path = tmp_path / "form.xlsx"
    workbook.save(path)
    return path


SURVEY_HEADER = ["type", "name", "label::French (fr)", "label::English (en)", "relevant", "weight"]


def test_imports_a_hand_made_xlsform(tmp_path: Path) -> None:
    path = _workbook(
        tmp_path,
        [
            [*SURVEY_HEADER, "appearance", "required"],
            ["start", "start"],
            ["select_one yn", "open", "Ouvert ?", "Open?", None, 5, "minimal", "yes"],
            ["begin group", "details", "Détails", "Details"],
            ["integer", "visitors", "Visiteurs", "Visitors", "${open} = 'yes'"],
            ["text", "comment", "Commentaire", "Comment"],
            ["end group"],
            ["end", "end"],
        ],
    )
    instrument = from_xlsform(path)
    assert instrument.key == "hand-made" and instrument.version == "3"
    assert instrument.title.fr == "Fait main" and instrument.channel == "site"
    assert [section.key for section in instrument.sections] == ["section_1", "details"]
    assert instrument.sections[0].scored and not instrument.sections[1].scored
    assert instrument.item("open").type == "choice_one"
    assert instrument.item("open").required
    assert instrument.item("visitors").type == "count"
    assert instrument.item("visitors").relevant == "${open} = 'yes'"
    result = validate_answers(instrument, {"open": "no", "visitors": 3})
    assert result.ok and result.dropped == ("visitors",)


def _refusal(path: Path) -> XLSFormError:
    with pytest.raises(XLSFormError) as caught:
        from_xlsform(path)
    return caught.value


GOOD_ROW = ["select_one yn", "open", "Ouvert ?", "Open?", None, 5]


@pytest.mark.parametrize(
    ("rows", "sheet", "row", "column", "reason"),
    [
        ([GOOD_ROW, ["begin_repeat", "r", "R", "R"]], "survey", 3, "A (type)", "repeats"),
        (
            [GOOD_ROW, ["begin_group", "g", "G", "G"], ["begin_group", "h", "H", "H"]],
            "survey",
            4,
            None,
            "begin_group without end_group",
        ),
        ([GOOD_ROW, ["geopoint", "where", "Où", "Where"]], "survey", 3, "A (type)", "geopoint"),
        ([GOOD_ROW, ["decimal", "d", "D", "D"]], "survey", 3, "A (type)", "item_type"),
        ([GOOD_ROW, ["end_group"]], "survey", 3, "A (type)", "end_group without begin_group"),
        (
            [["select_one nolist", "x", "X", "X", None, 1]],
            "survey",
            2,
            "A (type)",
            "'nolist' is missing",
        ),
        (
            [[*GOOD_ROW[:4], "${open} = = 'yes'", 5]],
            "survey",
            2,
            "E (relevant)",
            "column 11",
        ),
        ([[*GOOD_ROW[:5], -5]], "survey", 2, "F (weight)", "negative weight"),
        ([[*GOOD_ROW[:5], "lots"]], "survey", 2, "F (weight)", "not a number"),
        ([[*GOOD_ROW[:3], None, None, 5]], "survey", 2, "D (label::English (en))", "translation"),
    ],
)
def test_refusals_name_sheet_row_and_column(
    tmp_path: Path, rows: list[list[Any]], sheet: str, row: int, column: str | None, reason: str
) -> None:
    error = _refusal(_workbook(tmp_path, [SURVEY_HEADER, *rows]))
    problem = error.problems[0]
    assert (problem.sheet, problem.line, problem.column) == (sheet, row, column), str(error)
    assert reason in problem.message
    assert problem.file == "form.xlsx"
    where = f"sheet {sheet!r}, row {row}" + (f", column {column}" if column else "")
    assert where in str(error)


def test_unknown_columns_with_values_are_warnings(tmp_path: Path) -> None:
    # refused before issue #13; now accepted and listed (see test_xlsform_ecosystem.py)
    header = [*SURVEY_HEADER, "choice_filter"]
    path = _workbook(tmp_path, [header, GOOD_ROW, [*GOOD_ROW[:1], "b", "B", "B", None, 1, "x"]])
    (warning,) = read_xlsform(path).warnings
    assert (warning.sheet, warning.line, warning.column) == ("survey", 3, "G (choice_filter)")
    assert warning.code == "ignored_column" and "choice_filter" in warning.message
    # an empty unknown column is harmless
    assert read_xlsform(_workbook(tmp_path, [header, GOOD_ROW])).warnings == ()


def test_untranslated_and_foreign_language_columns(tmp_path: Path) -> None:
    # 'label' is the default language (French); Spanish is ignored; English is missing
    header = ["type", "name", "label", "label::es", "weight"]
    error = _refusal(_workbook(tmp_path, [header, ["select_one yn", "o", "Ouvert", "Abierto", 1]]))
    (problem,) = error.problems
    assert (problem.sheet, problem.line, problem.code) == ("survey", 1, "missing_translation")
    assert "no English label column" in problem.message
    assert "D (label::es)" in problem.message


def test_unknown_sheets_are_warnings(tmp_path: Path) -> None:
    path = _workbook(tmp_path, [SURVEY_HEADER, GOOD_ROW], extra={"external_choices": [["a"]]})
    (warning,) = read_xlsform(path).warnings
    assert (warning.sheet, warning.code) == ("external_choices", "ignored_sheet")


def test_conditional_required_is_refused(tmp_path: Path) -> None:
    header = [*SURVEY_HEADER, "required"]
    error = _refusal(_workbook(tmp_path, [header, [*GOOD_ROW, "${x} = 'a'"]]))
    assert error.problems[0].column == "G (required)"
    assert "conditional" in error.problems[0].message


def test_scale_lists_must_match_their_scale(tmp_path: Path) -> None:
    header = [*SURVEY_HEADER, "item_type"]
    choices = [
        ["list_name", "name", "label::fr", "label::en"],
        *[["q", str(value), str(value), str(value)] for value in (1, 2, 3)],
    ]
    error = _refusal(
        _workbook(tmp_path, [header, ["select_one q", "q", "Q", "Q", None, 1, "likert5"]], choices)
    )
    assert error.problems[0].code == "invalid_choices"
    assert error.problems[0].line == 2


def test_delay_calculations(tmp_path: Path) -> None:
    header = [*SURVEY_HEADER, "item_type", "calculation", "threshold"]
    rows = [
        header,
        ["date", "a", "A", "A"],
        ["date", "b", "B", "B"],
        ["calculate", "d", "D", "D", None, 1, "delay", "${b} - ${a}", 5],
    ]
    error = _refusal(_workbook(tmp_path, rows))
    assert error.problems[0].column == "H (calculation)"
    rows[3][7] = "working_days(${a}, ${b})"
    delay = from_xlsform(_workbook(tmp_path, rows)).item("d")
    assert (delay.type, delay.start, delay.end) == ("delay", "a", "b")


def test_not_a_workbook(tmp_path: Path) -> None:
    path = tmp_path / "form.xlsx"
    path.write_text("not a spreadsheet")
    assert _refusal(path).problems[0].code == "syntax"


def test_semantic_problems_point_at_their_cells(
    defaults: dict[str, Instrument], tmp_path: Path
) -> None:
    path = tmp_path / "reseaux.xlsx"
    to_xlsform(defaults["grid-reseaux"], path)
    workbook = load_workbook(path)
    survey = workbook["survey"]
    header = [cell.value for cell in survey[1]]
    for row in survey.iter_rows(min_row=2):
        if row[header.index("name")].value == "answer_on":
            row[header.index("relevant")].value = "${answer_delay} = 1"  # computed: no answer
            broken_row = row[0].row
    workbook.save(path)
    problem = _refusal(path).problems[0]
    assert (problem.sheet, problem.line) == ("survey", broken_row)
    assert problem.column is not None and "relevant" in str(problem.column)
    assert problem.path == "answer/answer_on/relevant"
    assert json.loads(canonical_json(defaults["grid-reseaux"]))["key"] == "grid-reseaux"
