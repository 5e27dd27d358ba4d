"""Missions for the shopper-side tests (API, evidence, browser)."""

from __future__ import annotations

from datetime import date

from sqlmodel import Session, select

from app.accounts.models import User
from app.campaigns.models import Campaign
from app.missions.models import Mission, MissionState, Scenario


def make_mission(
    session: Session,
    campaign: Campaign,
    shopper: User | None,
    *,
    channel: str = "telephone",
    code: str = "69123",
    state: MissionState = MissionState.assigned,
    sequence: int = 1,
) -> Mission:
    scenario = session.exec(
        select(Scenario).where(Scenario.campaign_id == campaign.id, Scenario.channel == channel)
    ).first()
    if scenario is None:
        scenario = Scenario(
            campaign_id=campaign.id or 0,
            channel=channel,
            key=f"{channel}-naissance",
            title="Acte de naissance",
            request_text="Comment obtenir un acte de naissance ?",
            answer_sheet="En ligne ou au guichet, gratuit.",
        )
        session.add(scenario)
        session.flush()
    mission = Mission(
        campaign_id=campaign.id or 0,
        authority_code=code,
        channel=channel,
        sequence=sequence,
        scenario_id=scenario.id,
        shopper_id=shopper.id if shopper else None,
        window_start=date(2030, 3, 1),
        window_end=date(2030, 3, 31),
        state=state,
    )
    session.add(mission)
    session.commit()
    return mission
