"""The jury's workspace: categories, a category's evidence and deliberation, a candidate's file.

URL names: ``jury_home``, ``jury_category``, ``jury_candidate`` (pages); ``jury_president``,
``jury_conflict_declare``, ``jury_vote``, ``jury_comment``, ``jury_sign`` (forms); signing asks
first on ``jury_sign_confirm``.
"""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from app.accounts.dependencies import AdminUser, RequireRole
from app.accounts.models import Role, User
from app.campaigns.service import get_campaign, parse_config
from app.core.db import SessionDep, row_id
from app.core.errors import InvalidInput, NotFound
from app.core.i18n import _
from app.core.templating import flash, render
from app.jury import repository, service
from app.results import repository as results_repository
from app.results.service import require_run
from app.scorecards import repository as scorecards_repository
from app.scorecards import svg, views

router = APIRouter()

JuryUser = Annotated[User, Depends(RequireRole(Role.jury, Role.admin))]
JurorOnly = Annotated[User, Depends(RequireRole(Role.jury))]


# Names of the evidence download route, when the visits domain provides one.
def _category_url(request: Request, campaign_id: int, category: str, anchor: str = "") -> str:
    return request.url_for("jury_category", campaign_id=campaign_id, category=category).path + (
        anchor
    )


@router.get("/campaigns/{campaign_id}/jury", name="jury_home")
def jury_home(request: Request, session: SessionDep, user: JuryUser, campaign_id: int) -> Response:
    return render(request, "jury/home.html", _home_context(session, user, campaign_id))


def _home_context(
    session: SessionDep, user: User, campaign_id: int, **overrides: Any
) -> dict[str, Any]:
    campaign = get_campaign(session, campaign_id=campaign_id)
    config = parse_config(campaign.config)
    run = results_repository.current_run(session, campaign_id=campaign_id)
    counts = results_repository.category_counts(session, run_id=row_id(run)) if run else {}
    decisions = {d.category: d for d in repository.decisions(session, campaign_id)}
    conflicts = repository.conflicts(
        session, campaign_id, None if user.role == Role.admin else user.id
    )
    jurors = repository.jurors(session)
    president = repository.president_id(session, campaign_id)
    names = results_repository.authority_names(
        session,
        [c.authority_code for c in conflicts] + [d.laureate_code for d in decisions.values()],
    )
    context: dict[str, Any] = {
        "campaign": campaign,
        "run": run,
        "categories": views.category_labels(config),
        "counts": counts,
        "decisions": decisions,
        "conflicts": conflicts,
        "jurors": {juror.id: juror for juror in jurors},
        "president_id": president,
        "names": names,
        "is_admin": user.role == Role.admin,
        "errors": {},
        "form": {},
    }
    context.update(overrides)
    return context


@router.post("/campaigns/{campaign_id}/jury/president", name="jury_president")
def jury_president(
    request: Request,
    session: SessionDep,
    admin: AdminUser,
    campaign_id: int,
    president: Annotated[str, Form(max_length=12)] = "",
) -> Response:
    campaign = get_campaign(session, campaign_id=campaign_id)
    try:
        if not president.isdigit():
            raise InvalidInput(_("Choose an active jury member."), field="president")
        user = service.assign_president(
            session, campaign=campaign, user_id=int(president), actor=admin
        )
    except InvalidInput as exc:
        context = _home_context(session, admin, campaign_id, errors={exc.field: exc.message})
        return render(request, "jury/home.html", context, status_code=400)
    flash(request, _("%(name)s presides the jury.") % {"name": user.display_name})
    return RedirectResponse(
        request.url_for("jury_home", campaign_id=campaign_id).path, status_code=303
    )


@router.post("/campaigns/{campaign_id}/jury/conflicts", name="jury_conflict_declare")
def jury_conflict_declare(
    request: Request,
    session: SessionDep,
    user: JuryUser,
    campaign_id: int,
    code: Annotated[str, Form(max_length=12)] = "",
    reason: Annotated[str, Form(max_length=500)] = "",
    juror: Annotated[str, Form(max_length=12)] = "",
) -> Response:
    campaign = get_campaign(session, campaign_id=campaign_id)
    juror_id = row_id(user)
    if user.role == Role.admin:
        juror_id = int(juror) if juror.isdigit() else 0
    try:
        service.declare_conflict(
            session,
            campaign=campaign,
            juror_id=juror_id,
            code=code,
            reason=reason.strip(),
            actor=user,
        )
    except InvalidInput as exc:
        context = _home_context(
            session,
            user,
            campaign_id,
            errors={exc.field or "form": exc.message},
            form={"code": code, "reason": reason, "juror": juror},
        )
        return render(request, "jury/home.html", context, status_code=400)
    flash(request, _("Conflict of interest with %(code)s declared.") % {"code": code.upper()})
    return RedirectResponse(
        request.url_for("jury_home", campaign_id=campaign_id).path + "#conflicts", status_code=303
    )


def _category_context(
    request: Request, session: SessionDep, user: User, campaign_id: int, category: str
) -> dict[str, Any]:
    campaign = get_campaign(session, campaign_id=campaign_id)
    config = parse_config(campaign.config)
    run = require_run(session, campaign=campaign)
    sort = request.query_params.get("sort", "rank")
    descending = request.query_params.get("dir") == "desc"
    view = views.category_view(
        session, run=run, config=config, category=category, sort=sort, descending=descending
    )
    decision = repository.decision(session, campaign_id, category)
    votes = repository.votes(session, row_id(run), category)
    comments = repository.comments(session, row_id(run), category)
    people = repository.users_by_id(
        session,
        {v.juror_id for v in votes}
        | {c.author_id for c in comments}
        | ({decision.signed_by} if decision else set()),
    )
    my_conflicts = {
        c.authority_code for c in repository.conflicts(session, campaign_id, row_id(user))
    }
    president = repository.president_id(session, campaign_id)
    laureate = decision.laureate_code if decision else None
    names = {line.code: line.name for line in view.eligible + view.ineligible}
    forest, funnel = svg.category_plots(session, run, view, laureate=laureate)
    return {
        "campaign": campaign,
        "run": run,
        "view": view,
        "sort": sort if sort in views.SORT_KEYS else "rank",
        "descending": descending,
        "forest_svg": forest,
        "funnel_svg": funnel,
        "decision": decision,
        "votes": votes,
        "tally": Counter(v.authority_code for v in votes).most_common(),
        "my_vote": next((v for v in votes if v.juror_id == user.id), None),
        "comments": comments,
        "people": people,
        "names": names,
        "my_conflicts": my_conflicts,
        # One url_for for the whole table: resolving a route name costs ~0.5 ms a call.
        "candidate_url": request.url_for(
            "jury_candidate", campaign_id=campaign_id, category=category, code="_"
        ).path.removesuffix("_"),
        "is_juror": user.role == Role.jury,
        "is_president": user.role == Role.jury and president == user.id,
        "has_president": president is not None,
        "deliberating": campaign.state in service.DELIBERATION_STATES and decision is None,
        "errors": {},
        "form": {},
    }


@router.get("/campaigns/{campaign_id}/jury/{category}", name="jury_category")
def jury_category(
    request: Request, session: SessionDep, user: JuryUser, campaign_id: int, category: str
) -> Response:
    context = _category_context(request, session, user, campaign_id, category)
    return render(request, "jury/category.html", context)


def _refused(
    request: Request,
    session: SessionDep,
    user: User,
    campaign_id: int,
    category: str,
    exc: InvalidInput,
    form: dict[str, str],
) -> Response:
    context = _category_context(request, session, user, campaign_id, category)
    context.update(errors={exc.field or "form": exc.message}, form=form)
    return render(request, "jury/category.html", context, status_code=400)


@router.post("/campaigns/{campaign_id}/jury/{category}/vote", name="jury_vote")
def jury_vote(
    request: Request,
    session: SessionDep,
    juror: JurorOnly,
    campaign_id: int,
    category: str,
    code: Annotated[str, Form(max_length=12)] = "",
    comment: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    campaign = get_campaign(session, campaign_id=campaign_id)
    try:
        service.cast_vote(
            session, campaign=campaign, category=category, juror=juror, code=code, comment=comment
        )
    except InvalidInput as exc:
        form = {"code": code, "vote_comment": comment}
        return _refused(request, session, juror, campaign_id, category, exc, form)
    flash(request, _("Your vote is recorded."))
    return RedirectResponse(
        _category_url(request, campaign_id, category, "#deliberation"), status_code=303
    )


@router.post("/campaigns/{campaign_id}/jury/{category}/comments", name="jury_comment")
def jury_comment(
    request: Request,
    session: SessionDep,
    user: JuryUser,
    campaign_id: int,
    category: str,
    body: Annotated[str, Form(max_length=4000)] = "",
    about: Annotated[str, Form(max_length=12)] = "",
) -> Response:
    campaign = get_campaign(session, campaign_id=campaign_id)
    try:
        service.add_comment(
            session, campaign=campaign, category=category, author=user, body=body, code=about
        )
    except InvalidInput as exc:
        exc.field = "body" if exc.field != "code" else "about"
        form = {"body": body, "about": about}
        return _refused(request, session, user, campaign_id, category, exc, form)
    flash(request, _("Your comment is added."))
    return RedirectResponse(
        _category_url(request, campaign_id, category, "#discussion"), status_code=303
    )


def _decision_refused(
    request: Request,
    session: SessionDep,
    president: User,
    campaign_id: int,
    category: str,
    exc: InvalidInput,
    laureate: str,
    justification: str,
) -> Response:
    """The category page with a refused decision, the error on the form's own field."""
    if exc.field == "code":
        exc.field = "laureate"
    form = {"laureate": laureate, "justification": justification}
    return _refused(request, session, president, campaign_id, category, exc, form)


def _sign_confirmation(
    request: Request,
    session: SessionDep,
    president: User,
    campaign_id: int,
    category: str,
    laureate: str,
    justification: str,
) -> Response:
    """The page that says what signing does, or the category page with the refusal."""
    campaign = get_campaign(session, campaign_id=campaign_id)
    try:
        run, code, text = service.check_decision(
            session,
            campaign=campaign,
            category=category,
            president=president,
            laureate=laureate,
            justification=justification,
        )
    except InvalidInput as exc:
        return _decision_refused(
            request, session, president, campaign_id, category, exc, laureate, justification
        )
    config = parse_config(campaign.config)
    rank = results_repository.rank_row(session, run_id=row_id(run), code=code)
    context = {
        "campaign": campaign,
        "run": run,
        "category": category,
        "category_label": views.category_labels(config).get(category, category),
        "laureate": code,
        "laureate_name": results_repository.authority_names(session, [code]).get(code, code),
        "rank": rank,
        "justification": text,
    }
    return render(request, "jury/sign_confirm.html", context)


@router.get("/campaigns/{campaign_id}/jury/{category}/sign", name="jury_sign_confirm")
def jury_sign_confirm(
    request: Request,
    session: SessionDep,
    president: JurorOnly,
    campaign_id: int,
    category: str,
    laureate: Annotated[str, Query(max_length=12)] = "",
    justification: Annotated[str, Query(max_length=4000)] = "",
) -> Response:
    """Signing asks first: what the decision will say and that it cannot be undone."""
    return _sign_confirmation(
        request, session, president, campaign_id, category, laureate, justification
    )


@router.post("/campaigns/{campaign_id}/jury/{category}/sign", name="jury_sign")
def jury_sign(
    request: Request,
    session: SessionDep,
    president: JurorOnly,
    campaign_id: int,
    category: str,
    laureate: Annotated[str, Form(max_length=12)] = "",
    justification: Annotated[str, Form(max_length=4000)] = "",
    confirmed: Annotated[str, Form(max_length=3)] = "",
) -> Response:
    if confirmed != "yes":  # not from the confirmation page: ask first, sign nothing
        return _sign_confirmation(
            request, session, president, campaign_id, category, laureate, justification
        )
    campaign = get_campaign(session, campaign_id=campaign_id)
    try:
        service.sign_decision(
            session,
            campaign=campaign,
            category=category,
            president=president,
            laureate=laureate,
            justification=justification,
        )
    except InvalidInput as exc:
        return _decision_refused(
            request, session, president, campaign_id, category, exc, laureate, justification
        )
    flash(request, _("The decision is signed."))
    return RedirectResponse(
        _category_url(request, campaign_id, category, "#decision"), status_code=303
    )


@router.get("/campaigns/{campaign_id}/jury/{category}/candidates/{code}", name="jury_candidate")
def jury_candidate(
    request: Request,
    session: SessionDep,
    user: JuryUser,
    campaign_id: int,
    category: str,
    code: str,
) -> Response:
    campaign = get_campaign(session, campaign_id=campaign_id)
    card = views.get_scorecard(session, campaign=campaign, code=code, user=user)
    if card.category != category:
        raise NotFound(_("No candidate %(code)s in this category.") % {"code": code})
    visits = scorecards_repository.approved_visits(session, campaign_id, card.code)
    # The visits domain serves the jury the proofs of approved visits (the only ones listed).
    evidence_links = {
        item.id: request.url_for("evidence_download", evidence_id=str(item.id)).path
        for _v, _m, items in visits
        for item in items
    }
    return render(
        request,
        "jury/candidate.html",
        {
            "campaign": campaign,
            "card": card,
            "visits": visits,
            "evidence_links": evidence_links,
            "remarks": views.visit_remarks(session, [visit for visit, _m, _e in visits]),
            "profile_svg": svg.scorecard_profile_svg(card, plot_id="profile"),
            "conflicted": repository.has_conflict(session, campaign_id, row_id(user), card.code),
        },
    )
