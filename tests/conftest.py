"""Shared fixtures: the shipped policy, and a fresh database on SQLite and on PostgreSQL.

Set-up once, not per test: each pytest process (each xdist worker) migrates one SQLite file and
one PostgreSQL database at its first need. A test's migrated SQLite database is a copy of that
file; the PostgreSQL one is emptied again (rows deleted, sequences reset, re-migrated if a test
changed the schema). Every xdist worker has its own PostgreSQL databases, named after
TEST_POSTGRES_URL's: `<name>_<worker>` and `<name>_<worker>_bare`.
"""

from __future__ import annotations

import asyncio
import functools
import os
import shutil
import tempfile
import threading
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from bot.config import DEFAULT_POLICY_FILE, load_policy
from bot.sla.engine import Engine
from bot.sla.rules import Policy
from models import migrate
from models.db import Database

SHARED = Path(__file__).resolve().parents[2] / "shared"
ROOT = Path(__file__).resolve().parents[1]
T = TypeVar("T")


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


def run_aside(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to its end on a loop of its own (callable inside a running loop too)."""
    result: list[T] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            result.append(asyncio.run(coroutine))
        except BaseException as exc:  # handed to the caller below
            failure.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return result[0]


def worker_name() -> str:
    """This pytest process's name among xdist workers (`gw0`, …), or `main` without xdist."""
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def renamed(url: str, database: str) -> str:
    """`url` with another database name."""
    return make_url(url).set(database=database).render_as_string(hide_password=False)


# What the migrations made in the public schema: every relation, column and type. A test that
# migrated down, or dropped the schema, leaves another fingerprint behind.
FINGERPRINT = """
SELECT coalesce((SELECT string_agg(version_num, ',') FROM alembic_version), '') || ':' || md5(
    string_agg(c.relname || '/' || c.relkind::text || '/' || coalesce(a.attname, '') || '/'
               || coalesce(a.atttypid::text, ''), ',' ORDER BY c.relname, a.attnum))
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE n.nspname = 'public'
"""


@dataclass
class Migrated:
    """A worker's PostgreSQL database at the migrations' head, and how to empty it again."""

    url: str
    fingerprint: str
    emptying: str  # rows deleted (FK triggers off: any order), sequences back to their start


async def _fresh_schema(url: str) -> None:
    """Drop everything in the public schema: an empty database, as a new one would be."""
    connection = await asyncpg.connect(url)
    try:
        await connection.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    finally:
        await connection.close()


async def _migrate_afresh(url: str) -> Migrated:
    await _fresh_schema(url)
    database = Database(url)
    try:
        await migrate.upgrade(database)
    finally:
        await database.dispose()
    connection = await asyncpg.connect(url)
    try:
        fingerprint = await connection.fetchval(FINGERPRINT)
        tables = await connection.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
            "AND tablename <> 'alembic_version'")
        sequences = await connection.fetch(
            "SELECT sequencename FROM pg_sequences WHERE schemaname = 'public'")
    finally:
        await connection.close()
    emptying = ["SET session_replication_role = replica"]
    emptying += [f'DELETE FROM "{row[0]}"' for row in tables]
    emptying += [f"""SELECT setval('"{row[0]}"', 1, false)""" for row in sequences]
    emptying += ["RESET session_replication_role"]
    return Migrated(url, fingerprint, ";\n".join(emptying))


async def _create_if_missing(url: str) -> None:
    admin = await asyncpg.connect(renamed(url, "postgres"))
    try:
        name = make_url(url).database
        if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()


@functools.cache
def _worker_postgres(base: str) -> Migrated:
    """This worker's two databases, created if missing: `<name>_<worker>`, migrated once per
    session and emptied per test, and `<name>_<worker>_bare`, for tests that want no schema."""
    url = renamed(base, f"{make_url(base).database}_{worker_name()}")
    run_aside(_create_if_missing(url))
    run_aside(_create_if_missing(bare_url(url)))
    return run_aside(_migrate_afresh(url))


def bare_url(url: str) -> str:
    """The worker's database for tests that start from no schema at all."""
    return renamed(url, f"{make_url(url).database}_bare")


async def empty_migrated(migrated: Migrated) -> None:
    """The worker's migrated database without any row, as after a fresh migration; migrated
    afresh if a test changed its schema."""
    connection = await asyncpg.connect(migrated.url)
    try:
        try:
            intact = await connection.fetchval(FINGERPRINT) == migrated.fingerprint
        except asyncpg.UndefinedTableError:  # no alembic_version: the schema was dropped
            intact = False
        if intact:
            await connection.execute(migrated.emptying)
    finally:
        await connection.close()
    if not intact:
        again = await _migrate_afresh(migrated.url)
        assert again.fingerprint == migrated.fingerprint, "the migrations changed mid-session"


def postgres_url() -> str:
    """This worker's own test PostgreSQL database (named after TEST_POSTGRES_URL's); CI must
    have a server, a developer may go without."""
    url = os.environ.get("TEST_POSTGRES_URL", "")
    if not url:
        if os.environ.get("CI"):
            pytest.fail("CI runs every store test on PostgreSQL too: set TEST_POSTGRES_URL")
        pytest.skip("TEST_POSTGRES_URL is not set (the store tests ran on SQLite only)")
    return _worker_postgres(url).url


async def _sqlite_migrated(path: Path) -> None:
    database = Database(f"sqlite:///{path}")
    try:
        await migrate.upgrade(database)
    finally:
        await database.dispose()  # the last connection's close folds the WAL into the file


@functools.cache
def _sqlite_template(folder: Path) -> Path:
    """A migrated SQLite file, made once per worker, for tests to copy."""
    path = folder / "migrated-template.db"
    run_aside(_sqlite_migrated(path))
    return path


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path,
                       tmp_path_factory: pytest.TempPathFactory) -> str:
    """An empty database of each kind, as a plain DATABASE_URL; already migrated when the
    test asks for `db` too (as `db` would have made it: a fresh migration's copy)."""
    migrated = "db" in request.fixturenames
    if request.param == "sqlite":
        path = tmp_path / "intake.db"
        if migrated:
            shutil.copyfile(_sqlite_template(tmp_path_factory.getbasetemp()), path)
        return f"sqlite:///{path}"
    url = postgres_url()
    if migrated:
        await empty_migrated(_worker_postgres(os.environ["TEST_POSTGRES_URL"]))
        return url
    await _fresh_schema(bare_url(url))
    return bare_url(url)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    """A migrated, empty database."""
    database = Database(database_url)
    if await migrate.current_revision(database) != migrate.head_revision():
        await migrate.upgrade(database)  # not made by `database_url`'s template: migrate here
    yield database
    await database.dispose()
