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
from sqlmodel import Session

from app.authorities.service import import_registry_file
from app.cli import alembic_config
from app.core.db import create_db_engine
from app.demo import BUNDLED_REGISTRY


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
        with Session(engine) as session:
            report = import_registry_file(session, path=BUNDLED_REGISTRY)
            session.commit()
        figures[f"{label}_seconds"] = round(time.perf_counter() - started, 3)
        figures[f"{label}_created"] = report.created
        figures[f"{label}_unchanged"] = report.unchanged
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
