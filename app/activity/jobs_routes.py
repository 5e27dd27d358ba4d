"""The organiser's view of background jobs: what waits, runs, was done or failed, and why."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from app.accounts.dependencies import AdminUser
from app.core.db import SessionDep
from app.core.templating import render
from app.jobs import service
from app.jobs.kinds import KINDS
from app.jobs.models import JOB_STATE_LABELS, JobState

router = APIRouter()


@router.get("/admin/jobs", name="admin_jobs")
def jobs_page(
    request: Request,
    session: SessionDep,
    user: AdminUser,
    state: Annotated[JobState | None, Query()] = None,
    kind: Annotated[str | None, Query(max_length=64)] = None,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
) -> Response:
    """Every background job, newest first, filterable by state and kind."""
    listing = service.jobs_page(
        session, state=state.value if state else None, kind=kind or None, page=page
    )
    return render(
        request,
        "jobs/list.html",
        {
            "listing": listing,
            "state": state.value if state else "",
            "kind": kind or "",
            "state_labels": JOB_STATE_LABELS,
            "kinds": KINDS,
        },
    )
