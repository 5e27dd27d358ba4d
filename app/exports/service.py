"""Analyst exports of a campaign: asked for on a page, built by a background job.

An export holds individual answers, so:

* the organiser may export the whole campaign (optionally one authority, optionally with the
  shopper's account number on visits); an authority contact exports its own rows only, never
  a shopper field (:func:`scope_for`);
* it is built by the ``exports.build`` job (a million responses take minutes, and memory
  stays flat: :mod:`app.exports.files`), then kept ``export_retention_days`` days and
  deleted by the ``exports.expire`` job;
* who asked, and who downloaded, is in the audit log;
* only the organiser and contacts of the export's own authority can download it.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlmodel import Session

from app.accounts.models import Role, User
from app.audit.models import record_audit
from app.authorities.models import Authority
from app.campaigns.models import Campaign
from app.campaigns.service import parse_config
from app.core.config import Settings
from app.core.db import row_id, unit_of_work
from app.core.errors import Forbidden, InvalidInput, NotFound
from app.core.i18n import _, use_locale
from app.core.spreadsheet import CsvDialect
from app.core.timeutil import LOCAL_ZONE, utcnow
from app.core.urls import public_base
from app.exports import files, repository
from app.exports.datasets import ExportScope, datasets_of
from app.exports.models import Export, ExportContent, ExportFormat, ExportState
from app.jobs import service as jobs
from app.jobs.models import Job
from app.jobs.worker import JobContext
from app.mail.service import queue_email

BUILD_JOB = "exports.build"
EXPIRE_JOB = "exports.expire"
# The exports page (app.exports.routes ``exports_page``), linked from the "ready" e-mail.
EXPORTS_PATH = "/campaigns/{campaign_id}/exports"


def format_label(value: str) -> str:
    labels = {
        ExportFormat.csv: _("CSV (comma, decimal point)"),
        ExportFormat.csv_french: _("CSV for French spreadsheets (semicolon, decimal comma)"),
        ExportFormat.xlsx: _("Excel (XLSX)"),
        ExportFormat.sav: _("SPSS (.sav)"),
        ExportFormat.dta: _("Stata (.dta)"),
        ExportFormat.zip: _("Every format (zip)"),
    }
    return labels.get(value, value)  # type: ignore[call-overload]


def content_label(value: str) -> str:
    labels = {
        ExportContent.responses: _("Citizen responses"),
        ExportContent.visits: _("Approved mystery-shopper visits"),
        ExportContent.all: _("Responses and visits"),
    }
    return labels.get(value, value)  # type: ignore[call-overload]


def _jobs_key(export_id: int) -> str:
    return f"export:{export_id}"


@dataclass(frozen=True)
class ExportRequest:
    content: ExportContent
    format: ExportFormat
    authority_code: str | None = None
    shopper_ids: bool = False


def scope_for(user: User, request: ExportRequest) -> tuple[str | None, bool]:
    """(authority code, shopper ids) the user may have: an authority gets its own rows and
    never a shopper field, whatever it asked for."""
    if user.role == Role.authority:
        if not user.authority_code:
            raise Forbidden(_("Your account is not attached to an authority."))
        if request.authority_code not in (None, user.authority_code):
            raise Forbidden(_("You can only export the rows of your own authority."))
        return user.authority_code, False
    if user.role != Role.admin:
        raise Forbidden(_("Only the organiser and authorities can export answers."))
    return request.authority_code, request.shopper_ids


def request_export(
    session: Session,
    *,
    campaign: Campaign,
    user: User,
    request: ExportRequest,
    language: str,
) -> Export:
    """Record the export and queue the job that builds it (committed with the caller's unit)."""
    authority_code, shopper_ids = scope_for(user, request)
    if authority_code is not None and session.get(Authority, authority_code) is None:
        raise InvalidInput(_("No authority has this code."), field="authority_code")
    export = Export(
        campaign_id=row_id(campaign),
        authority_code=authority_code,
        content=request.content.value,
        format=request.format.value,
        language=language,
        shopper_ids=shopper_ids,
        requested_by_id=row_id(user),
    )
    session.add(export)
    session.flush()
    jobs.enqueue(
        session,
        BUILD_JOB,
        {"export": row_id(export)},
        dedupe_key=_jobs_key(row_id(export)),
        actor=user,
    )
    record_audit(
        session,
        actor=user,
        action="exports.requested",
        object_type="export",
        object_id=export.id,
        after={
            "campaign": export.campaign_id,
            "content": export.content,
            "format": export.format,
            "authority": authority_code,
            "shopper_ids": shopper_ids,
        },
    )
    return export


def exports_page(session: Session, *, campaign: Campaign, user: User) -> list[Export]:
    authority = user.authority_code if user.role == Role.authority else None
    return repository.exports_of(session, campaign_id=row_id(campaign), authority_code=authority)


def get_for(session: Session, *, export_id: int, user: User) -> Export:
    """The export, if ``user`` may see it (the organiser; contacts of its own authority)."""
    export = repository.get_export(session, export_id)
    if export is None:
        raise NotFound(_("No such export."))
    if user.role == Role.admin:
        return export
    if user.role == Role.authority and export.authority_code == user.authority_code:
        return export
    # Not even "it exists" for anyone else.
    raise NotFound(_("No such export."))


def download_path(session: Session, *, settings: Settings, export: Export, user: User) -> Path:
    """The file of a ready export (its download is recorded)."""
    if export.state != ExportState.ready or not export.storage_path:
        raise NotFound(_("This export has no file (not ready, failed or expired)."))
    assert settings.exports_dir is not None
    path = settings.exports_dir / export.storage_path
    if not path.is_file():
        raise NotFound(_("This export's file is gone."))
    record_audit(
        session,
        actor=user,
        action="exports.downloaded",
        object_type="export",
        object_id=export.id,
        after={"campaign": export.campaign_id, "file": export.file_name},
    )
    return path


# --- the build job ----------------------------------------------------------------------


def _file_stem(campaign: Campaign, export: Export) -> str:
    parts = ["barometre", str(campaign.year), export.content]
    if export.authority_code:
        parts.append(export.authority_code)
    parts.append(f"{export.created_at.astimezone(LOCAL_ZONE):%Y%m%d-%H%M}")
    return "-".join(parts)


def build_files(
    session: Session,
    *,
    settings: Settings,
    export: Export,
    campaign: Campaign,
    workdir: Path,
) -> tuple[Path, dict[str, int]]:
    """Every file of ``export`` in ``workdir``; returns the one to deliver and row counts."""
    scope = ExportScope(
        campaign_id=row_id(campaign),
        config=parse_config(campaign.config),
        authority_code=export.authority_code,
        shopper_ids=export.shopper_ids,
        language=export.language,
    )
    stage_dir = workdir / "stage"
    stage_dir.mkdir()
    tables = [
        files.stage(session, d, stage_dir) for d in datasets_of(session, scope, export.content)
    ]
    out = workdir / "out"
    out.mkdir()
    stem = _file_stem(campaign, export)
    fmt = ExportFormat(export.format)
    members: list[tuple[Path, str, str]] = []  # file, name in the archive, description

    def csv_set(dialect: CsvDialect, folder: str) -> None:
        target = out / folder
        target.mkdir(exist_ok=True)
        for table in tables:
            path = target / f"{table.key}.csv"
            files.write_csv(table, path, dialect)
            members.append((path, f"{folder}{table.key}.csv", table.title))
        labels = target / "labels.csv"
        files.write_labels_csv(tables, labels, dialect)
        members.append((labels, f"{folder}labels.csv", _("Dictionary: variables and codes")))

    def stat_set(kind: str, folder: str) -> None:
        target = out / folder
        target.mkdir(exist_ok=True)
        for table in tables:
            path = target / f"{table.key}.{kind}"
            files.write_statfile(table, path, kind)
            members.append((path, f"{folder}{table.key}.{kind}", table.title))

    def xlsx(folder: str) -> None:
        path = out / f"{stem}.xlsx"
        files.write_xlsx(tables, path)
        members.append((path, f"{folder}{stem}.xlsx", _("Every table, and the dictionary sheet")))

    if fmt is ExportFormat.csv:
        csv_set(CsvDialect.international, "")
    elif fmt is ExportFormat.csv_french:
        csv_set(CsvDialect.french, "")
    elif fmt is ExportFormat.xlsx:
        xlsx("")
    elif fmt in (ExportFormat.sav, ExportFormat.dta):
        stat_set(fmt.value, "")
    else:
        csv_set(CsvDialect.international, "csv/")
        csv_set(CsvDialect.french, "csv-tableur-fr/")
        xlsx("xlsx/")
        stat_set("sav", "spss/")
        stat_set("dta", "stata/")
    rows = {table.key: table.rows for table in tables}
    if len(members) == 1 and fmt in (ExportFormat.xlsx, ExportFormat.sav, ExportFormat.dta):
        single = members[0][0]
        suffix = single.suffix
        delivered = workdir / f"{stem}{suffix}"
        single.rename(delivered)
        return delivered, rows
    authority = session.get(Authority, export.authority_code) if export.authority_code else None
    facts = files.ReadmeFacts(
        title=_("Baromètre %(year)d: %(content)s")
        % {"year": campaign.year, "content": content_label(export.content)},
        scope=(
            _("Rows of %(name)s only.") % {"name": authority.name}
            if authority is not None
            else _("Every candidate of the campaign.")
        ),
        generated_at=utcnow().astimezone(LOCAL_ZONE),
        retention_days=settings.export_retention_days,
        files=[(name, what) for _path, name, what in members],
    )
    readme = out / "README.txt"
    readme.write_text(files.readme_text(facts, tables), encoding="utf-8")
    archive = workdir / f"{stem}.zip"
    files.zip_files(archive, [(readme, "README.txt"), *((p, n) for p, n, _w in members)])
    return archive, rows


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def build_export_job(context: JobContext) -> None:
    """The ``exports.build`` job: files written outside any transaction, then the row says
    ready (with the expiry job) in the job's own fenced unit of work."""
    export_id = int(context.payload["export"])
    settings = context.settings
    assert settings.exports_dir is not None
    with unit_of_work(context.engine) as session:
        export = repository.get_export(session, export_id)
        if export is None or export.state not in (ExportState.queued, ExportState.running):
            return
        export.state = ExportState.running
        session.add(export)
    settings.exports_dir.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix=f"export-{export_id}-", dir=settings.exports_dir))
    try:
        with Session(context.engine) as read:  # reads only
            export = repository.get_export(read, export_id)
            assert export is not None
            campaign = read.get(Campaign, export.campaign_id)
            assert campaign is not None
            with use_locale(export.language):
                built, rows = build_files(
                    read, settings=settings, export=export, campaign=campaign, workdir=workdir
                )
        final_dir = settings.exports_dir / str(export_id)
        final_dir.mkdir(exist_ok=True)
        final = final_dir / built.name
        built.replace(final)
        size, sha = final.stat().st_size, _sha256(final)
    except Exception as exc:
        shutil.rmtree(workdir, ignore_errors=True)
        with context.unit_of_work() as session:
            _mark_failed(session, export_id, str(exc) or exc.__class__.__name__)
        return
    shutil.rmtree(workdir, ignore_errors=True)
    with context.unit_of_work() as session:
        export = repository.get_export(session, export_id)
        assert export is not None
        now = utcnow()
        export.state = ExportState.ready
        export.finished_at = now
        export.expires_at = now + timedelta(days=settings.export_retention_days)
        export.file_name = final.name
        export.storage_path = f"{export_id}/{final.name}"
        export.size_bytes = size
        export.sha256 = sha
        export.rows = rows
        session.add(export)
        _tell_requester(session, settings, export)
        jobs.enqueue(
            session,
            EXPIRE_JOB,
            {"export": export_id},
            run_after=export.expires_at,
            dedupe_key=f"export-expiry:{export_id}",
        )


def _tell_requester(session: Session, settings: Settings, export: Export) -> None:
    """An e-mail to whoever asked (a million rows take minutes: nobody waits on the page)."""
    user = session.get(User, export.requested_by_id)
    campaign = session.get(Campaign, export.campaign_id)
    if user is None or not user.is_active or campaign is None:
        return
    with use_locale(user.language):
        content, fmt = content_label(export.content), format_label(export.format)
    queue_email(
        session,
        settings=settings,
        to=user.email,
        language=user.language,
        template="export_ready",
        context={
            "name": user.display_name,
            "campaign": campaign.name,
            "content": content,
            "format": fmt,
            "expires": export.expires_at,
            "url": public_base(settings) + EXPORTS_PATH.format(campaign_id=campaign.id),
        },
        object_type="export",
        object_id=export.id,
    )


def _mark_failed(session: Session, export_id: int, error: str) -> None:
    export = repository.get_export(session, export_id)
    if export is None:
        return
    export.state = ExportState.failed
    export.finished_at = utcnow()
    export.error = error[:2000]
    session.add(export)


def build_gave_up(session: Session, job: Job) -> None:
    """The build's workers kept dying: the export says it failed."""
    _mark_failed(
        session,
        int(job.payload["export"]),
        _("Interrupted: the background job stopped without finishing."),
    )


def expire_export_job(context: JobContext) -> None:
    """The ``exports.expire`` job: the file is deleted, the row (who, when, what) stays."""
    export_id = int(context.payload["export"])
    settings = context.settings
    assert settings.exports_dir is not None
    shutil.rmtree(settings.exports_dir / str(export_id), ignore_errors=True)
    with context.unit_of_work() as session:
        export = repository.get_export(session, export_id)
        if export is not None and export.state == ExportState.ready:
            export.state = ExportState.expired
            export.storage_path = ""
            session.add(export)
