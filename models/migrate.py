"""Schema migrations (alembic) run from code: `intake-bot db upgrade` and the tests."""

from __future__ import annotations

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


def head_revision() -> str | None:
    """The newest migration in the code."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def upgrade(db: Database, revision: str = "head") -> None:
    """Bring the schema to `revision` on the database's own connection."""

    def _upgrade(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    async with db.engine.begin() as connection:
        await connection.run_sync(_upgrade)


async def downgrade(db: Database, revision: str = "base") -> None:
    """Take the schema back to `revision`."""

    def _downgrade(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, revision)

    async with db.engine.begin() as connection:
        await connection.run_sync(_downgrade)


async def current_revision(db: Database) -> str | None:
    """The revision the database is at, or None before the first migration."""

    def _current(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with db.engine.connect() as connection:
        return await connection.run_sync(_current)
