"""Queries on scenarios, shopper conflicts and missions."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from app.accounts.models import Role, User
from app.authorities.models import Authority
from app.campaigns.models import Campaign
from app.core.db import row_id
from app.missions.models import (
    UNSUBMITTED_STATES,
    Mission,
    MissionState,
    Scenario,
    ShopperConflict,
    Visit,
)


@dataclass(frozen=True)
class MissionRow:
    mission: Mission
    authority: Authority
    scenario: Scenario | None
    shopper: User | None


def scenarios(session: Session, campaign_id: int) -> list[Scenario]:
    return list(
        session.exec(
            select(Scenario)
            .where(col(Scenario.campaign_id) == campaign_id)
            .order_by(col(Scenario.channel), col(Scenario.key))
        ).all()
    )


def get_scenario_by_key(
    session: Session, campaign_id: int, channel: str, key: str
) -> Scenario | None:
    return session.exec(
        select(Scenario).where(
            col(Scenario.campaign_id) == campaign_id,
            col(Scenario.channel) == channel,
            col(Scenario.key) == key,
        )
    ).first()


def active_shoppers(session: Session) -> list[User]:
    return list(
        session.exec(
            select(User)
            .where(col(User.role) == Role.shopper, col(User.is_active).is_(True))
            .order_by(col(User.display_name), col(User.id))
        ).all()
    )


def conflicts_by_shopper(session: Session, user_ids: Iterable[int]) -> dict[int, set[str]]:
    wanted = list(set(user_ids))
    found: dict[int, set[str]] = {user_id: set() for user_id in wanted}
    for start in range(0, len(wanted), 900):
        rows = session.exec(
            select(ShopperConflict.user_id, ShopperConflict.authority_code).where(
                col(ShopperConflict.user_id).in_(wanted[start : start + 900])
            )
        ).all()
        for user_id, code in rows:
            found[user_id].add(code)
    return found


def conflicts_of(session: Session, user_id: int) -> list[tuple[ShopperConflict, Authority]]:
    rows = session.exec(
        select(ShopperConflict, Authority)
        .join(Authority, col(Authority.code) == col(ShopperConflict.authority_code))
        .where(col(ShopperConflict.user_id) == user_id)
        .order_by(col(Authority.name))
    ).all()
    return [(conflict, authority) for conflict, authority in rows]


def has_conflict(session: Session, user_id: int, authority_code: str) -> bool:
    return (
        session.exec(
            select(ShopperConflict.id).where(
                col(ShopperConflict.user_id) == user_id,
                col(ShopperConflict.authority_code) == authority_code,
            )
        ).first()
        is not None
    )


def count_missions(session: Session, campaign_id: int) -> int:
    return int(
        session.exec(
            select(func.count()).select_from(Mission).where(col(Mission.campaign_id) == campaign_id)
        ).one()
    )


def count_by_channel(session: Session, campaign_id: int) -> dict[str, tuple[int, int]]:
    """Per channel: (missions, missions with a shopper)."""
    rows = session.exec(
        select(Mission.channel, func.count(), func.count(col(Mission.shopper_id)))
        .where(col(Mission.campaign_id) == campaign_id)
        .group_by(col(Mission.channel))
    ).all()
    return {channel: (int(total), int(assigned)) for channel, total, assigned in rows}


def count_by_shopper(session: Session, campaign_id: int) -> list[tuple[User, int]]:
    rows = session.exec(
        select(User, func.count(col(Mission.id)))
        .join(Mission, col(Mission.shopper_id) == col(User.id))
        .where(col(Mission.campaign_id) == campaign_id)
        .group_by(col(User.id))
        .order_by(col(User.display_name), col(User.id))
    ).all()
    return [(user, int(count)) for user, count in rows]


def mission_rows(
    session: Session,
    campaign_id: int,
    *,
    channel: str | None = None,
    state: str | None = None,
    shopper_id: int | None = None,
    authority_code: str | None = None,
    limit: int | None = None,
) -> list[MissionRow]:
    query = (
        select(Mission, Authority, Scenario, User)
        .join(Authority, col(Authority.code) == col(Mission.authority_code))
        .join(Scenario, col(Scenario.id) == col(Mission.scenario_id), isouter=True)
        .join(User, col(User.id) == col(Mission.shopper_id), isouter=True)
        .where(col(Mission.campaign_id) == campaign_id)
    )
    if channel:
        query = query.where(col(Mission.channel) == channel)
    if state:
        query = query.where(col(Mission.state) == state)
    if shopper_id is not None:
        query = query.where(col(Mission.shopper_id) == shopper_id)
    if authority_code:
        query = query.where(col(Mission.authority_code) == authority_code)
    query = query.order_by(
        col(Authority.name),
        col(Mission.authority_code),
        col(Mission.channel),
        col(Mission.sequence),
    )
    if limit is not None:
        query = query.limit(limit)
    return [
        MissionRow(mission, authority, scenario, shopper)
        for mission, authority, scenario, shopper in session.exec(query).all()
    ]


def get_mission(session: Session, campaign_id: int, mission_id: int) -> Mission | None:
    mission = session.get(Mission, mission_id)
    return mission if mission is not None and mission.campaign_id == campaign_id else None


def missions_by_id(session: Session, campaign_id: int, ids: Iterable[int]) -> dict[int, Mission]:
    wanted = list(set(ids))
    found: dict[int, Mission] = {}
    for start in range(0, len(wanted), 900):
        for mission in session.exec(
            select(Mission).where(
                col(Mission.campaign_id) == campaign_id,
                col(Mission.id).in_(wanted[start : start + 900]),
            )
        ).all():
            found[row_id(mission)] = mission
    return found


def kept_missions(session: Session, campaign_id: int) -> list[Mission]:
    """Missions a regeneration must leave alone: reported ones, or any with a visit."""
    has_visit = select(Visit.id).where(col(Visit.mission_id) == col(Mission.id)).exists()
    return list(
        session.exec(
            select(Mission).where(
                col(Mission.campaign_id) == campaign_id,
                sa.or_(col(Mission.state).not_in(list(UNSUBMITTED_STATES)), has_visit),
            )
        ).all()
    )


def delete_unsubmitted(session: Session, campaign_id: int) -> int:
    has_visit = select(Visit.id).where(col(Visit.mission_id) == col(Mission.id)).exists()
    result = session.execute(
        sa.delete(Mission).where(
            col(Mission.campaign_id) == campaign_id,
            col(Mission.state).in_(list(UNSUBMITTED_STATES)),
            sa.not_(has_visit),
        )
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def missions_of_shopper(
    session: Session, shopper_id: int
) -> list[tuple[Mission, Authority, Campaign]]:
    rows = session.exec(
        select(Mission, Authority, Campaign)
        .join(Authority, col(Authority.code) == col(Mission.authority_code))
        .join(Campaign, col(Campaign.id) == col(Mission.campaign_id))
        .where(col(Mission.shopper_id) == shopper_id)
        .order_by(col(Mission.window_end), col(Mission.window_start), col(Mission.id))
    ).all()
    return [(mission, authority, campaign) for mission, authority, campaign in rows]


def mission_of_shopper(
    session: Session, mission_id: int, shopper_id: int
) -> tuple[Mission, Authority, Scenario | None, Campaign] | None:
    """The mission only if it is this shopper's: another's is as absent as a missing one."""
    row = session.exec(
        select(Mission, Authority, Scenario, Campaign)
        .join(Authority, col(Authority.code) == col(Mission.authority_code))
        .join(Campaign, col(Campaign.id) == col(Mission.campaign_id))
        .join(Scenario, col(Scenario.id) == col(Mission.scenario_id), isouter=True)
        .where(col(Mission.id) == mission_id, col(Mission.shopper_id) == shopper_id)
    ).first()
    return (row[0], row[1], row[2], row[3]) if row is not None else None


def open_missions_of_shopper_at(
    session: Session, shopper_id: int, authority_code: str
) -> list[Mission]:
    return list(
        session.exec(
            select(Mission).where(
                col(Mission.shopper_id) == shopper_id,
                col(Mission.authority_code) == authority_code,
                col(Mission.state) == MissionState.assigned,
            )
        ).all()
    )
