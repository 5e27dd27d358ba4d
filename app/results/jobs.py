"""The web buttons' scoring runs: a ``running`` row, then a durable job that completes it.

The request creates the row and enqueues its ``scoring.run`` job in one unit of work
(:func:`start_run`); a job worker — in the web process or in ``barometre worker`` elsewhere —
scores the campaign (:func:`run_scoring_job`) and writes its progress in short transactions
of its own, so the runs page can poll them. The scores, the ranks, the run's completion and
the job's end commit together: should the worker die half-way, nothing of the attempt is
kept and another worker starts the run again once the lease expires. A scoring error (not a
crash) is written on the run itself and not retried.

A provisional preview of an open campaign runs the same way; its row (kind ``preview``) keeps
only what the preview says (counts, hash, parameters): no score or rank row is stored, and
the jury and the public never read it (they read the current *final* run).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

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
from app.jobs import service as jobs
from app.jobs.models import Job
from app.jobs.worker import JobContext, LeaseLost
from app.results import repository
from app.results.models import RunKind, RunStatus, ScoringRun
from app.results.service import check_state, code_version, run_scoring

# Progress is no longer written from this point: the job's own transaction then holds the run
# row (and SQLite's write lock) while it writes the rows.
WRITING_PERCENT = 92
JOB_KIND = "scoring.run"


def job_key(run_id: int) -> str:
    return f"scoring-run:{run_id}"


def start_run(
    session: Session, *, campaign: Campaign, actor: User | None, preview: bool = False
) -> ScoringRun:
    """Create the ``running`` row and the job that completes it (refused when a run of the
    campaign is still to be done, or when the campaign's state does not allow this kind)."""
    check_state(campaign, preview=preview)
    campaign_id = row_id(campaign)
    running = repository.running_run(session, campaign_id=campaign_id)
    if running is not None:
        if jobs.is_pending(jobs.job_by_key(session, job_key(row_id(running)))):
            raise Conflict(_("A scoring run of this campaign is already in progress."))
        # Its job ended without completing it (given up after crashes): say so on the run.
        running.status = RunStatus.failed
        running.error = _("Interrupted: the background job stopped without finishing.")
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
    jobs.enqueue(
        session, JOB_KIND, {"run": row_id(run)}, dedupe_key=job_key(row_id(run)), actor=actor
    )
    return run


def _set_progress(engine: Engine, run_id: int, percent: int, message: str) -> None:
    with unit_of_work(engine) as session:
        repository.set_progress(
            session, run_id=run_id, percent=max(1, min(99, percent)), message=message[:200]
        )


def run_job(
    engine: Engine,
    run_id: int,
    *,
    open_unit: Callable[[], AbstractContextManager[Session]] | None = None,
) -> None:
    """Complete the running row ``run_id`` in one unit of work (``open_unit``, by default a
    plain one; the job's fenced one in a worker); progress in short ones."""
    writing = False

    def progress(percent: int, message: str) -> None:
        nonlocal writing
        if writing:
            return
        writing = percent >= WRITING_PERCENT
        _set_progress(engine, run_id, percent, message)

    def plain_unit() -> AbstractContextManager[Session]:
        return unit_of_work(engine)

    try:
        with (open_unit or plain_unit)() as session:
            run = repository.get_run(session, run_id)
            if run is None or run.status != RunStatus.running:
                return  # completed or failed by an earlier attempt
            campaign = session.get(Campaign, run.campaign_id)
            actor = session.get(User, run.created_by) if run.created_by else None
            assert campaign is not None
            if run.kind == RunKind.preview:
                _complete_preview(
                    session, run=run, campaign=campaign, actor=actor, progress=progress
                )
            else:
                run_scoring(session, campaign=campaign, actor=actor, progress=progress, run=run)
    except LeaseLost:
        raise  # another worker has the run now: this attempt leaves nothing behind
    except Exception as exc:  # a scoring error is reported on the run itself, not retried
        message = str(exc) or exc.__class__.__name__
        with unit_of_work(engine) as session:
            repository.mark_failed(session, run_id=run_id, error=message[:2000])


def run_scoring_job(context: JobContext) -> None:
    """The ``scoring.run`` job: the work and the job's end commit in one transaction."""
    run_job(context.engine, int(context.payload["run"]), open_unit=context.unit_of_work)


def scoring_job_gave_up(session: Session, job: Job) -> None:
    """The job failed for good (its workers kept dying): the run says so."""
    repository.mark_failed(
        session,
        run_id=int(job.payload["run"]),
        error=_("Interrupted: the background job stopped without finishing.")
        + (f" ({job.last_error})" if job.last_error else ""),
    )


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
