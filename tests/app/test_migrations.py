"""Models and migrations agree, and the schema goes up and down on both databases."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

import app.models  # noqa: F401
from app.cli import alembic_config
from app.core.db import create_db_engine


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_upgrade_autogenerate_downgrade(new_database, backend: str) -> None:
    url = new_database(backend)
    config = alembic_config(url)
    command.upgrade(config, "head")
    engine = create_db_engine(url)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, SQLModel.metadata)
    assert differences == [], f"models and migrations differ: {differences}"

    command.downgrade(config, "base")
    with engine.connect() as connection:
        tables = set(sa.inspect(connection).get_table_names()) - {"alembic_version"}
    assert tables == set()

    command.upgrade(config, "head")
    with engine.connect() as connection:
        tables = set(sa.inspect(connection).get_table_names())
    assert set(SQLModel.metadata.tables) <= tables
    engine.dispose()


def test_sqlite_connections_use_wal_foreign_keys_and_busy_timeout(new_database) -> None:
    engine = create_db_engine(new_database("sqlite"))
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000
    engine.dispose()
