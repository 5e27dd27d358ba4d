"""``barometre demo``: the demo's command, added to the app's command line as a plugin.

``pyproject.toml`` declares :func:`register` in the ``barometre.cli`` entry-point group, which
``app/cli.py`` loads at start-up: the command exists while the app never imports the demo.
"""

from __future__ import annotations

import typer
from alembic import command

from app.cli import alembic_config
from app.core.config import get_settings
from app.core.db import create_db_engine, unit_of_work


def register(cli: typer.Typer) -> None:
    """Add the ``demo`` command to the ``barometre`` command line."""
    cli.command("demo")(demo)


def demo(seed: int = 2026) -> None:
    """Build the demo barometer (three editions on the real registry) and print its accounts."""
    # Imported when the command runs: the services and the scoring stack take seconds to load,
    # which every other command (and `barometre --help`) should not pay.
    from demo.editions import build_demo

    settings = get_settings()
    if settings.environment == "production":
        typer.secho(
            "The demo is refused in production: it creates accounts with known passwords.",
            fg=typer.colors.RED,
            err=True,
        )
        raise typer.Exit(code=1)
    command.upgrade(alembic_config(), "head")
    engine = create_db_engine(settings.database_url)
    try:
        with unit_of_work(engine) as session:
            accounts = build_demo(session, organiser=settings.organiser, seed=seed)
    finally:
        engine.dispose()
    typer.echo("Demo accounts (development only):")
    for account in accounts:
        suffix = f"  (authority {account.authority})" if account.authority else ""
        typer.echo(f"  {account.role:<10} {account.email:<32} {account.password}{suffix}")
