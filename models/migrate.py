"""Schema migrations (alembic) run from code: `intake-bot db upgrade` and the tests."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from models.db import Database

SCRIPTS = Path(__file__).with_name("migrations")


def alembic_config(database_url: str | None = None) -> Config:
    """An alembic Config pointing at our migrations, without an alembic.ini."""
    config = Config()
    config.set_main_option("script_location", str(SCRIPTS))
    if database_url:
        config.attributes["database_url"] = database_url
    return config


@functools.lru_cache(maxsize=1)
def head_revision() -> str | None:
    """The newest migration in the code (read from disk once per process)."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def _run(db: Database, step: Callable[[Config, str], None], revision: str) -> None:
    """Run one alembic command on the database's own (async) connection."""

    def _step(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        step(config, revision)

    async with db.engine.begin() as connection:
        await connection.run_sync(_step)


async def upgrade(db: Database, revision: str = "head") -> None:
    """Bring the schema to `revision`."""
    await _run(db, command.upgrade, revision)


async def downgrade(db: Database, revision: str = "base") -> None:
    """Take the schema back to `revision`."""
    await _run(db, command.downgrade, revision)


async def current_revision(db: Database) -> str | None:
    """The revision the database is at, or None before the first migration."""

    def _current(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with db.engine.connect() as connection:
        return await connection.run_sync(_current)
