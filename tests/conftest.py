"""Shared fixtures: the shipped policy, and a fresh database on SQLite and on PostgreSQL."""

from __future__ import annotations

import functools
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text

from bot.config import DEFAULT_POLICY_FILE, load_policy
from bot.sla.engine import Engine
from bot.sla.rules import Policy
from models import migrate
from models.db import Database

SHARED = Path(__file__).resolve().parents[2] / "shared"
ROOT = Path(__file__).resolve().parents[1]


def child_env(values: dict[str, str]) -> dict[str, str]:
    """The whole environment of an `intake-bot` child process: PATH, this checkout on
    PYTHONPATH, and `values`; never a developer's settings from the shell."""
    keep = {key: os.environ[key] for key in ("PATH", "HOME", "TMPDIR") if key in os.environ}
    return {**keep, "PYTHONPATH": str(ROOT), "LANG": "C.UTF-8", **values}


@functools.cache
def child_cwd() -> Path:
    """An empty working directory for child processes: no .env there to read."""
    return Path(tempfile.mkdtemp(prefix="intake-test-cwd-"))


@pytest.fixture(scope="session")
def policy() -> Policy:
    return load_policy(DEFAULT_POLICY_FILE)


@pytest.fixture(scope="session")
def engine(policy: Policy) -> Engine:
    return Engine(policy)


def postgres_url() -> str:
    """The test PostgreSQL server; CI must have one, a developer may go without."""
    url = os.environ.get("TEST_POSTGRES_URL", "")
    if not url:
        if os.environ.get("CI"):
            pytest.fail("CI runs every store test on PostgreSQL too: set TEST_POSTGRES_URL")
        pytest.skip("TEST_POSTGRES_URL is not set (the store tests ran on SQLite only)")
    return url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database of each kind, as a plain DATABASE_URL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/intake.db"
    url = postgres_url()
    db = Database(url)
    async with db.engine.begin() as connection:
        await connection.execute(text("DROP SCHEMA public CASCADE"))
        await connection.execute(text("CREATE SCHEMA public"))
    await db.dispose()
    return url


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    """A migrated, empty database."""
    database = Database(database_url)
    await migrate.upgrade(database)
    yield database
    await database.dispose()
