"""A scoring run's lifecycle: which states allow it, gather → compute → write, superseding.

``run_scoring`` reads the inputs (:mod:`app.results.inputs`), computes with
:mod:`app.results.compute` (what each score and rank row means is written there) and, for a
final run, stores the run and all its rows in the caller's transaction (the caller's unit of
work commits once); a preview computes the same and stores nothing. The web button's
background job is :mod:`app.results.jobs`.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from sqlmodel import Session

from app.accounts.models import User
from app.audit.models import record_audit
from app.campaigns.models import Campaign, CampaignState
from app.campaigns.service import transition
from app.core.db import row_id
from app.core.errors import Conflict, NotFound
from app.core.i18n import _
from app.core.timeutil import utcnow
from app.results import repository
from app.results.compute import (
    MAX_CI_WIDTH,
    MIN_N_EFF,
    N_DRAWS,
    Progress,
    RankRowData,
    ScoreRowData,
    ScoringInputs,
    compute,
)
from app.results.inputs import gather_inputs
from app.results.models import RunKind, RunStatus, ScoringRun

# Once the jury has deliberated, its signed decisions rest on the current run: a new run would
# silently change the scores under them (and under published results).
FINAL_STATES = {CampaignState.closed, CampaignState.scored}
DECIDED_STATES = {CampaignState.deliberated, CampaignState.published}
PREVIEW_STATES = {CampaignState.open}
_SOURCE_ROOT = Path(__file__).resolve().parents[2]


# The code cannot change under a running process: computed once.
@lru_cache(maxsize=1)
def code_version() -> str:
    """Package version and a digest of the code that computes the numbers."""
    try:
        base = version("barometre")
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        base = "0"
    digest = hashlib.sha256()
    for folder in ("scoring", "surveys", "app/results"):
        for path in sorted((_SOURCE_ROOT / folder).glob("*.py")):
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return f"{base}+src.{digest.hexdigest()[:12]}"


@dataclass
class RunResult:
    """What a run computed (stored or not): counts, hash and the rows themselves."""

    kind: str
    inputs_sha256: str
    seed: int
    params: dict[str, Any]
    summary: dict[str, Any]
    score_rows: list[ScoreRowData] = field(default_factory=list)
    rank_rows: list[RankRowData] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    run: ScoringRun | None = None


def check_state(campaign: Campaign, *, preview: bool) -> None:
    """Refuse (409) a run the campaign's state does not allow."""
    state = CampaignState(campaign.state)
    if preview and state not in PREVIEW_STATES:
        raise Conflict(
            _("A preview is for a campaign still collecting; this one is %(state)s.")
            % {"state": state.value}
        )
    if not preview and state in DECIDED_STATES:
        raise Conflict(
            _(
                "The jury's decisions of this campaign rest on its current run (the campaign is "
                "%(state)s): it cannot be scored again."
            )
            % {"state": state.value}
        )
    if not preview and state not in FINAL_STATES:
        raise Conflict(
            _("Close the campaign before scoring it (it is %(state)s); a preview is possible.")
            % {"state": state.value}
        )


def require_run(session: Session, *, campaign: Campaign) -> ScoringRun:
    """The campaign's current frozen run (404 while it has none)."""
    run = repository.current_run(session, campaign_id=row_id(campaign))
    if run is None:
        raise NotFound(
            _("The %(year)d campaign has no complete scoring run yet.") % {"year": campaign.year}
        )
    return run


def _params(inputs: ScoringInputs, n_draws: int) -> dict[str, Any]:
    """Everything that decides the numbers, stored with the run."""
    config = inputs.config
    return {
        "channel_weights": {str(k): v for k, v in sorted(config.channel_weights.items())},
        "component_weights": config.component_weights.model_dump(),
        "eligibility": config.eligibility.model_dump(),
        "confidence_level": config.confidence_level,
        "rank_draws": n_draws,
        "rank_method": "marginal rank intervals with stepdown (Mogstad et al. 2024); "
        "top-1 and top-3 sets from single-step simultaneous intervals; P(best) descriptive",
        "design": "Hájek mean, design weights 1, Taylor linearisation, t on domain df",
        "min_n_eff": MIN_N_EFF,
        "max_ci_width": MAX_CI_WIDTH,
        "ci_bounds": "truncated to the 0–100 scale; precision flags use the untruncated width",
        "instruments": inputs.instruments,
    }


def run_scoring(
    session: Session,
    *,
    campaign: Campaign,
    actor: User | None,
    preview: bool = False,
    progress: Progress | None = None,
    run: ScoringRun | None = None,
    n_draws: int = N_DRAWS,
) -> RunResult:
    """Score ``campaign``; a final run is stored (flushed, not committed), a preview is not.

    ``run``: a ``running`` row created beforehand (the web button's background job shows its
    progress); without it a new row is created. The previous current final run is
    superseded, and a closed campaign moves to scored. Refused (409) when the campaign's
    state does not allow it.
    """
    check_state(campaign, preview=preview)
    report = progress or (lambda _p, _m: None)
    started = time.perf_counter()
    inputs = gather_inputs(session, campaign=campaign, progress=report)
    read_seconds = time.perf_counter() - started
    seed = inputs.config.seed
    compute_started = time.perf_counter()
    computed = compute(inputs, seed=seed, n_draws=n_draws, progress=report)
    compute_seconds = time.perf_counter() - compute_started
    result = RunResult(
        kind=RunKind.preview if preview else RunKind.final,
        inputs_sha256=inputs.inputs_sha256,
        seed=seed,
        params=_params(inputs, n_draws),
        summary={**inputs.counts, **computed.summary()},
        score_rows=computed.score_rows,
        rank_rows=computed.rank_rows,
        timings={"read_seconds": read_seconds, "compute_seconds": compute_seconds},
    )
    if preview:
        result.timings["write_seconds"] = 0.0
        report(100, "preview ready")
        return result

    report(92, "writing the run")
    write_started = time.perf_counter()
    result.run = _store(session, campaign=campaign, actor=actor, run=run, result=result)
    result.timings["write_seconds"] = time.perf_counter() - write_started
    report(100, "complete")
    return result


def _store(
    session: Session,
    *,
    campaign: Campaign,
    actor: User | None,
    run: ScoringRun | None,
    result: RunResult,
) -> ScoringRun:
    """Write the run and its rows, supersede the previous current run, audit (flushed)."""
    campaign_id = row_id(campaign)
    if run is None:
        run = ScoringRun(
            campaign_id=campaign_id,
            seed=result.seed,
            code_version=code_version(),
            created_by=row_id(actor) if actor else None,
        )
    run.kind = RunKind.final
    run.params = result.params
    run.seed = result.seed
    run.inputs_sha256 = result.inputs_sha256
    run.code_version = code_version()
    run.summary = result.summary
    session.add(run)
    session.flush()
    run_id = row_id(run)
    repository.insert_score_rows(session, run_id=run_id, rows=result.score_rows)
    repository.insert_rank_rows(session, run_id=run_id, rows=result.rank_rows)
    previous = repository.current_runs(session, campaign_id=campaign_id, excluding=run_id)
    for old in previous:
        old.superseded_by = run_id
        session.add(old)
    run.status = RunStatus.complete
    run.progress = 100
    run.progress_message = "complete"
    run.completed_at = utcnow()
    session.add(run)
    if CampaignState(campaign.state) == CampaignState.closed:
        transition(
            session,
            campaign=campaign,
            to_state=CampaignState.scored,
            actor=actor,
            comment=f"scoring run {run_id}",
        )
    record_audit(
        session,
        actor=actor,
        action="results.score",
        object_type="scoring_run",
        object_id=run_id,
        before={"superseded": [old.id for old in previous]} if previous else None,
        after={
            "campaign": campaign_id,
            "inputs_sha256": result.inputs_sha256,
            "seed": result.seed,
            "code_version": run.code_version,
            "score_rows": len(result.score_rows),
            "rank_rows": len(result.rank_rows),
        },
    )
    session.flush()
    return run
