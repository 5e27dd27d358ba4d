"""The demo's mystery shopping: scenarios, missions, shoppers' reports and their review.

Everything goes through the services a user's request goes through: scenarios and missions
through ``app.missions.service``; each report is the body a shopper's phone posts to
``POST /api/v1/visits`` (a :class:`~app.visits.schemas.VisitSubmission`) handed to
``app.visits.service.submit_visit``, so it is validated and hashed like any other; reviews go
through ``app.reviews.service``. Reports and reviews are dated in the past (the services'
optional ``submitted_at``/``at``).

- past editions (closed afterwards): every mission the planner made (each channel's tests and
  the replicate second tests) gets a report, which the reviewer approves in daily batches, so
  results can be scored. The quality each visit meets comes from :mod:`demo.quality`: channels
  differ as real barometers find, authorities differ, and so do one authority's visits.
- the open edition: a few visits per demo shopper in every review state, a thread on the visits
  with issues, a corrected visit (two revisions), and a handful of visits that trip each
  anomaly hint.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import Session

import surveys
from app.accounts import repository as accounts_repository
from app.accounts.models import Role, User
from app.campaigns import repository as campaigns_repository
from app.campaigns.models import Campaign
from app.campaigns.schemas import Channel
from app.core.db import row_id
from app.core.timeutil import utcnow
from app.instruments.service import load_published
from app.missions import repository as missions_repository
from app.missions import service as missions_service
from app.missions.models import Mission, ReviewState
from app.missions.schemas import ScenarioCreate
from app.reviews import repository as reviews_repository
from app.reviews import service as reviews_service
from app.visits import service as visits_service
from app.visits.schemas import VisitAccepted, VisitSubmission
from demo.accounts import DEMO_DOMAIN, ensure_demo_shoppers
from demo.answers import VISIT_DATE_ITEMS, grid_answers
from demo.quality import QualityModel

PARIS = ZoneInfo("Europe/Paris")

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


@dataclass(frozen=True)
class DemoVisitReport:
    missions: int
    visits: int
    by_state: dict[str, int]


# --- what a shopper reports -------------------------------------------------------------------


@dataclass
class _Draft:
    """A report being written: anomalies are planted in some before they are sent."""

    mission: Mission
    visit_id: uuid.UUID
    answers: dict[str, object]
    timings: dict[str, dict[str, object]]
    visited_at: datetime
    submitted_at: datetime

    def payload(self, submission_id: uuid.UUID | None = None) -> VisitSubmission:
        """The JSON body the shopper's phone posts to ``POST /api/v1/visits``."""
        body = {
            "id": str(submission_id or self.visit_id),
            "mission": row_id(self.mission),
            "visited_at": self.visited_at.isoformat(),
            "answers": self.answers,
            "timings": self.timings,
            "evidence": [],
        }
        return VisitSubmission.model_validate_json(json.dumps(body, ensure_ascii=False))


def send_report(
    session: Session, *, shopper: User, payload: VisitSubmission, submitted_at: datetime
) -> VisitAccepted:
    """Hand a report to the visit service exactly as ``POST /api/v1/visits`` does."""
    accepted, _created = visits_service.submit_visit(
        session,
        shopper=shopper,
        mission_id=payload.mission,
        submission_id=payload.id,
        answers=payload.answers,
        timings=payload.timings,
        visited_at=payload.visited_at,
        evidence=payload.evidence,
        submitted_at=submitted_at,
    )
    return accepted


def _stopwatch(start: datetime, seconds: float) -> dict[str, object]:
    """A stopwatch timing as the shopper's grid page records it."""
    stop = start + timedelta(seconds=seconds)
    return {"started_at": start.isoformat(), "stopped_at": stop.isoformat(), "seconds": seconds}


def _taps(start: datetime, count: int) -> dict[str, object]:
    """A ring counter as the grid page records it: one tap every five seconds."""
    return {"taps": [(start + timedelta(seconds=5 * ring)).isoformat() for ring in range(count)]}


def _at(day: date, hour: float) -> datetime:
    local = datetime.combine(day, time(0, 0), tzinfo=PARIS) + timedelta(hours=hour)
    return local.astimezone(UTC)


def _working_day_on_or_after(day: date) -> date:
    while not surveys.is_working_day(day):
        day += timedelta(days=1)
    return day


def _draft(
    mission: Mission,
    instrument: surveys.Instrument,
    *,
    rng: random.Random,
    quality: float,
    latest: date | None = None,
) -> _Draft:
    span = max(0, (mission.window_end - mission.window_start).days)
    day = _working_day_on_or_after(mission.window_start + timedelta(days=rng.randint(0, span)))
    if latest is not None and day > latest:
        day = latest
    answers = grid_answers(instrument, rng=rng, quality=quality, day=day)
    visited_at = _at(day, rng.uniform(9, 16.5))
    timings: dict[str, dict[str, object]] = {}
    for item in instrument.items:
        value = answers.get(item.key)
        if item.type == "duration" and isinstance(value, int | float):
            timings[item.key] = _stopwatch(visited_at, value)
        elif item.type == "count" and isinstance(value, int):
            timings[item.key] = _taps(visited_at, value)
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
        submitted_at = min(submitted_at, _at(latest + timedelta(days=1), 8))
    return _Draft(
        mission=mission,
        visit_id=uuid.UUID(int=rng.getrandbits(128), version=4),
        answers=answers,
        timings=timings,
        visited_at=visited_at,
        submitted_at=submitted_at,
    )


# --- the campaign's side: scenarios, missions, reviewers -------------------------------------


def _add_scenarios(session: Session, *, campaign: Campaign, actor: User | None) -> None:
    existing = {
        (scenario.channel, scenario.key)
        for scenario in missions_repository.scenarios(session, row_id(campaign))
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


def _prepare(
    session: Session, *, campaign: Campaign, actor: User | None, domain: str
) -> tuple[list[User], list[Mission]]:
    shoppers = ensure_demo_shoppers(session, domain=domain, created_by=actor)
    _add_scenarios(session, campaign=campaign, actor=actor)
    if missions_repository.count_missions(session, row_id(campaign)) == 0:
        missions_service.generate_missions(
            session, campaign=campaign, regenerate=False, actor=actor
        )
    missions = sorted(
        (row.mission for row in missions_repository.mission_rows(session, row_id(campaign))),
        key=lambda m: (m.authority_code, m.channel, m.sequence),
    )
    return shoppers, missions


def _has_visits(session: Session, campaign: Campaign) -> bool:
    return any(reviews_repository.count_by_state(session, row_id(campaign)).values())


def _grids(session: Session, campaign: Campaign) -> dict[str, surveys.Instrument]:
    return {
        version.channel: load_published(version)
        for _pin, version in campaigns_repository.pinned_instruments(session, row_id(campaign))
        if version.kind == "grid" and version.channel
    }


def _reviewer(session: Session, domain: str, fallback: User | None) -> User:
    reviewer = accounts_repository.get_by_email(session, f"reviewer@{domain}") or fallback
    assert reviewer is not None and reviewer.role in (Role.reviewer, Role.admin), (
        "the demo accounts come first"
    )
    return reviewer


class _Shoppers:
    """The missions' shoppers, read once each."""

    def __init__(self, session: Session, known: Iterable[User]) -> None:
        self._session = session
        self._by_id = {row_id(user): user for user in known}

    def of(self, mission: Mission) -> User:
        assert mission.shopper_id is not None
        user = self._by_id.get(mission.shopper_id)
        if user is None:
            user = accounts_repository.get(self._session, mission.shopper_id)
            assert user is not None
            self._by_id[mission.shopper_id] = user
        return user


def _send_all(
    session: Session, drafts: list[_Draft], shoppers: _Shoppers
) -> dict[uuid.UUID, VisitAccepted]:
    """Every first report, in the order they reached the server."""
    return {
        draft.visit_id: send_report(
            session,
            shopper=shoppers.of(draft.mission),
            payload=draft.payload(),
            submitted_at=draft.submitted_at,
        )
        for draft in sorted(drafts, key=lambda d: d.submitted_at)
    }


def _review_moments(drafts: list[_Draft], rng: random.Random) -> dict[uuid.UUID, datetime]:
    """When the reviewer read each report: two hours to three days after it came in."""
    now = utcnow()
    return {
        draft.visit_id: min(draft.submitted_at + timedelta(hours=rng.uniform(2, 72)), now)
        for draft in drafts
    }


def _approve_daily(
    session: Session, reviewed_at: Mapping[uuid.UUID, datetime], *, reviewer: User
) -> None:
    """The reviewer approves each day's reports in one go from the review queue."""
    by_day: dict[date, list[uuid.UUID]] = {}
    for visit_id, moment in reviewed_at.items():
        by_day.setdefault(moment.astimezone(PARIS).date(), []).append(visit_id)
    for day in sorted(by_day):
        visit_ids = by_day[day]
        at = max(reviewed_at[visit_id] for visit_id in visit_ids)
        for start in range(0, len(visit_ids), reviews_service.MAX_BULK):
            reviews_service.bulk_approve(
                session,
                visit_ids=visit_ids[start : start + reviews_service.MAX_BULK],
                actor=reviewer,
                at=at,
            )


def build_past_visits(
    session: Session,
    *,
    campaign: Campaign,
    seed: int,
    actor: User | None,
    domain: str = DEMO_DOMAIN,
) -> DemoVisitReport:
    """Every mission of an open campaign gets an approved visit (call before closing it)."""
    shoppers, missions = _prepare(session, campaign=campaign, actor=actor, domain=domain)
    if _has_visits(session, campaign):
        return DemoVisitReport(len(missions), 0, {})
    grids = _grids(session, campaign)
    rng = random.Random(f"{seed}:{campaign.year}")
    quality = QualityModel(seed)
    drafts = [
        _draft(
            mission,
            grids[mission.channel],
            rng=rng,
            quality=quality.visit_level(
                mission.authority_code, mission.channel, campaign.year, rng
            ),
        )
        for mission in missions
        if mission.channel in grids and mission.shopper_id is not None
    ]
    _send_all(session, drafts, _Shoppers(session, shoppers))
    reviewer = _reviewer(session, domain, actor)
    _approve_daily(session, _review_moments(drafts, rng), reviewer=reviewer)
    session.flush()
    return DemoVisitReport(len(missions), len(drafts), {ReviewState.approved: len(drafts)})


def build_current_visits(
    session: Session,
    *,
    campaign: Campaign,
    seed: int,
    actor: User | None,
    domain: str = DEMO_DOMAIN,
    today: date | None = None,
) -> DemoVisitReport:
    """A few visits per demo shopper in every review state, with anomalies and a correction."""
    shoppers, missions = _prepare(session, campaign=campaign, actor=actor, domain=domain)
    if _has_visits(session, campaign):
        return DemoVisitReport(len(missions), 0, {})
    yesterday = (today or utcnow().date()) - timedelta(days=1)
    grids = _grids(session, campaign)
    rng = random.Random(seed + 1)
    quality = QualityModel(seed)
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
    states: dict[uuid.UUID, ReviewState] = {}
    per_shopper: dict[int | None, int] = {}
    for mission in chosen:
        draft = _draft(
            mission,
            grids[mission.channel],
            rng=rng,
            quality=quality.visit_level(
                mission.authority_code, mission.channel, campaign.year, rng
            ),
            latest=yesterday,
        )
        index = per_shopper.get(mission.shopper_id, 0)
        per_shopper[mission.shopper_id] = index + 1
        states[draft.visit_id] = CURRENT_STATES[index % len(CURRENT_STATES)]
        drafts.append(draft)
    planted = _plant_anomalies(drafts, states, rng=rng)
    known = _Shoppers(session, shoppers)
    _send_all(session, drafts, known)
    reviewer = _reviewer(session, domain, actor)
    reviewed_at = _review_moments(drafts, rng)
    for draft in sorted(drafts, key=lambda d: reviewed_at[d.visit_id]):
        state = states[draft.visit_id]
        if state != ReviewState.received:
            reviews_service.transition(
                session,
                visit_id=draft.visit_id,
                to_state=state,
                actor=reviewer,
                comment=_REVIEW_COMMENTS.get(state, ""),
                at=reviewed_at[draft.visit_id],
            )
    _add_correction(session, drafts, states, reviewer=reviewer, shoppers=known, planted=planted)
    by_state: dict[str, int] = {}
    for state in states.values():
        by_state[state] = by_state.get(state, 0) + 1
    session.flush()
    return DemoVisitReport(len(missions), len(drafts), by_state)


# --- the open edition's anomalies and correction ----------------------------------------------


def _restart_timings(draft: _Draft) -> None:
    """The stopwatches and counters start again at the visit's (new) time."""
    for key, timing in list(draft.timings.items()):
        if "seconds" in timing:
            seconds = timing["seconds"]
            assert isinstance(seconds, int | float)
            draft.timings[key] = _stopwatch(draft.visited_at, seconds)
        elif "taps" in timing:
            taps = timing["taps"]
            assert isinstance(taps, list)
            draft.timings[key] = _taps(draft.visited_at, len(taps))


def _shift_back(draft: _Draft, by: timedelta) -> None:
    """Move a visit (its time, stopwatch and grid dates) earlier; its submission stays."""
    draft.visited_at -= by
    for key, value in list(draft.answers.items()):
        if (key in VISIT_DATE_ITEMS or key.endswith("_on")) and isinstance(value, str):
            draft.answers[key] = (date.fromisoformat(value) - by).isoformat()
    _restart_timings(draft)


def _plant_anomalies(
    drafts: list[_Draft], states: Mapping[uuid.UUID, ReviewState], *, rng: random.Random
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
    by_shopper: dict[int | None, list[_Draft]] = {}
    for draft in drafts:
        if draft.visit_id in planted:
            continue
        by_shopper.setdefault(draft.mission.shopper_id, []).append(draft)
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
    states: Mapping[uuid.UUID, ReviewState],
    *,
    reviewer: User,
    shoppers: _Shoppers,
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
    corrected = _Draft(
        mission=draft.mission,
        visit_id=draft.visit_id,
        answers=dict(draft.answers),
        timings=dict(draft.timings),
        visited_at=draft.visited_at,
        submitted_at=draft.submitted_at,
    )
    wait = draft.answers.get("wait")
    if isinstance(wait, int):
        corrected.answers["wait"] = max(60, wait - 240)
        corrected.answers["remarks"] = "Chronomètre corrigé : lancé avant d'entrer dans la file."
        corrected.timings["wait"] = _stopwatch(draft.visited_at, max(60, wait - 240))
        request = _CORRECTION_REQUEST
    else:
        corrected.answers["remarks"] = "Précisions ajoutées à la demande du relecteur."
        request = _REVIEW_COMMENTS[ReviewState.has_issues]
    asked_at = draft.submitted_at + timedelta(hours=20)
    reviews_service.transition(
        session,
        visit_id=draft.visit_id,
        to_state=ReviewState.has_issues,
        actor=reviewer,
        comment=request,
        at=asked_at,
    )
    # The shopper sends the corrected report under a new id; it goes back to review.
    send_report(
        session,
        shopper=shoppers.of(draft.mission),
        payload=corrected.payload(uuid.uuid5(draft.visit_id, "revision-2")),
        submitted_at=asked_at + timedelta(hours=26),
    )
