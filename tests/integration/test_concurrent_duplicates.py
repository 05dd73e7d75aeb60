"""Identical mails at once are one ticket: one sender's messages are decided one after another,
in one service and across two service instances on one PostgreSQL database."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlmodel import select

from models.db import Database
from models.tables import Ticket, Usage
from tests.conftest import postgres_url
from tests.integration.conftest import Clock, Running, make_settings, start_service
from tests.integration.test_email import outage

ANNA = "anna@logistik-nord.de"  # Logistik Nord: included incidents left


def identical(n: int) -> bytes:
    """The same signed outage report, as a script sends it again and again (new Message-IDs)."""
    return outage(sender=ANNA, message_id=f"<same-{n}@logistik-nord.de>")


async def incidents_used(db: Database) -> int:
    async with db.session() as session:
        rows = (await session.exec(select(Usage))).all()
    return sum(r.used for r in rows if r.kind == "incident")


async def ticket_count(db: Database) -> int:
    async with db.session() as session:
        return len((await session.exec(select(Ticket))).all())


async def test_twenty_identical_mails_at_once_are_one_ticket(running: Running) -> None:
    await asyncio.gather(*(running.send(identical(n), sender=ANNA) for n in range(20)))
    await running.settle(timeout=60)
    assert await ticket_count(running.db) == 1
    assert await incidents_used(running.db) == 1


@pytest.fixture
async def postgres_only() -> str:
    """An empty PostgreSQL database: several instances on one database need PostgreSQL."""
    url = postgres_url()
    db = Database(url)
    async with db.engine.begin() as connection:
        await connection.execute(text("DROP SCHEMA public CASCADE"))
        await connection.execute(text("CREATE SCHEMA public"))
    await db.dispose()
    return url


@pytest.mark.postgres
async def test_identical_mails_to_two_instances_are_one_ticket(
        postgres_only: str, tmp_path: Path) -> None:
    database_url = postgres_only
    first = await start_service(make_settings(tmp_path / "a", database_url), Clock())
    second = await start_service(make_settings(tmp_path / "b", database_url), Clock())
    try:
        await asyncio.gather(*((first if n % 2 else second).send(identical(n), sender=ANNA)
                               for n in range(20)))
        await first.settle(timeout=60)
        await second.settle(timeout=60)
        assert await ticket_count(first.db) == 1
        assert await incidents_used(first.db) == 1
    finally:
        await first.service.stop()
        await second.service.stop()


@pytest.mark.postgres
async def test_one_customers_flood_counts_hold_across_two_instances(
        postgres_only: str, tmp_path: Path) -> None:
    """Different mails from many addresses of one customer at once, to two instances: no more
    new tickets than FLOOD_MAX_PER_CUSTOMER."""
    limit = 4
    instances = [await start_service(make_settings(tmp_path / name, postgres_only,
                                                   flood_max_per_customer=limit), Clock())
                 for name in ("a", "b")]
    try:
        await asyncio.gather(*(
            instances[n % 2].send(outage(sender=f"user{n}@logistik-nord.de",
                                         message_id=f"<c-{n}@logistik-nord.de>",
                                         subject=f"Thema {n}", body=f"Anliegen Nummer {n}: "
                                         f"{'ABCDEFGHIJKL'[n] * 30}"),
                                  sender=f"user{n}@logistik-nord.de")
            for n in range(12)))
        for running in instances:
            await running.settle(timeout=60)
        assert await ticket_count(instances[0].db) == limit
    finally:
        for running in instances:
            await running.service.stop()
