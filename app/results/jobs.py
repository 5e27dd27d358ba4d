"""The web buttons' scoring runs: a ``running`` row, then a background thread that completes it.

The request creates the row (:func:`start_run`) and its unit of work commits it; the thread
(:func:`launch`, started once the row is committed) scores the campaign in its own unit of
work and writes its progress in short transactions of their own, so the runs page can poll
them. A failure is written on the run itself.

A provisional preview of an open campaign runs the same way; its row (kind ``preview``) keeps
only what the preview says (counts, hash, parameters): no score or rank row is stored, and
the jury and the public never read it (they read the current *final* run).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from sqlalchemy.engine import Engine
from sqlmodel import Session

from app.accounts.models import User
from app.audit.models import record_audit
from app.campaigns.models import Campaign
from app.campaigns.service import parse_config
from app.core.db import row_id, unit_of_work
from app.core.errors import Conflict
from app.core.i18n import _
from app.core.timeutil import utcnow
from app.results import repository
from app.results.models import RunKind, RunStatus, ScoringRun
from app.results.service import check_state, code_version, run_scoring

STALE_AFTER_SECONDS = 3600
# Progress is no longer written from this point: the job's own transaction then holds the run
# row (and SQLite's write lock) while it writes the rows.
WRITING_PERCENT = 92
# The threads this process started, by run id: a registry of live jobs (not a cache), so a
# running row whose thread is alive is never taken for an interrupted one.
_JOBS: dict[int, threading.Thread] = {}


def start_run(
    session: Session, *, campaign: Campaign, actor: User | None, preview: bool = False
) -> ScoringRun:
    """Create the ``running`` row a background job will complete (refused when one runs, or
    when the campaign's state does not allow this kind of run)."""
    check_state(campaign, preview=preview)
    campaign_id = row_id(campaign)
    running = repository.running_run(session, campaign_id=campaign_id)
    if running is not None:
        age = (utcnow() - running.created_at).total_seconds()
        thread = _JOBS.get(row_id(running))
        if (thread is not None and thread.is_alive()) or age < STALE_AFTER_SECONDS:
            raise Conflict(_("A scoring run of this campaign is already in progress."))
        running.status = RunStatus.failed
        running.error = _("Interrupted: no progress for an hour.")
        session.add(running)
    config = parse_config(campaign.config)
    run = ScoringRun(
        campaign_id=campaign_id,
        kind=RunKind.preview if preview else RunKind.final,
        status=RunStatus.running,
        progress=1,
        progress_message="queued",
        seed=config.seed,
        code_version=code_version(),
        created_by=row_id(actor) if actor else None,
    )
    session.add(run)
    session.flush()
    return run


def _set_progress(engine: Engine, run_id: int, percent: int, message: str) -> None:
    with unit_of_work(engine) as session:
        repository.set_progress(
            session, run_id=run_id, percent=max(1, min(99, percent)), message=message[:200]
        )


def run_job(engine: Engine, run_id: int) -> None:
    """Complete the running row ``run_id`` (its own unit of work; progress in short ones)."""
    writing = False

    def progress(percent: int, message: str) -> None:
        nonlocal writing
        if writing:
            return
        writing = percent >= WRITING_PERCENT
        _set_progress(engine, run_id, percent, message)

    try:
        with unit_of_work(engine) as session:
            run = repository.get_run(session, run_id)
            assert run is not None
            campaign = session.get(Campaign, run.campaign_id)
            actor = session.get(User, run.created_by) if run.created_by else None
            assert campaign is not None
            if run.kind == RunKind.preview:
                _complete_preview(
                    session, run=run, campaign=campaign, actor=actor, progress=progress
                )
            else:
                run_scoring(session, campaign=campaign, actor=actor, progress=progress, run=run)
    except Exception as exc:  # the job reports any failure on the run itself
        message = str(exc) or exc.__class__.__name__
        with unit_of_work(engine) as session:
            repository.mark_failed(session, run_id=run_id, error=message[:2000])


def _complete_preview(
    session: Session,
    *,
    run: ScoringRun,
    campaign: Campaign,
    actor: User | None,
    progress: Callable[[int, str], None],
) -> None:
    """Compute the preview and keep on its row what it says; its rows are not stored."""
    result = run_scoring(session, campaign=campaign, actor=actor, preview=True, progress=progress)
    run.params = result.params
    run.seed = result.seed
    run.inputs_sha256 = result.inputs_sha256
    run.summary = result.summary
    run.status = RunStatus.complete
    run.progress = 100
    run.progress_message = "preview ready"
    run.completed_at = utcnow()
    session.add(run)
    record_audit(
        session,
        actor=actor,
        action="results.preview",
        object_type="scoring_run",
        object_id=run.id,
        after={"campaign": run.campaign_id, "inputs_sha256": result.inputs_sha256},
    )


def launch(engine: Engine, run_id: int) -> threading.Thread:
    """Run the job in a background thread (once the row it completes is committed)."""
    thread = threading.Thread(target=run_job, args=(engine, run_id), daemon=True)
    _JOBS[run_id] = thread
    thread.start()
    return thread


def job(run_id: int) -> threading.Thread | None:
    """The thread of this process completing ``run_id``, if it started one."""
    return _JOBS.get(run_id)
