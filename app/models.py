"""Every table, imported in one place so Alembic and the tests see the whole schema."""

from app.accounts.models import AccountInvitation, User
from app.audit.models import AuditEvent
from app.authorities.models import Authority
from app.campaigns.models import Campaign, CampaignInstrument, CampaignTransition, Candidate
from app.collection.models import Invitation, Response, SurveyDraft
from app.core.ratelimit import RateLimitCounter
from app.instruments.models import InstrumentVersion
from app.missions.models import (
    Mission,
    ReviewEvent,
    Scenario,
    ShopperConflict,
    Visit,
    VisitEvidence,
    VisitRevision,
)

__all__ = [
    "AccountInvitation",
    "AuditEvent",
    "Authority",
    "Campaign",
    "CampaignInstrument",
    "CampaignTransition",
    "Candidate",
    "InstrumentVersion",
    "Invitation",
    "Mission",
    "RateLimitCounter",
    "Response",
    "ReviewEvent",
    "Scenario",
    "ShopperConflict",
    "SurveyDraft",
    "User",
    "Visit",
    "VisitEvidence",
    "VisitRevision",
]
