"""Writes that wait at the same time share one transaction; a failing one costs the others
nothing (on SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.db import Database
from models.group import GroupCommit
from models.tables import AuditEvent
from models.tickets import audit
from tests.integration.conftest import MONDAY_10


def note(name: str, sessions: list[int],
         gate: asyncio.Event | None = None) -> Callable[[AsyncSession], Awaitable[str]]:
    """A write that records its session (and, given a gate, holds its transaction open)."""
    async def work(session: AsyncSession) -> str:
        sessions.append(id(session))
        await audit(session, ticket_number=None, actor="test", action=name, now=MONDAY_10)
        if gate is not None:
            await gate.wait()
        return name
    return work


async def fail(session: AsyncSession) -> str:
    raise ValueError("this message cannot be stored")


async def actions(db: Database) -> list[str]:
    async with db.reader() as session:
        return sorted((await session.exec(select(AuditEvent.action))).all())


async def held_then(group: GroupCommit, gate: asyncio.Event, sessions: list[int],
                    works: list[Callable[[AsyncSession], Awaitable[str]]]) -> list[object]:
    """A first write holds its transaction while `works` arrive; then it is let go."""
    first = asyncio.create_task(group.run(note("first", sessions, gate)))
    while not sessions:
        await asyncio.sleep(0)
    waiting = [asyncio.create_task(group.run(w)) for w in works]
    await asyncio.sleep(0)
    gate.set()
    return await asyncio.gather(first, *waiting, return_exceptions=True)


async def test_writes_that_waited_share_the_next_transaction(db: Database) -> None:
    group, gate, sessions = GroupCommit(db), asyncio.Event(), []
    results = await held_then(group, gate, sessions,
                              [note(f"w{n}", sessions) for n in range(4)])
    assert results == ["first", "w0", "w1", "w2", "w3"]
    assert len(set(sessions)) == 2
    assert group.transactions == 2


async def test_every_write_of_a_shared_transaction_is_committed(db: Database) -> None:
    group, gate, sessions = GroupCommit(db), asyncio.Event(), []
    await held_then(group, gate, sessions, [note(f"w{n}", sessions) for n in range(4)])
    assert await actions(db) == ["first", "w0", "w1", "w2", "w3"]


async def test_a_failing_write_costs_the_others_nothing(db: Database) -> None:
    group, gate, sessions = GroupCommit(db), asyncio.Event(), []
    works = [note("a", sessions), fail, note("b", sessions)]
    results = await held_then(group, gate, sessions, works)
    assert [r if isinstance(r, str) else type(r).__name__ for r in results] == [
        "first", "a", "ValueError", "b"]
    assert await actions(db) == ["a", "b", "first"]


async def test_a_lone_failing_write_raises(db: Database) -> None:
    with pytest.raises(ValueError, match="cannot be stored"):
        await GroupCommit(db).run(fail)
