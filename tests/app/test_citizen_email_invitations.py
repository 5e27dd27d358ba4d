"""Citizens invited by e-mail: upload, invitation in their language, one reminder, opt-out,
erasure at close; through a real SMTP server."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from app.accounts.models import Role
from app.audit.models import AuditEvent
from app.campaigns.models import Campaign
from app.campaigns.service import transition
from app.collection import email_invitations
from app.collection.models import Invitation, InvitationRecipient, Response
from app.core.config import Settings
from app.core.timeutil import utcnow
from app.jobs.models import Job
from app.mail.models import MessageState, OutboxMessage
from tests.conftest import CSRF_PATTERN, csrf_from, login, make_user, run_jobs
from tests.support.smtp import Received, SmtpSink

# The links name the e-mail's language, so that the pages they open speak it.
SURVEY_LINK = re.compile(r"https?://[^/\s]+(/i/[\w-]+\?lang=(fr|en))")
OPTOUT_LINK = re.compile(r"https?://[^/\s]+(/optout/[\w-]+\?lang=(fr|en))")


@pytest.fixture
def citizen(application: FastAPI, client: TestClient) -> Iterator[TestClient]:
    """A second browser, anonymous: the citizen's (the organiser signs in on ``client``)."""
    with TestClient(application, base_url="http://testserver", follow_redirects=False) as c:
        yield c


def _upload(
    client: TestClient, token: str, campaign: Campaign, text: str, days: str = "7"
) -> tuple[int, str]:
    response = client.post(
        f"/campaigns/{campaign.id}/invitations/email",
        data={"csrf_token": token, "remind_after_days": days},
        files={"file": ("adresses.csv", text.encode(), "text/csv")},
    )
    return response.status_code, response.text


def _admin(client: TestClient, session: Session) -> str:
    client.cookies.set("lang", "en")
    return login(client, make_user(session, Role.admin))


def _recipients(session: Session) -> list[InvitationRecipient]:
    session.expire_all()
    return list(
        session.exec(select(InvitationRecipient).order_by(col(InvitationRecipient.id))).all()
    )


def _by_email(session: Session, address: str) -> InvitationRecipient:
    session.expire_all()
    found = session.exec(
        select(InvitationRecipient).where(col(InvitationRecipient.email) == address)
    ).one()
    return found


def _link(received: Received, pattern: re.Pattern[str] = SURVEY_LINK) -> tuple[str, str]:
    found = pattern.search(received.text)
    assert found, received.text
    assert found.group(1) in received.html
    return found.group(1), found.group(2)


def _answer(citizen: TestClient, link: str) -> None:
    opened = citizen.get(link)
    assert opened.status_code == 303 and "/r/" in opened.headers["location"]
    action = opened.headers["location"].split("?")[0]
    citizen.post(action, data={"page": "1", "action": "next", "channel": "site", "overall": "3"})
    for page in range(2, 6):
        result = citizen.post(action, data={"page": str(page), "action": "next"})
    assert result.headers["location"].endswith("/merci")


def _make_due(session: Session, recipient_ids: list[int], job: Job) -> None:
    """Move these recipients' reminder, and the job that sends it, into the past."""
    past = utcnow() - timedelta(minutes=1)
    session.execute(
        sa.update(InvitationRecipient)
        .where(col(InvitationRecipient.id).in_(recipient_ids))
        .values(remind_after=past)
    )
    session.execute(sa.update(Job).where(col(Job.id) == job.id).values(run_after=past))
    session.commit()


def _reminder_jobs(session: Session) -> list[Job]:
    session.expire_all()
    return list(
        session.exec(
            select(Job).where(col(Job.kind) == "citizen.reminders").order_by(col(Job.id))
        ).all()
    )


def test_the_links_of_the_emails_are_the_routes(application: FastAPI) -> None:
    assert application.url_path_for(
        "invitation_link", token="abc"
    ) == email_invitations.INVITATION_PATH.format(token="abc")
    assert application.url_path_for(
        "citizen_optout", token="abc"
    ) == email_invitations.OPTOUT_PATH.format(token="abc")
    assert "citizen.reminders" in __import__("app.jobs.kinds", fromlist=["KINDS"]).KINDS


def test_invitations_in_each_language_then_one_reminder_to_those_who_did_not_answer(
    open_campaign: Campaign,
    client: TestClient,
    citizen: TestClient,
    session: Session,
    engine: Engine,
    mail_settings: Settings,
    smtp: SmtpSink,
) -> None:
    token = _admin(client, session)
    status, _text = _upload(
        client,
        token,
        open_campaign,
        "email;authority_code;language\n"
        "ana@example.org;69123;fr\n"
        "ben@example.org;01001;EN\n"
        "chloe@example.org;75056;\n",
    )
    assert status == 303
    page = client.get(f"/campaigns/{open_campaign.id}/invitations/email")
    assert "3 citizens invited by e-mail." in page.text
    assert "ana@example.org" not in page.text
    # The invitations job queues the three e-mails, which three mail jobs send.
    assert run_jobs(engine, mail_settings) == 4
    smtp.wait_for(3)
    (ana,) = smtp.to("ana@example.org")
    (ben,) = smtp.to("ben@example.org")
    (chloe,) = smtp.to("chloe@example.org")
    assert (
        ben.message["Subject"] == "Your opinion on the public services of L'Abergement-Clémenciat"
    )
    assert ben.message["Content-Language"] == "en" and "once" in ben.text
    for french in (ana, chloe):
        assert french.message["Content-Language"] == "fr"
        assert "Bonjour" in french.text and "services publics" in french.message["Subject"]
        assert "Répondre au questionnaire" in french.html
    assert "Paris" in chloe.message["Subject"]
    # Mail clients offer one-click unsubscription (RFC 8058) to the opt-out page.
    optout_path, _lang = _link(ana, OPTOUT_LINK)
    assert ana.message["List-Unsubscribe"] == f"<http://testserver{optout_path}>"
    assert ana.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # The dates are words, never ISO stamps.
    assert not re.search(r"\d{4}-\d{2}-\d{2}", ana.text + ben.text)

    # Each survey link opens its questionnaire, in the e-mail's language.
    ben_link, ben_lang = _link(ben)
    assert ben_lang == "en"
    opened = citizen.get(ben_link)
    assert opened.status_code == 303
    questionnaire = citizen.get(opened.headers["location"])
    assert questionnaire.status_code == 200 and 'lang="en"' in questionnaire.text
    ana_link, _lang = _link(ana)
    _answer(citizen, ana_link)
    assert len(session.exec(select(Response)).all()) == 1

    # A later list: an address already invited is reported by line, not invited twice; the
    # newcomer gets its own reminder date (14 days) and its own job.
    status, _text = _upload(
        client,
        token,
        open_campaign,
        "email,authority_code\nANA@example.org,01001\ndan@example.org,69123\n",
        days="14",
    )
    assert status == 303
    page = client.get(f"/campaigns/{open_campaign.id}/invitations/email")
    assert "1 citizen invited by e-mail." in page.text
    assert "The address on line 2 was already invited to this campaign: left out." in page.text
    assert run_jobs(engine, mail_settings) == 2
    first_job, second_job = _reminder_jobs(session)
    assert first_job.payload["campaign_id"] == open_campaign.id
    assert second_job.run_after - first_job.run_after > timedelta(days=6)

    ids = {
        address: int(_by_email(session, address).id or 0)
        for address in ("ana@example.org", "ben@example.org", "chloe@example.org")
    }
    dan = _by_email(session, "dan@example.org")
    # Chloé opts out through the page (a form with its CSRF token, as any browser sends it).
    chloe_optout, _lang = _link(chloe, OPTOUT_LINK)
    page = citizen.get(chloe_optout)
    assert page.status_code == 200 and "Ne plus rien recevoir" in page.text
    posted = citizen.post(chloe_optout, data={"csrf_token": CSRF_PATTERN.findall(page.text)[0]})
    assert posted.status_code == 200 and "votre adresse électronique a été effacée" in posted.text

    # Nothing is due yet.
    assert run_jobs(engine, mail_settings) == 0
    _make_due(session, list(ids.values()), first_job)
    smtp.messages.clear()
    assert run_jobs(engine, mail_settings) == 2  # the reminders job, then Ben's reminder
    smtp.wait_for(1)
    assert [m.envelope_to for m in smtp.messages] == [["ben@example.org"]]
    (reminder,) = smtp.messages
    assert reminder.message["Subject"].startswith("Reminder: your opinion")
    assert "the only reminder" in reminder.text
    # The reminder repeats the same survey and opt-out links.
    assert _link(reminder)[0] == ben_link
    assert _link(reminder, OPTOUT_LINK)[0] == _link(ben, OPTOUT_LINK)[0]
    assert citizen.get(_link(reminder)[0]).status_code == 303

    # Dan's date comes: only Dan is reminded, and nobody twice.
    smtp.messages.clear()
    _make_due(session, [ids["ben@example.org"], int(dan.id or 0)], second_job)
    assert run_jobs(engine, mail_settings) == 2
    smtp.wait_for(1)
    assert [m.envelope_to for m in smtp.messages] == [["dan@example.org"]]
    reminded = sorted(int(r.id or 0) for r in _recipients(session) if r.reminded_at is not None)
    assert reminded == sorted([ids["ben@example.org"], int(dan.id or 0)])

    page = client.get(f"/campaigns/{open_campaign.id}/invitations/email")
    assert re.search(r'id="count-invited">4<', page.text)
    assert re.search(r'id="count-reminded">2<', page.text)
    assert re.search(r'id="count-opted-out">1<', page.text)
    assert re.search(r'id="count-answered">1<', page.text)
    actions = [
        (e.action, e.after)
        for e in session.exec(select(AuditEvent).order_by(col(AuditEvent.id))).all()
        if e.action.startswith("invitation")
    ]
    assert actions[0] == (
        "invitations.email_upload",
        {"invited": 3, "already_invited": 0, "remind_after_days": 7},
    )
    assert "@" not in repr(actions)


def test_opting_out_erases_the_address_at_once_and_cancels_what_was_not_sent(
    open_campaign: Campaign,
    client: TestClient,
    citizen: TestClient,
    session: Session,
    engine: Engine,
    mail_settings: Settings,
    smtp: SmtpSink,
) -> None:
    token = _admin(client, session)
    status, _text = _upload(
        client,
        token,
        open_campaign,
        "email,authority_code,language\neve@example.org,69123,en\nfred@example.org,69123,fr\n",
    )
    assert status == 303
    assert run_jobs(engine, mail_settings) == 3
    smtp.wait_for(2)
    (eve_mail,) = smtp.to("eve@example.org")
    eve_optout, _lang = _link(eve_mail, OPTOUT_LINK)
    eve = _by_email(session, "eve@example.org")

    # A link scanner that only follows the link changes nothing.
    page = citizen.get(eve_optout)
    assert page.status_code == 200 and "Send me nothing more" in page.text
    assert _by_email(session, "eve@example.org").opted_out_at is None

    # The mail client's one-click POST (RFC 8058): no page, no CSRF token.
    one_click = citizen.post(
        eve_optout,
        content=b"List-Unsubscribe=One-Click",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert one_click.status_code == 200
    session.expire_all()
    erased = session.get(InvitationRecipient, eve.id)
    assert erased is not None and erased.opted_out_at is not None
    assert erased.erased_at is not None and erased.email is None and erased.token is None
    outbox = session.exec(
        select(OutboxMessage).where(col(OutboxMessage.object_id) == str(eve.id))
    ).all()
    assert [(m.to_address, m.text_body, m.html_body) for m in outbox] == [(None, "", "")]
    again = citizen.get(eve_optout)
    assert "You already asked for this" in again.text
    assert citizen.post(eve_optout).status_code == 200  # twice is harmless

    # Fred is reminded before he opts out: his reminder, not sent yet, is cancelled.
    (fred_mail,) = smtp.to("fred@example.org")
    fred = _by_email(session, "fred@example.org")
    (job,) = _reminder_jobs(session)
    _make_due(session, [int(fred.id or 0), int(eve.id or 0)], job)
    worker_settings = mail_settings.model_copy(update={"smtp_host": ""})
    run_jobs(engine, worker_settings)  # no mail server now: the reminder stays in the outbox
    session.expire_all()
    (held,) = session.exec(
        select(OutboxMessage).where(col(OutboxMessage.template) == "citizen_reminder")
    ).all()
    assert held.to_address == "fred@example.org" and held.state == MessageState.held
    fred_optout, _lang = _link(fred_mail, OPTOUT_LINK)
    page = citizen.get(fred_optout)
    assert "Ne plus rien recevoir" in page.text
    done = citizen.post(fred_optout, data={"csrf_token": CSRF_PATTERN.findall(page.text)[0]})
    assert done.status_code == 200 and "effacée" in done.text
    session.expire_all()
    cancelled = session.get(OutboxMessage, held.id)
    assert cancelled is not None and cancelled.state == MessageState.cancelled
    assert cancelled.to_address is None
    smtp.messages.clear()
    run_jobs(engine, mail_settings)
    assert smtp.messages == []

    events = session.exec(select(AuditEvent).where(AuditEvent.action == "invitation.opt_out")).all()
    assert len(events) == 2 and "@" not in repr([(e.before, e.after) for e in events])

    # An unknown link: a kind page, not an error.
    unknown = citizen.get("/optout/not-a-real-token?lang=en")
    assert unknown.status_code == 200 and "nothing more will be sent to you" in unknown.text
    assert citizen.post("/optout/not-a-real-token").status_code == 200


def test_closing_the_campaign_erases_every_address_and_keeps_the_counts(
    open_campaign: Campaign,
    client: TestClient,
    citizen: TestClient,
    session: Session,
    engine: Engine,
    mail_settings: Settings,
    smtp: SmtpSink,
) -> None:
    token = _admin(client, session)
    _upload(client, token, open_campaign, "email,authority_code\ngil@example.org,69123\n")
    assert run_jobs(engine, mail_settings) == 2
    smtp.wait_for(1)
    (gil_mail,) = smtp.to("gil@example.org")
    _answer(citizen, _link(gil_mail)[0])
    # Hana's invitation is still waiting in the outbox when the collection closes.
    _upload(client, token, open_campaign, "email,authority_code\nhana@example.org,01001\n")
    run_jobs(engine, mail_settings.model_copy(update={"smtp_host": ""}))  # no server: held
    session.expire_all()
    campaign = session.get(Campaign, open_campaign.id)
    assert campaign is not None
    transition(session, campaign=campaign, to_state="closed", actor=None)
    session.commit()

    smtp.messages.clear()
    run_jobs(engine, mail_settings)
    assert smtp.messages == []
    recipients = _recipients(session)
    assert [(r.email, r.token, r.email_hash) for r in recipients] == [(None, None, None)] * 2
    assert all(r.erased_at is not None for r in recipients)
    messages = session.exec(
        select(OutboxMessage).where(col(OutboxMessage.object_type) == "invitation_recipient")
    ).all()
    assert {(m.to_address, m.text_body, m.html_body) for m in messages} == {(None, "", "")}
    assert sorted(m.state for m in messages) == [MessageState.cancelled, MessageState.sent]
    (event,) = session.exec(
        select(AuditEvent).where(AuditEvent.action == "invitations.erase_addresses")
    ).all()
    assert event.after == {
        "recipients": 2,
        "addresses_erased": 2,
        "messages_cancelled": 1,
        "messages_erased": 2,
    }

    page = client.get(f"/campaigns/{open_campaign.id}/invitations/email")
    assert page.status_code == 200
    assert re.search(r'id="count-invited">2<', page.text)
    assert re.search(r'id="count-answered">1<', page.text)
    assert re.search(r'id="count-erased">2<', page.text)
    assert 'name="file"' not in page.text and "The collection is over" in page.text
    # The opt-out link still answers kindly; no upload is accepted any more.
    optout, _lang = _link(gil_mail, OPTOUT_LINK)
    assert "already been erased" in citizen.get(optout.replace("lang=fr", "lang=en")).text
    status, _text = _upload(client, token, open_campaign, "email,authority_code\ni@x.org,69123\n")
    assert status == 409


def test_a_wrong_file_is_refused_line_by_line_and_nothing_is_stored(
    open_campaign: Campaign, client: TestClient, session: Session
) -> None:
    token = _admin(client, session)
    status, text = _upload(
        client,
        token,
        open_campaign,
        "\ufeffemail,authority_code,language\n"
        "ok@example.org,69123,fr\n"
        "not-an-address,69123,fr\n"
        "x@example.org,01004,fr\n"
        "y@example.org,69123,de\n"
        "OK@example.org,01001,en\n",
    )
    assert status == 422
    assert "Nothing was stored" in text
    assert "Line 3: “not-an-address” is not a valid e-mail address." in text
    assert "Line 4: 01004 is not a registered candidate of this campaign." in text
    assert "Line 5: the language must be fr or en, not “de”." in text
    assert "Line 6: this address is already on line 2." in text
    assert "Line 2" not in text
    for wrong, message in [
        ("", "Choose a CSV file."),
        ("email,authority_code\n", "The file contains no address."),
        ("mail,code\na@example.org,69123\n", "The first line must name the columns"),
        (
            "email,authority_code\n" + "a@example.org,69123\n" * 50_001,
            "The file has more than 50,000 addresses",
        ),
    ]:
        status, text = _upload(client, token, open_campaign, wrong)
        assert status == 422 and message in text, message
    status, text = _upload(
        client, token, open_campaign, "email,authority_code\na@b.org,69123\n", "0"
    )
    assert status == 422 and "The reminder is sent after 1 to 60 days." in text
    session.expire_all()
    assert session.exec(select(InvitationRecipient)).all() == []
    assert session.exec(select(Invitation)).all() == []
    assert session.exec(select(OutboxMessage)).all() == []
    assert _reminder_jobs(session) == []


def test_only_the_organiser_invites_by_email(
    open_campaign: Campaign, client: TestClient, session: Session
) -> None:
    path = f"/campaigns/{open_campaign.id}/invitations/email"
    anonymous = client.get(path)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login")
    contact = make_user(session, Role.authority, authority_code="69123")
    token = login(client, contact)
    assert client.get(path).status_code == 403
    status, _text = _upload(client, token, open_campaign, "email,authority_code\na@b.org,69123\n")
    assert status == 403
    client.post("/logout", data={"csrf_token": token})
    client.cookies.clear()
    token = _admin(client, session)
    page = client.get(path)
    assert page.status_code == 200 and "Invitations by e-mail" in page.text
    # The organiser's own form needs its CSRF token, like every signed-in form.
    refused = client.post(
        path,
        data={"remind_after_days": "7"},
        files={"file": ("a.csv", b"email,authority_code\na@b.org,69123\n", "text/csv")},
    )
    assert refused.status_code == 403
    assert session.exec(select(InvitationRecipient)).all() == []
    assert csrf_from(client, path)


def test_a_long_list_is_invited_a_batch_at_a_time(
    open_campaign: Campaign,
    client: TestClient,
    session: Session,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(email_invitations, "INVITATIONS_PER_JOB", 2)
    token = _admin(client, session)
    addresses = [f"p{n}@example.org" for n in range(5)]
    text = "email,authority_code\n" + "".join(f"{a},69123\n" for a in addresses)
    status, _text = _upload(client, token, open_campaign, text)
    assert status == 303
    # Nothing is queued by the request itself; three batches of at most two, one job each.
    assert session.exec(select(OutboxMessage)).all() == []
    assert run_jobs(engine) == 3 + 5
    session.expire_all()
    kinds = [job.kind for job in session.exec(select(Job).order_by(col(Job.id))).all()]
    assert kinds.count("citizen.invitations") == 3
    stored = session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id))).all()
    assert [m.to_address for m in stored] == addresses
    assert all(r.invited_at is not None for r in _recipients(session))
