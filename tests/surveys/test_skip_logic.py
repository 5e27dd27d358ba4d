"""The skip-logic language: parsing once, safe evaluation, errors with their column."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from surveys import ExpressionError, evaluate, parse_expression
from surveys.expressions import And, Compare, Literal, Not, Or, Reference, Selected


def test_parses_into_a_tree_with_precedence() -> None:
    parsed = parse_expression("${a} = 1 or not ${b} != 'x' and selected(${c}, 'y')")
    assert isinstance(parsed.root, Or)
    left, right = parsed.root.operands
    assert left == Compare("=", Reference("a"), Literal(1))
    assert isinstance(right, And)
    assert right.operands[0] == Not(Compare("!=", Reference("b"), Literal("x")))
    assert right.operands[1] == Selected(Reference("c"), Literal("y"))
    assert parsed.keys == {"a", "b", "c"}


def test_bare_names_and_xlsform_references_are_the_same() -> None:
    assert parse_expression("q1 >= 3").root == parse_expression("${q1} >= 3").root


@pytest.mark.parametrize(
    ("expression", "answers", "expected"),
    [
        ("${a} = 'x'", {"a": "x"}, True),
        ("${a} == 'x'", {"a": "y"}, False),
        ("${a} != 'x'", {"a": "y"}, True),
        ("${n} < 3", {"n": 2}, True),
        ("${n} <= 2", {"n": 2}, True),
        ("${n} > 2.5", {"n": 3}, True),
        ("${n} >= -1", {"n": -1}, True),
        ("${n} = 2", {"n": 2.0}, True),
        ("${n} = '2'", {"n": 2}, True),  # XPath: a number equals its numeric text
        ("${d} < '2024-05-01'", {"d": "2024-04-30"}, True),  # ISO dates order as text
        ("(${a} = 'x' or ${b} = 'y') and not(${c} = 'z')", {"b": "y"}, True),
        ("${a} = 'x' or ${b} = 'y' and ${c} = 'z'", {"a": "x"}, True),  # and binds tighter
        ("selected(${m}, 'b')", {"m": ["a", "b"]}, True),
        ("selected(${m}, 'c')", {"m": ["a", "b"]}, False),
        ("selected(${s}, 'b')", {"s": "b"}, True),
        ("selected(${m}, 2)", {"m": ["2"]}, True),
        ("${yn} = true", {"yn": "yes"}, True),
        ("${yn} = false()", {"yn": "yes"}, False),
        ("true", {}, True),
        ("not false", {}, True),
        ("${m} = 'a b'", {"m": ["a", "b"]}, True),  # XPath: a multiple choice as text
        ("${q} <= 2", {"q": "na"}, False),  # not applicable is not a low score
        ("${q} = 3", {"q": "na"}, False),
        ("${q} != 3", {"q": "na"}, True),
    ],
)
def test_evaluates(expression: str, answers: dict[str, object], expected: bool) -> None:
    assert evaluate(expression, answers) is expected


@pytest.mark.parametrize("op", ["=", "!=", "<", "<=", ">", ">="])
def test_a_comparison_with_a_missing_answer_is_false(op: str) -> None:
    expression = parse_expression(f"${{x}} {op} 3")
    assert expression.evaluate({}) is False
    assert expression.evaluate({"x": None}) is False
    assert expression.evaluate({"x": ""}) is False
    assert parse_expression(f"not(${{x}} {op} 3)").evaluate({}) is True


def test_selected_on_a_missing_answer_is_false() -> None:
    assert evaluate("selected(${m}, 'a')", {}) is False
    assert evaluate("selected(${m}, 'a')", {"m": []}) is False


def test_current_value_in_constraints() -> None:
    expression = parse_expression(". >= 0 and . <= ${limit}")
    assert expression.uses_current
    assert expression.evaluate({"limit": 10}, current=4) is True
    assert expression.evaluate({"limit": 10}, current=11) is False
    assert expression.evaluate({}, current=4) is False  # limit unanswered


def test_parsed_once_and_cached() -> None:
    assert parse_expression("${a} = 1") is parse_expression("${a} = 1")


@pytest.mark.parametrize(
    ("expression", "column", "reason"),
    [
        ("${a} = ", 8, "expected a value"),
        ("${a} = 'x", 8, "unterminated string"),
        ("${a = 1", 1, "malformed reference"),
        ("${a} = 1 and", 13, "expected a value"),
        ("(${a} = 1", 10, "expected ')'"),
        ("${a} = 1)", 9, "unexpected ')'"),
        ("${a} # 1", 6, "unexpected character '#'"),
        ("1 < ${a} < 3", 10, "cannot be chained"),
        ("count(${a}) > 1", 1, "unknown function 'count'"),
        ("${a}", 1, "expected a condition"),
        ("${a} = 1 and ${b}", 14, "expected a condition"),
        ("selected(${a})", 14, "expected ','"),
        ("selected('x', 'y')", 1, "takes an item reference"),
        ("", 1, "empty expression"),
        ("${a} = 1 or", 12, "expected a value"),
        ("1a = 2", 1, "malformed number"),
        ("and = 1", 1, "unexpected 'and'"),
    ],
)
def test_errors_give_the_column(expression: str, column: int, reason: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        parse_expression(expression)
    error = caught.value
    assert error.column == column, str(error)
    assert reason in str(error)
    assert f"column {column}" in str(error)
    assert error.expression == expression


def test_no_eval_of_python() -> None:
    with pytest.raises(ExpressionError):
        parse_expression("__import__('os').system('true')")


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="${}()'\"., =!<>-_abnotdrsel0123456789xy", max_size=40))
def test_any_text_parses_or_fails_with_a_position(text: str) -> None:
    try:
        parsed = parse_expression(text)
    except ExpressionError as error:
        assert 1 <= error.column <= len(text) + 1
    else:
        # a parsed expression always evaluates to a boolean, whatever the answers
        answers = {key: value for key, value in zip("abxy", [1, "x", None, ["a"]], strict=True)}
        assert parsed.evaluate(answers) in (True, False)
