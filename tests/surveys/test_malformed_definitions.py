"""Malformed definitions are refused with the file, the line, the path and the reason."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import surveys
from surveys import DefinitionError, DefinitionProblem, instrument_from_dict

BASE = """\
key: tiny
version: "1"
kind: grid
channel: guichet
title: {fr: "Petit", en: "Tiny"}
themes:
  - {key: speed, label: {fr: "Vitesse", en: "Speed"}}
sections:
  - key: main
    title: {fr: "Principal", en: "Main"}
    items:
      - key: q1
        type: yes_no
        weight: 10
        label: {fr: "Question 1", en: "Question 1"}
      - key: q2
        type: count
        weight: 5
        theme: speed
        thresholds: {full: 5, partial: 10}
        label: {fr: "Question 2", en: "Question 2"}
      - key: q3
        type: choice_one
        relevant: "${q1} = 'yes'"
        label: {fr: "Question 3", en: "Question 3"}
        choices:
          - {value: a, label: {fr: "A", en: "A"}}
          - {value: b, label: {fr: "B", en: "B"}}
"""

Write = Callable[[str, str], Path]


def _refused(write: Write, text: str) -> DefinitionError:
    path = write(text, "tiny.yaml")
    with pytest.raises(DefinitionError) as caught:
        surveys.load_instrument(path)
    return caught.value


def _line_of(text: str, marker: str, occurrence: int = 1) -> int:
    lines = [number for number, line in enumerate(text.splitlines(), 1) if marker in line]
    return lines[occurrence - 1]


def _problem(error: DefinitionError, code: str) -> DefinitionProblem:
    matches = [problem for problem in error.problems if problem.code == code]
    assert matches, f"no {code!r} in {error}"
    return matches[0]


def test_the_base_definition_is_valid(write: Write) -> None:
    instrument = surveys.load_instrument(write(BASE, "tiny.yaml"))
    assert [item.key for item in instrument.items] == ["q1", "q2", "q3"]


# (mutation old → new, code, path, marker of the reported line, occurrence of the marker)
CASES = [
    (
        "duplicate item key",
        ("- key: q2", "- key: q1"),
        "duplicate_key",
        "main/q1/key",
        ("- key: q1", 2),
    ),
    (
        "duplicate section and item key",
        ("- key: main", "- key: q2"),
        "duplicate_key",
        "q2/q2/key",
        ("- key: q2", 2),
    ),
    (
        "duplicate choice value",
        ("{value: b,", "{value: a,"),
        "duplicate_key",
        "main/q3/choices/1/value",
        ("{value: a,", 2),
    ),
    (
        "negative weight",
        ("weight: 10", "weight: -1"),
        "negative_weight",
        "main/q1/weight",
        ("weight: -1", 1),
    ),
    (
        "thresholds out of order",
        ("{full: 5, partial: 10}", "{full: 10, partial: 5}"),
        "threshold_order",
        "main/q2/thresholds",
        ("thresholds:", 1),
    ),
    (
        "reference to an unknown item",
        ("${q1} = 'yes'", "${q9} = 'yes'"),
        "unknown_reference",
        "main/q3/relevant",
        ("relevant:", 1),
    ),
    (
        "reference to a later item",
        ("        type: yes_no\n", "        type: yes_no\n        relevant: \"${q3} = 'a'\"\n"),
        "later_reference",
        "main/q1/relevant",
        ("relevant:", 1),
    ),
    (
        "reference to itself",
        ("relevant: \"${q1} = 'yes'\"", "relevant: \"selected(${q3}, 'a')\""),
        "later_reference",
        "main/q3/relevant",
        ("relevant:", 1),
    ),
    (
        "unknown choice in skip logic",
        ("${q1} = 'yes'", "${q1} = 'oui'"),
        "unknown_choice",
        "main/q3/relevant",
        ("relevant:", 1),
    ),
    (
        "empty choice list",
        (
            "        choices:\n"
            '          - {value: a, label: {fr: "A", en: "A"}}\n'
            '          - {value: b, label: {fr: "B", en: "B"}}\n',
            "        choices: []\n",
        ),
        "empty_choices",
        "main/q3/choices",
        ("choices: []", 1),
    ),
    (
        "missing translation",
        ('label: {fr: "Question 2", en: "Question 2"}', 'label: {fr: "Question 2"}'),
        "missing_translation",
        "main/q2/label/en",
        ('label: {fr: "Question 2"}', 1),
    ),
    (
        "empty translation",
        ('label: {fr: "Question 1", en: "Question 1"}', 'label: {fr: "Question 1", en: " "}'),
        "missing_translation",
        "main/q1/label/en",
        ('en: " "', 1),
    ),
    (
        "untranslated text",
        ('label: {fr: "Question 1", en: "Question 1"}', 'label: "Question 1"'),
        "missing_translation",
        "main/q1/label",
        ('label: "Question 1"', 1),
    ),
    (
        "expression syntax",
        ("${q1} = 'yes'", "${q1} = = 'yes'"),
        "invalid_expression",
        "main/q3/relevant",
        ("relevant:", 1),
    ),
    (
        "misspelt field",
        ("weight: 10", "wieght: 10"),
        "unknown_field",
        "main/q1/wieght",
        ("wieght", 1),
    ),
    (
        "unknown type",
        ("type: yes_no", "type: yesno"),
        "invalid_value",
        "main/q1/type",
        ("yesno", 1),
    ),
    ("grid without channel", ("channel: guichet\n", ""), "missing_field", "channel", None),
    (
        "weight on an unscored item",
        ("type: choice_one\n", "type: choice_one\n        weight: 2\n"),
        "not_scorable",
        "main/q3/weight",
        ("weight: 2", 1),
    ),
    (
        "weighted count without thresholds",
        ("        thresholds: {full: 5, partial: 10}\n", ""),
        "missing_threshold",
        "main/q2/thresholds",
        ("- key: q2", 1),
    ),
    (
        "unknown theme",
        ("theme: speed", "theme: sped"),
        "unknown_reference",
        "main/q2/theme",
        ("theme: sped", 1),
    ),
]


@pytest.mark.parametrize(
    ("mutation", "code", "path", "marker"), [case[1:] for case in CASES], ids=[c[0] for c in CASES]
)
def test_refused_with_file_path_line_and_reason(
    write: Write,
    mutation: tuple[str, str],
    code: str,
    path: str,
    marker: tuple[str, int] | None,
) -> None:
    old, new = mutation
    assert old in BASE
    text = BASE.replace(old, new, 1)
    error = _refused(write, text)
    problem = _problem(error, code)
    assert problem.file == "tiny.yaml"
    assert problem.path == path
    assert problem.message
    if marker is not None:
        assert problem.line == _line_of(text, *marker)
    rendered = str(error)
    assert "tiny.yaml" in rendered and path in rendered and problem.message in rendered


def test_weights_summing_to_zero_are_refused_per_node(write: Write) -> None:
    text = BASE.replace("weight: 10", "weight: 0").replace("weight: 5", "weight: 0")
    error = _refused(write, text)
    paths = {problem.path for problem in error.problems if problem.code == "zero_weight"}
    assert paths == {"sections", "main/scored", "themes/speed"}


def test_expression_errors_give_the_column(write: Write) -> None:
    error = _refused(write, BASE.replace("${q1} = 'yes'", "${q1} = = 'yes'"))
    assert "column 9" in _problem(error, "invalid_expression").message  # the second '='
    assert len(error.problems) == 1


def test_delay_between_non_dates_is_refused(write: Write) -> None:
    delay = (
        "      - key: d\n"
        "        type: delay\n"
        "        start: q1\n"
        "        end: q4\n"
        '        label: {fr: "Délai", en: "Delay"}\n'
    )
    error = _refused(write, BASE + delay)
    assert _problem(error, "invalid_reference").path == "main/d/start"
    assert _problem(error, "unknown_reference").path == "main/d/end"


def test_several_problems_are_all_reported(write: Write) -> None:
    text = BASE.replace("weight: 10", "weight: -1").replace('en: "Question 2"', 'en: ""')
    error = _refused(write, text)
    assert {"negative_weight", "missing_translation"} <= error.codes
    assert str(error).startswith("2 problems")


def test_duplicate_yaml_keys_are_refused(write: Write) -> None:
    text = BASE.replace("weight: 10\n", "weight: 10\n        weight: 3\n")
    error = _refused(write, text)
    problem = error.problems[0]
    assert problem.code == "syntax"
    assert "duplicate key 'weight'" in problem.message
    assert problem.line == _line_of(text, "weight: 3")


def test_yaml_syntax_errors_give_the_line(write: Write) -> None:
    text = BASE.replace("    items:\n", "    items:\n   - broken: [\n", 1)
    error = _refused(write, text)
    assert error.problems[0].code == "syntax"
    assert error.problems[0].line is not None


def test_bare_yes_and_no_stay_text(write: Write) -> None:
    text = BASE.replace("{value: a,", "{value: yes,").replace("{value: b,", "{value: no,")
    text = text.replace("${q1} = 'yes'", "${q1} = 'no'")
    instrument = surveys.load_instrument(write(text, "tiny.yaml"))
    assert [choice.value for choice in instrument.item("q3").choices] == ["yes", "no"]


def test_json_definitions_are_checked_too(write: Write) -> None:
    duplicated = write('{"key": "a", "key": "b"}', "dup.json")
    with pytest.raises(DefinitionError) as caught:
        surveys.load_instrument(duplicated)
    assert caught.value.problems[0].code == "duplicate_key"
    assert caught.value.problems[0].file == "dup.json"
    broken = write('{"key": ', "broken.json")
    with pytest.raises(DefinitionError, match=r"broken\.json"):
        surveys.load_instrument(broken)


def test_a_definition_must_be_a_mapping() -> None:
    with pytest.raises(DefinitionError, match="mapping"):
        instrument_from_dict(["not", "a", "mapping"])


def test_unknown_file_format(write: Write) -> None:
    with pytest.raises(DefinitionError, match="unknown format"):
        surveys.load_instrument(write("key: x", "definition.toml"))
