"""`intake-bot work` (bot/app.py run_worker) processes stored web chat messages as well as mail:
a message a `serve` replica stored, before the worker started or while it runs, becomes a
ticket with its answer in the chat, whichever process is running. PostgreSQL only, as the
command is."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from bot.app import run_worker
from models import migrate
from models.db import Database
from models.tables import Message
from tests.conftest import postgres_url
from tests.integration.conftest import make_settings
from tests.integration.webchat_flow_kit import out_items, store, visitor

OUTAGE = "Unser Mailserver ist seit heute früh nicht erreichbar"
WAIT = 30.0  # seconds the worker may take (it scans every second); only a failure waits


@pytest.fixture
async def postgres_db() -> AsyncIterator[Database]:
    """An empty, migrated PostgreSQL database (`intake-bot work` runs on PostgreSQL only)."""
    database = Database(postgres_url())
    async with database.engine.begin() as connection:
        await connection.execute(text("DROP SCHEMA public CASCADE"))
        await connection.execute(text("CREATE SCHEMA public"))
    await migrate.upgrade(database)
    yield database
    await database.dispose()


async def done(db: Database, message_id: int) -> Message:
    """The message once it is no longer pending; fails after WAIT seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while loop.time() < deadline:
        async with db.reader() as session:
            row = await session.get(Message, message_id)
        if row is not None and row.disposition != "pending":
            return row
        await asyncio.sleep(0.05)
    raise AssertionError(f"web message {message_id} still pending after {WAIT} s")


@pytest.fixture
async def worker(postgres_db: Database, tmp_path: Path) -> AsyncIterator[None]:
    """`intake-bot work` in this event loop, ready (its classifier loaded)."""
    ready, stop = asyncio.Event(), asyncio.Event()
    settings = make_settings(tmp_path, postgres_url())
    running = asyncio.create_task(run_worker(settings, on_ready=ready.set, stop=stop))
    waiting = asyncio.create_task(ready.wait())
    await asyncio.wait([running, waiting], timeout=WAIT, return_when=asyncio.FIRST_COMPLETED)
    if not ready.is_set():
        waiting.cancel()
        stop.set()
        await running  # raises what stopped it from starting
        raise AssertionError(f"`work` not ready after {WAIT} s")
    yield
    stop.set()
    await asyncio.wait_for(running, timeout=WAIT)


def now() -> datetime:
    return datetime.now(UTC)  # the worker runs on the real clock


@pytest.mark.postgres
async def test_a_web_message_stored_before_the_worker_started_is_processed(
        postgres_db: Database, tmp_path: Path) -> None:
    nobody = await visitor(postgres_db, now=now(), email="", customer=None, verified=False)
    stored = await store(postgres_db, nobody, OUTAGE, client_id="c1", now=now())
    ready, stop = asyncio.Event(), asyncio.Event()
    running = asyncio.create_task(run_worker(make_settings(tmp_path, postgres_url()),
                                             on_ready=ready.set, stop=stop))
    try:
        row = await done(postgres_db, stored)
    finally:
        stop.set()
        await asyncio.wait_for(running, timeout=WAIT)
    assert (row.disposition, row.ticket_number is not None) == ("ticket", True)


@pytest.mark.postgres
async def test_a_web_message_stored_while_the_worker_runs_is_processed(
        postgres_db: Database, worker: None) -> None:
    """As a `serve` replica stores it: no submit reaches this process, its scan finds it."""
    nobody = await visitor(postgres_db, now=now(), email="", customer=None, verified=False)
    stored = await store(postgres_db, nobody, OUTAGE, client_id="c1", now=now())
    row = await done(postgres_db, stored)
    assert (row.disposition, row.ticket_number is not None) == ("ticket", True)


@pytest.mark.postgres
async def test_the_workers_answer_is_in_the_visitors_chat(postgres_db: Database,
                                                          worker: None) -> None:
    """The answer is an `out` item: serve's push loop sends what any process committed."""
    nobody = await visitor(postgres_db, now=now(), email="", customer=None, verified=False)
    stored = await store(postgres_db, nobody, OUTAGE, client_id="c1", now=now())
    row = await done(postgres_db, stored)
    [answer] = await out_items(postgres_db, nobody)
    assert answer.ticket_number == row.ticket_number
    assert f"NT#{row.ticket_number}" in answer.text
