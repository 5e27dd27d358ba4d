"""The demo barometer: two editions on the real registry, built as an organiser would.

:func:`build_demo` imports the bundled registry, publishes the default instruments, then:

- 2025: about 200 candidates registered, instruments pinned, opened; every mission reported
  and approved (:mod:`demo.visits`), citizen responses (:mod:`demo.responses`); closed, scored
  by ``app.results.service.run_scoring``, deliberated and published (:mod:`demo.jury`);
- 2026: most 2025 candidates back and a few newcomers, opened, with visits in every review
  state and a first share of responses.

Deterministic for a given seed, and safe to run again (an existing demo is left as it is).
"""

from __future__ import annotations

import random
from datetime import date

import numpy as np
from sqlmodel import Session, col, select

import surveys
from app.accounts import repository as accounts_repository
from app.accounts.models import User
from app.authorities import repository as authorities_repository
from app.authorities.models import Authority
from app.authorities.service import BUNDLED_REGISTRY, import_registry_file
from app.campaigns import repository as campaigns_repository
from app.campaigns import service as campaigns_service
from app.campaigns.models import Campaign, CampaignState
from app.campaigns.schemas import CampaignConfig, CampaignCreate
from app.instruments.service import publish
from app.results.service import run_scoring
from demo.accounts import (
    DEMO_AUTHORITY,
    DEMO_DOMAIN,
    DemoAccount,
    demo_accounts,
    ensure_role_accounts,
)
from demo.jury import deliberate_and_publish
from demo.responses import add_responses
from demo.visits import build_current_visits, build_past_visits

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
RETURNING_SHARE = 0.8  # most candidates come back the next year, as in real barometers
PAST_RESPONSES = (30, 150)  # per candidate: a whole edition
CURRENT_RESPONSES = (0, 25)  # per candidate: an edition under way


def _pick_candidates(
    session: Session, config: CampaignConfig, rng: random.Random
) -> dict[str, list[str]]:
    by_category: dict[str, list[str]] = {category.key: [] for category in config.categories}
    # Plain columns, not rows: 36,000 authorities kept in the session would slow every later
    # bulk update (the ORM scans the session's objects to keep them in step).
    registry = session.exec(
        select(Authority.code, Authority.kind, Authority.population).order_by(col(Authority.code))
    ).all()
    for code, kind, population in registry:
        category = config.category_for(kind, population)
        if category is not None:
            by_category[category.key].append(code)
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


def _open_edition(
    session: Session,
    *,
    organiser: str,
    admin: User,
    year: int,
    opens_at: date,
    closes_at: date,
    config: CampaignConfig,
    codes: list[str],
) -> Campaign:
    """Create an edition, register its candidates, pin the latest instruments and open it."""
    campaign = campaigns_service.create_campaign(
        session,
        data=CampaignCreate(
            year=year,
            name=f"Baromètre de l'expérience citoyenne {year}",
            opens_at=opens_at,
            closes_at=closes_at,
        ),
        organiser=organiser,
        actor=admin,
        config=config,
    )
    for code in codes:
        campaigns_service.register_candidate(session, campaign=campaign, code=code, actor=admin)
    campaigns_service.pin_latest_versions(session, campaign=campaign, actor=admin)
    campaigns_service.transition(
        session, campaign=campaign, to_state=CampaignState.open, actor=admin
    )
    return campaign


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
        admin = ensure_role_accounts(session, domain=DEMO_DOMAIN)
        # One stream for every citizen: 2025's responses, then 2026's.
        citizens = np.random.default_rng(seed)
        picked = _pick_candidates(session, config, rng)
        past = _open_edition(
            session,
            organiser=organiser,
            admin=admin,
            year=2025,
            opens_at=date(2025, 1, 15),
            closes_at=date(2025, 10, 31),
            config=CampaignConfig(seed=seed - 1),
            codes=[code for codes in picked.values() for code in codes],
        )
        build_past_visits(session, campaign=past, seed=seed, actor=admin, domain=DEMO_DOMAIN)
        add_responses(session, campaign=past, rng=citizens, per_candidate=PAST_RESPONSES)
        campaigns_service.transition(
            session, campaign=past, to_state=CampaignState.closed, actor=admin
        )

        current = _open_edition(
            session,
            organiser=organiser,
            admin=admin,
            year=2026,
            opens_at=date(2026, 1, 15),
            closes_at=date(2026, 12, 15),
            config=config,
            codes=_next_year_candidates(picked, session, config, rng),
        )
        build_current_visits(session, campaign=current, seed=seed, actor=admin, domain=DEMO_DOMAIN)
        add_responses(session, campaign=current, rng=citizens, per_candidate=CURRENT_RESPONSES)
        session.flush()
        run_scoring(session, campaign=past, actor=admin)  # 2025: closed → scored
    deliberate_and_publish(session, organiser=organiser, domain=DEMO_DOMAIN)
    authority_user = accounts_repository.get_by_email(session, f"authority@{DEMO_DOMAIN}")
    return demo_accounts(authority_user.authority_code if authority_user else None)
