"""Import and transaction boundaries, checked on the source (``ast``, nothing imported):

- the pure layers stay pure: ``scoring/`` and ``surveys/`` import neither the web nor the
  database (nor each other);
- no import cycle among the packages of ``app/`` (each first-level package or top-level module
  is one node; every import counts, also inside functions and under ``if TYPE_CHECKING``);
- ``app/core/`` imports no domain (a domain plugs into core through a hook it registers);
- nothing under ``app/`` imports the top-level ``demo`` package (the demo is a client of the
  app, never the reverse);
- one commit point: only ``app/core/db.py`` and the citizen group-commit writer call
  ``.commit()`` or open a transaction with ``.begin()``.

Each check is a function of a source tree, and the last tests run them on a throwaway tree
that breaks every rule, to show that they catch it.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "app"
FORBIDDEN = {"app", "fastapi", "starlette", "sqlmodel", "sqlalchemy", "uvicorn", "jinja2"}
RULES = {"scoring": FORBIDDEN | {"surveys"}, "surveys": FORBIDDEN | {"scoring"}}
# The only places that may commit, each for a stated reason (paths relative to app/).
COMMIT_POINTS = {
    "core/db.py": "the request and command-line units of work",
    "collection/ingest.py": "the group-commit writer: one COMMIT for many citizens' requests, "
    "each acknowledged only after it",
}
TRANSACTION_METHODS = {"commit", "begin"}


def imported_roots(path: Path) -> set[str]:
    """The top-level packages a file imports (``<dynamic import>`` for ``__import__``)."""
    return {module.split(".")[0] for module in _imported_modules(path.parent, path) if module}


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


# --- the packages of app/ ----------------------------------------------------------------------


def _node_of(app_dir: Path, path: Path) -> str:
    """A first-level package of ``app/`` (``accounts``), or a top-level module (``cli``)."""
    parts = path.relative_to(app_dir).parts
    return parts[0] if len(parts) > 1 else path.stem


def _imported_modules(app_dir: Path, path: Path) -> set[str]:
    """Every module ``path`` imports, dotted and absolute (relative imports resolved against
    ``app_dir``), and ``<dynamic import>`` where it calls ``__import__``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = [app_dir.name, *path.relative_to(app_dir).parent.parts]
    modules: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            modules.add(module)
            if module == app_dir.name:  # `from app import accounts` imports `app.accounts`
                modules.update(f"{module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Call) and getattr(node.func, "id", "") == "__import__":
            modules.add("<dynamic import>")
    return modules


def app_import_graph(app_dir: Path) -> dict[str, set[str]]:
    """Which packages of ``app/`` each package imports (itself left out)."""
    prefix = app_dir.name + "."
    nodes = {_node_of(app_dir, path) for path in app_dir.rglob("*.py")} - {"__init__"}
    graph: dict[str, set[str]] = {node: set() for node in nodes}
    for path in app_dir.rglob("*.py"):
        source = _node_of(app_dir, path)
        if source == "__init__":
            continue
        for module in _imported_modules(app_dir, path):
            if module.startswith(prefix):
                target = module.split(".")[1]
                if target in nodes and target != source:
                    graph[source].add(target)
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one package (Tarjan), sorted."""
    index: dict[str, int] = {}
    lowlink: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = lowlink[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                lowlink[node] = min(lowlink[node], lowlink[target])
            elif target in on_stack:
                lowlink[node] = min(lowlink[node], index[target])
        if lowlink[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(components)


def core_domain_imports(app_dir: Path) -> dict[str, list[str]]:
    """Modules of ``app/core/`` that import another package of ``app/``."""
    prefix = app_dir.name + "."
    offenders = {}
    for path in (app_dir / "core").rglob("*.py"):
        domains = sorted(
            module
            for module in _imported_modules(app_dir, path)
            if module.startswith(prefix) and module.split(".")[1] != "core"
        )
        if domains:
            offenders[str(path.relative_to(app_dir))] = domains
    return offenders


def demo_imports(app_dir: Path) -> dict[str, list[str]]:
    """Modules of ``app/`` that import the top-level ``demo`` package."""
    offenders = {}
    for path in app_dir.rglob("*.py"):
        found = sorted(
            module
            for module in _imported_modules(app_dir, path)
            if module == "demo" or module.startswith("demo.")
        )
        if found:
            offenders[str(path.relative_to(app_dir))] = found
    return offenders


def transaction_calls(app_dir: Path) -> dict[str, list[int]]:
    """Lines calling ``.commit()`` or ``.begin()`` (a block that commits on leaving), outside
    the allowed commit points."""
    offenders = {}
    for path in app_dir.rglob("*.py"):
        relative = path.relative_to(app_dir).as_posix()
        if relative in COMMIT_POINTS:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        lines = sorted(
            node.lineno
            for node in ast.walk(tree)
            if isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in TRANSACTION_METHODS
        )
        if lines:
            offenders[relative] = lines
    return offenders


def test_no_import_cycle_among_app_packages() -> None:
    assert import_cycles(app_import_graph(APP)) == []


def test_core_imports_no_domain() -> None:
    assert core_domain_imports(APP) == {}


def test_the_app_never_imports_the_demo() -> None:
    assert demo_imports(APP) == {}


def test_only_the_units_of_work_and_the_writer_commit() -> None:
    assert transaction_calls(APP) == {}
    assert all((APP / path).is_file() for path in COMMIT_POINTS)


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def test_the_checks_catch_a_throwaway_tree_that_breaks_every_rule(tmp_path: Path) -> None:
    app_dir = _write(
        tmp_path / "app",
        {
            "__init__.py": "",
            "core/__init__.py": "",
            # core loading a domain's model inside a function (the old layout-user lookup)
            "core/templating.py": "def user():\n    from app.accounts.models import User\n",
            "core/db.py": "def commit(session):\n    session.commit()\n",
            "accounts/__init__.py": "",
            "accounts/service.py": "from app.authorities import repository\n",
            "authorities/__init__.py": "",
            # the other half of a cycle, hidden under TYPE_CHECKING and written relatively
            "authorities/routes.py": (
                "from typing import TYPE_CHECKING\n"
                "if TYPE_CHECKING:\n"
                "    from ..accounts.dependencies import AdminUser\n"
            ),
            "campaigns/__init__.py": "",
            "campaigns/service.py": (
                "from app import accounts\n"
                "def save(session, engine):\n"
                "    session.commit()\n"
                "    with engine.begin() as connection:\n"
                "        pass\n"
            ),
            "cli.py": "def demo():\n    from demo.editions import build_demo\n",
        },
    )
    graph = app_import_graph(app_dir)
    assert graph["campaigns"] == {"accounts"}
    assert import_cycles(graph) == [["accounts", "authorities"]]
    assert core_domain_imports(app_dir) == {"core/templating.py": ["app.accounts.models"]}
    assert demo_imports(app_dir) == {"cli.py": ["demo.editions"]}
    assert transaction_calls(app_dir) == {"campaigns/service.py": [3, 4]}


def test_a_clean_throwaway_tree_passes(tmp_path: Path) -> None:
    app_dir = _write(
        tmp_path / "app",
        {
            "__init__.py": "",
            "core/__init__.py": "",
            "core/templating.py": "from app.core.i18n import _\n",
            "accounts/__init__.py": "",
            "accounts/service.py": "from app.authorities import repository\n",
            "authorities/__init__.py": "",
            "authorities/repository.py": "from app.core.templating import render\n",
        },
    )
    assert import_cycles(app_import_graph(app_dir)) == []
    assert core_domain_imports(app_dir) == {}
    assert demo_imports(app_dir) == {}
    assert transaction_calls(app_dir) == {}
