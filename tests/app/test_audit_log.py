"""The organiser's audit log: filters, paging, the CSV export, refusals, access and words."""

from __future__ import annotations

import ast
import csv
import io
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from babel.messages.pofile import read_po
from fastapi.testclient import TestClient
from sqlmodel import Session, func, select

from app.accounts.models import Role, User
from app.audit import labels, service
from app.audit.models import AuditEvent
from app.audit.schemas import AuditFilters
from tests.conftest import login, make_user

ROOT = Path(__file__).resolve().parents[2]
FRENCH_CATALOG = ROOT / "app" / "translations" / "fr" / "LC_MESSAGES" / "messages.po"
OWN_FILES = [
    "app/audit/labels.py",
    "app/audit/schemas.py",
    "app/audit/service.py",
    "app/audit/repository.py",
    "app/activity/audit_routes.py",
    "app/templates/audit/log.html",
]
NOON = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


@contextmanager
def french_audit_words() -> Iterator[None]:
    """The audit log's words are in the French catalog now: nothing to add (kept for callers)."""
    yield


@pytest.fixture
def audit_words_in_french() -> Iterator[None]:
    with french_audit_words():
        yield


def _event(
    session: Session,
    *,
    actor: User | None,
    action: str,
    object_type: str = "user",
    object_id: object = 1,
    at: datetime = NOON,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    commit: bool = True,
) -> AuditEvent:
    event = AuditEvent(
        at=at,
        actor_id=actor.id if actor else None,
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        before=before,
        after=after,
    )
    session.add(event)
    if commit:
        session.commit()
    return event


def _many(session: Session, count: int, *, actor: User, action: str = "user.update") -> None:
    for number in range(count):
        _event(
            session,
            actor=actor,
            action=action,
            object_id=number,
            at=NOON + timedelta(minutes=number),
            after={"n": number},
            commit=False,
        )
    session.commit()


def _admin_client(session: Session, client: TestClient) -> User:
    admin = make_user(session, Role.admin)
    client.cookies.set("lang", "en")
    login(client, admin)
    return admin


def _shown(page: str) -> int:
    """How many events the page says match, and checks it lists that many on a short page."""
    match = re.search(r"([\d,]+) recorded actions?", page)
    assert match, "no count on the page"
    return int(match.group(1).replace(",", ""))


def _rows(page: str) -> int:
    return page.count("<tr>") - 1 if "<table" in page else 0  # less the header row


def _audit_count(session: Session) -> int:
    session.expire_all()
    return int(session.exec(select(func.count()).select_from(AuditEvent)).one())


# --- filters -----------------------------------------------------------------------------------


def test_filters_by_actor_action_and_object(session: Session, client: TestClient) -> None:
    admin = _admin_client(session, client)
    reviewer = make_user(session, Role.reviewer)
    _event(session, actor=admin, action="user.create", object_id=reviewer.id)
    _event(session, actor=admin, action="user.update", object_id=reviewer.id)
    _event(session, actor=admin, action="campaign.create", object_type="campaign", object_id=7)
    _event(session, actor=reviewer, action="visit.review", object_type="visit", object_id="v-1")
    _event(session, actor=None, action="instrument.publish", object_type="instrument_version")

    def shown(query: str) -> int:
        page = client.get("/admin/audit" + query)
        assert page.status_code == 200, page.text
        count = _shown(page.text)
        assert _rows(page.text) == count
        return count

    assert shown("") == 5
    assert shown(f"?actor={admin.id}") == 3
    assert shown(f"?actor={reviewer.id}") == 1
    assert shown("?action=user.update") == 1
    assert shown("?action=user.") == 2  # a group: every action of accounts
    assert shown("?action=user") == 0  # an exact code that was never recorded
    assert shown("?object_type=campaign") == 1
    assert shown(f"?object_type=user&object_id={reviewer.id}") == 2
    assert shown("?object_id=v-1") == 1
    assert shown(f"?actor={admin.id}&action=campaign.") == 1
    # Empty fields, as the form sends them, filter nothing.
    assert shown("?actor=&action=&object_type=&object_id=&date_from=&date_to=&page=") == 5
    # The filters stay in the form, and the actor list names people, not ids.
    page = client.get(f"/admin/audit?actor={reviewer.id}&action=visit.review").text
    assert f'<option value="{reviewer.id}" selected>{reviewer.display_name} ({reviewer.email})' in (
        page
    )
    assert '<option value="visit.review" selected>Visit reviewed</option>' in page


def test_dates_are_paris_days_both_ends_included(session: Session, client: TestClient) -> None:
    admin = _admin_client(session, client)
    # 29 March 2026: Paris moves to summer time (UTC+1 before 02:00, UTC+2 after).
    moments = {
        "28 late": datetime(2026, 3, 28, 22, 59, tzinfo=UTC),  # 23:59 on the 28th in Paris
        "29 early": datetime(2026, 3, 28, 23, 0, tzinfo=UTC),  # 00:00 on the 29th in Paris
        "29 late": datetime(2026, 3, 29, 21, 59, tzinfo=UTC),  # 23:59 on the 29th (UTC+2)
        "30 early": datetime(2026, 3, 29, 22, 0, tzinfo=UTC),  # 00:00 on the 30th
    }
    for name, at in moments.items():
        _event(session, actor=admin, action="user.update", object_id=name, at=at)

    def ids(query: str) -> set[str]:
        filters = AuditFilters.model_validate(dict(part.split("=") for part in query.split("&")))
        page = service.audit_page(session, filters=filters, actors={})
        assert _shown(client.get("/admin/audit?" + query).text) == page.total
        return {row.object_id for row in page.rows}

    assert ids("date_from=2026-03-29&date_to=2026-03-29") == {"29 early", "29 late"}
    assert ids("date_from=2026-03-29") == {"29 early", "29 late", "30 early"}
    assert ids("date_to=2026-03-28") == {"28 late"}
    assert ids("date_from=2026-03-30&date_to=2026-03-30") == {"30 early"}


def test_120_events_make_3_pages_that_keep_the_filters(
    session: Session, client: TestClient
) -> None:
    admin = _admin_client(session, client)
    _many(session, 120, actor=admin)
    _event(session, actor=admin, action="campaign.create", object_type="campaign")

    first = client.get("/admin/audit?action=user.").text
    assert _shown(first) == 120 and _rows(first) == 50
    assert "Page 1 of 3" in first
    assert 'href="/admin/audit?action=user.&amp;page=2" rel="next"' in first
    assert 'rel="prev"' not in first
    second = client.get("/admin/audit?action=user.&page=2").text
    assert _rows(second) == 50 and "Page 2 of 3" in second
    assert 'href="/admin/audit?action=user.&amp;page=1" rel="prev"' in second
    assert 'href="/admin/audit?action=user.&amp;page=3" rel="next"' in second
    third = client.get("/admin/audit?action=user.&page=3").text
    assert _rows(third) == 20 and "Page 3 of 3" in third and 'rel="next"' not in third
    # The CSV link keeps the filters too; a page past the end shows the last one.
    assert 'href="/admin/audit.csv?action=user."' in third
    assert "Page 3 of 3" in client.get("/admin/audit?action=user.&page=99").text

    # Newest first.
    filters = AuditFilters(action="user.", page=1)
    rows = service.audit_page(session, filters=filters, actors={}).rows
    assert [row.object_id for row in rows[:3]] == ["119", "118", "117"]


# --- the CSV export ----------------------------------------------------------------------------


def test_csv_export_honours_the_filters_and_has_every_row(
    session: Session, client: TestClient
) -> None:
    admin = _admin_client(session, client)
    _many(session, 120, actor=admin)
    _event(
        session,
        actor=None,
        action="campaign.transition",
        object_type="campaign",
        object_id=3,
        at=datetime(2026, 3, 11, 9, 30, tzinfo=UTC),
        before={"state": "draft"},
        after={"state": "open", "note": "Élan"},
    )

    response = client.get("/admin/audit.csv?action=user.update&page=2")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert re.fullmatch(
        r'attachment; filename="audit-\d{8}\.csv"', response.headers["content-disposition"]
    )
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8"))))
    assert rows[0] == list(service.CSV_COLUMNS)
    assert len(rows) == 1 + 120  # every page, not the one the link came from
    newest = dict(zip(rows[0], rows[1], strict=True))
    assert newest == {
        "at": "2026-03-10T13:59:00Z",
        "actor_email": admin.email,
        "actor_name": admin.display_name,
        "action": "user.update",
        "action_label": "Account updated",
        "object_type": "user",
        "object_id": "119",
        "before": "",
        "after": '{"n":119}',
    }

    other = client.get("/admin/audit.csv?object_type=campaign&date_from=2026-03-11").content
    [header, row] = list(csv.reader(io.StringIO(other.decode("utf-8"))))
    line = dict(zip(header, row, strict=True))
    assert line["at"] == "2026-03-11T09:30:00Z" and line["actor_email"] == ""
    assert line["before"] == '{"state":"draft"}'
    assert line["after"] == '{"note":"Élan","state":"open"}'


def test_the_export_streams_in_chunks(session: Session) -> None:
    admin = make_user(session, Role.admin)
    _many(session, 120, actor=admin)
    chunks = list(
        service.csv_export(
            session.get_bind(),  # type: ignore[arg-type]
            filters=AuditFilters(),
            actors=service.actors_of([admin]),
            chunk_rows=50,
        )
    )
    # The header, then 50 + 50 + 20 rows: never the whole trail in one piece.
    assert [chunk.count(b"\n") for chunk in chunks] == [1, 50, 50, 20]
    assert b"".join(chunks).decode("utf-8").count(admin.email) == 120


# --- refusals and access -----------------------------------------------------------------------

BAD_FILTERS = [
    ("actor", "anne", "actor"),
    ("actor", "0", "actor"),
    ("page", "0", "page"),
    ("page", "deux", "page"),
    ("date_from", "hier", "date_from"),
    ("date_from", "2026-02-30", "date_from"),
    ("date_to", "1700000000", "date_to"),
    ("action", "user.%", "action"),
    ("object_type", "Visit!", "object_type"),
    ("object_id", "x" * 65, "object_id"),
]


@pytest.mark.parametrize(("name", "value", "field"), BAD_FILTERS)
def test_a_bad_filter_is_refused_naming_its_field(
    session: Session, client: TestClient, name: str, value: str, field: str
) -> None:
    _admin_client(session, client)
    _event(session, actor=None, action="user.create")
    before = _audit_count(session)

    page = client.get("/admin/audit", params={name: value})
    assert page.status_code == 422
    assert f'href="#field-{field}"' in page.text and f'id="field-{field}"' in page.text
    assert "<table" not in page.text  # nothing shown for filters that could not be read
    if name != "page":
        assert 'aria-invalid="true"' in page.text

    export = client.get(
        "/admin/audit.csv", params={name: value}, headers={"Accept": "application/json"}
    )
    assert export.status_code == 422 and export.json()["field"] == field
    html_export = client.get("/admin/audit.csv", params={name: value})
    assert html_export.status_code == 422 and "text/html" in html_export.headers["content-type"]
    assert _audit_count(session) == before


def test_dates_in_the_wrong_order_are_refused_on_the_end_date(
    session: Session, client: TestClient
) -> None:
    _admin_client(session, client)
    page = client.get("/admin/audit?date_from=2026-03-02&date_to=2026-03-01")
    assert page.status_code == 422 and 'href="#field-date_to"' in page.text
    assert "on or after the “From” date" in page.text


@pytest.mark.parametrize("role", [Role.authority, Role.jury, Role.shopper, Role.reviewer])
def test_only_the_organiser_reads_the_log(session: Session, client: TestClient, role: Role) -> None:
    _event(session, actor=None, action="user.create")
    assert client.get("/admin/audit").headers["location"].startswith("/login")
    assert client.get("/admin/audit.csv").headers["location"].startswith("/login")
    login(client, make_user(session, role))
    assert client.get("/admin/audit").status_code == 403
    assert client.get("/admin/audit.csv").status_code == 403


# --- words -------------------------------------------------------------------------------------


def test_the_page_shows_labels_and_dates_not_codes(session: Session, client: TestClient) -> None:
    admin = _admin_client(session, client)
    at = datetime(2026, 3, 29, 21, 59, 30, tzinfo=UTC)
    _event(
        session,
        actor=admin,
        action="visit.bulk_approve",
        object_type="visit",
        object_id="757c768d-b78b-45be-8785-af6ce7617fe1",
        at=at,
        before={"review_state": "received", "comment": ""},
        after={"review_state": "approved", "comment": "", "revision": 1},
    )
    _event(session, actor=None, action="custom.thing", object_type="gadget", at=at)
    page = client.get("/admin/audit").text
    assert "Visit approved with others" in page and ">visit.bulk_approve<" not in page
    assert "custom.thing" in page  # an action without a label yet reads as its code
    # 23:59:30 in Paris: the day in the reader's words, the ISO instant only for machines.
    assert "Mar\u00a029,\u00a02026<br>23:59:30</time>" in page
    assert '<time datetime="2026-03-29T21:59:30+00:00">' in page
    assert re.search(r">[^<]*2026-03-29", page) is None
    assert admin.display_name in page and admin.email in page and "System" in page
    assert "review_state: received → approved" in page and "revision: 1" in page
    assert "comment:" not in page  # empty on both sides: nothing to say
    # The object links to its own history.
    assert "?object_type=visit&amp;object_id=757c768d-b78b-45be-8785-af6ce7617fe1" in page
    # The filter choices speak words too, grouped by domain.
    assert '<optgroup label="Visits">' in page and ">Visit approved with others</option>" in page
    assert '<option value="visit">Visit</option>' in page
    # An htmx request gets the same whole page (there is no fragment of it).
    htmx = client.get("/admin/audit", headers={"HX-Request": "true"})
    assert htmx.status_code == 200 and "<html" in htmx.text


def test_the_page_speaks_french(
    session: Session, client: TestClient, audit_words_in_french: None
) -> None:
    admin = make_user(session, Role.admin)
    login(client, admin)
    _event(session, actor=admin, action="user.create", at=datetime(2026, 3, 29, 8, tzinfo=UTC))
    page = client.get("/admin/audit").text
    assert "Journal d’audit" in page and "Compte créé" in page and "Télécharger en CSV" in page
    assert "29\u00a0mars\u00a02026<br>10:00:00" in page and "1 action enregistrée" in page
    empty = client.get("/admin/audit?action=visit.").text
    assert "Aucune action enregistrée ne correspond à ces filtres." in empty


def test_no_event_yet_says_so(session: Session, client: TestClient) -> None:
    _admin_client(session, client)
    page = client.get("/admin/audit").text
    assert "No action has been recorded yet." in page and "Download as CSV" not in page


def _recorded_codes(keyword: str) -> set[str]:
    """Every code given as ``keyword=`` in a call in app/ (constants named *_ACTION too)."""
    codes: set[str] = set()
    constants: dict[str, str] = {}
    trees = [ast.parse(path.read_text(encoding="utf-8")) for path in (ROOT / "app").rglob("*.py")]
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
                for target in node.targets:
                    if isinstance(target, ast.Name) and isinstance(node.value.value, str):
                        constants[target.id] = node.value.value
    for tree in trees:
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            for argument in node.keywords:
                if argument.arg != keyword:
                    continue
                for part in ast.walk(argument.value):
                    if isinstance(part, ast.Constant) and isinstance(part.value, str):
                        codes.add(part.value)
                    elif isinstance(part, ast.Name) and part.id.endswith("_ACTION"):
                        codes.add(constants[part.id])
    return codes


def test_every_recorded_action_and_object_type_has_a_label() -> None:
    actions = {
        code for code in _recorded_codes("action") if re.fullmatch(r"[a-z_]+\.[a-z_]+", code)
    }
    assert len(actions) >= 30
    assert sorted(actions - set(labels.ACTION_LABELS)) == []
    object_types = {
        code for code in _recorded_codes("object_type") if re.fullmatch(r"[a-z_]+", code)
    }
    assert sorted(object_types - set(labels.OBJECT_TYPE_LABELS)) == []
    assert labels.action_label("custom.thing") == "custom.thing"


def _translated(path: Path) -> set[str]:
    with path.open("rb") as po_file:
        return {
            message.id if isinstance(message.id, str) else message.id[0]
            for message in read_po(po_file, locale="fr")
            if message.id
            and (message.string if isinstance(message.string, str) else all(message.string or ()))
        }


def test_every_new_word_has_a_french_translation_with_french_typography(
    tmp_path: Path,
) -> None:
    pot = tmp_path / "audit.pot"
    config = tmp_path / "babel.cfg"
    config.write_text("[python: **.py]\n[jinja2: **.html]\nextensions = jinja2.ext.i18n\n")
    subprocess.run(
        [
            *(sys.executable, "-m", "babel.messages.frontend", "extract", "-F", str(config)),
            *("-k", "_", "-k", "N_", "-k", "ngettext:1,2", "-o", str(pot), *OWN_FILES),
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    with pot.open("rb") as pot_file:
        extracted = {
            message.id if isinstance(message.id, str) else message.id[0]
            for message in read_po(pot_file)
            if message.id
        }
    missing = extracted - _translated(FRENCH_CATALOG)
    assert sorted(missing) == []
    with FRENCH_CATALOG.open("rb") as po_file:
        catalog = read_po(po_file, locale="fr")
    strings = [
        text
        for message in catalog
        if message.id
        and (message.id if isinstance(message.id, str) else message.id[0]) in extracted
        for text in ([message.string] if isinstance(message.string, str) else message.string)
    ]
    for text in strings:
        assert not re.search(r"[^\u202f][:;!?](\s|$)", text), text
        assert "'" not in text and '"' not in text.replace('\\"', ""), text
