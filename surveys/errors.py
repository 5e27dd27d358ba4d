"""Errors raised by the instrument package.

Definitions are refused with a :class:`DefinitionError` that lists every problem found, each
naming the file, where in it (line and column, or sheet/row/column for XLSForm) and the path
inside the instrument (``section/item/field``). Expressions are refused with an
:class:`ExpressionError` giving the column. Answers are never refused by an exception: see
``validate_answers``; only :func:`surveys.submission_scores` raises :class:`InvalidAnswersError`
when handed answers that do not validate.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from surveys.answers import AnswerError


class InstrumentError(ValueError):
    """Base class of every error raised by ``surveys``."""


@dataclass(frozen=True)
class DefinitionProblem:
    """One thing wrong with a definition.

    ``path`` walks the instrument by keys: ``accueil/attente/thresholds/partial`` is field
    ``thresholds.partial`` of item ``attente`` in section ``accueil``; an empty path is the
    instrument itself. ``code`` is stable (``duplicate_key``, ``negative_weight``,
    ``zero_weight``, ``threshold_order``, ``unknown_reference``, ``later_reference``,
    ``empty_choices``, ``missing_translation``, ``invalid_expression``, ``unsupported``, ...).
    ``line`` is 1-based (a YAML line, or a spreadsheet row with ``sheet`` set); ``column`` is a
    1-based YAML column or a spreadsheet column such as ``"F (weight)"``.
    """

    path: str
    message: str
    code: str = "invalid"
    file: str | None = None
    line: int | None = None
    column: int | str | None = None
    sheet: str | None = None

    def location(self) -> str:
        parts: list[str] = []
        if self.file:
            parts.append(self.file)
        if self.sheet is not None:
            where = f"sheet {self.sheet!r}"
            if self.line is not None:
                where += f", row {self.line}"
            if self.column is not None:
                where += f", column {self.column}"
            parts.append(where)
        elif self.line is not None:
            parts.append(f"line {self.line}" + (f", column {self.column}" if self.column else ""))
        return ", ".join(parts)

    def __str__(self) -> str:
        where = self.location()
        what = f"{self.path}: {self.message}" if self.path else self.message
        return f"{where}: {what}" if where else what


class DefinitionError(InstrumentError):
    """A definition was refused; ``problems`` lists everything found wrong."""

    def __init__(self, problems: Iterable[DefinitionProblem]) -> None:
        self.problems: tuple[DefinitionProblem, ...] = tuple(problems)
        if not self.problems:
            raise ValueError("DefinitionError needs at least one problem")
        super().__init__(self._text())

    def _text(self) -> str:
        if len(self.problems) == 1:
            return str(self.problems[0])
        lines = [f"{len(self.problems)} problems in the definition:"]
        lines += [f"  - {problem}" for problem in self.problems]
        return "\n".join(lines)

    @property
    def codes(self) -> set[str]:
        return {problem.code for problem in self.problems}


class XLSFormError(DefinitionError):
    """An XLSForm workbook was refused (each problem names its sheet, row and column)."""


class ExpressionError(InstrumentError):
    """A skip-logic or constraint expression could not be parsed.

    ``position`` is the 0-based offset in ``expression``; ``column`` is 1-based.
    """

    def __init__(self, message: str, expression: str, position: int) -> None:
        self.reason = message
        self.expression = expression
        self.position = max(0, min(position, len(expression)))
        self.column = self.position + 1
        pointer = " " * self.position + "^"
        super().__init__(f"{message} at column {self.column}\n  {expression}\n  {pointer}")


class InvalidAnswersError(InstrumentError):
    """Answers handed to scoring did not validate; ``errors`` lists the per-item errors."""

    def __init__(self, errors: Iterable[AnswerError]) -> None:
        self.errors = tuple(errors)
        listed = "; ".join(f"{error.item}: {error.code}" for error in self.errors[:5])
        more = f" (and {len(self.errors) - 5} more)" if len(self.errors) > 5 else ""
        super().__init__(f"answers do not validate: {listed}{more}")
