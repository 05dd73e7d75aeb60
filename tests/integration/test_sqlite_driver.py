"""The SQLite driver (models/sqlite_driver.py): what cannot wait runs on the loop's thread,
what can wait (the write lock another process holds) waits in the connection's thread."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import OperationalError
from sqlmodel.ext.asyncio.session import AsyncSession

from models import migrate
from models.db import Database
from models.sqlite_driver import LoopConnection, connector


def with_thread_function(db: Database) -> None:
    """`thread()` in SQL: the id of the OS thread that runs the statement."""
    for engine in (db.engine, db._read_engine):
        assert engine is not None

        @event.listens_for(engine.sync_engine, "connect")
        def register(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.create_function("thread", 0, threading.get_ident)


async def scalar(session: AsyncSession, sql: str) -> Any:
    return (await (await session.connection()).execute(text(sql))).scalar_one()


@pytest.fixture
async def sqlite_db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite:///{tmp_path}/intake.db")
    with_thread_function(database)
    await migrate.upgrade(database)
    yield database
    await database.dispose()


@pytest.fixture
def other_process(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    """A connection of its own, as another process (a CLI command) would have."""
    connection = sqlite3.connect(tmp_path / "intake.db", isolation_level=None)
    yield connection
    connection.close()


async def test_statements_in_a_write_transaction_run_on_the_loops_thread(
        sqlite_db: Database) -> None:
    async with sqlite_db.session() as session:
        ran_on = await scalar(session, "SELECT thread()")
    assert ran_on == threading.get_ident()


async def test_a_readers_statements_run_on_the_loops_thread(sqlite_db: Database) -> None:
    async with sqlite_db.reader() as session:
        ran_on = await scalar(session, "SELECT thread()")
    assert ran_on == threading.get_ident()


async def test_a_reader_refuses_to_write(sqlite_db: Database) -> None:
    with pytest.raises(OperationalError, match="readonly database"):
        async with sqlite_db.reader() as session:
            await (await session.connection()).execute(text("DELETE FROM customer"))


async def test_a_write_lock_held_elsewhere_is_waited_for_without_stopping_the_loop(
        sqlite_db: Database, other_process: sqlite3.Connection) -> None:
    other_process.execute("BEGIN IMMEDIATE")

    async def write() -> None:
        async with sqlite_db.session() as session:
            await (await session.connection()).execute(text(
                "INSERT INTO customer (number, name, contact_24_7, created_at) "
                "VALUES ('K-1', 'Waited', NULL, '2026-12-02 10:00:00')"))

    writer = asyncio.create_task(write())
    async with sqlite_db.reader() as session:  # the loop runs on while the writer waits
        before = await scalar(session, "SELECT count(*) FROM customer")
    assert not writer.done()
    assert before == 0
    other_process.execute("ROLLBACK")
    await writer
    async with sqlite_db.reader() as session:
        name = await scalar(session, "SELECT name FROM customer")
    assert name == "Waited"


async def test_a_call_after_one_still_in_the_thread_waits_its_turn_there(
        tmp_path: Path, other_process: sqlite3.Connection) -> None:
    connection: LoopConnection = await connector(
        str(tmp_path / "intake.db"), timeout=30, check_same_thread=False,
        isolation_level=None)()
    try:
        await connection.create_function("thread", 0, threading.get_ident)
        other_process.execute("BEGIN IMMEDIATE")
        cursor = await connection.cursor()
        begin = asyncio.create_task(cursor.execute("BEGIN IMMEDIATE"))
        while connection.in_thread == 0:  # queued for the thread: the lock is taken
            await asyncio.sleep(0)
        begin.cancel()  # its caller gives up; the BEGIN still runs in the thread
        query = asyncio.create_task(cursor.execute("SELECT thread()"))
        await asyncio.sleep(0)
        assert not query.done()  # it waits behind the BEGIN, not beside it
        other_process.execute("ROLLBACK")
        rows = await (await query).fetchall()
        assert rows[0][0] != threading.get_ident()
        assert connection.in_thread == 0
    finally:
        await connection.close()


async def statements_while_another_task_is_ready(db: Database, *, background: bool) -> int:
    """How often a task that is always ready ran while a session made five statements."""
    ran = 0
    stop = False

    async def always_ready() -> None:
        nonlocal ran
        while not stop:
            ran += 1
            await asyncio.sleep(0)

    async with db.session(background=background) as session:
        await scalar(session, "SELECT 1")  # connected, inside its transaction
        other = asyncio.create_task(always_ready())
        before = ran
        for _ in range(5):
            await scalar(session, "SELECT 1")
        during = ran - before
        stop = True
    await other
    return during


async def test_processing_statements_let_ready_work_run_between_them(
        sqlite_db: Database) -> None:
    assert await statements_while_another_task_is_ready(sqlite_db, background=True) >= 5


async def test_a_store_runs_its_statements_straight_through(sqlite_db: Database) -> None:
    assert await statements_while_another_task_is_ready(sqlite_db, background=False) == 0
