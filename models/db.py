"""The async database engine and sessions, on SQLite (aiosqlite) or PostgreSQL (asyncpg)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.dialects.sqlite.aiosqlite import SQLiteDialect_aiosqlite
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.config import ConfigError
from models.sqlite_driver import connector, giving_way

DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}


class DatabaseUrlError(ConfigError):
    """DATABASE_URL names a database this service cannot use."""


def async_url(url: str) -> str:
    """A plain `sqlite:///path` or `postgresql://...` URL, with the async driver filled in."""
    try:
        parsed = make_url(url)
    except Exception as exc:  # sqlalchemy raises ArgumentError with a terse text
        raise DatabaseUrlError(f"DATABASE_URL is not a database URL: {exc}") from exc
    backend = parsed.get_backend_name()
    if backend not in DRIVERS:
        raise DatabaseUrlError(
            f"DATABASE_URL uses {backend!r}; use sqlite:///path or postgresql://user@host/db"
        )
    return parsed.set(drivername=DRIVERS[backend]).render_as_string(hide_password=False)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
    # Let SQLAlchemy issue BEGIN itself (below), instead of pysqlite's implicit deferred BEGIN.
    dbapi_connection.isolation_level = None


def _sqlite_begin_immediate(conn: Any) -> None:
    # Take the write lock at BEGIN: two deferred transactions that both read, then write,
    # would otherwise fail with "database is locked" instead of waiting their turn.
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def _sqlite_begin_deferred(conn: Any) -> None:
    # Readers: in WAL mode a deferred transaction reads a consistent snapshot, next to a writer.
    conn.exec_driver_sql("BEGIN")


def make_engine(url: str, *, readonly: bool = False, **kwargs: Any) -> AsyncEngine:
    """Create the engine for a plain DATABASE_URL; SQLite files get their folder created."""
    full = async_url(url)
    parsed = make_url(full)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        args, options = SQLiteDialect_aiosqlite().create_connect_args(parsed)
        options["check_same_thread"] = False  # the loop's thread and the connection's share it
        engine = create_async_engine(
            full, async_creator=connector(*args, timeout=30, read_only=readonly, **options),
            **kwargs)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        begin = _sqlite_begin_deferred if readonly else _sqlite_begin_immediate
        event.listen(engine.sync_engine, "begin", begin)
        return engine
    return create_async_engine(full, pool_pre_ping=True, **kwargs)


class Database:
    """The engine and a session factory; one per process.

    Writes come in two kinds. Front writes (storing a mail before its 250, and everything else
    by default) go first; background writes (processing stored mail) yield to them: on SQLite,
    whose single writer our transactions queue for, at most one background transaction is ever
    queued ahead of a front write; on PostgreSQL background sessions have their own connection
    pool, so a worker holding its connections never makes a 250 wait for one.
    """

    def __init__(self, url: str, *, background_pool: int = 0, **kwargs: Any) -> None:
        self.engine = make_engine(url, **kwargs)
        self.backend = self.engine.dialect.name
        self._sessions = async_sessionmaker(
            self.engine, class_=AsyncSession, expire_on_commit=False
        )
        self._read_engine = (
            make_engine(url, readonly=True, **kwargs) if self.backend == "sqlite" else None
        )
        self._read_sessions = async_sessionmaker(
            self._read_engine or self.engine, class_=AsyncSession, expire_on_commit=False
        )
        self._background_engine = (
            make_engine(url, pool_size=background_pool, max_overflow=4, **kwargs)
            if self.backend == "postgresql" and background_pool else None
        )
        self._background_sessions = async_sessionmaker(
            self._background_engine or self.engine, class_=AsyncSession, expire_on_commit=False
        )
        # SQLite has one writer at a time. Queueing our own transactions here is fair and
        # immediate; leaving it to SQLite's busy handler makes waiters sleep in growing steps
        # (up to 100 ms each), which under load turned 5 ms transactions into seconds.
        sqlite = self.backend == "sqlite"
        self._one_writer = asyncio.Lock() if sqlite else None
        self._background_turn = asyncio.Lock() if sqlite else None
        self._front_waiting = 0
        self._no_front_waiting = asyncio.Event()
        self._no_front_waiting.set()

    @asynccontextmanager
    async def session(self, *, background: bool = False) -> AsyncIterator[AsyncSession]:
        """A session whose transaction commits on success and rolls back on error.

        `background=True` for work nobody waits on (it yields to the other writers).
        Do not open a second session inside one (on SQLite they queue behind each other).
        """
        if self._one_writer is None or self._background_turn is None:
            factory = self._background_sessions if background else self._sessions
            async with factory() as session, session.begin():
                yield session
            return
        if background:
            async with self._background_turn:
                await self._no_front_waiting.wait()
                with giving_way():
                    async with self._one_writer, self._sessions() as session, session.begin():
                        yield session
            return
        self._front_waiting += 1
        self._no_front_waiting.clear()
        try:
            await self._one_writer.acquire()
        finally:
            self._front_waiting -= 1
            if self._front_waiting == 0:
                self._no_front_waiting.set()
        try:
            async with self._sessions() as session, session.begin():
                yield session
        finally:
            self._one_writer.release()

    @asynccontextmanager
    async def reader(self) -> AsyncIterator[AsyncSession]:
        """A session for reading only: on SQLite it neither takes nor waits for the write lock."""
        async with self._read_sessions() as session, session.begin():
            yield session

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()
        if self._read_engine is not None:
            await self._read_engine.dispose()
        if self._background_engine is not None:
            await self._background_engine.dispose()
