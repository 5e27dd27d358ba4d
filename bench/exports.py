"""Analyst exports of a national-scale campaign (1,000,000 responses); prints JSON figures.

    uv run python bench/exports.py [--database PATH] [--formats csv,sav,dta,xlsx,zip]

Uses (or builds, as ``bench/results.py`` does) the synthetic campaign of 2,000 candidates,
1,000,000 citizen responses and 24,000 approved visits. Each format is exported in a fresh
process (so its peak memory is the export's own, beside the same process's baseline after
imports), with the same code the ``exports.build`` job runs: every response and visit
table, staged once, then written. Reports seconds, peak RSS, file size and rows.
Target (issue #15): peak memory under 300 MB for an export of the whole campaign.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

TARGET_MB = 300
FORMATS = ("csv", "csv_french", "sav", "dta", "xlsx", "zip")


def _rss_mb() -> float:
    """This process's peak resident memory. ``VmHWM`` belongs to the process image, while
    ``ru_maxrss`` survives ``execve`` and so would report the parent's peak (the parent ran
    Alembic before starting this child)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def export_once(url: str, fmt: str, content: str) -> dict[str, Any]:
    """One export in this (fresh) process."""
    from sqlmodel import Session

    from app.accounts.models import Role, User
    from app.campaigns import repository as campaigns_repository
    from app.core.config import Settings
    from app.core.db import create_db_engine
    from app.core.i18n import use_locale
    from app.exports.models import Export
    from app.exports.service import build_files
    from bench.results import ORGANISER, YEAR

    baseline = _rss_mb()
    engine = create_db_engine(url)
    workdir = Path(tempfile.mkdtemp(prefix="bench-export-"))
    settings = Settings(database_url=url, organiser=ORGANISER, var_dir=workdir)
    with Session(engine) as session:
        campaign = campaigns_repository.get_by_year(session, organiser=ORGANISER, year=YEAR)
        assert campaign is not None
        organiser = User(email="bench@example.org", display_name="Bench", role=Role.admin)
        export = Export(
            id=0,
            campaign_id=campaign.id or 0,
            content=content,
            format=fmt,
            language="fr",
            requested_by_id=organiser.id or 0,
        )
        started, cpu_started = time.perf_counter(), time.process_time()
        with use_locale("fr"):
            path, rows = build_files(
                session, settings=settings, export=export, campaign=campaign, workdir=workdir
            )
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
    size = path.stat().st_size
    peak = _rss_mb()
    subprocess.run(["rm", "-rf", str(workdir)], check=False)
    return {
        "format": fmt,
        "content": content,
        "seconds": round(seconds, 1),
        "cpu_seconds": round(cpu, 1),
        "rows": rows,
        "file_mb": round(size / 2**20, 1),
        "baseline_rss_mb": baseline,
        "peak_rss_mb": peak,
        "within_target": peak <= TARGET_MB,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database", default="/tmp/bench-results-v2.sqlite3")
    parser.add_argument("--formats", default="csv,csv_french,sav,dta,xlsx")
    parser.add_argument("--content", default="all", choices=("responses", "visits", "all"))
    parser.add_argument("--one", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        url, fmt, content = args.one
        print(json.dumps(export_once(url, fmt, content)))
        return
    path = Path(args.database)
    url = f"sqlite:///{path}"
    figures: dict[str, Any] = {"database": "sqlite", "path": str(path), "cores": os.cpu_count()}
    if not path.exists():
        from bench.results import build

        figures["build"] = build(url)
    else:  # an older bench database gets the newer tables (the exports table)
        from alembic import command

        from app.cli import alembic_config

        command.upgrade(alembic_config(url), "head")
    runs = []
    for fmt in args.formats.split(","):
        child = subprocess.run(
            [sys.executable, __file__, "--one", url, fmt, args.content],
            check=True,
            capture_output=True,
            text=True,
        )
        runs.append(json.loads(child.stdout.strip().splitlines()[-1]))
        print(json.dumps(runs[-1]), file=sys.stderr)
    figures["exports"] = runs
    figures["target_peak_rss_mb"] = TARGET_MB
    figures["load_average_1min"] = round(os.getloadavg()[0], 2)
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
