"""The jury's deliberation: conflicts, votes, comments, the president and signed decisions.

Every action works on the campaign's current frozen run and is audited. A category's decision,
once signed, locks that category: any later vote, comment or signature there is a 409.

The president: the organiser (an admin) designates one of the jury members per campaign;
the designation is an audited event (``jury.president``) and the latest one is in force.
"""

from __future__ import annotations

from sqlmodel import Session

from app.accounts.models import Role, User
from app.audit.models import record_audit
from app.authorities import repository as authorities_repository
from app.campaigns import repository as campaigns_repository
from app.campaigns import service as campaigns_service
from app.campaigns.models import Campaign, CampaignState
from app.core.db import row_id
from app.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from app.core.i18n import _
from app.jury import repository
from app.jury.models import AwardDecision, JuryComment, JuryConflict, JuryVote
from app.jury.repository import PRESIDENT_ACTION
from app.results import repository as results_repository
from app.results.models import RankRow, ScoringRun
from app.results.service import require_run
from app.scorecards.views import in_top_set

# Votes, comments and signatures happen while the campaign is scored (the jury deliberates on
# its frozen run); conflicts may be declared from the moment the candidates are known.
DELIBERATION_STATES = {CampaignState.scored}
CONFLICT_STATES = {
    CampaignState.draft,
    CampaignState.open,
    CampaignState.closed,
    CampaignState.scored,
}


def _require_deliberation(campaign: Campaign) -> None:
    if campaign.state not in DELIBERATION_STATES:
        raise Conflict(
            _(
                "The jury deliberates while the campaign is scored; "
                "the %(year)d campaign is %(state)s."
            )
            % {"year": campaign.year, "state": _(campaign.state)}
        )


def _require_unsigned(session: Session, campaign: Campaign, category: str) -> None:
    if repository.decision(session, row_id(campaign), category) is not None:
        raise Conflict(
            _("The decision of this category is signed: it can no longer change."),
            field="category",
        )


def _require_category(session: Session, campaign: Campaign, category: str) -> None:
    if category not in {c.key for c in campaigns_service.parse_config(campaign.config).categories}:
        raise NotFound(_("No category %(key)s in this campaign.") % {"key": category})


def _deliberation_run(session: Session, campaign: Campaign) -> ScoringRun:
    """The current run, provided every decision already signed was signed on it: the jury
    works on one frozen run from the first signature to the last."""
    run = require_run(session, campaign=campaign)
    if any(d.run_id != run.id for d in repository.decisions(session, row_id(campaign))):
        raise Conflict(
            _(
                "Decisions were signed on an earlier scoring run than the current one: "
                "the deliberation cannot mix runs."
            )
        )
    return run


def _open_category(session: Session, campaign: Campaign, category: str) -> ScoringRun:
    """The run a vote, comment or signature in ``category`` rests on, while the jury still
    deliberates there (409 otherwise)."""
    _require_deliberation(campaign)
    run = _deliberation_run(session, campaign)
    _require_unsigned(session, campaign, category)
    return run


def _eligible_candidate(session: Session, run: ScoringRun, category: str, code: str) -> RankRow:
    rank = results_repository.rank_row(session, run_id=row_id(run), code=code)
    if rank is None or rank.category != category:
        raise InvalidInput(
            _("%(code)s is not a candidate of this category.") % {"code": code}, field="code"
        )
    if not rank.eligible:
        raise InvalidInput(
            _("%(code)s is not eligible: %(reason)s")
            % {"code": code, "reason": rank.ineligible_reason},
            field="code",
        )
    return rank


def president_id(session: Session, campaign: Campaign) -> int | None:
    return repository.president_id(session, row_id(campaign))


def assign_president(session: Session, *, campaign: Campaign, user_id: int, actor: User) -> User:
    user = session.get(User, user_id)
    if user is None or user.role != Role.jury or not user.is_active:
        raise InvalidInput(_("Choose an active jury member."), field="president")
    if repository.decisions(session, row_id(campaign)):
        raise Conflict(_("A decision is already signed: the president can no longer change."))
    before = repository.president_id(session, row_id(campaign))
    record_audit(
        session,
        actor=actor,
        action=PRESIDENT_ACTION,
        object_type="campaign",
        object_id=campaign.id,
        before={"user_id": before},
        after={"user_id": user.id},
    )
    session.flush()
    return user


def declare_conflict(
    session: Session,
    *,
    campaign: Campaign,
    juror_id: int,
    code: str,
    reason: str,
    actor: User,
) -> JuryConflict:
    """A juror declares a conflict with a candidate (the organiser may declare it for them)."""
    if actor.role != Role.admin and actor.id != juror_id:
        raise Forbidden(_("A juror declares only their own conflicts."))
    if campaign.state not in CONFLICT_STATES:
        raise Conflict(_("The deliberation is over: conflicts can no longer be declared."))
    juror = session.get(User, juror_id)
    if juror is None or juror.role != Role.jury:
        raise InvalidInput(_("Choose a jury member."), field="juror")
    code = code.strip().upper()
    if campaigns_repository.get_candidate(session, row_id(campaign), code) is None:
        raise InvalidInput(
            _("%(code)s is not a candidate of the %(year)d campaign.")
            % {"code": code, "year": campaign.year},
            field="code",
        )
    if repository.has_conflict(session, row_id(campaign), juror_id, code):
        raise Conflict(_("This conflict is already declared."), field="code")
    conflict = JuryConflict(
        campaign_id=row_id(campaign), juror_id=juror_id, authority_code=code, reason=reason
    )
    session.add(conflict)
    session.flush()
    record_audit(
        session,
        actor=actor,
        action="jury.conflict",
        object_type="jury_conflict",
        object_id=conflict.id,
        after={"juror_id": juror_id, "authority_code": code, "reason": reason},
    )
    return conflict


def cast_vote(
    session: Session,
    *,
    campaign: Campaign,
    category: str,
    juror: User,
    code: str,
    comment: str = "",
) -> JuryVote:
    """One vote per juror per category on the current run; casting again changes it."""
    if juror.role != Role.jury:
        raise Forbidden(_("Only jury members vote."))
    _require_category(session, campaign, category)
    run = _open_category(session, campaign, category)
    code = code.strip().upper()
    if repository.has_conflict(session, row_id(campaign), row_id(juror), code):
        raise Forbidden(
            _("You declared a conflict of interest with %(code)s: you cannot vote for it.")
            % {"code": code}
        )
    _eligible_candidate(session, run, category, code)
    vote = repository.vote_of(session, row_id(run), category, row_id(juror))
    before = {"authority_code": vote.authority_code, "comment": vote.comment} if vote else None
    if vote is None:
        vote = JuryVote(
            run_id=row_id(run), category=category, juror_id=row_id(juror), authority_code=code
        )
    vote.authority_code = code
    vote.comment = comment
    session.add(vote)
    session.flush()
    record_audit(
        session,
        actor=juror,
        action="jury.vote",
        object_type="jury_vote",
        object_id=vote.id,
        before=before,
        after={"run_id": run.id, "category": category, "authority_code": code, "comment": comment},
    )
    return vote


def add_comment(
    session: Session,
    *,
    campaign: Campaign,
    category: str,
    author: User,
    body: str,
    code: str | None = None,
) -> JuryComment:
    _require_category(session, campaign, category)
    run = _open_category(session, campaign, category)
    body = body.strip()
    if not body:
        raise InvalidInput(_("Write the comment."), field="body")
    if code:
        code = code.strip().upper()
        rank = results_repository.rank_row(session, run_id=row_id(run), code=code)
        if rank is None or rank.category != category:
            raise InvalidInput(
                _("%(code)s is not a candidate of this category.") % {"code": code}, field="code"
            )
    comment = JuryComment(
        run_id=row_id(run),
        category=category,
        authority_code=code or None,
        author_id=row_id(author),
        body=body,
    )
    session.add(comment)
    session.flush()
    record_audit(
        session,
        actor=author,
        action="jury.comment",
        object_type="jury_comment",
        object_id=comment.id,
        after={"run_id": run.id, "category": category, "authority_code": code, "body": body},
    )
    return comment


def justification_required(session: Session, run: ScoringRun, category: str, laureate: str) -> bool:
    """When the laureate is not the point leader, or the top-1 set is a statistical tie."""
    ranks = [
        row
        for row in results_repository.rank_rows(session, run_id=row_id(run), category=category)
        if row.eligible
    ]
    top1 = [row for row in ranks if in_top_set(row, 1)]
    leaders = {row.authority_code for row in ranks if row.rank == 1}
    return len(top1) > 1 or laureate not in leaders


def check_decision(
    session: Session,
    *,
    campaign: Campaign,
    category: str,
    president: User,
    laureate: str,
    justification: str,
) -> tuple[ScoringRun, str, str]:
    """Everything signing checks, without signing: the run, the laureate's code and the
    justification as they will be signed (the confirmation page shows them)."""
    _require_category(session, campaign, category)
    if (
        president.role != Role.jury
        or repository.president_id(session, row_id(campaign)) != president.id
    ):
        raise Forbidden(_("Only the president of the jury signs the decisions."))
    run = _open_category(session, campaign, category)
    laureate = laureate.strip().upper()
    if not laureate:
        raise InvalidInput(_("Choose the laureate."), field="code")
    if repository.has_conflict(session, row_id(campaign), row_id(president), laureate):
        raise Forbidden(
            _("You declared a conflict of interest with %(code)s.") % {"code": laureate}
        )
    _eligible_candidate(session, run, category, laureate)
    justification = justification.strip()
    if justification_required(session, run, category, laureate) and not justification:
        raise InvalidInput(
            _(
                "Justify the decision: the laureate is not the point leader, or the category "
                "is a statistical tie."
            ),
            field="justification",
        )
    return run, laureate, justification


def sign_decision(
    session: Session,
    *,
    campaign: Campaign,
    category: str,
    president: User,
    laureate: str,
    justification: str,
) -> AwardDecision:
    run, laureate, justification = check_decision(
        session,
        campaign=campaign,
        category=category,
        president=president,
        laureate=laureate,
        justification=justification,
    )
    decision = AwardDecision(
        campaign_id=row_id(campaign),
        run_id=row_id(run),
        category=category,
        laureate_code=laureate,
        justification=justification,
        signed_by=row_id(president),
    )
    session.add(decision)
    session.flush()
    record_audit(
        session,
        actor=president,
        action="jury.sign",
        object_type="award_decision",
        object_id=decision.id,
        after={
            "run_id": run.id,
            "category": category,
            "laureate_code": laureate,
            "justification": justification,
        },
    )
    return decision


@campaigns_service.guard_transition(CampaignState.deliberated, CampaignState.published)
def require_signed_decisions(session: Session, campaign: Campaign) -> None:
    """Deliberation ends, and results are published, only once every category is decided."""
    unsigned = unsigned_categories(session, campaign)
    if unsigned:
        raise Conflict(
            _("Every category's decision must be signed first; still unsigned: %(keys)s.")
            % {"keys": ", ".join(unsigned)},
            field="to_state",
        )


def unsigned_categories(session: Session, campaign: Campaign) -> list[str]:
    """Categories of the current run with at least one eligible candidate and no signed decision."""
    run = results_repository.current_run(session, campaign_id=row_id(campaign))
    if run is None:
        return []
    counts = results_repository.category_counts(session, run_id=row_id(run))
    signed = {d.category for d in repository.decisions(session, row_id(campaign))}
    return sorted(
        key for key, (_total, eligible) in counts.items() if eligible and key not in signed
    )


def laureate_names(session: Session, decisions: list[AwardDecision]) -> dict[str, str]:
    codes = [d.laureate_code for d in decisions]
    return {code: a.name for code, a in authorities_repository.get_many(session, codes).items()}
