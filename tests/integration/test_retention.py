"""Retention: raw mail past RETENTION_RAW_DAYS after closing is removed in batches, by a
function given `now`, by the leader's daily job, and by `intake-bot retention run`; on SQLite
and PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import col, func, select

from bot.cases import deadlines
from bot.jobs.retention import remove_expired_raw
from models.db import Database
from models.tables import AuditEvent, Message, Ticket
from tests.integration.conftest import MONDAY_10, Clock, Running, make_settings, start_service
from tests.integration.test_email import OUTAGES, outage
from tests.integration.test_service import cli

AUTO_REPLY = (b"From: urlaub@logistik-nord.de\r\nTo: support@nettask.de\r\n"
              b"Subject: Abwesend\r\nMessage-ID: <away-1@logistik-nord.de>\r\n"
              b"Auto-Submitted: auto-replied\r\n\r\nIch bin bis Montag nicht im Haus.\r\n")


async def three_tickets(running: Running) -> list[int]:
    """Three tickets from three people of one customer, their answers sent, in the order of
    OUTAGES (processed concurrently, they may be numbered in another)."""
    for n, (body, subject) in enumerate(OUTAGES):
        code, _ = await running.send(outage(f"p{n}@logistik-nord.de", f"<r-{n}@logistik-nord.de>",
                                            subject=subject, body=body),
                                     sender=f"p{n}@logistik-nord.de")
        assert code == 250
    await running.settle()
    by_person = {t.requester: t.number for t in await running.tickets()}
    return [int(by_person[f"p{n}@logistik-nord.de"] or 0) for n in range(len(OUTAGES))]


async def close(db: Database, number: int, at: object) -> None:
    async with db.session() as session:
        await deadlines.close(session, number=number, now=at, actor="agent test")  # type: ignore[arg-type]


async def raw_kept(db: Database, ticket: int | None) -> list[bool]:
    async with db.reader() as session:
        rows = await session.exec(select(Message).where(Message.ticket_number == ticket)
                                  .order_by(col(Message.id)))
        return [m.raw is not None for m in rows.all()]


async def test_raw_of_a_ticket_closed_beyond_the_period_is_removed_the_rest_kept(
        running: Running, caplog: pytest.LogCaptureFixture) -> None:
    old, recent, still_open = await three_tickets(running)
    assert (await running.send(AUTO_REPLY, sender="urlaub@logistik-nord.de"))[0] == 250
    await running.settle()
    await close(running.db, old, MONDAY_10)
    await close(running.db, recent, MONDAY_10 + timedelta(days=5))
    async with running.db.reader() as session:
        audit_before = (await session.exec(select(func.count()).select_from(AuditEvent))).one()
    before = {n: await raw_kept(running.db, n) for n in (old, recent, still_open, None)}
    caplog.set_level(logging.INFO, logger="bot.jobs.retention")

    removed = await remove_expired_raw(running.db, now=MONDAY_10 + timedelta(days=91), days=90,
                                       batch=1)

    assert before[old] == [True, True]  # the mail and our answer had their raw bytes
    assert await raw_kept(running.db, old) == [False, False]
    assert await raw_kept(running.db, recent) == before[recent] == [True, True]
    assert await raw_kept(running.db, still_open) == before[still_open] == [True, True]
    assert before[None] == [True] and await raw_kept(running.db, None) == [False]
    assert (removed.messages, removed.tickets, removed.batches) == (3, 1, 3)
    async with running.db.reader() as session:
        ticket = await session.get(Ticket, old)
        texts = (await session.exec(select(Message.text).where(
            Message.ticket_number == old, Message.direction == "in"))).all()
        audit_after = (await session.exec(select(func.count()).select_from(AuditEvent))).one()
    assert ticket is not None and ticket.status == "closed"
    assert texts and "Mailserver ist komplett ausgefallen" in texts[0]
    assert audit_after == audit_before
    logged = [r.getMessage() for r in caplog.records if "event=retention_removed" in
              r.getMessage()]
    assert len(logged) == 3 and any(f"tickets=NT#{old}" in line for line in logged)


async def test_a_second_run_finds_nothing_new(running: Running) -> None:
    old, _, _ = await three_tickets(running)
    await close(running.db, old, MONDAY_10)
    now = MONDAY_10 + timedelta(days=91)
    first = await remove_expired_raw(running.db, now=now, days=90)
    again = await remove_expired_raw(running.db, now=now, days=90)
    assert first.messages == 2
    assert again.messages == 0


async def test_the_leaders_daily_job_removes_expired_raw(db: Database, database_url: str,
                                                         tmp_path: Path) -> None:
    await db.dispose()
    clock = Clock()
    settings = make_settings(tmp_path, database_url, retention_time="00:00",
                             retention_raw_days=30)
    running = await start_service(settings, clock)
    try:
        [old, *_] = await three_tickets(running)
        await close(running.db, old, MONDAY_10 - timedelta(days=31))
    finally:
        await running.service.stop()
    assert await raw_kept(db, old) == [True, True]  # nothing removed it while it was open
    running = await start_service(settings, clock)  # a new leader runs the daily jobs at once
    try:
        async with asyncio.timeout(15):
            while await raw_kept(running.db, old) != [False, False]:
                await asyncio.sleep(0.05)
    finally:
        await running.service.stop()


async def test_retention_run_command(running: Running, database_url: str) -> None:
    old, recent, _ = await three_tickets(running)
    await close(running.db, old, MONDAY_10 - timedelta(days=200))  # long before today
    # beside the running service, as an operator would
    done = await asyncio.to_thread(cli, {"DATABASE_URL": database_url}, "retention", "run")
    assert done.returncode == 0, done.stderr
    assert "removed the raw bytes of 2 message(s)" in done.stdout
    assert await raw_kept(running.db, old) == [False, False]
    assert await raw_kept(running.db, recent) == [True, True]
