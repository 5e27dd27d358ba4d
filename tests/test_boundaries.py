"""The pure layers stay pure: scoring/ and surveys/ never import the web or the database."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {"app", "fastapi", "starlette", "sqlmodel", "sqlalchemy", "uvicorn", "jinja2"}
RULES = {"scoring": FORBIDDEN | {"surveys"}, "surveys": FORBIDDEN | {"scoring"}}


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and getattr(node.func, "id", "") == "__import__":
            roots.add("<dynamic import>")
    return roots


@pytest.mark.parametrize("package", sorted(RULES))
def test_no_forbidden_import_in_source(package: str) -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            imported_roots(path) & (RULES[package] | {"<dynamic import>"})
        )
        for path in (ROOT / package).rglob("*.py")
    }
    offenders = {path: names for path, names in offenders.items() if names}
    assert offenders == {}


def test_the_checker_catches_a_violation(tmp_path: Path) -> None:
    sample = tmp_path / "bad.py"
    sample.write_text("from sqlalchemy import select\nimport app.models as m\n")
    assert {"sqlalchemy", "app"} <= imported_roots(sample)


@pytest.mark.parametrize("package", sorted(RULES))
def test_importing_does_not_load_the_web_stack(package: str) -> None:
    code = (
        f"import sys, {package}; "
        f"loaded = sorted(m for m in {sorted(RULES[package])!r} if m in sys.modules); "
        "print(','.join(loaded))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert result.stdout.strip() == ""
