"""The demo barometer: two editions on the real registry, one account per role.

Deterministic for a given seed, and safe to run again (an existing demo is left as it is).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from sqlmodel import Session, col, select

import surveys
from app.accounts import repository as accounts_repository
from app.accounts.models import Role, User
from app.accounts.schemas import UserCreate
from app.accounts.service import create_user
from app.authorities import repository as authorities_repository
from app.authorities.models import Authority
from app.authorities.service import import_registry_file
from app.campaigns import repository as campaigns_repository
from app.campaigns import service as campaigns_service
from app.campaigns.models import CampaignState
from app.campaigns.schemas import CampaignConfig, CampaignCreate
from app.core.security import hash_password
from app.instruments.service import publish
from app.jury.demo import build_jury_demo
from app.results.demo import build_results_demo
from app.reviews.demo import build_current_visits, build_past_visits

BUNDLED_REGISTRY = Path(__file__).resolve().parent / "data" / "collectivites.csv"
DEMO_DOMAIN = "demo.barometre.fr"
# Candidates per category in the demo (about 200 in all), echoing real editions where small
# communes are many and the largest bodies few.
DEMO_CANDIDATES_PER_CATEGORY = {
    "communes-0-3500": 34,
    "communes-3500-10000": 34,
    "communes-10000-20000": 30,
    "communes-20000-50000": 28,
    "communes-50000-100000": 22,
    "communes-100000-plus": 16,
    "intercommunalites": 24,
    "departements-regions": 12,
}
DEMO_AUTHORITY = "69123"  # Lyon: the demo authority contact's town
RETURNING_SHARE = 0.8  # most candidates come back the next year, as in real barometers


@dataclass(frozen=True)
class DemoAccount:
    role: str
    email: str
    password: str
    authority: str | None


def demo_accounts(authority_code: str | None) -> list[DemoAccount]:
    return [
        DemoAccount(
            role=role.value,
            email=f"{role.value}@{DEMO_DOMAIN}",
            password=f"demo-{role.value}-2026",
            authority=authority_code if role == Role.authority else None,
        )
        for role in Role
    ]


def _pick_candidates(
    session: Session, config: CampaignConfig, rng: random.Random
) -> dict[str, list[str]]:
    authorities = session.exec(select(Authority).order_by(col(Authority.code))).all()
    by_category: dict[str, list[str]] = {category.key: [] for category in config.categories}
    for authority in authorities:
        category = config.category_for(authority.kind, authority.population)
        if category is not None:
            by_category[category.key].append(authority.code)
    picked = {
        key: sorted(rng.sample(codes, min(len(codes), DEMO_CANDIDATES_PER_CATEGORY.get(key, 10))))
        for key, codes in by_category.items()
    }
    # The demo authority contact's town is always a candidate, so its scorecard exists.
    for key, codes in picked.items():
        if DEMO_AUTHORITY in by_category[key] and DEMO_AUTHORITY not in codes:
            picked[key] = sorted([*codes[1:], DEMO_AUTHORITY])
    return picked


def _next_year_candidates(
    picked: dict[str, list[str]],
    session: Session,
    config: CampaignConfig,
    rng: random.Random,
) -> list[str]:
    pool = _pick_candidates(session, config, random.Random(rng.random()))
    codes: list[str] = []
    for key, previous in picked.items():
        keep = rng.sample(previous, round(len(previous) * RETURNING_SHARE))
        if DEMO_AUTHORITY in previous and DEMO_AUTHORITY not in keep:
            keep = [*keep[1:], DEMO_AUTHORITY]
        newcomers = [code for code in pool.get(key, []) if code not in previous]
        codes.extend(keep + newcomers[: len(previous) - len(keep)])
    return sorted(codes)


def build_demo(session: Session, *, organiser: str, seed: int = 2026) -> list[DemoAccount]:
    """Build the demo if it is not there yet; return the demo accounts either way."""
    if authorities_repository.count(session) == 0:
        import_registry_file(session, path=BUNDLED_REGISTRY)
    for instrument in surveys.default_instruments().values():
        publish(session, instrument=instrument, actor=None)  # same content: same version
    rng = random.Random(seed)
    config = CampaignConfig(seed=seed)

    existing = campaigns_repository.get_by_year(session, organiser=organiser, year=2025)
    if existing is None:
        admin = _ensure_accounts(session, rng=rng, config=config)
        picked = _pick_candidates(session, config, rng)
        past = campaigns_service.create_campaign(
            session,
            data=CampaignCreate(
                year=2025,
                name="Baromètre de l'expérience citoyenne 2025",
                opens_at=date(2025, 1, 15),
                closes_at=date(2025, 10, 31),
            ),
            organiser=organiser,
            actor=admin,
            config=CampaignConfig(seed=seed - 1),
        )
        for codes in picked.values():
            for code in codes:
                campaigns_service.register_candidate(session, campaign=past, code=code, actor=admin)
        campaigns_service.pin_latest_versions(session, campaign=past, actor=admin)
        campaigns_service.transition(
            session, campaign=past, to_state=CampaignState.open, actor=admin
        )
        build_past_visits(session, campaign=past, seed=seed, actor=admin, domain=DEMO_DOMAIN)
        campaigns_service.transition(
            session, campaign=past, to_state=CampaignState.closed, actor=admin
        )

        current = campaigns_service.create_campaign(
            session,
            data=CampaignCreate(
                year=2026,
                name="Baromètre de l'expérience citoyenne 2026",
                opens_at=date(2026, 1, 15),
                closes_at=date(2026, 12, 15),
            ),
            organiser=organiser,
            actor=admin,
            config=config,
        )
        for code in _next_year_candidates(picked, session, config, rng):
            campaigns_service.register_candidate(session, campaign=current, code=code, actor=admin)
        campaigns_service.pin_latest_versions(session, campaign=current, actor=admin)
        campaigns_service.transition(
            session, campaign=current, to_state=CampaignState.open, actor=admin
        )
        build_current_visits(session, campaign=current, seed=seed, actor=admin, domain=DEMO_DOMAIN)
        session.flush()
        build_results_demo(session, organiser=organiser, actor=admin, seed=seed)  # scores 2025
    build_jury_demo(session, organiser=organiser, domain=DEMO_DOMAIN)  # after the 2025 scoring
    authority_user = accounts_repository.get_by_email(session, f"authority@{DEMO_DOMAIN}")
    return demo_accounts(authority_user.authority_code if authority_user else None)


def _ensure_accounts(session: Session, *, rng: random.Random, config: CampaignConfig) -> User:
    # The demo authority contact belongs to a mid-sized town that is a candidate both years.
    authority_code = DEMO_AUTHORITY
    admin: User | None = None
    for account in demo_accounts(authority_code):
        user = accounts_repository.get_by_email(session, account.email)
        if user is None:
            user = create_user(
                session,
                data=UserCreate(
                    email=account.email,
                    display_name=f"Démo {account.role}",
                    role=Role(account.role),
                    authority_code=account.authority,
                ),
                created_by=None,
            )
            user.password_hash = hash_password(account.password)
            session.add(user)
        if account.role == Role.admin:
            admin = user
    session.flush()
    assert admin is not None
    return admin
