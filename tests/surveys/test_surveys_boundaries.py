"""surveys/ is pure: no import from the web or database layers, no evaluation of code."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import surveys

PACKAGE = Path(surveys.__file__).parent
ALLOWED = {"pydantic", "pydantic_core", "yaml", "holidays", "openpyxl", "surveys"}
FORBIDDEN = {"app", "scoring", "fastapi", "starlette", "sqlmodel", "sqlalchemy"}


def _modules() -> list[Path]:
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) >= 10
    return files


def test_surveys_imports_only_the_standard_library_and_its_dependencies() -> None:
    offenders = []
    for path in _modules():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:  # relative import inside the package
                    continue
                names = [node.module or ""]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in ALLOWED and top not in sys.stdlib_module_names:
                    offenders.append(f"{path.name}:{node.lineno} imports {name}")
    assert offenders == []


def test_no_eval_or_exec() -> None:
    calls = []
    for path in _modules():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in {"eval", "exec", "compile", "__import__"}
            ):
                calls.append(f"{path.name}:{node.lineno} calls {node.func.id}")
    assert calls == []


def test_importing_surveys_loads_no_web_or_database_module() -> None:
    code = (
        "import sys, surveys; surveys.default_instruments(); "
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {sorted(FORBIDDEN)!r}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"


def test_the_public_api_is_exported() -> None:
    for name in (
        "load_instrument",
        "default_instruments",
        "validate_answers",
        "item_score",
        "submission_scores",
        "relevant_items",
        "form_pages",
        "parse_expression",
        "evaluate",
        "working_days_between",
        "canonical_json",
        "instrument_sha256",
        "to_xlsform",
        "from_xlsform",
        "Instrument",
        "Section",
        "Item",
        "DefinitionError",
        "ExpressionError",
        "XLSFormError",
    ):
        assert name in surveys.__all__ and hasattr(surveys, name), name
