"""Reviewer pages: the queue of visits, one visit with its history and thread, bulk approval."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from app.accounts.dependencies import RequireRole
from app.accounts.models import Role, User
from app.campaigns.schemas import Channel
from app.core.db import SessionDep, row_id
from app.core.errors import Conflict, InvalidInput
from app.core.i18n import _
from app.core.templating import flash, render
from app.missions.models import ReviewState
from app.reviews import repository, service
from app.reviews.anomalies import Anomaly
from app.reviews.schemas import (
    BulkApproveOut,
    BulkApproveRequest,
    HintOut,
    QueueOut,
    QueueVisitOut,
    ReviewEventOut,
    ReviewRequest,
)

router = APIRouter()

ReviewerUser = Annotated[User, Depends(RequireRole(Role.reviewer, Role.admin))]

QUEUE_PARAMS = ("campaign", "state", "channel", "authority", "shopper", "anomalies", "page")
ANY_STATE = "any"


def _queue_params(raw: Mapping[str, str]) -> dict[str, str]:
    params = {name: (raw.get(name) or "").strip()[:100] for name in QUEUE_PARAMS}
    # The queue opens on the visits waiting for a decision.
    if "state" not in raw:
        params["state"] = ReviewState.received.value
    return params


def _queue_context(
    request: Request,
    session: SessionDep,
    params: dict[str, str],
    *,
    errors: dict[str, str] | None = None,
    selected: set[str] | None = None,
) -> dict[str, Any]:
    state = params["state"] if params["state"] in set(ReviewState) else None
    filters = repository.QueueFilters(
        campaign_id=int(params["campaign"]) if params["campaign"].isdigit() else None,
        state=state,
        channel=params["channel"] if params["channel"] in set(Channel) else None,
        authority=params["authority"] or None,
        shopper_id=int(params["shopper"]) if params["shopper"].isdigit() else None,
    )
    page_number = int(params["page"]) if params["page"].isdigit() else 1
    queue = service.review_queue(
        session, filters=filters, anomalies_only=params["anomalies"] == "1", page=page_number
    )
    kept = {name: value for name, value in params.items() if value and name != "page"}
    if "state" not in kept:
        kept["state"] = ANY_STATE

    def page_url(number: int) -> str:
        return "?" + urlencode({**kept, "page": number})

    return {
        "queue": queue,
        "params": params,
        "query": urlencode({**kept, "page": queue.page}),
        "page_url": page_url,
        "campaigns": repository.campaigns_with_visits(session),
        "shoppers": repository.shoppers(session),
        "states": list(ReviewState),
        "channels": list(Channel),
        "anomaly_labels": service.ANOMALY_LABELS,
        "describe": service.describe_anomaly,
        "counts": repository.count_by_state(session, filters.campaign_id),
        "errors": errors or {},
        "selected": selected or set(),
        "ANY_STATE": ANY_STATE,
    }


@router.get("/review", name="review_queue")
def review_queue(request: Request, session: SessionDep, reviewer: ReviewerUser) -> Response:
    context = _queue_context(request, session, _queue_params(request.query_params))
    return render(request, "reviews/queue.html", context)


@router.post("/review/approve", name="review_bulk_approve")
def review_bulk_approve(
    request: Request,
    session: SessionDep,
    reviewer: ReviewerUser,
    visit_id: Annotated[list[str], Form(max_length=40)] = [],  # noqa: B006 (FastAPI form default)
    back: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    params = _queue_params(dict(parse_qsl(back)))
    try:
        ids = [uuid.UUID(value) for value in visit_id]
    except ValueError:
        ids = []
    try:
        if len(ids) != len(visit_id):
            raise InvalidInput(_("Select visits from the list."), field="visit_id")
        approved = service.bulk_approve(session, visit_ids=ids, actor=reviewer)
    except (Conflict, InvalidInput) as exc:
        context = _queue_context(
            request, session, params, errors={"form": exc.message}, selected=set(visit_id)
        )
        status = 400 if isinstance(exc, InvalidInput) else exc.status_code
        return render(request, "reviews/queue.html", context, status_code=status)
    flash(request, _("%(count)d visits approved.") % {"count": approved})
    query = urlencode({name: value for name, value in params.items() if value})
    return RedirectResponse(request.url_for("review_queue").path + "?" + query, status_code=303)


def _visit_page(
    request: Request,
    session: SessionDep,
    reviewer: User,
    visit_id: uuid.UUID,
    *,
    errors: dict[str, str] | None = None,
    comment: str = "",
    status_code: int = 200,
) -> Response:
    review = service.visit_review(session, visit_id=visit_id)
    visit = review.detail.visit
    return render(
        request,
        "reviews/visit.html",
        {
            "review": review,
            "visit": visit,
            "detail": review.detail,
            "targets": service.allowed_targets(visit.review_state, reviewer.role),
            "anomaly_labels": service.ANOMALY_LABELS,
            "describe": service.describe_anomaly,
            "errors": errors or {},
            "comment": comment,
        },
        status_code=status_code,
    )


@router.get("/review/visits/{visit_id}", name="review_visit")
def review_visit(
    request: Request, session: SessionDep, reviewer: ReviewerUser, visit_id: uuid.UUID
) -> Response:
    return _visit_page(request, session, reviewer, visit_id)


def _back_to_visit(request: Request, visit_id: uuid.UUID) -> RedirectResponse:
    url = request.url_for("review_visit", visit_id=str(visit_id)).path + "#thread"
    return RedirectResponse(url, status_code=303)


@router.post("/review/visits/{visit_id}/transition", name="review_transition")
def review_transition(
    request: Request,
    session: SessionDep,
    reviewer: ReviewerUser,
    visit_id: uuid.UUID,
    to_state: Annotated[str, Form(max_length=20)] = "",
    comment: Annotated[str, Form(max_length=4100)] = "",
    expected_state: Annotated[str, Form(max_length=20)] = "",
    expected_revision: Annotated[str, Form(max_length=6)] = "",
) -> Response:
    try:
        event = service.transition(
            session,
            visit_id=visit_id,
            to_state=to_state,
            actor=reviewer,
            comment=comment,
            expected_state=expected_state or None,
            expected_revision=int(expected_revision) if expected_revision.isdigit() else None,
        )
    except (Conflict, InvalidInput) as exc:
        status = 400 if isinstance(exc, InvalidInput) else exc.status_code
        return _visit_page(
            request,
            session,
            reviewer,
            visit_id,
            errors={exc.field or "form": exc.message},
            comment=comment,
            status_code=status,
        )
    flash(
        request,
        _("Visit %(visit)s: %(state)s.")
        % {"visit": str(visit_id)[:8], "state": _(event.to_state or "")},
    )
    return _back_to_visit(request, visit_id)


@router.post("/review/visits/{visit_id}/comment", name="review_comment")
def review_comment(
    request: Request,
    session: SessionDep,
    reviewer: ReviewerUser,
    visit_id: uuid.UUID,
    comment: Annotated[str, Form(max_length=4100)] = "",
) -> Response:
    try:
        service.add_comment(session, visit_id=visit_id, actor=reviewer, comment=comment)
    except InvalidInput as exc:
        return _visit_page(
            request,
            session,
            reviewer,
            visit_id,
            errors={exc.field or "form": exc.message},
            comment=comment,
            status_code=400,
        )
    flash(request, _("Comment added."))
    return _back_to_visit(request, visit_id)


# --- JSON API for a future reviewer app ---------------------------------------------------------

api_router = APIRouter(prefix="/api/v1/review", tags=["review"])


def _hints_out(hints: tuple[Anomaly, ...]) -> list[HintOut]:
    return [
        HintOut(code=hint.code, item=hint.item, message=service.describe_anomaly(hint))
        for hint in hints
    ]


@api_router.get("/visits", name="api_review_queue")
def api_review_queue(request: Request, session: SessionDep, reviewer: ReviewerUser) -> QueueOut:
    """The queue with the page's filters (same parameters and defaults), oldest first."""
    params = _queue_params(request.query_params)
    filters = repository.QueueFilters(
        campaign_id=int(params["campaign"]) if params["campaign"].isdigit() else None,
        state=params["state"] if params["state"] in set(ReviewState) else None,
        channel=params["channel"] if params["channel"] in set(Channel) else None,
        authority=params["authority"] or None,
        shopper_id=int(params["shopper"]) if params["shopper"].isdigit() else None,
    )
    queue = service.review_queue(
        session,
        filters=filters,
        anomalies_only=params["anomalies"] == "1",
        page=int(params["page"]) if params["page"].isdigit() else 1,
    )
    return QueueOut(
        total=queue.total,
        page=queue.page,
        pages=queue.pages,
        visits=[
            QueueVisitOut(
                id=row.visit.id,
                mission_id=row_id(row.mission),
                campaign_id=row_id(row.campaign),
                authority_code=row.authority.code,
                authority_name=row.authority.name,
                channel=row.mission.channel,
                shopper_id=row.visit.shopper_id,
                review_state=row.visit.review_state,
                revision=row.visit.revision,
                visited_at=row.visit.visited_at,
                submitted_at=row.visit.submitted_at,
                hints=_hints_out(queue.hints.get(row.visit.id, ())),
            )
            for row in queue.rows
        ],
    )


@api_router.post("/visits/{visit_id}/transition", name="api_review_transition")
def api_review_transition(
    session: SessionDep, reviewer: ReviewerUser, visit_id: uuid.UUID, body: ReviewRequest
) -> ReviewEventOut:
    """One decision on a visit; outside the state machine or on a stale view: 409."""
    event = service.transition(
        session,
        visit_id=visit_id,
        to_state=body.to_state,
        actor=reviewer,
        comment=body.comment,
        expected_state=body.expected_state,
        expected_revision=body.expected_revision,
    )
    return ReviewEventOut.model_validate(event)


@api_router.post("/approve", name="api_review_bulk_approve")
def api_review_bulk_approve(
    session: SessionDep, reviewer: ReviewerUser, body: BulkApproveRequest
) -> BulkApproveOut:
    """Approve received visits together: all of them, or none (409 naming the first refused)."""
    approved = service.bulk_approve(
        session, visit_ids=body.visit_ids, actor=reviewer, comment=body.comment
    )
    return BulkApproveOut(approved=approved)
