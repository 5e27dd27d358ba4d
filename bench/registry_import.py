"""Time the import of the full registry (36,359 authorities) on SQLite, then a re-import.

    uv run python bench/registry_import.py [--database-url URL]

Prints JSON: seconds for the first import and for the idempotent re-import.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from alembic import command

from app.authorities.service import BUNDLED_REGISTRY, import_registry_file
from app.cli import alembic_config
from app.core.db import create_db_engine, unit_of_work


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    url = args.database_url or f"sqlite:///{Path(tempfile.mkdtemp()) / 'bench.sqlite3'}"
    command.upgrade(alembic_config(url), "head")
    engine = create_db_engine(url)
    figures: dict[str, object] = {"database": engine.dialect.name}
    for label in ("first_import", "reimport"):
        started = time.perf_counter()
        with unit_of_work(engine) as session:  # what `barometre registry import` runs
            report = import_registry_file(session, path=BUNDLED_REGISTRY)
        figures[f"{label}_seconds"] = round(time.perf_counter() - started, 3)
        figures[f"{label}_created"] = report.created
        figures[f"{label}_unchanged"] = report.unchanged
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
