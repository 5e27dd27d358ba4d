"""The demo barometer: three editions on the real registry, built as an organiser would.

:func:`build_demo` imports the bundled registry, publishes the default instruments, then builds
one edition at each stage of the yearly cycle, so every page has something to try:

- 2024: about 200 candidates registered, instruments pinned, opened; every mission the planner
  made reported and approved (:mod:`demo.visits`), citizen responses (:mod:`demo.responses`);
  closed, scored by ``app.results.service.run_scoring``, deliberated and published
  (:func:`demo.jury.deliberate_and_publish`);
- 2025: most 2024 candidates back (:data:`RETURNING_SHARE`) and a few newcomers, built the same
  way, closed and scored, then left to its jury (:func:`demo.jury.open_deliberation`): nothing
  signed, every category open to votes; its scorecards show the change since 2024;
- 2026: most 2025 candidates back, opened, with visits in every review state and a first share
  of responses.

Service quality comes from :mod:`demo.quality`: channels differ as real barometers report,
authorities differ, and so do one authority's visits. Missions come from the campaign's own
configuration through the mission planner (tests per channel, replicate second tests).

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
from demo.jury import DELIBERATING_YEAR, PUBLISHED_YEAR, deliberate_and_publish, open_deliberation
from demo.quality import QualityModel
from demo.responses import add_responses, registered_codes
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
CURRENT_YEAR = 2026  # the edition under way
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
) -> dict[str, list[str]]:
    """Next year's candidates per category: most come back, newcomers take the other places."""
    pool = _pick_candidates(session, config, random.Random(rng.random()))
    following: dict[str, list[str]] = {}
    for key, previous in picked.items():
        keep = rng.sample(previous, round(len(previous) * RETURNING_SHARE))
        if DEMO_AUTHORITY in previous and DEMO_AUTHORITY not in keep:
            keep = [*keep[1:], DEMO_AUTHORITY]
        newcomers = [code for code in pool.get(key, []) if code not in previous]
        following[key] = sorted(keep + newcomers[: len(previous) - len(keep)])
    return following


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


def _build_past_edition(
    session: Session,
    *,
    organiser: str,
    admin: User,
    year: int,
    seed: int,
    codes: dict[str, list[str]],
    citizens: np.random.Generator,
) -> Campaign:
    """A whole edition, opened, visited, answered and closed (scored later)."""
    campaign = _open_edition(
        session,
        organiser=organiser,
        admin=admin,
        year=year,
        opens_at=date(year, 1, 15),
        closes_at=date(year, 10, 31),
        # Each edition draws its own plan (which candidates get the replicate tests).
        config=CampaignConfig(seed=seed - (CURRENT_YEAR - year)),
        codes=[code for category in codes.values() for code in category],
    )
    build_past_visits(session, campaign=campaign, seed=seed, actor=admin, domain=DEMO_DOMAIN)
    _add_citizen_responses(session, campaign, seed=seed, rng=citizens, per_candidate=PAST_RESPONSES)
    campaigns_service.transition(
        session, campaign=campaign, to_state=CampaignState.closed, actor=admin
    )
    return campaign


def _add_citizen_responses(
    session: Session,
    campaign: Campaign,
    *,
    seed: int,
    rng: np.random.Generator,
    per_candidate: tuple[int, int],
) -> None:
    # The residents' satisfaction follows the same authority levels as the visits.
    codes = registered_codes(session, campaign)
    levels = QualityModel(seed).citizen_levels(codes, campaign.year)
    add_responses(
        session,
        campaign=campaign,
        rng=rng,
        per_candidate=per_candidate,
        quality=levels,
        codes=codes,
    )


def _demo_exists(session: Session, organiser: str) -> bool:
    return any(
        campaigns_repository.get_by_year(session, organiser=organiser, year=year) is not None
        for year in (PUBLISHED_YEAR, DELIBERATING_YEAR, CURRENT_YEAR)
    )


def build_demo(session: Session, *, organiser: str, seed: int = 2026) -> list[DemoAccount]:
    """Build the demo if it is not there yet; return the demo accounts either way."""
    if authorities_repository.count(session) == 0:
        import_registry_file(session, path=BUNDLED_REGISTRY)
    for instrument in surveys.default_instruments().values():
        publish(session, instrument=instrument, actor=None)  # same content: same version
    rng = random.Random(seed)
    config = CampaignConfig(seed=seed)

    if not _demo_exists(session, organiser):
        admin = ensure_role_accounts(session, domain=DEMO_DOMAIN)
        # One stream for every citizen: 2024's responses, then 2025's and 2026's.
        citizens = np.random.default_rng(seed)
        first = _pick_candidates(session, config, rng)
        second = _next_year_candidates(first, session, config, rng)
        third = _next_year_candidates(second, session, config, rng)
        published = _build_past_edition(
            session,
            organiser=organiser,
            admin=admin,
            year=PUBLISHED_YEAR,
            seed=seed,
            codes=first,
            citizens=citizens,
        )
        deliberating = _build_past_edition(
            session,
            organiser=organiser,
            admin=admin,
            year=DELIBERATING_YEAR,
            seed=seed,
            codes=second,
            citizens=citizens,
        )

        current = _open_edition(
            session,
            organiser=organiser,
            admin=admin,
            year=CURRENT_YEAR,
            opens_at=date(CURRENT_YEAR, 1, 15),
            closes_at=date(CURRENT_YEAR, 12, 15),
            config=config,
            codes=[code for category in third.values() for code in category],
        )
        build_current_visits(session, campaign=current, seed=seed, actor=admin, domain=DEMO_DOMAIN)
        _add_citizen_responses(
            session, current, seed=seed, rng=citizens, per_candidate=CURRENT_RESPONSES
        )
        session.flush()
        # Scored in order, so 2025's run can lean on 2024's (the previous edition's pool).
        run_scoring(session, campaign=published, actor=admin)  # closed → scored
        deliberate_and_publish(session, organiser=organiser, domain=DEMO_DOMAIN)
        run_scoring(session, campaign=deliberating, actor=admin)
    # Also resumes a demo whose scoring ended before its jury (each step checks the state).
    deliberate_and_publish(session, organiser=organiser, domain=DEMO_DOMAIN)
    open_deliberation(session, organiser=organiser, domain=DEMO_DOMAIN)
    authority_user = accounts_repository.get_by_email(session, f"authority@{DEMO_DOMAIN}")
    return demo_accounts(authority_user.authority_code if authority_user else None)
