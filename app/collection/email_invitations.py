"""Citizens' e-mail invitations: sending, one reminder, opt-out, erasure at close."""

from __future__ import annotations

from sqlmodel import Session

from app.accounts.models import User
from app.campaigns.models import Campaign


def campaign_closed(session: Session, *, campaign: Campaign, actor: User | None) -> None:
    """Hook of :data:`app.campaigns.service.ON_ENTER_STATE` (to be written)."""
