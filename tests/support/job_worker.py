"""A job worker in a process of its own, with a test kind that records its runs.

``python -m tests.support.job_worker DATABASE_URL RECORD_FILE`` runs until killed; the
``test.record`` job appends ``start <job> <pid>`` to RECORD_FILE, sleeps ``payload["sleep"]``
seconds, then appends ``end <job> <pid>``. Leases come from ``BAROMETRE_JOB_LEASE_SECONDS``.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from app.core.config import Settings
from app.core.db import create_db_engine
from app.jobs.worker import JobContext, Worker


def recording_handler(record_file: Path):  # type: ignore[no-untyped-def]
    def handle(context: JobContext) -> None:
        with record_file.open("a") as out:
            out.write(f"start {context.job_id} {os.getpid()}\n")
        time.sleep(float(context.payload.get("sleep", 0)))
        with record_file.open("a") as out:
            out.write(f"end {context.job_id} {os.getpid()}\n")

    return handle


def main() -> None:
    database_url, record_file = sys.argv[1], Path(sys.argv[2])
    settings = Settings(database_url=database_url)
    worker = Worker(
        create_db_engine(database_url),
        settings,
        handlers={"test.record": recording_handler(record_file)},
    )
    worker.run_forever()


if __name__ == "__main__":
    main()
