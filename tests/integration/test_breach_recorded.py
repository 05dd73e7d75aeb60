"""A first-response deadline passing unanswered is recorded on the ticket (`breached_at`) by
the breach reminder's transaction, and the digest read from the store lists it as breached, not
at risk; on SQLite and PostgreSQL, in a running service on real time (windows of seconds)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlmodel import col, select

from bot.app import Service, utc_now
from bot.sla.digest import build as build_digest
from models import digest as digest_repo
from models.db import Database
from models.tables import AuditEvent, Reminder, Ticket
from tests.integration.reminder_kit import (
    open_ticket_now,
    poll,
    seconds_service,
)

pytestmark = pytest.mark.slow  # waits out a reminder window of seconds


@pytest.fixture
async def service(db: Database, database_url: str, tmp_path: Path) -> AsyncIterator[Service]:
    await db.dispose()
    async with seconds_service(tmp_path, database_url) as running:
        yield running


async def fresh(service: Service, number: int | None) -> Ticket:
    async with service.db.reader() as session:
        ticket = await session.get(Ticket, number)
    assert ticket is not None
    return ticket


async def test_an_unanswered_deadline_is_recorded_when_it_passes(service: Service) -> None:
    opened = await open_ticket_now(service.db, service.engine, utc_now())  # severity A: 7.2 s
    assert opened.breached_at is None and opened.due_at is not None

    async def breach_sent() -> bool:
        async with service.db.reader() as session:
            rows = await session.exec(select(Reminder).where(
                col(Reminder.ticket_number) == opened.number, col(Reminder.kind) == "breach",
                col(Reminder.sent_at).is_not(None)))
            return rows.first() is not None

    await poll(breach_sent, 20, "the breach reminder")
    ticket = await fresh(service, opened.number)
    assert ticket.breached_at == ticket.due_at
    assert ticket.first_response_at is None
    async with service.db.reader() as session:
        trail = (await session.exec(select(AuditEvent).where(
            col(AuditEvent.ticket_number) == opened.number,
            col(AuditEvent.action) == "breached"))).all()
    assert [json.loads(e.detail)["due"] for e in trail] == [str(ticket.due_at)]
    now = utc_now()
    async with service.db.reader() as session:
        facts = await digest_repo.ticket_facts(session, now - digest_repo.LOOKBACK)
    zone = service.engine.calendar.zone
    digest = build_digest(now.astimezone(zone).date(), zone, now, facts, 0)
    assert (digest.overdue, digest.at_risk) == ([opened.number], [])
