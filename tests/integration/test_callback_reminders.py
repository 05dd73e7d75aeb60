"""A booked callback reminds the customer (mail, their language) and the agents (Slack side)
before the call, through the running reminder loop; an answer to the ticket does not stop it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import col, select

from bot.cases import callbacks, deadlines
from models.db import Database
from models.tables import Message, Reminder
from tests.integration.conftest import Clock, Running, make_settings, start_service
from tests.integration.reminder_kit import open_ticket_now, poll, posted

BERLIN = ZoneInfo("Europe/Berlin")
MONDAY_10 = datetime(2026, 11, 23, 10, tzinfo=BERLIN)
SLOT = datetime(2026, 11, 23, 14, tzinfo=BERLIN)


@pytest.fixture
async def service(db: Database, database_url: str, tmp_path: Path) -> AsyncIterator[Running]:
    await db.dispose()
    settings = make_settings(tmp_path, database_url, slack_outbox_file=tmp_path / "slack.jsonl")
    started = await start_service(settings, Clock(MONDAY_10))
    yield started
    await started.service.stop()


async def test_a_callback_reminds_customer_and_agents_before_the_call(
    service: Running, tmp_path: Path
) -> None:
    engine = service.service.engine
    ticket = await open_ticket_now(service.db, engine, MONDAY_10, subject="Bitte Rückruf")
    assert ticket.number is not None
    async with service.db.session() as session:
        await callbacks.book(session, engine=engine, number=ticket.number, slot=SLOT,
                             now=MONDAY_10, actor="customer", phone="+49 30 555 0199")
    async with service.db.session() as session:
        await deadlines.record_first_answer(session, number=ticket.number, now=MONDAY_10,
                                            actor="agent")
    service.clock.now = SLOT - timedelta(minutes=15)
    assert service.service.reminders is not None
    service.service.reminders.poke()

    async def sent() -> bool:
        async with service.db.reader() as session:
            rows = (await session.exec(select(Reminder).where(
                col(Reminder.kind) == "callback", col(Reminder.sent_at).is_not(None)))).all()
        return len(rows) == 2

    await poll(sent, 15, "both callback reminders sent")
    async with service.db.reader() as session:
        mails = (await session.exec(select(Message).where(
            col(Message.direction) == "out", col(Message.ticket_number) == ticket.number))).all()
    note = [m.text for m in mails if "zur Erinnerung" in m.text]
    assert len(note) == 1
    assert "Mo 23.11.2026 14:00 Uhr" in note[0]
    assert [line["text"] for line in posted(tmp_path / "slack.jsonl")] == [
        f"NT#{ticket.number} 'Bitte Rückruf': callback at Mon 23 Nov 2026 14:00 (CET), "
        "phone +49 30 555 0199"]
