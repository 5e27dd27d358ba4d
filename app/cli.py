"""The ``barometre`` command.

Each command that writes runs in one :func:`app.core.db.unit_of_work`: committed when it
succeeds, rolled back (nothing kept, the error printed, exit code 1) when it fails.

A few imports wait for the command that needs them, because every command (and ``--help``)
would otherwise pay for them at start-up (measured on top of this module's own ~2 s):
``app.results.service`` ~6 s (scipy, pandas), ``surveys`` and ``app.instruments.service``
~1 s (pandas), ``app.accounts.service`` ~0.2 s (an argon2 hash computed at import),
``uvicorn`` ~0.2 s. The others cost a few milliseconds and are imported here.
"""

from __future__ import annotations

import getpass
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from alembic import command
from alembic.config import Config
from sqlmodel import Session

from app.authorities.service import import_registry_file
from app.campaigns import repository as campaigns_repository
from app.core.config import PROJECT_ROOT, get_settings
from app.core.db import create_db_engine, unit_of_work
from app.core.errors import DomainError
from app.core.i18n import set_locale
from app.instruments.repository import list_versions

cli = typer.Typer(help="Baromètre: citizen-experience barometers.", no_args_is_help=True)
db_cli = typer.Typer(help="Database schema (Alembic).", no_args_is_help=True)
registry_cli = typer.Typer(help="Registry of authorities.", no_args_is_help=True)
users_cli = typer.Typer(help="User accounts.", no_args_is_help=True)
instruments_cli = typer.Typer(help="Survey and grid definitions.", no_args_is_help=True)
cli.add_typer(db_cli, name="db")
cli.add_typer(registry_cli, name="registry")
cli.add_typer(users_cli, name="users")
cli.add_typer(instruments_cli, name="instruments")


def alembic_config(database_url: str | None = None) -> Config:
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    config.set_main_option("sqlalchemy.url", database_url or get_settings().database_url)
    return config


@contextmanager
def _unit_of_work() -> Iterator[Session]:
    """The command's one transaction on the configured database."""
    engine = create_db_engine(get_settings().database_url)
    try:
        with unit_of_work(engine) as session:
            yield session
    finally:
        engine.dispose()


def _fail(message: str) -> NoReturn:
    typer.secho(message, fg=typer.colors.RED, err=True)
    raise typer.Exit(code=1)


@db_cli.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Bring the schema up to REVISION (default: the latest)."""
    command.upgrade(alembic_config(), revision)
    typer.echo(f"Database at {revision}.")


@db_cli.command("downgrade")
def db_downgrade(revision: str) -> None:
    """Take the schema down to REVISION ('base' removes everything)."""
    command.downgrade(alembic_config(), revision)
    typer.echo(f"Database at {revision}.")


@registry_cli.command("import")
def registry_import(path: Annotated[Path, typer.Argument(exists=True, dir_okay=False)]) -> None:
    """Import or update the registry from a CSV file (all or nothing)."""
    try:
        with _unit_of_work() as session:
            report = import_registry_file(session, path=path)
    except DomainError as exc:
        _fail(f"Nothing imported.\n{exc.message}")
    typer.echo(
        f"{report.total} authorities read: {report.created} added, {report.updated} updated, "
        f"{report.unchanged} unchanged; {report.absent_from_file} in the database but not in "
        "the file (kept)."
    )


@users_cli.command("create-admin")
def users_create_admin(
    email: Annotated[str, typer.Option(prompt=True)],
    name: Annotated[str, typer.Option(prompt=True)] = "Administrator",
    password: Annotated[str | None, typer.Option(help="Prompted when omitted.")] = None,
) -> None:
    """Create an organiser (admin) account."""
    from app.accounts.service import create_admin

    if password is None:
        password = getpass.getpass("Password (12 characters or more): ")
    try:
        with _unit_of_work() as session:
            user = create_admin(session, email=email, display_name=name, password=password)
    except DomainError as exc:
        _fail(exc.message)
    typer.echo(f"Admin account created: {user.email}")


@instruments_cli.command("publish")
def instruments_publish(
    paths: Annotated[list[Path] | None, typer.Argument(exists=True, dir_okay=False)] = None,
    defaults: Annotated[
        bool, typer.Option(help="Publish the shipped default instruments.")
    ] = False,
) -> None:
    """Publish definition files (YAML, JSON or XLSForm): same content, same version."""
    import surveys
    from app.instruments.service import publish

    instruments = []
    try:
        instruments = [surveys.load_instrument(path) for path in paths or []]
    except surveys.DefinitionError as exc:
        _fail(f"Nothing published.\n{exc}")
    if defaults:
        instruments.extend(surveys.default_instruments().values())
    if not instruments:
        _fail("Give definition files to publish, or --defaults.")
    with _unit_of_work() as session:
        results = [
            publish(session, instrument=instrument, actor=None) for instrument in instruments
        ]
    for result in results:
        state = "published" if result.created else "unchanged, already"
        typer.echo(
            f"{result.version.key}: {state} version {result.version.version} "
            f"(sha256 {result.version.sha256[:12]})"
        )


@instruments_cli.command("list")
def instruments_list() -> None:
    """List the published instrument versions."""
    with _unit_of_work() as session:
        for version in list_versions(session):
            typer.echo(
                f"{version.key:<16} v{version.version:<3} {version.kind:<6} "
                f"{version.published_at:%Y-%m-%d}  {version.sha256[:12]}  {version.title_fr}"
            )


@cli.command("score")
def score(
    year: int,
    preview: Annotated[
        bool, typer.Option(help="Provisional run of an open campaign: printed, never stored.")
    ] = False,
    organiser: Annotated[str | None, typer.Option(help="Default: BAROMETRE_ORGANISER.")] = None,
) -> None:
    """Score a closed campaign into a frozen run (or preview an open one); prints its summary."""
    from app.results.service import run_scoring

    settings = get_settings()
    started = time.perf_counter()
    last = [-1]

    def progress(percent: int, message: str) -> None:
        if percent != last[0]:
            last[0] = percent
            typer.echo(f"  {percent:3d} %  {message}", err=True)

    try:
        with _unit_of_work() as session:
            campaign = campaigns_repository.get_by_year(
                session, organiser=organiser or settings.organiser, year=year
            )
            if campaign is None:
                _fail(f"No {year} campaign for organiser {organiser or settings.organiser!r}.")
            result = run_scoring(
                session, campaign=campaign, actor=None, preview=preview, progress=progress
            )
    except DomainError as exc:
        _fail(str(exc))
    summary = result.summary
    if result.run is not None:
        typer.echo(f"run id:         {result.run.id}")
    else:
        typer.echo("preview:        nothing stored")
    typer.echo(f"inputs sha256:  {result.inputs_sha256}")
    typer.echo(f"seed:           {result.seed}")
    typer.echo(
        f"responses:      {summary['responses_used']} used, "
        f"{summary['responses_excluded']} excluded"
    )
    typer.echo(f"approved visits: {summary['visits_approved']}")
    for key, counts in summary["categories"].items():
        typer.echo(
            f"  {key:<24} {counts['candidates']:>5} candidates, {counts['scored']:>5} scored, "
            f"{counts['eligible']:>5} eligible"
        )
    typer.echo(f"elapsed:        {time.perf_counter() - started:.1f} s")


@cli.command("store-visit-scores")
def store_visit_scores(
    year: Annotated[int | None, typer.Argument(help="Campaign year (default: all).")] = None,
    organiser: Annotated[str | None, typer.Option(help="Default: BAROMETRE_ORGANISER.")] = None,
) -> None:
    """Store the scores of approved visits that have none (approved before they were stored,
    or with stale ones): scoring runs then read them instead of scoring those visits."""
    from app.results.inputs import store_missing_visit_scores

    settings = get_settings()
    with _unit_of_work() as session:
        campaign_id = None
        if year is not None:
            campaign = campaigns_repository.get_by_year(
                session, organiser=organiser or settings.organiser, year=year
            )
            if campaign is None:
                _fail(f"No {year} campaign for organiser {organiser or settings.organiser!r}.")
            campaign_id = campaign.id
        stored = store_missing_visit_scores(session, campaign_id=campaign_id)
    typer.echo(f"visit scores stored: {stored}")


@cli.command("serve")
def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: Annotated[int | None, typer.Option(help="Default: BAROMETRE_WORKERS.")] = None,
    reload: bool = False,
    worker: Annotated[
        bool,
        typer.Option(
            "--worker/--no-worker",
            help="Run background jobs in the web process (off when `barometre worker` runs "
            "them elsewhere).",
        ),
    ] = True,
) -> None:
    """Serve the application with uvicorn (and, by default, a background-job worker)."""
    import uvicorn

    settings = get_settings()
    if not worker:
        # The web processes read their settings from the environment (uvicorn's factory).
        os.environ["BAROMETRE_IN_PROCESS_WORKER"] = "false"
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers or settings.workers,
        reload=reload,
        proxy_headers=True,
    )


@cli.command("worker")
def worker_command(
    drain: Annotated[
        bool, typer.Option(help="Run the jobs due now, then stop (instead of running on).")
    ] = False,
) -> None:
    """Run background jobs (scoring runs, e-mails) until stopped; start one on each host
    that should take work. Safe with several workers on PostgreSQL."""
    import logging
    import signal

    from app.jobs.worker import Worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings = get_settings()
    engine = create_db_engine(settings.database_url)
    job_worker = Worker(engine, settings)
    try:
        if drain:
            typer.echo(f"jobs run: {job_worker.drain()}")
            return
        signal.signal(signal.SIGTERM, lambda *_args: job_worker.request_stop())
        typer.echo(f"job worker {job_worker.worker_id} running; Ctrl-C stops it.", err=True)
        job_worker.run_forever()
    finally:
        engine.dispose()


# Commands of packages the app never imports (``barometre demo``, from the top-level ``demo``
# package): each entry point of this group is a function that adds its commands to ``cli``.
PLUGIN_GROUP = "barometre.cli"


def add_plugin_commands(app: typer.Typer) -> None:
    """Add the commands declared in the ``barometre.cli`` entry-point group.

    A plugin whose package is not there is left out: the production image ships without the
    ``demo`` package, though the installed metadata still names it.
    """
    for entry_point in entry_points(group=PLUGIN_GROUP):
        parts = entry_point.module.split(".")
        try:
            register = entry_point.load()
        except ModuleNotFoundError as exc:
            if exc.name not in {".".join(parts[:end]) for end in range(1, len(parts) + 1)}:
                raise  # the plugin is there but something it imports is not: a real error
            continue
        register(app)


def main() -> None:
    # Operators read the command line in English, like the code and the docs.
    set_locale("en")
    # Loaded here rather than at import: a plugin imports this module for its helpers.
    add_plugin_commands(cli)
    try:
        cli()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
