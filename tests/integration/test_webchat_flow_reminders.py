"""Reminders reach a web ticket's customer in the chat: the status note when the deadline passed
unanswered becomes a `note` item (the service's own reminder loop, its clock moved on)."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

from bot.cases.replies import local_deadline
from bot.domain import Language
from bot.jobs.scheduler import ReminderLoop
from models.callbacks import active_booking
from models.tables import WebVisitor
from tests.integration.conftest import BERLIN, Running
from tests.integration.webchat_flow_kit import (
    choices,
    choose,
    out_items,
    send,
    visitor,
)

OUTAGE = "Unser Mailserver ist seit heute früh nicht erreichbar"


async def leading(running: Running) -> ReminderLoop:
    """The service's reminder loop, once it leads."""
    loop = running.service.reminders
    assert loop is not None
    deadline = time.monotonic() + 10
    while not loop.leading:
        assert time.monotonic() < deadline, "the reminder loop did not take the lead"
        await asyncio.sleep(0.02)
    return loop


async def late(running: Running) -> WebVisitor:
    """A verified visitor's ticket whose deadline passed unanswered; the reminder loop leads."""
    anna = await visitor(running.db, now=running.clock())
    row = await send(running, anna, OUTAGE, client_id="c1")
    [ticket] = await running.tickets()
    assert ticket.due_at is not None
    loop = await leading(running)
    running.clock.now = ticket.due_at + timedelta(minutes=1)
    await loop.run_due()
    assert row.ticket_number is not None
    return anna


async def test_the_status_note_reaches_the_chat(running: Running) -> None:
    anna = await late(running)
    [ticket] = await running.tickets()
    notes = [i for i in await out_items(running.db, anna)
             if i.kind == "note"]
    assert ticket.due_at is not None
    [note] = notes
    assert note.key is not None and note.key.startswith("reminder:")
    assert f"NT#{ticket.number}" in note.text
    assert local_deadline(ticket.due_at, BERLIN, Language.DE) in note.text
    assert "hier im Chat" in note.text


async def test_the_status_note_is_sent_once(running: Running) -> None:
    anna = await late(running)
    loop = running.service.reminders
    assert loop is not None
    await loop.run_due()
    notes = [i for i in await out_items(running.db, anna)
             if i.kind == "note"]
    assert len(notes) == 1



async def test_the_reminder_before_a_booked_callback_reaches_the_chat(running: Running) -> None:
    anna = await visitor(running.db, now=running.clock())
    row = await send(running, anna, OUTAGE, client_id="c1")
    [answer] = await out_items(running.db, anna)
    slot = choices(answer)[0]
    await choose(running, anna, slot, client_id="c2")
    assert row.ticket_number is not None
    async with running.db.reader() as session:
        booking = await active_booking(session, row.ticket_number)
    assert booking is not None
    loop = await leading(running)
    running.clock.now = booking.slot_start - timedelta(minutes=1)
    await loop.run_due()
    notes = [i.text for i in await out_items(running.db, anna) if i.kind == "note"]
    assert f"Erinnerung: Wir rufen Sie an zu NT#{row.ticket_number}: {slot['label']}" in notes
