"""Durable jobs: claim, lease, retries, take-over after a crash, and workers side by side.

Real processes and real databases: a worker in a subprocess is SIGKILLed while it holds a
job, and two workers with their own connections run one queue at once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from app.audit.models import AuditEvent, record_audit
from app.core.config import Settings
from app.core.db import create_db_engine
from app.core.timeutil import utcnow
from app.jobs import repository
from app.jobs.models import Job, JobState
from app.jobs.service import enqueue
from app.jobs.worker import JobContext, PermanentFailure, Worker, backoff_seconds
from tests.conftest import TEST_SECRET_KEY

ROOT = Path(__file__).resolve().parents[2]


def _settings(engine: Engine, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "environment": "test",
        "database_url": engine.url.render_as_string(hide_password=False),
        "secret_key": TEST_SECRET_KEY,
        "in_process_worker": False,
        "job_lease_seconds": 2,
        "job_poll_seconds": 0.05,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def _add_jobs(session: Session, count: int, **payload: object) -> list[int]:
    jobs = [Job(kind="test.record", payload=dict(payload)) for _ in range(count)]
    session.add_all(jobs)
    session.commit()
    return [int(job.id or 0) for job in jobs]


def _job(engine: Engine, job_id: int) -> Job:
    with Session(engine) as session:
        job = session.get(Job, job_id)
        assert job is not None
        return job


def test_a_job_runs_once_and_is_done(engine: Engine, session: Session) -> None:
    (job_id,) = _add_jobs(session, 1)
    seen: list[int] = []
    worker = Worker(
        engine, _settings(engine), handlers={"test.record": lambda c: seen.append(c.job_id)}
    )
    assert worker.drain() == 1
    assert worker.drain() == 0
    job = _job(engine, job_id)
    assert seen == [job_id]
    assert (job.state, job.attempts, job.lease_owner) == (JobState.done, 1, None)
    assert job.finished_at is not None


def test_enqueue_with_a_key_gives_the_same_job(session: Session) -> None:
    first = enqueue(session, "mail.send", {"message": 1}, dedupe_key="k-1")
    again = enqueue(session, "mail.send", {"message": 1}, dedupe_key="k-1")
    assert first.id == again.id
    assert first.queue == "default" and first.max_attempts == 8


def test_a_failed_attempt_is_retried_later_then_failed_for_good(
    engine: Engine, session: Session
) -> None:
    (job_id,) = _add_jobs(session, 1)
    session.execute(sa.update(Job).values(max_attempts=3))
    session.commit()

    def fail(_context: JobContext) -> None:
        raise RuntimeError("the far side is down")

    worker = Worker(engine, _settings(engine), handlers={"test.record": fail})
    for attempt in (1, 2):
        before = utcnow()
        assert worker.drain() == 1
        job = _job(engine, job_id)
        assert (job.state, job.attempts) == (JobState.queued, attempt)
        assert "the far side is down" in (job.last_error or "")
        # Backed off: not due again at once (10 s then 20 s, ±20 %).
        assert job.run_after >= before + timedelta(seconds=0.8 * 10 * 2 ** (attempt - 1))
        assert worker.drain() == 0
        session.execute(sa.update(Job).values(run_after=utcnow() - timedelta(seconds=1)))
        session.commit()
    assert worker.drain() == 1
    job = _job(engine, job_id)
    assert (job.state, job.attempts) == (JobState.failed, 3)
    assert worker.drain() == 0


def test_a_permanent_failure_is_not_retried(engine: Engine, session: Session) -> None:
    (job_id,) = _add_jobs(session, 1)

    def refuse(_context: JobContext) -> None:
        raise PermanentFailure("recipient refused")

    Worker(engine, _settings(engine), handlers={"test.record": refuse}).drain()
    job = _job(engine, job_id)
    assert (job.state, job.attempts) == (JobState.failed, 1)


def test_backoff_grows_and_is_capped() -> None:
    assert 8 <= backoff_seconds(1) <= 12
    assert 16 <= backoff_seconds(2) <= 24
    assert backoff_seconds(30) <= 3600 * 1.2


def test_work_of_a_worker_that_lost_its_lease_is_rolled_back(
    engine: Engine, session: Session
) -> None:
    """A worker that hung past its lease is fenced: its work does not commit."""
    (job_id,) = _add_jobs(session, 1)
    with Session(engine) as own:
        claimed = repository.claim(
            own, owner="hung-worker", queue="default", now=utcnow(), lease_seconds=0.01
        )
        own.commit()
    assert claimed is not None and claimed.id == job_id
    time.sleep(0.05)

    def audited(context: JobContext) -> None:
        with context.unit_of_work() as work:
            record_audit(work, actor=None, action="test.work", object_type="job", object_id=1)

    worker = Worker(engine, _settings(engine), handlers={"test.record": audited})
    assert worker.drain() == 1  # the expired lease is taken over
    # The hung worker wakes up and tries to end its attempt: refused, its work rolled back.
    hung = JobContext(
        engine=engine,
        settings=_settings(engine),
        job_id=job_id,
        kind="test.record",
        payload={},
        attempt=1,
        owner="hung-worker",
    )
    with pytest.raises(Exception, match="taken over"):
        audited(hung)
    with Session(engine) as check:
        assert len(check.exec(select(AuditEvent)).all()) == 1
    job = _job(engine, job_id)
    assert (job.state, job.attempts) == (JobState.done, 2)


def _worker_process(engine: Engine, record_file: Path, tmp_path: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "BAROMETRE_ENVIRONMENT": "test",
        "BAROMETRE_SECRET_KEY": TEST_SECRET_KEY,
        "BAROMETRE_VAR_DIR": str(tmp_path),
        "BAROMETRE_JOB_LEASE_SECONDS": "2",
        "BAROMETRE_JOB_POLL_SECONDS": "0.1",
    }
    url = engine.url.render_as_string(hide_password=False)
    return subprocess.Popen(
        [sys.executable, "-m", "tests.support.job_worker", url, str(record_file)],
        cwd=ROOT,
        env=env,
    )


def _wait_for(predicate, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)


def test_a_job_of_a_killed_worker_is_completed_by_another_once_the_lease_expires(
    engine: Engine, session: Session, tmp_path: Path
) -> None:
    (job_id,) = _add_jobs(session, 1, sleep=60)
    record = tmp_path / "runs.txt"
    record.touch()
    process = _worker_process(engine, record, tmp_path)
    try:
        _wait_for(lambda: f"start {job_id} {process.pid}" in record.read_text())
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    assert _job(engine, job_id).state == JobState.running  # claimed, never finished

    finished: list[int] = []
    other = Worker(
        engine, _settings(engine), handlers={"test.record": lambda c: finished.append(c.job_id)}
    )
    assert other.drain() == 0  # the lease still holds: nobody may take the job yet
    _wait_for(lambda: _job(engine, job_id).lease_expires_at < utcnow())  # type: ignore[operator]
    assert other.drain() == 1
    job = _job(engine, job_id)
    assert finished == [job_id]
    assert (job.state, job.attempts) == (JobState.done, 2)
    assert f"end {job_id}" not in record.read_text()


def test_two_workers_never_run_the_same_job_at_once(
    engine: Engine, session: Session, database_url: str
) -> None:
    """Two workers, each with its own connections, drain one queue; some jobs outlive the
    lease, which the heartbeat keeps renewing: every job runs exactly once."""
    quick = _add_jobs(session, 80, sleep=0.01)
    slow = _add_jobs(session, 4, sleep=1.5)
    runs: list[tuple[int, str, float, float]] = []
    lock = threading.Lock()

    def record(context: JobContext) -> None:
        start = time.monotonic()
        time.sleep(float(context.payload["sleep"]))
        with lock:
            runs.append((context.job_id, context.owner, start, time.monotonic()))

    engines = [create_db_engine(database_url) for _ in range(2)]
    workers = [
        Worker(
            own,
            _settings(own, job_lease_seconds=0.6, job_poll_seconds=0.02),
            handlers={"test.record": record},
            worker_id=f"worker-{index}",
        )
        for index, own in enumerate(engines)
    ]
    for worker in workers:
        worker.start()
    try:
        _wait_for(lambda: len(runs) >= len(quick) + len(slow), timeout=120)
        time.sleep(1.0)  # a duplicate run would show up now
    finally:
        for worker in workers:
            worker.stop()
        for own in engines:
            own.dispose()
    ran = sorted(job_id for job_id, *_rest in runs)
    assert ran == sorted(quick + slow), "a job ran twice or not at all"
    assert {owner for _id, owner, *_rest in runs} == {"worker-0", "worker-1"}
    with Session(engine) as check:
        states = check.exec(select(Job.state, Job.attempts)).all()
    assert all(state == JobState.done and attempts == 1 for state, attempts in states)


def test_the_web_process_runs_a_worker_unless_told_not_to(
    engine: Engine, session: Session, settings: Settings
) -> None:
    from fastapi.testclient import TestClient

    from app.mail.models import MessageState, OutboxMessage
    from app.mail.service import queue_email
    from app.main import create_app

    message = queue_email(
        session,
        settings=settings,
        to="ana@example.org",
        language="fr",
        template="account_invitation",
        context={
            "name": "A",
            "inviter": "B",
            "role": "jury",
            "url": "u",
            "expires_at": utcnow().date(),
        },
    )
    session.commit()
    web = create_app(
        settings.model_copy(update={"in_process_worker": True, "job_poll_seconds": 0.05})
    )
    with TestClient(web):
        _wait_for(lambda: _held(engine, int(message.id or 0)), timeout=30)
    with Session(engine) as check:
        stored = check.get(OutboxMessage, message.id)
        assert stored is not None and stored.state == MessageState.held


def _held(engine: Engine, message_id: int) -> bool:
    from app.mail.models import MessageState, OutboxMessage

    with Session(engine) as check:
        stored = check.get(OutboxMessage, message_id)
        return stored is not None and stored.state == MessageState.held
