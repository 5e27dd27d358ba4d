"""Demo missions and visits: plausible, valid mystery-shopper reports from a seeded RNG.

Called by :func:`app.demo.build_demo` while each demo campaign is open:

- 2025 (closed afterwards): every mission of every candidate and channel gets an approved
  visit, so results can be scored. Each authority has its own quality level (the same both
  years), so authorities differ.
- 2026 (open): a few dozen visits in every review state for the demo shoppers, with a thread
  on the visits with issues, a corrected visit (two revisions), and a handful of visits that
  trip each anomaly hint.

Answers are drawn item by item from the pinned grid and passed through
:func:`surveys.validate_answers`: only clean, valid answers are stored. Rows are inserted in
bulk (thousands of visits) to keep the demo build fast.
"""

from __future__ import annotations

import functools
import hashlib
import json
import random
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import Session, col, select

import surveys
from app.accounts import repository as accounts_repository
from app.accounts.models import Role, User
from app.accounts.schemas import UserCreate
from app.accounts.service import create_user
from app.audit.models import record_audit
from app.campaigns import repository as campaigns_repository
from app.campaigns.models import Campaign
from app.core.security import hash_password
from app.core.timeutil import utcnow
from app.instruments.service import load_published
from app.missions import service as missions_service
from app.missions.models import (
    Mission,
    MissionState,
    ReviewEvent,
    ReviewState,
    Scenario,
    Visit,
    VisitRevision,
)

PARIS = ZoneInfo("Europe/Paris")
EXTRA_SHOPPERS = 3  # besides shopper@…: balanced loads need several shoppers
DATE_ITEMS_OF_VISIT = ("visit_date", "call_date", "audit_date", "sent_on")

DEMO_SCENARIOS: dict[str, tuple[str, str, str, str]] = {
    "guichet": (
        "carte-identite",
        "Renouveler une carte d'identité",
        "Demander au guichet comment renouveler une carte d'identité expirée depuis 6 mois, "
        "et s'il faut prendre rendez-vous.",
        "Pré-demande en ligne (ANTS) puis rendez-vous dans une mairie équipée d'un dispositif "
        "de recueil ; pièces : ancienne carte, photo de moins de 6 mois, justificatif de "
        "domicile.",
    ),
    "telephone": (
        "inscription-scolaire",
        "Inscrire un enfant à l'école",
        "Appeler pour savoir comment inscrire un enfant de 3 ans à l'école maternelle pour la "
        "rentrée.",
        "Inscription en mairie (ou en ligne) avec livret de famille, justificatif de domicile "
        "et carnet de vaccination, puis admission auprès du directeur d'école.",
    ),
    "courriel": (
        "encombrants",
        "Faire enlever des encombrants",
        "Écrire pour demander comment faire enlever un vieux canapé.",
        "Collecte sur rendez-vous ou dépôt en déchèterie, avec les horaires et les conditions.",
    ),
    "courrier": (
        "acte-naissance",
        "Obtenir un acte de naissance",
        "Envoyer une lettre demandant une copie intégrale d'acte de naissance.",
        "Copie intégrale envoyée par courrier, ou indication de la démarche en ligne "
        "(service-public.fr) ; gratuite.",
    ),
    "reseaux": (
        "horaires-piscine",
        "Horaires de la piscine",
        "Demander en message privé les horaires d'ouverture de la piscine pendant les vacances.",
        "Les horaires des vacances scolaires, ou un lien vers la page qui les donne.",
    ),
}


@dataclass(frozen=True)
class DemoVisitReport:
    missions: int
    visits: int
    by_state: dict[str, int]


def quality_of(code: str, seed: int) -> float:
    """An authority's service quality (0–1), the same in every edition of the demo."""
    draw = random.Random(f"{seed}:{code}")
    return 0.25 + 0.7 * draw.betavariate(3.0, 2.0)


def ensure_demo_shoppers(session: Session, *, domain: str) -> list[User]:
    """The demo shopper and three more, shopper-2@… to shopper-4@…, with the same password
    as the demo shopper (demo-shopper-2026): one argon2 hash, not four."""
    shoppers = []
    password_hash: str | None = None
    for number in range(1, EXTRA_SHOPPERS + 2):
        suffix = "" if number == 1 else f"-{number}"
        email = f"shopper{suffix}@{domain}"
        user = accounts_repository.get_by_email(session, email)
        if user is None:
            user = create_user(
                session,
                data=UserCreate(
                    email=email,
                    display_name=f"Démo shopper {number}",
                    role=Role.shopper,
                ),
                created_by=None,
            )
            user.password_hash = password_hash or hash_password("demo-shopper-2026")
            session.add(user)
        password_hash = password_hash or user.password_hash
        shoppers.append(user)
    session.flush()
    return shoppers


def _add_scenarios(session: Session, *, campaign: Campaign, actor: User | None) -> None:
    from app.campaigns.schemas import Channel
    from app.missions.schemas import ScenarioCreate

    existing = {
        (scenario.channel, scenario.key)
        for scenario in session.exec(
            select(Scenario).where(col(Scenario.campaign_id) == campaign.id)
        ).all()
    }
    for channel, (key, title, request_text, answer_sheet) in DEMO_SCENARIOS.items():
        if (channel, key) in existing:
            continue
        missions_service.add_scenario(
            session,
            campaign=campaign,
            data=ScenarioCreate(
                channel=Channel(channel),
                key=key,
                title=title,
                request_text=request_text,
                answer_sheet=answer_sheet,
            ),
            actor=actor,
        )


# --- answers ---------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def _is_working_day(day: date) -> bool:
    return surveys.is_working_day(day)


def _working_day_on_or_after(day: date) -> date:
    while not _is_working_day(day):
        day += timedelta(days=1)
    return day


def _add_working_days(start: date, days: int) -> date:
    """surveys.add_working_days with the holiday look-ups cached (thousands of calls)."""
    day = start
    while days > 0:
        day += timedelta(days=1)
        days -= int(_is_working_day(day))
    return day


def _yes(rng: random.Random, probability: float) -> str:
    return "yes" if rng.random() < probability else "no"


def _answer_item(
    item: surveys.Item, rng: random.Random, quality: float, answers: dict[str, Any], day: date
) -> Any:
    kind = item.type
    if item.not_applicable and rng.random() < 0.1:
        return "na"
    if kind in ("yes_no", "yes_no_dk"):
        if item.knockout is not None and item.knockout.fail_if:
            failing = str(item.knockout.fail_if[0])
            fails = rng.random() < 0.2 * (1 - quality)
            return failing if fails else ("no" if failing == "yes" else "yes")
        if item.key.endswith("_received"):
            return _yes(rng, 0.55 + 0.45 * quality)
        return _yes(rng, quality)
    if kind == "graded":
        draw = rng.random()
        return 1 if draw < quality else (0.5 if draw < quality + (1 - quality) * 0.6 else 0)
    if kind in ("scale1_4", "likert5", "scale0_10", "smileys3"):
        values = [c.value for c in item.options if not c.missing and c.value != "na"]
        position = min(len(values) - 1, max(0, round(rng.gauss(quality, 0.18) * len(values))))
        return values[position]
    if kind == "choice_one":
        scored = [c for c in item.options if c.score is not None]
        if scored:
            good = [c.value for c in scored if (c.score or 0) >= 100]
            bad = [c.value for c in scored if (c.score or 0) < 100]
            return rng.choice(good if rng.random() < quality or not bad else bad)
        return rng.choice([c.value for c in item.options])
    if kind == "choice_many":
        return [rng.choice([c.value for c in item.options])]
    if kind == "count":
        return max(1, round(rng.gauss(2 + 8 * (1 - quality), 1.5)))
    if kind == "duration":
        seconds = rng.expovariate(1 / (240 + 1500 * (1 - quality)))
        return int(min(7200, max(20, seconds)))
    if kind == "date":
        if item.key in DATE_ITEMS_OF_VISIT:
            return day.isoformat()
        # An acknowledgement or an answer: some working days after the sending.
        sent = date.fromisoformat(answers.get("sent_on", day.isoformat()))
        if item.key.startswith("ack"):
            delay = max(0, round(rng.gauss(1 + 9 * (1 - quality), 2)))
        else:
            delay = max(1, round(rng.gauss(2 + 22 * (1 - quality), 4)))
        return _add_working_days(sent, delay).isoformat()
    if kind == "text":
        negatives = [
            key
            for key, value in answers.items()
            if value == "no" or (value == 0 and not isinstance(value, bool))
        ]
        # Always a remark: the shopper's page requires one when an item fails.
        if negatives:
            return "Réponses négatives constatées (voir la grille) : " + ", ".join(negatives[:3])
        return "RAS"
    return None


def demo_answers(
    instrument: surveys.Instrument, *, rng: random.Random, quality: float, day: date
) -> dict[str, Any]:
    """Valid answers for a grid (drawn in form order, then cleaned by surveys' validation)."""
    raw: dict[str, Any] = {}
    for item in instrument.items:
        if not item.answerable or item.type in ("delay", "note"):
            continue
        value = _answer_item(item, rng, quality, raw, day)
        if value is not None:
            raw[item.key] = value
    checked = surveys.validate_answers(instrument, raw)
    if not checked.ok:
        raise ValueError(f"demo answers refused for {instrument.key}: {checked.errors}")
    return dict(checked.answers)


def _content_sha256(answers: Mapping[str, Any], timings: Mapping[str, Any]) -> str:
    payload = json.dumps(
        {"answers": answers, "timings": timings}, sort_keys=True, ensure_ascii=False
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _stopwatch(start: datetime, seconds: float) -> dict[str, Any]:
    """A stopwatch timing as the shopper's grid page records it."""
    stop = start + timedelta(seconds=seconds)
    return {"started_at": start.isoformat(), "stopped_at": stop.isoformat(), "seconds": seconds}


def _at(day: date, hour: float) -> datetime:
    local = datetime.combine(day, time(0, 0), tzinfo=PARIS) + timedelta(hours=hour)
    return local.astimezone(UTC)


@dataclass
class _Draft:
    mission: Mission
    visit_id: uuid.UUID
    answers: dict[str, Any]
    timings: dict[str, Any]
    visited_at: datetime
    submitted_at: datetime
    version_id: int


def _draft(
    mission: Mission,
    instrument: surveys.Instrument,
    version_id: int,
    *,
    rng: random.Random,
    quality: float,
    latest: date | None = None,
) -> _Draft:
    span = max(0, (mission.window_end - mission.window_start).days)
    day = _working_day_on_or_after(mission.window_start + timedelta(days=rng.randint(0, span)))
    if latest is not None and day > latest:
        day = latest
    answers = demo_answers(instrument, rng=rng, quality=quality, day=day)
    visited_at = _at(day, rng.uniform(9, 16.5))
    timings: dict[str, Any] = {}
    # As the shopper's grid page records them: stopwatch start/stop, one tap per ring.
    for item in instrument.items:
        if item.type == "duration" and isinstance(answers.get(item.key), int | float):
            timings[item.key] = _stopwatch(visited_at, answers[item.key])
        elif item.type == "count" and isinstance(answers.get(item.key), int):
            timings[item.key] = {
                "taps": [
                    (visited_at + timedelta(seconds=5 * ring)).isoformat()
                    for ring in range(answers[item.key])
                ]
            }
    observed = [
        date.fromisoformat(value)
        for item in instrument.items
        if item.type == "date" and isinstance(value := answers.get(item.key), str)
    ]
    last = max([day, *observed])
    if last == day:
        submitted_at = visited_at + timedelta(minutes=rng.uniform(20, 30 * 60))
    else:
        submitted_at = _at(last + timedelta(days=rng.randint(0, 3)), rng.uniform(17, 21))
    if latest is not None:
        # Nothing is submitted in the future: the open edition stops at yesterday.
        ceiling = _at(latest + timedelta(days=1), 8)
        submitted_at = min(submitted_at, ceiling)
    return _Draft(
        mission=mission,
        visit_id=uuid.UUID(int=rng.getrandbits(128), version=4),
        answers=answers,
        timings=timings,
        visited_at=visited_at,
        submitted_at=submitted_at,
        version_id=version_id,
    )


def _grids(session: Session, campaign: Campaign) -> dict[str, tuple[surveys.Instrument, int]]:
    grids: dict[str, tuple[surveys.Instrument, int]] = {}
    for _pin, version in campaigns_repository.pinned_instruments(session, campaign.id or 0):
        if version.kind == "grid" and version.channel:
            grids[version.channel] = (load_published(version), version.id or 0)
    return grids


def _insert(
    session: Session,
    drafts: list[_Draft],
    states: Mapping[uuid.UUID, str],
    *,
    reviewer: User,
    rng: random.Random,
) -> None:
    """Bulk insert the visits, their first revision and the review decision of each."""
    if not drafts:
        return
    visits = []
    revisions = []
    events = []
    now = utcnow()
    for draft in drafts:
        state = states.get(draft.visit_id, ReviewState.received)
        sha = _content_sha256(draft.answers, draft.timings)
        reviewed_at = min(draft.submitted_at + timedelta(hours=rng.uniform(2, 72)), now)
        visits.append(
            {
                "id": draft.visit_id,
                "mission_id": draft.mission.id,
                "instrument_version_id": draft.version_id,
                "answers": draft.answers,
                "timings": draft.timings,
                "content_sha256": sha,
                "submitted_at": draft.submitted_at,
                "review_state": state,
                "revision": 1,
                "shopper_id": draft.mission.shopper_id,
                "visited_at": draft.visited_at,
                "updated_at": reviewed_at if state != ReviewState.received else draft.submitted_at,
            }
        )
        revisions.append(
            {
                "id": draft.visit_id,
                "visit_id": draft.visit_id,
                "revision": 1,
                "answers": draft.answers,
                "timings": draft.timings,
                "content_sha256": sha,
                "visited_at": draft.visited_at,
                "submitted_at": draft.submitted_at,
            }
        )
        if state != ReviewState.received:
            events.append(
                {
                    "visit_id": draft.visit_id,
                    "revision": 1,
                    "author_id": reviewer.id,
                    "from_state": ReviewState.received.value,
                    "to_state": state,
                    "comment": _REVIEW_COMMENTS.get(ReviewState(state), ""),
                    "created_at": reviewed_at,
                }
            )
    session.execute(sa.insert(Visit), visits)
    session.execute(sa.insert(VisitRevision), revisions)
    if events:
        session.execute(sa.insert(ReviewEvent), events)
    mission_states = {
        ReviewState.received: MissionState.submitted,
        ReviewState.has_issues: MissionState.submitted,
        ReviewState.approved: MissionState.approved,
        ReviewState.rejected: MissionState.assigned,
    }
    by_state: dict[MissionState, list[int]] = {}
    for draft in drafts:
        target = mission_states[ReviewState(states.get(draft.visit_id, ReviewState.received))]
        by_state.setdefault(target, []).append(draft.mission.id or 0)
    for target, mission_ids in by_state.items():
        for start in range(0, len(mission_ids), 900):
            session.execute(
                sa.update(Mission)
                .where(col(Mission.id).in_(mission_ids[start : start + 900]))
                .values(state=target)
            )


_REVIEW_COMMENTS = {
    ReviewState.has_issues: (
        "Certaines réponses négatives ne sont pas expliquées dans les observations : "
        "pouvez-vous préciser ce que vous avez constaté ?"
    ),
    ReviewState.rejected: (
        "Le rapport ne suit pas le scénario de la mission : il ne peut pas compter. "
        "La mission vous est rendue pour un nouveau test."
    ),
}
_CORRECTION_REQUEST = (
    "Le temps d'attente semble très long par rapport au reste de la visite : pouvez-vous "
    "vérifier le chronomètre et joindre une photo du ticket d'attente ?"
)


def _prepare(
    session: Session, *, campaign: Campaign, actor: User | None, domain: str
) -> tuple[list[User], list[Mission]]:
    shoppers = ensure_demo_shoppers(session, domain=domain)
    _add_scenarios(session, campaign=campaign, actor=actor)
    if missions_service.repository.count_missions(session, campaign.id or 0) == 0:
        missions_service.generate_missions(
            session, campaign=campaign, regenerate=False, actor=actor
        )
    missions = list(
        session.exec(
            select(Mission)
            .where(col(Mission.campaign_id) == campaign.id)
            .order_by(col(Mission.authority_code), col(Mission.channel), col(Mission.sequence))
        ).all()
    )
    return shoppers, missions


def _reviewer(session: Session, domain: str) -> User:
    reviewer = accounts_repository.get_by_email(session, f"reviewer@{domain}")
    if reviewer is None:
        reviewer = session.exec(select(User).where(col(User.role) == Role.admin)).first()
    assert reviewer is not None, "the demo accounts come first"
    return reviewer


def build_past_visits(
    session: Session, *, campaign: Campaign, seed: int, actor: User | None, domain: str
) -> DemoVisitReport:
    """Every mission of an open campaign gets an approved visit (call before closing it)."""
    _shoppers, missions = _prepare(session, campaign=campaign, actor=actor, domain=domain)
    if session.exec(
        select(Visit.id).join(Mission).where(col(Mission.campaign_id) == campaign.id)
    ).first():
        return DemoVisitReport(len(missions), 0, {})
    grids = _grids(session, campaign)
    rng = random.Random(seed)
    drafts = []
    for mission in missions:
        if mission.channel not in grids or mission.shopper_id is None:
            continue
        instrument, version_id = grids[mission.channel]
        drafts.append(
            _draft(
                mission,
                instrument,
                version_id,
                rng=rng,
                quality=quality_of(mission.authority_code, seed),
            )
        )
    states = {draft.visit_id: ReviewState.approved.value for draft in drafts}
    _insert(session, drafts, states, reviewer=_reviewer(session, domain), rng=rng)
    record_audit(
        session,
        actor=actor,
        action="visits.demo",
        object_type="campaign",
        object_id=campaign.id,
        after={"visits": len(drafts), "approved": len(drafts)},
    )
    session.flush()
    return DemoVisitReport(len(missions), len(drafts), {"approved": len(drafts)})


# The open edition's mix of review states (per shopper, in this order).
CURRENT_STATES = (
    ReviewState.received,
    ReviewState.has_issues,
    ReviewState.approved,
    ReviewState.rejected,
    ReviewState.received,
    ReviewState.approved,
    ReviewState.received,
    ReviewState.approved,
    ReviewState.received,
    ReviewState.received,
)


def build_current_visits(
    session: Session,
    *,
    campaign: Campaign,
    seed: int,
    actor: User | None,
    domain: str,
    today: date | None = None,
) -> DemoVisitReport:
    """A few visits per demo shopper in every review state, with anomalies and a correction."""
    shoppers, missions = _prepare(session, campaign=campaign, actor=actor, domain=domain)
    if session.exec(
        select(Visit.id).join(Mission).where(col(Mission.campaign_id) == campaign.id)
    ).first():
        return DemoVisitReport(len(missions), 0, {})
    yesterday = (today or utcnow().date()) - timedelta(days=1)
    grids = _grids(session, campaign)
    rng = random.Random(seed + 1)
    # Missions done already: their window started a while ago, so replies had time to come.
    done_by = yesterday - timedelta(days=45)
    chosen: list[Mission] = []
    for shopper in shoppers:
        theirs = [
            m
            for m in missions
            if m.shopper_id == shopper.id and m.window_start <= done_by and m.channel in grids
        ]
        rng.shuffle(theirs)  # authorities all over the country, not the first codes
        # One of each channel first, then more counter visits and calls.
        by_channel: dict[str, list[Mission]] = {}
        for mission in theirs:
            by_channel.setdefault(mission.channel, []).append(mission)
        picked: list[Mission] = []
        for channel in ("guichet", "telephone", "courriel", "site", "courrier", "reseaux"):
            if by_channel.get(channel):
                picked.append(by_channel[channel].pop(0))
        for channel in ("guichet", "telephone", "guichet", "telephone"):
            if by_channel.get(channel):
                picked.append(by_channel[channel].pop(0))
        chosen.extend(picked[: len(CURRENT_STATES)])
    drafts = []
    states: dict[uuid.UUID, str] = {}
    per_shopper: dict[int, int] = {}
    for mission in chosen:
        instrument, version_id = grids[mission.channel]
        draft = _draft(
            mission,
            instrument,
            version_id,
            rng=rng,
            quality=quality_of(mission.authority_code, seed),
            latest=yesterday,
        )
        index = per_shopper.get(mission.shopper_id or 0, 0)
        per_shopper[mission.shopper_id or 0] = index + 1
        states[draft.visit_id] = CURRENT_STATES[index % len(CURRENT_STATES)].value
        drafts.append(draft)
    planted = _plant_anomalies(drafts, states, rng=rng)
    reviewer = _reviewer(session, domain)
    _insert(session, drafts, states, reviewer=reviewer, rng=rng)
    _add_correction(session, drafts, states, reviewer=reviewer, planted=planted)
    by_state: dict[str, int] = {}
    for state in states.values():
        by_state[state] = by_state.get(state, 0) + 1
    record_audit(
        session,
        actor=actor,
        action="visits.demo",
        object_type="campaign",
        object_id=campaign.id,
        after={"visits": len(drafts), **by_state},
    )
    session.flush()
    return DemoVisitReport(len(missions), len(drafts), by_state)


def _shift_back(draft: _Draft, by: timedelta) -> None:
    """Move a visit (its time, stopwatch and grid dates) earlier; its submission stays."""
    draft.visited_at -= by
    for key, value in list(draft.answers.items()):
        if (key in DATE_ITEMS_OF_VISIT or key.endswith("_on")) and isinstance(value, str):
            draft.answers[key] = (date.fromisoformat(value) - by).isoformat()
    _restart_timings(draft)


def _restart_timings(draft: _Draft) -> None:
    """The stopwatches and counters start again at the visit's (new) time."""
    for key, timing in list(draft.timings.items()):
        if "seconds" in timing:
            draft.timings[key] = _stopwatch(draft.visited_at, timing["seconds"])
        elif "taps" in timing:
            draft.timings[key] = {
                "taps": [
                    (draft.visited_at + timedelta(seconds=5 * ring)).isoformat()
                    for ring in range(len(timing["taps"]))
                ]
            }


def _plant_anomalies(
    drafts: list[_Draft], states: Mapping[uuid.UUID, str], *, rng: random.Random
) -> set[uuid.UUID]:
    """Make a few received visits trip each hint, so the badges have something to show.

    Returns the ids of the visits changed (each hint on visits of its own)."""
    received = [d for d in drafts if states[d.visit_id] == ReviewState.received]
    planted: set[uuid.UUID] = set()
    counters = [d for d in received if "wait" in d.answers]
    if counters:
        # A wait of over three hours, far beyond the rest of the visit.
        slow = counters[0]
        planted.add(slow.visit_id)
        slow.answers["wait"] = 12600
        slow.timings["wait"] = _stopwatch(slow.visited_at, 12600)
    if len(counters) > 1:
        # The stopwatch says 15 minutes, the answer says 5.
        mismatch = counters[1]
        planted.add(mismatch.visit_id)
        mismatch.answers["wait"] = 300
        mismatch.timings["wait"] = _stopwatch(mismatch.visited_at, 900)
    others = [d for d in received if d not in counters[:2]]
    # The most room before the visit first: shifting it back keeps everything in the past.
    others.sort(key=lambda d: d.mission.window_start - d.visited_at.date())
    if others:
        # Visited three weeks before it was reported.
        late = others[0]
        planted.add(late.visit_id)
        _shift_back(late, timedelta(days=21))
    if len(others) > 1:
        # Visited a few days before the mission's window opened.
        outside = others[1]
        planted.add(outside.visit_id)
        before_window = outside.mission.window_start - timedelta(days=3)
        _shift_back(outside, timedelta(days=(outside.visited_at.date() - before_window).days))
    # Three visits by the same shopper a few minutes apart (whatever their review state).
    by_shopper: dict[int, list[_Draft]] = {}
    for draft in drafts:
        if draft.visit_id in planted:
            continue
        by_shopper.setdefault(draft.mission.shopper_id or 0, []).append(draft)
    group = next((group for group in by_shopper.values() if len(group) >= 3), None)
    if group:
        base = group[0].visited_at
        for offset, draft in enumerate(group[:3]):
            planted.add(draft.visit_id)
            draft.visited_at = base + timedelta(minutes=3 * offset)
            draft.submitted_at = draft.visited_at + timedelta(minutes=rng.uniform(5, 20))
            _restart_timings(draft)
            for key in ("visit_date", "call_date", "audit_date"):
                if key in draft.answers:
                    draft.answers[key] = draft.visited_at.astimezone(PARIS).date().isoformat()
    return planted


def _add_correction(
    session: Session,
    drafts: list[_Draft],
    states: dict[uuid.UUID, str],
    *,
    reviewer: User,
    planted: set[uuid.UUID],
) -> None:
    """One received visit went through has_issues and a correction: two revisions, a thread."""
    candidates = [
        d
        for d in drafts
        if states[d.visit_id] == ReviewState.received and d.visit_id not in planted
    ]
    if not candidates:
        return
    # A counter visit if there is one (its stopwatch is what gets corrected), reported long
    # enough ago for the request and the correction to be in the past.
    candidates.sort(key=lambda d: d.submitted_at)
    draft = next((d for d in candidates if "wait" in d.answers), candidates[0])
    visit = session.get(Visit, draft.visit_id)
    assert visit is not None
    corrected = dict(draft.answers)
    timings = dict(draft.timings)
    if "wait" in corrected:
        corrected["wait"] = max(60, int(draft.answers["wait"]) - 240)
        corrected["remarks"] = "Chronomètre corrigé : lancé avant d'entrer dans la file."
        timings["wait"] = _stopwatch(draft.visited_at, corrected["wait"])
        request, reply = (
            _CORRECTION_REQUEST,
            "J'ai corrigé le temps d'attente ; le ticket n'a pas été conservé.",
        )
    else:
        corrected["remarks"] = "Précisions ajoutées à la demande du relecteur."
        request = _REVIEW_COMMENTS[ReviewState.has_issues]
        reply = "J'ai ajouté mes observations dans la grille."
    asked_at = draft.submitted_at + timedelta(hours=20)
    corrected_at = asked_at + timedelta(hours=26)
    second = uuid.uuid5(draft.visit_id, "revision-2")
    sha = _content_sha256(corrected, timings)
    session.add(
        VisitRevision(
            id=second,
            visit_id=visit.id,
            revision=2,
            answers=corrected,
            timings=timings,
            content_sha256=sha,
            visited_at=draft.visited_at,
            submitted_at=corrected_at,
        )
    )
    visit.answers = corrected
    visit.timings = timings
    visit.content_sha256 = sha
    visit.revision = 2
    visit.updated_at = corrected_at
    session.add(visit)
    session.add_all(
        [
            ReviewEvent(
                visit_id=visit.id,
                revision=1,
                author_id=reviewer.id or 0,
                from_state=ReviewState.received,
                to_state=ReviewState.has_issues,
                comment=request,
                created_at=asked_at,
            ),
            ReviewEvent(
                visit_id=visit.id,
                revision=2,
                author_id=visit.shopper_id or reviewer.id or 0,
                from_state=ReviewState.has_issues,
                to_state=ReviewState.received,
                comment=reply,
                created_at=corrected_at,
            ),
        ]
    )
