"""After-commit hooks: a hook that fails does not make a committed transaction look failed."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlmodel import select

from models.commit_hooks import CommitHooks
from models.db import Database
from models.tables import Customer

NOW = datetime(2026, 11, 23, 9, tzinfo=UTC)


async def test_a_hook_of_a_closed_loop_does_not_fail_the_commit(
        db: Database, caplog: pytest.LogCaptureFixture) -> None:
    hooks = CommitHooks("test")
    stale = asyncio.new_event_loop()
    stale.close()  # a stopped service's loop, whose wake-up was never unsubscribed
    hooks.subscribe(lambda: stale.call_soon_threadsafe(lambda: None))
    async with db.session() as session:
        session.add(Customer(number="K-1", name="Bäckerei", created_at=NOW))
        hooks.note(session)
    async with db.reader() as session:
        names = (await session.exec(select(Customer.name))).all()
    assert names == ["Bäckerei"]
    assert "event=commit_hook_failed kind=test" in caplog.text


async def test_the_hooks_after_a_failing_one_still_run(db: Database) -> None:
    hooks = CommitHooks("test")
    ran: list[str] = []

    def failing() -> None:
        raise RuntimeError("Event loop is closed")

    hooks.subscribe(failing)
    hooks.subscribe(lambda: ran.append("second"))
    async with db.session() as session:
        session.add(Customer(number="K-2", name="Kanzlei", created_at=NOW))
        hooks.note(session)
    assert ran == ["second"]
