"""The ``barometre`` command."""

from __future__ import annotations

import getpass
import sys
from pathlib import Path
from typing import Annotated

import typer
from alembic import command
from alembic.config import Config
from sqlmodel import Session

from app.core.config import PROJECT_ROOT, get_settings
from app.core.db import create_db_engine
from app.core.errors import DomainError
from app.core.i18n import set_locale

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


def _session() -> Session:
    return Session(create_db_engine(get_settings().database_url), expire_on_commit=False)


def _fail(message: str) -> None:
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
    from app.authorities.service import import_registry_file

    with _session() as session:
        try:
            report = import_registry_file(session, path=path)
        except DomainError as exc:
            session.rollback()
            _fail(f"Nothing imported.\n{exc.message}")
            return
        session.commit()
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
    with _session() as session:
        try:
            user = create_admin(session, email=email, display_name=name, password=password)
        except DomainError as exc:
            session.rollback()
            _fail(exc.message)
            return
        session.commit()
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
    with _session() as session:
        results = [
            publish(session, instrument=instrument, actor=None) for instrument in instruments
        ]
        session.commit()
        for result in results:
            state = "published" if result.created else "unchanged, already"
            typer.echo(
                f"{result.version.key}: {state} version {result.version.version} "
                f"(sha256 {result.version.sha256[:12]})"
            )


@instruments_cli.command("list")
def instruments_list() -> None:
    """List the published instrument versions."""
    from app.instruments.repository import list_versions

    with _session() as session:
        for version in list_versions(session):
            typer.echo(
                f"{version.key:<16} v{version.version:<3} {version.kind:<6} "
                f"{version.published_at:%Y-%m-%d}  {version.sha256[:12]}  {version.title_fr}"
            )


@cli.command("demo")
def demo(seed: int = 2026) -> None:
    """Build the demo barometer (two editions on the real registry) and print its accounts."""
    from app.demo import build_demo

    settings = get_settings()
    if settings.environment == "production":
        _fail("The demo is refused in production: it creates accounts with known passwords.")
    command.upgrade(alembic_config(), "head")
    with _session() as session:
        accounts = build_demo(session, organiser=settings.organiser, seed=seed)
        session.commit()
    typer.echo("Demo accounts (development only):")
    for account in accounts:
        suffix = f"  (authority {account.authority})" if account.authority else ""
        typer.echo(f"  {account.role:<10} {account.email:<32} {account.password}{suffix}")


@cli.command("score")
def score(
    year: int,
    preview: Annotated[
        bool, typer.Option(help="Provisional run of an open campaign: printed, never stored.")
    ] = False,
    organiser: Annotated[str | None, typer.Option(help="Default: BAROMETRE_ORGANISER.")] = None,
) -> None:
    """Score a closed campaign into a frozen run (or preview an open one); prints its summary."""
    import time

    from app.campaigns import repository as campaigns_repository
    from app.results.service import run_scoring

    settings = get_settings()
    started = time.perf_counter()
    last = [-1]

    def progress(percent: int, message: str) -> None:
        if percent != last[0]:
            last[0] = percent
            typer.echo(f"  {percent:3d} %  {message}", err=True)

    with _session() as session:
        campaign = campaigns_repository.get_by_year(
            session, organiser=organiser or settings.organiser, year=year
        )
        if campaign is None:
            _fail(f"No {year} campaign for organiser {organiser or settings.organiser!r}.")
            return
        try:
            result = run_scoring(
                session, campaign=campaign, actor=None, preview=preview, progress=progress
            )
        except DomainError as exc:
            _fail(str(exc))
            return
        session.commit()
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


@cli.command("serve")
def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: Annotated[int | None, typer.Option(help="Default: BAROMETRE_WORKERS.")] = None,
    reload: bool = False,
) -> None:
    """Serve the application with uvicorn."""
    import uvicorn

    settings = get_settings()
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers or settings.workers,
        reload=reload,
        proxy_headers=True,
    )


def main() -> None:
    # Operators read the command line in English, like the code and the docs.
    set_locale("en")
    try:
        cli()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
