"""Analyst exports read back by the real readers: every format holds the same table.

A campaign with responses and approved visits is exported through the page (a real request,
the ``exports.build`` job run as the worker would), downloaded, and read back: the CSV with
its dictionary, the XLSX with openpyxl, the SPSS and Stata files with pyreadstat and with R's
haven. Values, variable labels and value labels are compared with the database and the
instrument. An authority's export holds its own rows only and no shopper field.
"""

from __future__ import annotations

import csv
import io
import math
import subprocess
import zipfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyreadstat
import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlmodel import Session, col, select

from app.accounts.models import Role
from app.campaigns.models import Campaign
from app.collection.models import Response
from app.core.config import Settings
from app.core.timeutil import utcnow
from app.exports.codebook import option_codes
from app.exports.models import Export, ExportState
from app.instruments.service import load_published
from app.jobs.models import Job
from app.mail.models import OutboxMessage
from app.missions.models import Mission, ReviewState, Visit
from tests.conftest import OPEN_CANDIDATES, csrf_from, login, make_user, run_jobs
from tests.factories.responses import add_responses
from tests.factories.visits import add_visits

LIKERT = "satisfied"


@pytest.fixture
def collected(open_campaign: Campaign, registry: Session) -> Campaign:
    rng = np.random.default_rng(15)
    add_responses(registry, campaign=open_campaign, rng=rng, per_candidate=(6, 9))
    add_visits(registry, campaign=open_campaign, rng=rng, per_channel=1)
    registry.commit()
    return open_campaign


def _request_export(client: TestClient, campaign: Campaign, csrf: str, **fields: str) -> Any:
    return client.post(f"/campaigns/{campaign.id}/exports", data={"csrf_token": csrf, **fields})


def _build(
    client: TestClient,
    session: Session,
    settings: Settings,
    campaign: Campaign,
    csrf: str,
    **fields: str,
) -> tuple[Export, bytes]:
    response = _request_export(client, campaign, csrf, **fields)
    assert response.status_code == 303, response.text
    run_jobs(session.connection(), settings)
    session.expire_all()
    export = session.exec(select(Export).order_by(col(Export.id).desc())).first()
    assert export is not None and export.state == ExportState.ready, export and export.error
    page = client.get(f"/campaigns/{campaign.id}/exports")
    assert f"/exports/{export.id}/download" in page.text
    download = client.get(f"/exports/{export.id}/download")
    assert download.status_code == 200
    return export, download.content


@pytest.fixture
def organiser(client: TestClient, registry: Session) -> str:
    return login(client, make_user(registry, Role.admin))


@pytest.fixture
def everything(
    client: TestClient,
    session: Session,
    settings: Settings,
    collected: Campaign,
    organiser: str,
    tmp_path: Path,
) -> Iterator[tuple[Export, Path]]:
    """The zip of every format of responses and visits, unpacked."""
    export, body = _build(
        client, session, settings, collected, organiser, content="all", format="zip"
    )
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        archive.extractall(tmp_path)
    yield export, tmp_path


def _db_responses(session: Session, campaign: Campaign) -> dict[str, Response]:
    rows = session.exec(select(Response).where(Response.campaign_id == campaign.id)).all()
    return {str(row.id): row for row in rows}


def _citizen(session: Session, campaign: Campaign) -> Any:
    from app.campaigns import repository as campaigns_repository

    version = next(
        v
        for _p, v in campaigns_repository.pinned_instruments(session, campaign.id or 0)
        if v.kind == "survey"
    )
    return load_published(version)


def _read_csv(path: Path, delimiter: str = ",") -> list[dict[str, str]]:
    text = path.read_text(encoding="utf-8-sig")
    return list(csv.DictReader(io.StringIO(text), delimiter=delimiter))


def test_the_zip_holds_every_format_and_a_readme(everything: tuple[Export, Path]) -> None:
    export, root = everything
    names = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    assert "README.txt" in names
    for folder, suffix in (
        ("csv", "csv"),
        ("csv-tableur-fr", "csv"),
        ("spss", "sav"),
        ("stata", "dta"),
    ):
        assert f"{folder}/responses.{suffix}" in names
        assert f"{folder}/visits_guichet.{suffix}" in names
    assert any(name.startswith("xlsx/") and name.endswith(".xlsx") for name in names)
    readme = (root / "README.txt").read_text(encoding="utf-8")
    assert "satisfied" in readme and "-1" in readme
    assert export.rows["responses"] > 0


def test_csv_and_its_dictionary_reproduce_the_answers(
    everything: tuple[Export, Path], session: Session, collected: Campaign
) -> None:
    _export, root = everything
    stored = _db_responses(session, collected)
    rows = _read_csv(root / "csv" / "responses.csv")
    assert {row["response_id"] for row in rows} == set(stored)
    labels = _read_csv(root / "csv" / "labels.csv")
    value_labels: dict[tuple[str, str], str] = {
        (row["variable"], row["code"]): row["label"]
        for row in labels
        if row["table"] == "responses" and row["code"] != ""
    }
    instrument = _citizen(session, collected)
    item = instrument.item(LIKERT)
    codes = option_codes(item, "fr")
    for row in rows:
        answer = stored[row["response_id"]].answers.get(LIKERT)
        if answer is None:
            assert row[LIKERT] == ""
            continue
        code = str(codes[str(answer)].code)
        assert row[LIKERT] == code
        # The dictionary gives the instrument's label of that answer.
        assert value_labels[(LIKERT, code)] == item.option(answer).label.fr
    # The French spreadsheet form holds the same table, with decimal commas.
    french = _read_csv(root / "csv-tableur-fr" / "responses.csv", delimiter=";")
    assert [row["response_id"] for row in french] == [row["response_id"] for row in rows]
    raw = (root / "csv-tableur-fr" / "responses.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    # Cell by cell, the French form is the international one with a decimal comma.
    for table in ("responses", "visits_guichet", "visits_telephone"):
        international = _read_csv(root / "csv" / f"{table}.csv")
        local = _read_csv(root / "csv-tableur-fr" / f"{table}.csv", delimiter=";")
        assert len(local) == len(international) > 0
        for left, right in zip(international, local, strict=True):
            for name, cell in left.items():
                expected = cell.replace(".", ",") if _is_number(cell) else cell
                assert right[name] == expected, (table, name, cell, right[name])


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def test_xlsx_holds_the_same_table_and_a_dictionary(
    everything: tuple[Export, Path], session: Session, collected: Campaign
) -> None:
    _export, root = everything
    path = next((root / "xlsx").glob("*.xlsx"))
    workbook = load_workbook(path, read_only=True)
    assert {"responses", "visits_guichet", "dictionary"} <= set(workbook.sheetnames)
    sheet = workbook["responses"]
    lines = list(sheet.iter_rows(values_only=True))
    header = list(lines[0])
    from_csv = _read_csv(root / "csv" / "responses.csv")
    assert header == list(from_csv[0].keys())
    assert len(lines) - 1 == len(from_csv)
    index = header.index(LIKERT)
    for line, row in zip(lines[1:], from_csv, strict=True):
        assert ("" if line[index] is None else str(line[index])) == row[LIKERT]


def _expected_labels(
    session: Session, campaign: Campaign
) -> tuple[dict[str, str], dict[float, str]]:
    instrument = _citizen(session, campaign)
    item = instrument.item(LIKERT)
    variable_labels = {
        i.key: i.label.fr for i in instrument.items if i.type != "note" and i.type != "choice_many"
    }
    values = {float(c.code): c.label for c in option_codes(item, "fr").values()}
    return variable_labels, values


@pytest.mark.parametrize("kind", ["sav", "dta"])
def test_spss_and_stata_files_read_back_with_pyreadstat(
    everything: tuple[Export, Path], session: Session, collected: Campaign, kind: str
) -> None:
    _export, root = everything
    folder = "spss" if kind == "sav" else "stata"
    reader = pyreadstat.read_sav if kind == "sav" else pyreadstat.read_dta
    frame, meta = reader(str(root / folder / f"responses.{kind}"), user_missing=True)
    from_csv = _read_csv(root / "csv" / "responses.csv")
    assert list(frame.columns) == list(from_csv[0].keys())
    assert len(frame) == len(from_csv)
    variable_labels, values = _expected_labels(session, collected)
    for name, label in variable_labels.items():
        assert meta.column_names_to_labels[name] == label[: 80 if kind == "dta" else 255]
    labels = {
        float(k): v for k, v in meta.variable_value_labels[LIKERT].items() if not isinstance(k, str)
    }
    plain = {k: v for k, v in values.items() if k >= 0}
    assert plain.items() <= labels.items()
    stored = _db_responses(session, collected)
    for (_, row), csv_row in zip(frame.iterrows(), from_csv, strict=True):
        assert row["response_id"] == csv_row["response_id"]
        answer = stored[row["response_id"]].answers.get(LIKERT)
        cell = row[LIKERT]
        if answer is None:
            assert cell is None or (isinstance(cell, float) and math.isnan(cell))
        elif answer == "na":
            # Declared missing: -1 in SPSS (user-missing), .a in Stata.
            assert cell == (-1 if kind == "sav" else "a")
        else:
            assert float(cell) == float(answer)
    if kind == "sav":
        assert meta.missing_ranges[LIKERT] == [{"lo": -1.0, "hi": -1.0}]


R_SCRIPT = r"""
library(haven)
args <- commandArgs(trailingOnly = TRUE)
path <- args[1]
data <- if (grepl("\\.sav$", path)) read_sav(path, user_na = TRUE) else read_dta(path)
x <- data[["satisfied"]]
cat("label\t", attr(x, "label"), "\n", sep = "")
labs <- attr(x, "labels")
for (i in seq_along(labs)) {
  tag <- if (is.na(labs[[i]])) paste0("tag:", na_tag(labs[[i]])) else format(unclass(labs[[i]]))
  cat("value\t", tag, "\t", names(labs)[i], "\n", sep = "")
}
na <- attr(x, "na_values")
if (!is.null(na)) cat("na_values\t", paste(na, collapse = ","), "\n", sep = "")
ids <- data[["response_id"]]
v <- unclass(x)
tags <- if (is.double(v)) na_tag(v) else rep(NA, length(v))
for (i in seq_along(ids)) {
  cell <- if (!is.na(tags[i])) paste0("tag:", tags[i]) else if (is.na(v[i])) "NA" else format(v[i])
  cat("row\t", ids[i], "\t", cell, "\n", sep = "")
}
"""


@pytest.mark.parametrize("kind", ["sav", "dta"])
def test_spss_and_stata_files_read_back_with_r_haven(
    everything: tuple[Export, Path],
    session: Session,
    collected: Campaign,
    kind: str,
    tmp_path: Path,
) -> None:
    _export, root = everything
    folder = "spss" if kind == "sav" else "stata"
    script = tmp_path / "read.R"
    script.write_text(R_SCRIPT, encoding="utf-8")
    result = subprocess.run(
        ["Rscript", str(script), str(root / folder / f"responses.{kind}")],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    lines = [line.split("\t") for line in result.stdout.splitlines()]
    variable_labels, values = _expected_labels(session, collected)
    label = next(parts[1] for parts in lines if parts[0] == "label")
    assert label == variable_labels[LIKERT]
    value_labels = {parts[1]: parts[2] for parts in lines if parts[0] == "value"}
    for code, text in values.items():
        key = ("tag:a" if kind == "dta" else "-1") if code == -1 else str(int(code))
        assert value_labels[key] == text
    if kind == "sav":
        assert next(parts[1] for parts in lines if parts[0] == "na_values") == "-1"
    stored = _db_responses(session, collected)
    cells = {parts[1]: parts[2] for parts in lines if parts[0] == "row"}
    assert set(cells) == set(stored)
    for response_id, cell in cells.items():
        answer = stored[response_id].answers.get(LIKERT)
        if answer is None:
            assert cell == "NA"
        elif answer == "na":
            assert cell == ("-1" if kind == "sav" else "tag:a")
        else:
            assert float(cell) == float(answer)


def test_visits_tables_hold_approved_visits_with_scores(
    everything: tuple[Export, Path], session: Session, collected: Campaign
) -> None:
    _export, root = everything
    approved = session.exec(
        select(Visit, Mission)
        .join(Mission, col(Mission.id) == col(Visit.mission_id))
        .where(
            Mission.campaign_id == collected.id,
            Visit.review_state == ReviewState.approved,
            Mission.channel == "telephone",
        )
    ).all()
    rows = _read_csv(root / "csv" / "visits_telephone.csv")
    assert {row["visit_id"] for row in rows} == {str(visit.id) for visit, _m in approved}
    assert "shopper_id" not in rows[0]  # not asked for
    for row in rows:
        assert 0 <= float(row["channel_score"]) <= 100
        assert row["knocked_out"] in ("0", "1")


def test_an_authority_exports_its_own_rows_only_and_no_shopper_field(
    client: TestClient,
    session: Session,
    settings: Settings,
    collected: Campaign,
    registry: Session,
) -> None:
    own = OPEN_CANDIDATES[0]
    contact = make_user(registry, Role.authority, authority_code=own)
    csrf = login(client, contact)
    # Asking for another authority, or for the shoppers' numbers, changes nothing.
    refused = _request_export(
        client, collected, csrf, content="all", format="csv", authority_code=OPEN_CANDIDATES[1]
    )
    assert refused.status_code == 403
    export, body = _build(
        client, session, settings, collected, csrf, content="all", format="csv", shopper_ids="on"
    )
    assert export.authority_code == own and not export.shopper_ids
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        responses = list(csv.DictReader(io.StringIO(archive.read("responses.csv").decode())))
        visits = list(csv.DictReader(io.StringIO(archive.read("visits_guichet.csv").decode())))
        readme = archive.read("README.txt").decode()
    assert responses and {row["authority_code"] for row in responses} == {own}
    assert visits and {row["authority_code"] for row in visits} == {own}
    assert not any("shopper" in name for name in visits[0])
    assert "shopper" not in readme.lower().replace("mystery-shopper", "")
    stored = session.exec(
        select(Response).where(Response.campaign_id == collected.id, Response.authority_code == own)
    ).all()
    assert len(responses) == len(stored)


def test_an_export_is_seen_and_downloaded_only_by_its_own_audience(
    client: TestClient,
    session: Session,
    settings: Settings,
    collected: Campaign,
    registry: Session,
    organiser: str,
) -> None:
    export, _body = _build(
        client, session, settings, collected, organiser, content="responses", format="sav"
    )
    assert export.file_name.endswith(".sav")
    client.post("/logout", data={"csrf_token": organiser})
    client.cookies.clear()
    contact = make_user(registry, Role.authority, authority_code=OPEN_CANDIDATES[0])
    login(client, contact)
    # The organiser's whole-campaign export is not the authority's: not even its existence.
    assert client.get(f"/exports/{export.id}/download").status_code == 404
    assert (
        f"/exports/{export.id}/download"
        not in client.get(f"/campaigns/{collected.id}/exports").text
    )


def test_bad_requests_name_the_field_and_store_nothing(
    client: TestClient, session: Session, collected: Campaign, organiser: str
) -> None:
    for fields, field in (
        ({"content": "all", "format": "bogus"}, "format"),
        ({"content": "everything", "format": "csv"}, "content"),
        ({"content": "all", "format": "csv", "authority_code": "99999"}, "authority_code"),
    ):
        response = _request_export(client, collected, organiser, **fields)
        assert response.status_code == 422
        assert f'href="#field-{field}"' in response.text
    assert session.exec(select(Export)).all() == []
    assert session.exec(select(Job).where(Job.kind == "exports.build")).all() == []


def test_an_export_file_is_deleted_when_it_expires(
    client: TestClient,
    session: Session,
    settings: Settings,
    collected: Campaign,
    organiser: str,
) -> None:
    export, _body = _build(
        client, session, settings, collected, organiser, content="responses", format="csv_french"
    )
    assert settings.exports_dir is not None
    path = settings.exports_dir / export.storage_path
    assert path.is_file()
    # Whoever asked is told by e-mail, with the page's link and the deletion date.
    told = session.exec(select(OutboxMessage).where(OutboxMessage.template == "export_ready")).one()
    assert f"/campaigns/{collected.id}/exports" in told.text_body
    assert told.subject.startswith(("Your data export", "Votre export"))
    expiry = session.exec(select(Job).where(Job.kind == "exports.expire")).one()
    expiry.run_after = utcnow() - timedelta(seconds=1)
    session.add(expiry)
    session.commit()
    run_jobs(session.connection(), settings)
    session.expire_all()
    assert session.get(Export, export.id).state == ExportState.expired  # type: ignore[union-attr]
    assert not path.exists()
    assert client.get(f"/exports/{export.id}/download").status_code == 404
    page = client.get(f"/campaigns/{collected.id}/exports")
    assert "Expired" in page.text or "Expiré" in page.text
    assert csrf_from  # the page still renders its form
