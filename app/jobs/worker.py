"""The job worker: claims due jobs, keeps their lease alive while it works, ends each attempt.

One worker runs one thread per queue (so a long scoring run never holds e-mails back) and a
heartbeat thread that renews the leases of the jobs it runs. A worker that dies (SIGKILL, a
lost host) stops renewing: once the lease expires, any other worker claims the job again.
A worker that only hangs is fenced: every write that ends an attempt says
``WHERE lease_owner = me``, and :meth:`JobContext.unit_of_work` marks the job done in the
transaction of the work itself, so work whose job was taken over is rolled back, not kept.

``barometre serve`` runs one in the web process (:func:`start_in_background`);
``barometre worker`` runs one alone (:func:`run_forever`), on as many hosts as wanted.
"""

from __future__ import annotations

import importlib
import logging
import os
import random
import socket
import threading
import traceback
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from app.core.config import Settings
from app.core.db import unit_of_work
from app.core.timeutil import utcnow
from app.jobs import repository
from app.jobs.kinds import KINDS
from app.jobs.models import Job, Queue

log = logging.getLogger("barometre.jobs")

BACKOFF_BASE_SECONDS = 10.0
BACKOFF_MAX_SECONDS = 3600.0


class LeaseLost(RuntimeError):
    """Another worker took this job over (its lease expired): this attempt's work is void."""


class PermanentFailure(Exception):
    """A failure that no retry can mend (a refused recipient, a job about a deleted row)."""


def backoff_seconds(attempt: int) -> float:
    """10 s, 20 s, 40 s… up to an hour, with ±20 % jitter so retries do not come in herds."""
    base = min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2 ** max(0, attempt - 1))
    return base * random.uniform(0.8, 1.2)


def _resolve(reference: str) -> Callable[..., Any]:
    module_name, _, function_name = reference.partition(":")
    function: Callable[..., Any] = getattr(importlib.import_module(module_name), function_name)
    return function


@dataclass
class JobContext:
    """What a handler gets: the job's payload, the engine and settings, and a fenced unit of
    work."""

    engine: Engine
    settings: Settings
    job_id: int
    kind: str
    payload: dict[str, Any]
    attempt: int
    owner: str
    finished: bool = field(default=False, init=False)

    @contextmanager
    def unit_of_work(self) -> Iterator[Session]:
        """A unit of work that also marks the job done: the work and the end of the job
        commit together, or (the lease lost to another worker) neither does."""
        with unit_of_work(self.engine) as session:
            yield session
            if not repository.finish(session, job_id=self.job_id, owner=self.owner, now=utcnow()):
                raise LeaseLost(f"job {self.job_id} was taken over by another worker")
        self.finished = True


Handler = Callable[[JobContext], None]


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Worker:
    """Claims and runs jobs. ``handlers`` overrides the registry (tests add their own kinds)."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        *,
        queues: tuple[str, ...] = (Queue.default, Queue.long),
        handlers: dict[str, Handler] | None = None,
        worker_id: str | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.queues = queues
        self.handlers = dict(handlers or {})
        self.worker_id = worker_id or new_worker_id()
        self.lease_seconds = float(settings.job_lease_seconds)
        self.poll_seconds = float(settings.job_poll_seconds)
        self._running: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # --- one attempt ---------------------------------------------------------------------

    def _handler(self, kind: str) -> Handler:
        if kind in self.handlers:
            return self.handlers[kind]
        spec = KINDS.get(kind)
        if spec is None:
            raise PermanentFailure(f"unknown kind of job {kind!r}")
        handler: Handler = _resolve(spec.handler)
        return handler

    def run_one(self, queue: str = Queue.default) -> bool:
        """Claim one due job of ``queue`` and run it; False when none was due."""
        with unit_of_work(self.engine) as session:
            self._sweep_abandoned(session)
            claimed = repository.claim(
                session,
                owner=self.worker_id,
                queue=queue,
                now=utcnow(),
                lease_seconds=self.lease_seconds,
            )
        if claimed is None:
            return False
        with self._lock:
            self._running.add(claimed.id)
        try:
            self._attempt(claimed)
        finally:
            with self._lock:
                self._running.discard(claimed.id)
        return True

    def _attempt(self, claimed: repository.ClaimedJob) -> None:
        context = JobContext(
            engine=self.engine,
            settings=self.settings,
            job_id=claimed.id,
            kind=claimed.kind,
            payload=claimed.payload,
            attempt=claimed.attempts,
            owner=self.worker_id,
        )
        try:
            self._handler(claimed.kind)(context)
            if not context.finished:
                with unit_of_work(self.engine) as session:
                    if not repository.finish(
                        session, job_id=claimed.id, owner=self.worker_id, now=utcnow()
                    ):
                        raise LeaseLost(f"job {claimed.id} was taken over by another worker")
        except LeaseLost as exc:
            log.warning("%s", exc)
        except Exception as exc:  # every failure ends the attempt, none stops the worker
            permanent = isinstance(exc, PermanentFailure)
            message = f"{exc.__class__.__name__}: {exc}" if str(exc) else exc.__class__.__name__
            log.warning(
                "job %d (%s) attempt %d failed: %s",
                claimed.id,
                claimed.kind,
                claimed.attempts,
                message,
            )
            log.debug("%s", traceback.format_exc())
            self._end_failed_attempt(claimed, message[:4000], permanent=permanent)

    def _end_failed_attempt(
        self, claimed: repository.ClaimedJob, error: str, *, permanent: bool
    ) -> None:
        with unit_of_work(self.engine) as session:
            if permanent or claimed.attempts >= claimed.max_attempts:
                if repository.give_up(
                    session, job_id=claimed.id, owner=self.worker_id, now=utcnow(), error=error
                ):
                    self._call_give_up(session, claimed.id)
                return
            run_after = utcnow() + timedelta(seconds=backoff_seconds(claimed.attempts))
            repository.retry_later(
                session, job_id=claimed.id, owner=self.worker_id, run_after=run_after, error=error
            )

    def _call_give_up(self, session: Session, job_id: int) -> None:
        job = repository.get(session, job_id)
        spec = KINDS.get(job.kind) if job is not None else None
        if job is not None and spec is not None and spec.on_give_up is not None:
            _resolve(spec.on_give_up)(session, job)

    def _sweep_abandoned(self, session: Session) -> None:
        """A job whose worker died during its last attempt is failed (and says why)."""
        for job in repository.abandoned(session, now=utcnow()):
            error = "the worker running its last attempt stopped responding"
            if repository.give_up(
                session, job_id=int(job.id or 0), owner=None, now=utcnow(), error=error
            ):
                self._call_give_up(session, int(job.id or 0))

    # --- leases ------------------------------------------------------------------------

    def renew_leases(self) -> None:
        with self._lock:
            running = sorted(self._running)
        for job_id in running:
            try:
                with unit_of_work(self.engine) as session:
                    repository.renew_lease(
                        session,
                        job_id=job_id,
                        owner=self.worker_id,
                        now=utcnow(),
                        lease_seconds=self.lease_seconds,
                    )
            except Exception as exc:  # a busy database: the next beat tries again
                log.warning("could not renew the lease of job %d: %s", job_id, exc)

    # --- loops ---------------------------------------------------------------------------

    def drain(self, *, max_jobs: int = 10_000) -> int:
        """Run every job due now, queue after queue, then return how many ran (tests, CLI)."""
        ran = 0
        progress = True
        while progress and ran < max_jobs:
            progress = False
            for queue in self.queues:
                while ran < max_jobs and self.run_one(queue):
                    ran += 1
                    progress = True
        return ran

    def _queue_loop(self, queue: str) -> None:
        while not self._stop.is_set():
            try:
                ran = self.run_one(queue)
            except Exception as exc:  # the database is away: wait and try again
                log.warning("job worker (%s): %s", queue, exc)
                ran = False
            if not ran:
                self._stop.wait(self.poll_seconds)

    def _heartbeat_loop(self) -> None:
        while not self._stop.wait(max(0.2, self.lease_seconds / 4)):
            self.renew_leases()

    def start(self) -> None:
        """Start the queue threads and the heartbeat (daemon threads)."""
        targets: list[tuple[str, Callable[..., None], tuple[Any, ...]]] = [
            (f"jobs-{queue}", self._queue_loop, (queue,)) for queue in self.queues
        ]
        targets.append(("jobs-heartbeat", self._heartbeat_loop, ()))
        for name, target, args in targets:
            thread = threading.Thread(target=target, args=args, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        log.info("job worker %s started (queues: %s)", self.worker_id, ", ".join(self.queues))

    def request_stop(self) -> None:
        """Ask the loops to stop (safe from a signal handler)."""
        self._stop.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the threads to stop after their current job; a job still running then keeps
        its lease until it expires and another worker takes it over."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=timeout)
        self._threads.clear()

    def run_forever(self) -> None:
        self.start()
        try:
            while not self._stop.wait(1.0):
                pass
        finally:
            self.stop()


def job_label(job: Job) -> str:
    spec = KINDS.get(job.kind)
    return spec.label if spec is not None else job.kind
