"""Every table, imported in one place so Alembic and the tests see the whole schema."""

from app.accounts.models import AccountInvitation, PasswordReset, User
from app.audit.models import AuditEvent
from app.authorities.models import Authority
from app.campaigns.models import Campaign, CampaignInstrument, CampaignTransition, Candidate
from app.collection.models import Invitation, InvitationRecipient, Response, SurveyDraft
from app.core.ratelimit import RateLimitCounter
from app.exports.models import Export
from app.instruments.models import InstrumentVersion
from app.jobs.models import Job
from app.jury.models import AwardDecision, JuryComment, JuryConflict, JuryVote
from app.mail.models import OutboxMessage
from app.missions.models import (
    Mission,
    ReviewEvent,
    Scenario,
    ShopperConflict,
    Visit,
    VisitEvidence,
    VisitRevision,
)
from app.results.models import RankRow, ScoreRow, ScoringRun

__all__ = [
    "AccountInvitation",
    "AuditEvent",
    "Authority",
    "AwardDecision",
    "Campaign",
    "CampaignInstrument",
    "CampaignTransition",
    "Candidate",
    "Export",
    "InstrumentVersion",
    "Invitation",
    "InvitationRecipient",
    "Job",
    "JuryComment",
    "JuryConflict",
    "JuryVote",
    "Mission",
    "OutboxMessage",
    "PasswordReset",
    "RankRow",
    "RateLimitCounter",
    "Response",
    "ReviewEvent",
    "Scenario",
    "ScoreRow",
    "ScoringRun",
    "ShopperConflict",
    "SurveyDraft",
    "User",
    "Visit",
    "VisitEvidence",
    "VisitRevision",
]
