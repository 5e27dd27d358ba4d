"""The three notices, through a real SMTP server: a report to correct, a published scorecard,
a jury that can deliberate. Each reaches the right people only, in each one's language, with
links that open for them, names rather than codes, and never twice."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from app.accounts.models import Role, User
from app.audit.models import AuditEvent
from app.campaigns.models import Campaign
from app.core.config import Settings
from app.jobs.models import Job, JobState
from app.jury.notifications import campaign_scored
from app.missions.models import ReviewState, Visit
from app.publication.notifications import campaign_published
from app.reviews import service as reviews_service
from tests.app.test_jury import BIG, SMALL, scored
from tests.app.test_reviews import make_visit
from tests.app.test_scorecards import publish
from tests.conftest import OPEN_YEAR, login, make_user, run_jobs
from tests.support.smtp import Received, SmtpSink

BIG_FR, BIG_EN = "Communes de plus de 100 000 habitants", "Municipalities over 100,000"
SMALL_FR, SMALL_EN = "Communes de moins de 3 500 habitants", "Municipalities under 3,500"
URL = re.compile(r"https?://\S+")


def _person(session: Session, role: Role, language: str, **kwargs: str) -> User:
    user = make_user(session, role, **kwargs)
    user.language = language
    session.add(user)
    session.commit()
    return user


def _inactive(session: Session, role: Role, **kwargs: str) -> User:
    user = make_user(session, role, **kwargs)
    user.is_active = False
    session.add(user)
    session.commit()
    return user


def _only(smtp: SmtpSink, user: User) -> Received:
    received = smtp.to(user.email)
    assert len(received) == 1, [m.message["Subject"] for m in received]
    return received[0]


def _links(received: Received) -> list[str]:
    return URL.findall(received.text)


def _opens_for(client: TestClient, user: User, url: str) -> None:
    """The link, followed by ``user`` signed in, shows its page."""
    client.cookies.clear()
    login(client, user)
    parts = urlsplit(url)
    assert parts.scheme and parts.netloc, url  # absolute
    response = client.get(parts.path)
    assert response.status_code == 200, (url, response.status_code)


def _run_again(engine: Engine, settings: Settings, kind: str) -> None:
    """A worker runs the notice's jobs once more (as after a crash before their end was
    stored)."""
    with Session(engine) as work:
        for job in work.exec(select(Job).where(Job.kind == kind)).all():
            job.state = JobState.queued
            work.add(job)
        work.commit()
    run_jobs(engine, settings)


def _jobs(session: Session, kind: str) -> list[Job]:
    session.expire_all()
    return list(session.exec(select(Job).where(Job.kind == kind)).all())


# --- "your report needs correction" ------------------------------------------------------------


def test_a_report_sent_back_tells_its_shopper_once_in_their_language(
    client: TestClient,
    registry: Session,
    engine: Engine,
    open_campaign: Campaign,
    smtp: SmtpSink,
    mail_settings: Settings,
) -> None:
    french = _person(registry, Role.shopper, "fr")
    english = _person(registry, Role.shopper, "en")
    gone = _inactive(registry, Role.shopper)
    bystander = _person(registry, Role.shopper, "fr")
    reviewer = make_user(registry, Role.reviewer)
    lyon = make_visit(registry, open_campaign, french, code="69123")
    small = make_visit(registry, open_campaign, english, code="01001")
    silent = make_visit(registry, open_campaign, gone, code="75056")
    make_visit(registry, open_campaign, bystander, code="75056")
    comment = "Le délai annoncé manque.\n\nAjoutez la capture de l'écran « Mes démarches »."

    token = login(client, reviewer)
    for visit in (lyon, small, silent):
        sent_back = client.post(
            f"/review/visits/{visit.id}/transition",
            data={
                "csrf_token": token,
                "to_state": "has_issues",
                "comment": comment,
                "expected_state": "received",
                "expected_revision": "1",
            },
        )
        assert sent_back.status_code == 303, sent_back.text
    # The inactive shopper's visit enqueues nothing.
    assert len(_jobs(registry, "notify.visit_correction")) == 2
    assert smtp.messages == []  # nothing leaves before a worker runs the jobs

    run_jobs(engine, mail_settings)
    assert sorted(m.envelope_to[0] for m in smtp.messages) == sorted([french.email, english.email])

    fr = _only(smtp, french)
    assert fr.message["Content-Language"] == "fr"
    assert "Lyon" in fr.message["Subject"] and "Lyon" in fr.text and "Lyon" in fr.html
    assert "69123" not in fr.text and "69123" not in fr.message["Subject"]
    assert "téléphone" in fr.text  # the channel's label, in French
    assert "31 mars 2030" in fr.text  # the mission's due date, written out
    # The comment in full, every line of it.
    assert "> Le délai annoncé manque." in fr.text
    assert "> Ajoutez la capture de l'écran « Mes démarches »." in fr.text
    assert "Ajoutez la capture de l&#39;écran « Mes démarches »." in fr.html

    en = _only(smtp, english)
    assert en.message["Content-Language"] == "en"
    assert "L'Abergement-Clémenciat" in en.text and "01001" not in en.text
    assert "March 31, 2030" in en.text and "telephone" in en.text

    for user, received, visit in ((french, fr, lyon), (english, en, small)):
        (link,) = _links(received)
        assert link in received.html
        mission_id = registry.get(Visit, visit.id).mission_id  # type: ignore[union-attr]
        assert urlsplit(link).path == f"/me/missions/{mission_id}/report"
        _opens_for(client, user, link)

    # Again: the worker has nothing left, a re-run of the job finds its e-mail queued, and
    # sending the report back again is refused (it is already to be corrected).
    assert run_jobs(engine, mail_settings) == 0
    _run_again(engine, mail_settings, "notify.visit_correction")
    client.cookies.clear()
    token = login(client, reviewer)
    again = client.post(
        f"/review/visits/{lyon.id}/transition",
        data={"csrf_token": token, "to_state": "has_issues", "comment": comment},
    )
    assert again.status_code == 409
    run_jobs(engine, mail_settings)
    assert len(smtp.messages) == 2


def test_no_notice_once_the_report_was_corrected_or_for_other_decisions(
    registry: Session,
    engine: Engine,
    open_campaign: Campaign,
    smtp: SmtpSink,
    mail_settings: Settings,
) -> None:
    shopper = _person(registry, Role.shopper, "fr")
    reviewer = make_user(registry, Role.reviewer)
    approved = make_visit(registry, open_campaign, shopper, code="69123")
    rejected = make_visit(registry, open_campaign, shopper, code="01001")
    corrected = make_visit(registry, open_campaign, shopper, code="75056")
    reviews_service.bulk_approve(registry, visit_ids=[approved.id], actor=reviewer)
    reviews_service.transition(
        registry, visit_id=rejected.id, to_state="rejected", actor=reviewer, comment="Hors sujet."
    )
    reviews_service.transition(
        registry, visit_id=corrected.id, to_state="has_issues", actor=reviewer, comment="Photo ?"
    )
    registry.commit()
    # The shopper corrects before any worker ran: the notice is moot, and none is sent.
    visit = registry.get(Visit, corrected.id)
    assert visit is not None
    visit.revision += 1
    registry.add(visit)
    reviews_service.reopen_after_correction(registry, visit=visit, actor=shopper)
    registry.commit()
    assert visit.review_state == ReviewState.received
    run_jobs(engine, mail_settings)
    assert smtp.messages == []
    assert [job.state for job in _jobs(registry, "notify.visit_correction")] == [JobState.done]


# --- "your scorecard is published" -------------------------------------------------------------


def test_publication_tells_each_candidates_contacts_once(
    client: TestClient,
    registry: Session,
    engine: Engine,
    open_campaign: Campaign,
    smtp: SmtpSink,
    mail_settings: Settings,
) -> None:
    lyon = _person(registry, Role.authority, "fr", authority_code="69123")
    small = _person(registry, Role.authority, "en", authority_code="01001")
    _inactive(registry, Role.authority, authority_code="75056")
    _person(registry, Role.authority, "fr", authority_code="01004")  # not a candidate
    _person(registry, Role.shopper, "fr")
    scored(registry, open_campaign)
    publish(registry, open_campaign)  # adds an admin and a juror: neither hears of this
    assert len(_jobs(registry, "notify.scorecards_published")) == 1

    run_jobs(engine, mail_settings)
    assert sorted(m.envelope_to[0] for m in smtp.messages) == sorted([lyon.email, small.email])

    fr = _only(smtp, lyon)
    assert fr.message["Content-Language"] == "fr"
    assert "Lyon" in fr.message["Subject"] and str(OPEN_YEAR) in fr.message["Subject"]
    assert "Lyon" in fr.text and "69123" not in fr.text.replace("/scorecards/69123", "")
    assert BIG_FR in fr.text and BIG not in fr.text and "Ouverte" in fr.text
    en = _only(smtp, small)
    assert en.message["Content-Language"] == "en"
    assert "L'Abergement-Clémenciat" in en.text and SMALL_EN in en.text and SMALL not in en.text

    for user, received, code in ((lyon, fr, "69123"), (small, en, "01001")):
        scorecard, results = _links(received)
        assert urlsplit(scorecard).path == f"/campaigns/{open_campaign.id}/scorecards/{code}"
        assert urlsplit(results).path == f"/results/{OPEN_YEAR}"
        assert scorecard in received.html and results in received.html
        _opens_for(client, user, scorecard)
        client.cookies.clear()
        assert client.get(urlsplit(results).path).status_code == 200  # public

    registry.expire_all()
    audits = registry.exec(
        select(AuditEvent)
        .where(AuditEvent.action == "publication.notify")
        .order_by(col(AuditEvent.id))
    ).all()
    assert [(a.object_id, a.after) for a in audits] == [(str(open_campaign.id), {"count": 2})]

    # Again: the hook enqueues the same job, a re-run of the job finds every e-mail queued.
    campaign_published(registry, campaign=open_campaign, actor=None)
    registry.commit()
    assert run_jobs(engine, mail_settings) == 0
    _run_again(engine, mail_settings, "notify.scorecards_published")
    assert len(smtp.messages) == 2


# --- jurors told that they can deliberate ------------------------------------------------------


def test_scoring_tells_every_active_juror_once(
    client: TestClient,
    registry: Session,
    engine: Engine,
    open_campaign: Campaign,
    smtp: SmtpSink,
    mail_settings: Settings,
) -> None:
    french = _person(registry, Role.jury, "fr")
    english = _person(registry, Role.jury, "en")
    _inactive(registry, Role.jury)
    make_user(registry, Role.admin)
    _person(registry, Role.authority, "fr", authority_code="69123")
    scored(registry, open_campaign)
    assert len(_jobs(registry, "notify.jury_ready")) == 1

    run_jobs(engine, mail_settings)
    assert sorted(m.envelope_to[0] for m in smtp.messages) == sorted([french.email, english.email])

    fr = _only(smtp, french)
    assert fr.message["Content-Language"] == "fr"
    assert "Ouverte" in fr.message["Subject"]
    assert BIG_FR in fr.text and SMALL_FR in fr.text and BIG not in fr.text
    assert (
        f"{BIG_FR}\u202f: 2 " in fr.text and f"{SMALL_FR}\u202f: 1 " in fr.text
    )  # candidates each
    en = _only(smtp, english)
    assert en.message["Content-Language"] == "en"
    assert f"{BIG_EN}: 2 candidates" in en.text and f"{SMALL_EN}: 1 candidate" in en.text
    assert BIG_EN in en.html

    for user, received in ((french, fr), (english, en)):
        (link,) = _links(received)
        assert urlsplit(link).path == f"/campaigns/{open_campaign.id}/jury"
        assert link in received.html
        _opens_for(client, user, link)

    campaign_scored(registry, campaign=open_campaign, actor=None)
    registry.commit()
    assert run_jobs(engine, mail_settings) == 0
    _run_again(engine, mail_settings, "notify.jury_ready")
    assert len(smtp.messages) == 2


def test_no_juror_no_job(registry: Session, open_campaign: Campaign) -> None:
    """Scoring a campaign nobody judges enqueues nothing (the scoring job stays alone)."""
    scored(registry, open_campaign)
    assert _jobs(registry, "notify.jury_ready") == []
