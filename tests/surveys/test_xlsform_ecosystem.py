"""XLSForm as ODK and KoboToolbox users write it, and exports that pyxform and ODK Validate accept.

The workbooks below are written the way those tools' users write them (xlsform.org): a plain
``label`` next to ``label::English (en)``, the older ``label:English``, presentation columns,
metadata rows, extra sheets. What the platform does not use is a warning naming its sheet, row
and column; what it cannot collect is refused naming the row.
"""

from __future__ import annotations

import datetime as dt
import io
import math
import re
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook, load_workbook
from pyxform.xls2xform import convert

from surveys import (
    DefinitionProblem,
    Instrument,
    LocalizedText,
    XLSFormError,
    XLSFormReading,
    from_xlsform,
    read_xlsform,
    to_xlsform,
    validate_answers,
)
from surveys.workdays import _weekdays_after
from surveys.xlsform import _weekdays_xpath

DEFAULT_KEYS = [
    "citizen",
    "grid-guichet",
    "grid-telephone",
    "grid-courriel",
    "grid-courrier",
    "grid-site",
    "grid-reseaux",
]


def _save(tmp_path: Path, sheets: dict[str, list[list[Any]]], name: str = "form.xlsx") -> Path:
    workbook = Workbook()
    first = workbook.active
    assert first is not None
    workbook.remove(first)
    for title, rows in sheets.items():
        sheet = workbook.create_sheet(title)
        for row in rows:
            sheet.append(row)
    path = tmp_path / name
    workbook.save(path)
    return path


def _warnings(reading: XLSFormReading) -> dict[str, list[DefinitionProblem]]:
    found: dict[str, list[DefinitionProblem]] = {}
    for warning in reading.warnings:
        found.setdefault(warning.code, []).append(warning)
    return found


def _where(problem: DefinitionProblem) -> tuple[str | None, int | None, int | str | None]:
    return (problem.sheet, problem.line, problem.column)


# ------------------------------------------------------------------ a KoboToolbox form

KOBO_SURVEY: list[list[Any]] = [
    [
        "type",
        "name",
        "label",
        "label::English (en)",
        "hint",
        "hint::English (en)",
        "required",
        "relevant",
        "appearance",
        "constraint",
        "constraint_message",
        "constraint_message::English (en)",
        "calculation",
        "$kuid",
        "weight",  # the platform's own column: a form without weights cannot be scored
    ],
    ["start", "start", None, None, None, None, None, None, None, None, None, None, None, "a1"],
    ["end", "end", None, None, None, None, None, None, None, None, None, None, None, "a2"],
    ["deviceid", "deviceid"],
    ["begin_group", "visit", "Votre visite", "Your visit", None, None, None, None, "field-list"],
    [
        "select_one yes_no",
        "visited",
        "Êtes-vous venu à la mairie ?",
        "Did you come to the town hall?",
        "Cette année",
        "This year",
        "true",
        None,
        "horizontal",
        *[None] * 5,
        5,
    ],
    [
        "integer",
        "visits",
        "Combien de fois ?",
        "How many times?",
        None,
        None,
        "false",
        "${visited} = 'yes'",
        None,
        ". >= 1 and . <= 50",
        "Entre 1 et 50",
        "Between 1 and 50",
    ],
    [
        "select_multiple services",
        "services",
        "Pour quoi faire ?",
        "What for?",
        "Plusieurs réponses possibles",  # a hint without its English version
        None,
        None,
        "selected(${visited}, 'yes')",
        "minimal",
    ],
    [
        "calculate",
        "twice",
        None,
        None,
        None,
        None,
        None,
        None,
        None,
        None,
        None,
        None,
        "${visits} * 2",
    ],
    ["end_group"],
    ["note", "thanks", "Merci !", "Thank you!"],
    ["audit", "audit"],
]
KOBO_CHOICES: list[list[Any]] = [
    ["list_name", "name", "label", "label::English (en)", "media::image", "$autovalue", "score"],
    ["yes_no", "yes", "Oui", "Yes", None, "yes", 100],
    ["yes_no", "no", "Non", "No", None, "no", 0],
    ["services", "papers", "Papiers d'identité", "Identity papers", "id.png", "papers"],
    ["services", "civil", "État civil", "Civil status", None, "civil"],
]
KOBO_SETTINGS: list[list[Any]] = [
    ["form_title", "form_id", "version", "style", "default_language"],
    ["Satisfaction mairie", "mairie", "2024-1", "pages", "French (fr)"],
]


def test_a_kobo_form_is_read_with_warnings(tmp_path: Path) -> None:
    path = _save(
        tmp_path,
        {
            "survey": KOBO_SURVEY,
            "choices": KOBO_CHOICES,
            "settings": KOBO_SETTINGS,
            "builder_settings": [["kobo--score-choices"], ["x"]],
        },
        "kobo.xlsx",
    )
    reading = read_xlsform(path)
    instrument = reading.instrument
    assert (instrument.key, instrument.version, instrument.kind) == ("mairie", "2024-1", "survey")
    assert instrument.title.fr == instrument.title.en == "Satisfaction mairie"
    assert [section.key for section in instrument.sections] == ["visit", "section_2"]
    visited = instrument.item("visited")
    assert visited.type == "choice_one" and visited.required
    assert visited.label.en == "Did you come to the town hall?"
    assert visited.help is not None and visited.help.fr == "Cette année"
    visits = instrument.item("visits")
    assert visits.type == "count" and not visits.required
    assert visits.constraint_message is not None
    assert visits.constraint_message.en == "Between 1 and 50"
    assert instrument.item("services").type == "choice_many"
    assert instrument.item("thanks").type == "note"
    assert "twice" not in {item.key for item in instrument.items}
    assert validate_answers(instrument, {"visited": "no", "visits": 3}).dropped == ("visits",)

    warnings = _warnings(reading)
    assert all(warning.file == "kobo.xlsx" for warning in reading.warnings)
    columns = {warning.column: warning for warning in warnings["ignored_column"]}
    assert _where(columns["I (appearance)"]) == ("survey", 5, "I (appearance)")
    assert "3 rows" in columns["I (appearance)"].message
    assert _where(columns["N ($kuid)"]) == ("survey", 2, "N ($kuid)")
    assert _where(columns["E (media::image)"]) == ("choices", 4, "E (media::image)")
    assert "F ($autovalue)" in columns
    (setting,) = warnings["ignored_setting"]
    assert _where(setting) == ("settings", 2, "D (style)")
    (sheet,) = warnings["ignored_sheet"]
    assert sheet.sheet == "builder_settings"
    (calculation,) = warnings["ignored_calculation"]
    assert _where(calculation) == ("survey", 9, "A (type)") and "twice" in calculation.message
    (audit,) = warnings["ignored_metadata"]
    assert _where(audit) == ("survey", 12, "A (type)")
    (hint,) = warnings["untranslated_text"]
    assert _where(hint) == ("survey", 8, "E (hint)")
    help_text = "Plusieurs réponses possibles"
    assert instrument.item("services").help == LocalizedText(fr=help_text, en=help_text)
    (title,) = warnings["untranslated_title"]
    assert _where(title) == ("settings", 2, "A (form_title)")
    # start, end and deviceid are skipped without a word
    assert not any(
        warning.line in (2, 3, 4) and warning.column == "A (type)" for warning in reading.warnings
    )
    # from_xlsform reads the same instrument, without the warnings
    assert from_xlsform(path) == instrument


# ------------------------------------------------------------------ an ODK form

ODK_SURVEY: list[list[Any]] = [
    [
        "type",
        "name",
        "label:French",
        "label:English",
        "hint:French",
        "hint:English",
        "label::Español (es)",
        "relevant",
        "required",
        "required_message",
        "default",
        "choice_filter",
        "bind::oc:itemgroup",
        "read_only",
        "weight",
    ],
    ["today", "today"],
    ["username", "username"],
    ["begin group", "contact", "Le contact", "The contact", None, None, "El contacto"],
    ["select_one channel", "channel", "Par quel moyen ?", "How?", None, None, "¿Cómo?"],
    [
        "begin group",
        "phone",
        "Téléphone",
        "Phone",
        None,
        None,
        "Teléfono",
        "${channel} = 'telephone'",
    ],
    [
        "select_one stars",
        "waited",
        "Attente",
        "Waiting",
        "Au téléphone",
        "On the phone",
        "Espera",
        "${channel} = 'telephone' or ${channel} = 'guichet'",
        "yes",
        "Répondez",
        "3",
        "true()",
        "g1",
        "no",
        1,
    ],
    ["end group"],
    ["text", "comment", "Un commentaire ?", "A comment?", None, None, "¿Comentario?"],
    ["end group"],
]
ODK_CHOICES: list[list[Any]] = [
    ["list name", "name", "label:French", "label:English", "label::Español (es)", "score"],
    ["channel", "telephone", "Téléphone", "Telephone", "Teléfono"],
    ["channel", "guichet", "Guichet", "Desk", "Ventanilla"],
    *[["stars", str(n), f"{n} étoiles", f"{n} stars", "x", 50 * (n - 1)] for n in range(1, 4)],
]
ODK_SETTINGS: list[list[Any]] = [
    ["id_string", "form_title", "form_title_en", "version", "instance_name", "kind"],
    ["odk-contact", "Contact", "Contact us", "7", "concat('c', ${channel})", "survey"],
]


def test_an_odk_form_is_read_with_warnings(tmp_path: Path) -> None:
    path = _save(
        tmp_path,
        {
            "survey": ODK_SURVEY,
            "choices": ODK_CHOICES,
            "settings": ODK_SETTINGS,
            "external_choices": [["list_name", "name"], ["x", "y"]],
        },
    )
    reading = read_xlsform(path)
    instrument = reading.instrument
    assert (instrument.key, instrument.version) == ("odk-contact", "7")
    assert (instrument.title.fr, instrument.title.en) == ("Contact", "Contact us")
    # the nested group is flattened: its relevant applies to its questions
    assert [section.key for section in instrument.sections] == ["contact"]
    assert [item.key for item in instrument.items] == ["channel", "waited", "comment"]
    waited = instrument.item("waited")
    expected = "(${channel} = 'telephone') and (${channel} = 'telephone' or ${channel} = 'guichet')"
    assert waited.relevant == expected
    assert waited.label.fr == "Attente" and waited.help is not None
    assert waited.help.en == "On the phone"
    assert [choice.label.en for choice in waited.options] == ["1 stars", "2 stars", "3 stars"]
    answers = {"channel": "guichet", "waited": "2"}
    assert validate_answers(instrument, answers).dropped == ("waited",)

    warnings = _warnings(reading)
    (flattened,) = warnings["flattened_group"]
    assert _where(flattened) == ("survey", 6, "A (type)")
    assert "'phone' inside group 'contact'" in flattened.message
    languages = {warning.sheet: warning for warning in warnings["ignored_language"]}
    assert _where(languages["survey"]) == ("survey", 4, "G (label::Español (es))")
    assert "'Español (es)'" in languages["survey"].message
    assert _where(languages["choices"]) == ("choices", 2, "E (label::Español (es))")
    ignored = {warning.column for warning in warnings["ignored_column"]}
    assert ignored == {
        "J (required_message)",
        "K (default)",
        "L (choice_filter)",
        "M (bind::oc:itemgroup)",
        "N (read_only)",
    }
    (setting,) = warnings["ignored_setting"]
    assert setting.column == "E (instance_name)"
    assert [warning.sheet for warning in warnings["ignored_sheet"]] == ["external_choices"]
    assert "untranslated_title" not in warnings


def test_languages_by_name_or_code(tmp_path: Path) -> None:
    survey: list[list[Any]] = [
        ["type", "name", "label::English (en)", "label::Français (fr)", "label", "weight"],
        ["select_one yn", "said", "Said", "Dit", "Dicho", 1],
    ]
    choices: list[list[Any]] = [
        ["list_name", "name", "label::English (en)", "label::Français (fr)", "score"],
        ["yn", "yes", "Yes", "Oui", 100],
        ["yn", "no", "No", "Non", 0],
    ]
    settings: list[list[Any]] = [
        ["form_id", "version", "form_title::fr", "form_title::en", "default_language"]
    ]
    settings.append(["langs", "1", "Langues", "Languages", "Español (es)"])
    sheets: dict[str, list[list[Any]]] = {
        "survey": survey,
        "choices": choices,
        "settings": settings,
    }
    reading = read_xlsform(_save(tmp_path, sheets))
    assert reading.instrument.item("said").label.model_dump() == {"fr": "Dit", "en": "Said"}
    (ignored,) = reading.warnings
    assert (ignored.code, ignored.column) == ("ignored_language", "E (label)")
    assert "default language" in ignored.message


def test_default_language_english(tmp_path: Path) -> None:
    survey: list[list[Any]] = [
        ["type", "name", "label", "label::French (fr)", "weight"],
        ["select_one yn", "said", "Said", "Dit", 1],
    ]
    choices: list[list[Any]] = [
        ["list_name", "name", "label", "label::French (fr)", "score"],
        ["yn", "yes", "Yes", "Oui", 100],
        ["yn", "no", "No", "Non", 0],
    ]
    settings: list[list[Any]] = [
        ["form_id", "version", "form_title", "form_title_fr", "default_language"]
    ]
    settings.append(["langs", "1", "Languages", "Langues", "en"])
    sheets: dict[str, list[list[Any]]] = {
        "survey": survey,
        "choices": choices,
        "settings": settings,
    }
    reading = read_xlsform(_save(tmp_path, sheets))
    assert reading.instrument.item("said").label.model_dump() == {"fr": "Dit", "en": "Said"}
    assert reading.instrument.title.model_dump() == {"fr": "Langues", "en": "Languages"}
    assert reading.warnings == ()


def test_a_form_only_in_another_language_is_refused(tmp_path: Path) -> None:
    survey = [["type", "name", "label::Español (es)"], ["text", "said", "Dicho"]]
    settings: list[list[Any]] = [["form_id", "version", "form_title"], ["es", "1", "Idiomas"]]
    with pytest.raises(XLSFormError) as caught:
        from_xlsform(_save(tmp_path, {"survey": survey, "settings": settings}))
    problem = caught.value.problems[0]
    assert (problem.sheet, problem.line, problem.code) == ("survey", 1, "unsupported_language")
    assert "C (label::Español (es))" in problem.message


def test_or_other_adds_the_choice_and_the_text(tmp_path: Path) -> None:
    survey: list[list[Any]] = [
        ["type", "name", "label", "label::English (en)", "weight"],
        ["select_one how or_other", "how", "Comment ?", "How?", 5],
    ]
    choices: list[list[Any]] = [
        ["list_name", "name", "label", "label::English (en)", "score"],
        ["how", "web", "Internet", "Web", 100],
        ["how", "desk", "Guichet", "Desk", 0],
    ]
    settings: list[list[Any]] = [
        ["form_id", "version", "form_title", "form_title_en"],
        ["o", "1", "O", "O"],
    ]
    reading = read_xlsform(
        _save(tmp_path, {"survey": survey, "choices": choices, "settings": settings})
    )
    instrument = reading.instrument
    how = instrument.item("how")
    assert [choice.value for choice in how.options] == ["web", "desk", "other"]
    assert how.options[-1].missing  # a free text is not scored
    other = instrument.item("how_other")
    assert other.type == "text" and other.relevant == "${how} = 'other'"
    assert [warning.code for warning in reading.warnings] == ["or_other"]
    result = validate_answers(instrument, {"how": "desk", "how_other": "par lettre"})
    assert result.dropped == ("how_other",)


@pytest.mark.parametrize(
    ("question", "reason"),
    [
        ("geopoint", "locations"),
        ("geotrace", "locations"),
        ("geoshape", "locations"),
        ("image", "files"),
        ("audio", "files"),
        ("video", "files"),
        ("file", "files"),
        ("barcode", "barcodes"),
        ("begin_repeat", "repeats"),
        ("begin repeat", "repeats"),
        ("range", "ranges"),
        ("acknowledge", "acknowledgements"),
        ("dateTime", "times"),
        ("select_one_from_file places.csv", "from a file"),
        ("rank", "rankings"),
    ],
)
def test_types_it_cannot_collect_are_refused_naming_the_row(
    tmp_path: Path, question: str, reason: str
) -> None:
    survey: list[list[Any]] = [
        ["type", "name", "label", "label::English (en)"],
        ["text", "first", "Premier", "First"],
        [question, "what", "Quoi", "What"],
    ]
    settings: list[list[Any]] = [["form_id", "version", "form_title"], ["t", "1", "T"]]
    with pytest.raises(XLSFormError) as caught:
        from_xlsform(_save(tmp_path, {"survey": survey, "settings": settings}))
    problem = caught.value.problems[0]
    assert (problem.sheet, problem.line, problem.column) == ("survey", 3, "A (type)")
    assert reason in problem.message


# ------------------------------------------------------------------ export


def _exported(instrument: Instrument) -> bytes:
    buffer = io.BytesIO()
    to_xlsform(instrument, buffer)
    return buffer.getvalue()


@pytest.mark.parametrize("key", DEFAULT_KEYS)
def test_every_default_converts_with_pyxform_and_odk_validate(
    defaults: dict[str, Instrument], key: str
) -> None:
    content = _exported(defaults[key])
    # validate=True runs ODK Validate (the jar shipped in the pyxform wheel) with Java: a
    # missing Java fails here, it is never skipped.
    result = convert(content, validate=True, file_type=".xlsx")
    assert "<h:html" in result.xform
    assert result.warnings == []
    assert "working_days(" not in result.xform
    reading = read_xlsform(io.BytesIO(content))
    assert reading.warnings == ()
    assert reading.instrument == defaults[key]
    assert reading.instrument.model_dump() == defaults[key].model_dump()


def test_export_settings_speak_pyxform(defaults: dict[str, Instrument], tmp_path: Path) -> None:
    path = tmp_path / "citizen.xlsx"
    to_xlsform(defaults["citizen"], path)
    rows = list(load_workbook(path)["settings"].iter_rows(values_only=True))
    settings = dict(zip(rows[0], rows[1], strict=True))
    assert "form_title::en" not in settings
    assert settings["form_title_en"] == defaults["citizen"].title.en
    assert settings["default_language"] == "fr"


def _evaluate_xpath(expression: str, days: dict[str, float]) -> float | str:
    """Just enough XPath for the delay expression: if, floor, div, mod, decimal-date-time."""
    text = re.sub(r"decimal-date-time\(\$\{(\w+)\}\)", lambda m: repr(days[m.group(1)]), expression)
    text = re.sub(r"\$\{(\w+)\}", lambda m: repr(days[m.group(1)]), text)
    text = text.replace(" div ", " / ").replace(" mod ", " % ").replace(" or ", " or ")
    text = text.replace("floor(", "math.floor(").replace(" = ", " == ")
    match = re.fullmatch(r"if\((.*?), '', (.*)\)", text)
    assert match is not None
    if eval(match.group(1), {"math": math}):
        return ""
    return float(eval(match.group(2), {"math": math}))


def test_the_delay_calculation_counts_weekdays_in_standard_xpath() -> None:
    expression = _weekdays_xpath("sent", "answered")
    assert re.fullmatch(r"[\w${}()'.,+\-*= ]+", expression)
    assert "working_days" not in expression
    epoch = dt.date(1970, 1, 1)
    start = dt.date(2025, 12, 15)
    for offset in range(0, 60):
        sent = start + dt.timedelta(days=offset % 9)
        answered = sent + dt.timedelta(days=offset)
        # decimal-date-time of a date is its local midnight: up to half a day off UTC
        for skew in (-0.46, 0.0, 0.46):
            days = {
                "sent": (sent - epoch).days + skew,
                "answered": (answered - epoch).days + skew,
            }
            assert _evaluate_xpath(expression, days) == _weekdays_after(sent, answered)


def test_a_delay_reads_from_its_delay_column(
    defaults: dict[str, Instrument], tmp_path: Path
) -> None:
    path = tmp_path / "courrier.xlsx"
    to_xlsform(defaults["grid-courrier"], path)
    workbook = load_workbook(path)
    survey = workbook["survey"]
    header = [cell.value for cell in survey[1]]
    delays = [
        row
        for row in survey.iter_rows(min_row=2)
        if row[header.index("item_type")].value == "delay"
    ]
    assert delays
    for row in delays:
        assert row[header.index("delay")].value.startswith("working_days(${")
        assert row[header.index("calculation")].value.startswith("if(")
        row[header.index("calculation")].value = "${answered} - ${sent}"  # edited in a tool
    workbook.save(path)
    assert from_xlsform(path) == defaults["grid-courrier"]


def test_the_kitchen_sink_converts_with_pyxform(kitchen_sink: Instrument) -> None:
    # every schema field, delays with every knock-out unit, relabelled scales
    content = _exported(kitchen_sink)
    assert convert(content, validate=True, file_type=".xlsx").warnings == []
    assert from_xlsform(io.BytesIO(content)) == kitchen_sink


def _plain_odk_form(*, weight: bool) -> io.BytesIO:
    """A form as ODK Build or Kobo users write it: no version, no platform columns."""
    book = Workbook()
    survey = book.active
    survey.title = "survey"
    survey.append(["type", "name", "label", "label::English (en)", "hint", "appearance"])
    survey.append(
        [
            "select_one yn",
            "courteous",
            "L'agent a-t-il été courtois ?",
            "Was the agent courteous?",
            "Pensez-y",
            "minimal",
        ]
    )
    survey.append(["integer", "wait", "Combien de minutes ?", "How many minutes?", "", ""])
    if weight:
        survey["G1"], survey["G2"] = "weight", 1
    choices = book.create_sheet("choices")
    choices.append(["list_name", "name", "label", "label::English (en)", "score"])
    choices.append(["yn", "yes", "Oui", "Yes", 100])
    choices.append(["yn", "no", "Non", "No", 0])
    settings = book.create_sheet("settings")
    settings.append(["form_title", "form_id"])
    settings.append(["Accueil", "accueil"])
    data = io.BytesIO()
    book.save(data)
    data.seek(0)
    return data


def test_a_form_without_version_is_read_with_a_warning() -> None:
    reading = read_xlsform(_plain_odk_form(weight=True), file="odk.xlsx")
    assert reading.instrument.version == "1"
    assert "default_version" in {warning.code for warning in reading.warnings}


def test_a_form_without_weights_is_refused_saying_which_column_to_add() -> None:
    with pytest.raises(XLSFormError) as refused:
        read_xlsform(_plain_odk_form(weight=False), file="kobo.xlsx")
    (problem,) = refused.value.problems
    assert problem.code == "zero_weight" and problem.sheet in ("settings", "survey")
    assert "add a 'weight' column to the survey sheet" in problem.message
