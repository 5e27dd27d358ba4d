"""A scoring run started from the browser survives the web process being killed.

Real processes: ``barometre serve`` (with its in-process job worker) takes the run's job and
is SIGKILLed while scoring; a new ``barometre serve`` takes the job over once its lease
expired and completes the run, whose rows are written once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from app.accounts.models import Role
from app.campaigns.models import Campaign
from app.campaigns.service import transition
from app.jobs.models import Job, JobState
from app.results.models import RunStatus, ScoreRow, ScoringRun
from tests.conftest import TEST_SECRET_KEY, login, make_user
from tests.factories.responses import add_responses
from tests.factories.visits import add_visits
from tests.support.servers import free_port

START_TIMEOUT_SECONDS = 120


def _serve(engine: Engine, tmp_path: Path, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "BAROMETRE_ENVIRONMENT": "test",
        "BAROMETRE_DATABASE_URL": engine.url.render_as_string(hide_password=False),
        "BAROMETRE_SECRET_KEY": TEST_SECRET_KEY,
        "BAROMETRE_VAR_DIR": str(tmp_path),
        "BAROMETRE_JOB_LEASE_SECONDS": "3",
        "BAROMETRE_JOB_POLL_SECONDS": "0.1",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--workers", "1"],
        cwd=tmp_path,
        env=env,
    )
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("barometre serve did not start")
        time.sleep(0.2)


def _job(engine: Engine) -> Job:
    with Session(engine) as session:
        return session.exec(select(Job).where(Job.kind == "scoring.run")).one()


def _run(engine: Engine) -> ScoringRun:
    with Session(engine) as session:
        return session.exec(select(ScoringRun)).one()


@pytest.fixture
def closed(open_campaign: Campaign, registry: Session) -> Campaign:
    rng = np.random.default_rng(5)
    add_responses(registry, campaign=open_campaign, rng=rng, per_candidate=(35, 50))
    add_visits(registry, campaign=open_campaign, rng=rng)
    transition(registry, campaign=open_campaign, to_state="closed", actor=None)
    registry.commit()
    return open_campaign


def test_a_scoring_run_survives_the_web_process_being_killed(
    closed: Campaign, registry: Session, engine: Engine, tmp_path: Path
) -> None:
    admin = make_user(registry, Role.admin)
    port = free_port()
    first = _serve(engine, tmp_path, port)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", follow_redirects=False) as web:
            token = login(web, admin)  # type: ignore[arg-type]
            started = web.post(f"/campaigns/{closed.id}/runs", data={"csrf_token": token})
            assert started.status_code == 303, started.text
        deadline = time.monotonic() + 60
        while _job(engine).state != JobState.running:
            assert time.monotonic() < deadline, "the in-process worker never took the job"
            time.sleep(0.01)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    assert _run(engine).status == RunStatus.running, "the run ended before the kill"
    assert _job(engine).attempts == 1

    second = _serve(engine, tmp_path, port)
    try:
        deadline = time.monotonic() + 180
        while _run(engine).status == RunStatus.running:
            assert time.monotonic() < deadline, "the restarted server never completed the run"
            time.sleep(0.2)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", follow_redirects=False) as web:
            login(web, admin)  # type: ignore[arg-type]
            page = web.get(f"/campaigns/{closed.id}/runs/{_run(engine).id}/progress")
            assert page.status_code == 200
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=30)
    run = _run(engine)
    assert run.status == RunStatus.complete, run.error
    job = _job(engine)
    assert (job.state, job.attempts) == (JobState.done, 2)
    with Session(engine) as session:
        scores = session.exec(select(ScoreRow).where(ScoreRow.run_id == run.id)).all()
        keys = [(row.authority_code, row.level, row.key) for row in scores]
    assert scores and len(keys) == len(set(keys)), "rows of the run written twice"
