"""Skip logic and constraints: a small expression language, parsed once, evaluated safely.

The syntax is the part of XLSForm's XPath that instruments need::

    ${channel} = 'telephone' and not(${connected} = 'no')
    selected(${topics}, 'tax') or ${age} >= 18
    . >= 0 and . <= 600            (constraints: ``.`` is the item's own answer)

- comparisons ``=`` (also ``==``), ``!=``, ``<``, ``<=``, ``>``, ``>=``; not chainable;
- ``and``, ``or``, ``not`` (``not x`` or ``not(x)``), parentheses;
- literals: numbers (``-1``, ``0.5``), strings in single or double quotes, ``true``/``false``
  (also ``true()``/``false()``);
- references to items: ``${key}`` (XLSForm) or the bare ``key``; ``.`` in constraints;
- ``selected(reference, 'value')``: the choice is among the selected ones.

Evaluation rules (chosen so that unanswered items never make a question appear by accident):

- a comparison involving a missing answer is false, whatever the operator, so
  ``${x} != 'a'`` is false while ``x`` is unanswered (``not(${x} = 'a')`` is true);
- numbers compare numerically; a number and a numeric string compare as numbers (XPath);
  other strings compare as text, which orders ISO dates correctly; a multiple choice compares
  as its space-separated values (XPath); ``true``/``false`` equal the answers ``'yes'``/``'no'``;
- values of different kinds are never equal and never ordered;
- a bare value where a condition is expected (``${x} and ...``) is refused when parsing.

The parser is a hand-written tokenizer and recursive descent: no ``eval`` anywhere.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache

from surveys.errors import ExpressionError

__all__ = [
    "And",
    "Compare",
    "Current",
    "Expression",
    "Literal",
    "Not",
    "Or",
    "Reference",
    "Selected",
    "evaluate",
    "parse_expression",
]

KEYWORDS = frozenset({"and", "or", "not", "true", "false", "selected"})
COMPARISONS = ("=", "!=", "<", "<=", ">", ">=")


# --------------------------------------------------------------------------- AST


@dataclass(frozen=True)
class Literal:
    value: str | int | float | bool
    position: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Reference:
    key: str
    position: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Current:
    """``.``: the answer being checked by a constraint."""

    position: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Selected:
    target: Reference | Current
    value: Literal
    position: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Compare:
    op: str
    left: Node
    right: Node
    position: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Not:
    operand: Node
    position: int = field(default=0, compare=False)


@dataclass(frozen=True)
class And:
    operands: tuple[Node, ...]
    position: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Or:
    operands: tuple[Node, ...]
    position: int = field(default=0, compare=False)


Node = Literal | Reference | Current | Selected | Compare | Not | And | Or
_CONDITIONS = (Compare, Selected, Not, And, Or)


# --------------------------------------------------------------------------- tokens


@dataclass(frozen=True)
class _Token:
    kind: str  # number, string, ref, dot, name, op, (, ), ",", end
    text: str
    position: int


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_NUMBER = re.compile(r"\d+(?:\.\d+)?|\.\d+")
_OPERATORS = ("==", "!=", "<=", ">=", "=", "<", ">", "-")


def _tokenize(source: str) -> list[_Token]:
    tokens: list[_Token] = []
    i, n = 0, len(source)
    while i < n:
        char = source[i]
        if char.isspace():
            i += 1
            continue
        if char in "(),":
            tokens.append(_Token(char, char, i))
            i += 1
            continue
        if char in "'\"":
            end = source.find(char, i + 1)
            if end < 0:
                raise ExpressionError("unterminated string", source, i)
            tokens.append(_Token("string", source[i + 1 : end], i))
            i = end + 1
            continue
        if char == "$":
            match = _REFERENCE.match(source, i)
            if not match:
                raise ExpressionError("malformed reference, expected ${name}", source, i)
            tokens.append(_Token("ref", match.group(1), i))
            i = match.end()
            continue
        number = _NUMBER.match(source, i)
        if number:
            if _NAME.match(source, number.end()):
                raise ExpressionError("malformed number", source, i)
            tokens.append(_Token("number", number.group(), i))
            i = number.end()
            continue
        if char == ".":
            tokens.append(_Token("dot", ".", i))
            i += 1
            continue
        name = _NAME.match(source, i)
        if name:
            tokens.append(_Token("name", name.group(), i))
            i = name.end()
            continue
        operator = next((op for op in _OPERATORS if source.startswith(op, i)), None)
        if operator is None:
            raise ExpressionError(f"unexpected character {char!r}", source, i)
        tokens.append(_Token("op", operator, i))
        i += len(operator)
    tokens.append(_Token("end", "", n))
    return tokens


# --------------------------------------------------------------------------- parser


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.tokens = _tokenize(source)
        self.index = 0

    @property
    def token(self) -> _Token:
        return self.tokens[self.index]

    def advance(self) -> _Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def error(self, message: str, token: _Token | None = None) -> ExpressionError:
        token = token or self.token
        return ExpressionError(message, self.source, token.position)

    def describe(self, token: _Token) -> str:
        return "end of expression" if token.kind == "end" else repr(token.text)

    def expect(self, kind: str) -> _Token:
        if self.token.kind != kind:
            raise self.error(f"expected {kind!r}, found {self.describe(self.token)}")
        return self.advance()

    def is_name(self, word: str) -> bool:
        return self.token.kind == "name" and self.token.text == word

    def parse(self) -> Node:
        if self.token.kind == "end":
            raise self.error("empty expression")
        node = self.condition()
        if self.token.kind != "end":
            raise self.error(f"unexpected {self.describe(self.token)}")
        return node

    def condition(self) -> Node:
        start = self.token
        node = self.or_expr()
        self.require_condition(node, start)
        return node

    def require_condition(self, node: Node, token: _Token) -> None:
        if isinstance(node, _CONDITIONS) or (
            isinstance(node, Literal) and isinstance(node.value, bool)
        ):
            return
        raise self.error(
            "expected a condition such as ${item} = 'value', found a bare value", token
        )

    def or_expr(self) -> Node:
        start = self.token
        operands = [self.and_expr()]
        while self.is_name("or"):
            self.require_condition(operands[0], start)
            self.advance()
            operand_token = self.token
            operands.append(self.and_expr())
            self.require_condition(operands[-1], operand_token)
        return operands[0] if len(operands) == 1 else Or(tuple(operands), start.position)

    def and_expr(self) -> Node:
        start = self.token
        operands = [self.not_expr()]
        while self.is_name("and"):
            self.require_condition(operands[0], start)
            self.advance()
            operand_token = self.token
            operands.append(self.not_expr())
            self.require_condition(operands[-1], operand_token)
        return operands[0] if len(operands) == 1 else And(tuple(operands), start.position)

    def not_expr(self) -> Node:
        if self.is_name("not"):
            token = self.advance()
            operand_token = self.token
            operand = self.not_expr()
            self.require_condition(operand, operand_token)
            return Not(operand, token.position)
        return self.comparison()

    def comparison(self) -> Node:
        left = self.primary()
        if self.token.kind == "op" and self.token.text != "-":
            op_token = self.advance()
            right = self.primary()
            if self.token.kind == "op" and self.token.text != "-":
                raise self.error("comparisons cannot be chained; combine them with 'and'")
            op = "=" if op_token.text == "==" else op_token.text
            return Compare(op, left, right, op_token.position)
        return left

    def primary(self) -> Node:
        token = self.token
        if token.kind == "(":
            self.advance()
            node = self.or_expr()
            self.expect(")")
            return node
        if token.kind == "number":
            self.advance()
            return Literal(_number(token.text), token.position)
        if token.kind == "op" and token.text == "-":
            self.advance()
            if self.token.kind != "number":
                raise self.error("expected a number after '-'")
            return Literal(-_number(self.advance().text), token.position)
        if token.kind == "string":
            self.advance()
            return Literal(token.text, token.position)
        if token.kind == "ref":
            self.advance()
            return Reference(token.text, token.position)
        if token.kind == "dot":
            self.advance()
            return Current(token.position)
        if token.kind == "name":
            return self.name()
        raise self.error(f"expected a value, found {self.describe(token)}")

    def name(self) -> Node:
        token = self.advance()
        word = token.text
        is_call = self.token.kind == "("
        if word in ("true", "false"):
            if is_call:
                self.advance()
                self.expect(")")
            return Literal(word == "true", token.position)
        if word == "selected":
            if not is_call:
                raise self.error("expected '(' after selected")
            return self.selected(token)
        if word in KEYWORDS:
            raise self.error(f"unexpected {word!r}", token)
        if is_call:
            raise self.error(f"unknown function {word!r}", token)
        return Reference(word, token.position)

    def selected(self, token: _Token) -> Selected:
        self.expect("(")
        target = self.primary()
        if not isinstance(target, Reference | Current):
            raise self.error("selected() takes an item reference first", token)
        self.expect(",")
        value_token = self.token
        value = self.primary()
        if not isinstance(value, Literal) or isinstance(value.value, bool):
            raise self.error("selected() takes a choice value ('text' or number)", value_token)
        self.expect(")")
        return Selected(target, value, token.position)


def _number(text: str) -> int | float:
    return float(text) if "." in text else int(text)


# --------------------------------------------------------------------------- evaluation


def _walk(node: Node) -> list[Node]:
    found: list[Node] = [node]
    if isinstance(node, Selected):
        found += _walk(node.target)
    elif isinstance(node, Compare):
        found += _walk(node.left) + _walk(node.right)
    elif isinstance(node, Not):
        found += _walk(node.operand)
    elif isinstance(node, And | Or):
        for operand in node.operands:
            found += _walk(operand)
    return found


@dataclass(frozen=True)
class Expression:
    """A parsed expression: its source text, its syntax tree and what it refers to."""

    source: str
    root: Node = field(compare=False)
    references: tuple[Reference, ...] = field(compare=False)
    uses_current: bool = field(compare=False)

    @property
    def keys(self) -> frozenset[str]:
        return frozenset(reference.key for reference in self.references)

    def nodes(self) -> list[Node]:
        return _walk(self.root)

    def evaluate(self, answers: Mapping[str, object], current: object = None) -> bool:
        """Truth of the expression given answers keyed by item key (missing = unanswered)."""
        return _truth(self.root, answers, current)

    def __str__(self) -> str:
        return self.source


@lru_cache(maxsize=4096)
def parse_expression(source: str) -> Expression:
    """Parse ``source`` once; raise :class:`ExpressionError` with the column on error."""
    if not isinstance(source, str):
        raise TypeError("an expression is a string")
    root = _Parser(source).parse()
    nodes = _walk(root)
    references = tuple(node for node in nodes if isinstance(node, Reference))
    uses_current = any(isinstance(node, Current) for node in nodes)
    return Expression(source, root, references, uses_current)


def evaluate(
    expression: str | Expression, answers: Mapping[str, object], current: object = None
) -> bool:
    """Evaluate an expression (text or parsed) against answers keyed by item key."""
    parsed = parse_expression(expression) if isinstance(expression, str) else expression
    return parsed.evaluate(answers, current)


def _lookup(node: Node, answers: Mapping[str, object], current: object) -> object:
    if isinstance(node, Literal):
        return node.value
    if isinstance(node, Reference):
        value = answers.get(node.key)
    elif isinstance(node, Current):
        value = current
    else:
        return _truth(node, answers, current)
    if value == "" or value == [] or value == ():
        return None
    return value


def _truth(node: Node, answers: Mapping[str, object], current: object) -> bool:
    if isinstance(node, Compare):
        left = _lookup(node.left, answers, current)
        right = _lookup(node.right, answers, current)
        return _compare(node.op, left, right)
    if isinstance(node, Selected):
        value = _lookup(node.target, answers, current)
        if value is None:
            return False
        wanted = _text(node.value.value)
        if isinstance(value, list | tuple):
            return any(_text(choice) == wanted for choice in value)
        return _text(value) == wanted
    if isinstance(node, Not):
        return not _truth(node.operand, answers, current)
    if isinstance(node, And):
        return all(_truth(operand, answers, current) for operand in node.operands)
    if isinstance(node, Or):
        return any(_truth(operand, answers, current) for operand in node.operands)
    if isinstance(node, Literal) and isinstance(node.value, bool):
        return node.value
    raise TypeError(f"not a condition: {node!r}")  # the parser refuses these


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _as_number(text: str) -> float | None:
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


_YES_NO = {"yes": True, "no": False}


def _comparable(left: object, right: object) -> tuple[object, object] | None:
    """Bring two answers to one kind, or None when they cannot be compared."""
    if isinstance(left, list | tuple):
        left = " ".join(_text(item) for item in left)
    if isinstance(right, list | tuple):
        right = " ".join(_text(item) for item in right)
    if isinstance(left, bool) or isinstance(right, bool):
        if isinstance(left, str):
            left = _YES_NO.get(left)
        if isinstance(right, str):
            right = _YES_NO.get(right)
        ok = isinstance(left, bool) and isinstance(right, bool)
        return (left, right) if ok else None
    if _is_number(left) and _is_number(right):
        return left, right
    if _is_number(left) and isinstance(right, str):
        number = _as_number(right)
        return None if number is None else (left, number)
    if isinstance(left, str) and _is_number(right):
        number = _as_number(left)
        return None if number is None else (number, right)
    if isinstance(left, str) and isinstance(right, str):
        return left, right
    return None


def _compare(op: str, left: object, right: object) -> bool:
    if left is None or right is None:
        return False
    pair = _comparable(left, right)
    if pair is None:
        return op == "!="
    a, b = pair
    if op == "=":
        return a == b
    if op == "!=":
        return a != b
    if isinstance(a, bool) or isinstance(b, bool):
        return False
    try:
        if op == "<":
            return a < b  # type: ignore[operator]
        if op == "<=":
            return a <= b  # type: ignore[operator]
        if op == ">":
            return a > b  # type: ignore[operator]
        return a >= b  # type: ignore[operator]
    except TypeError:
        return False
