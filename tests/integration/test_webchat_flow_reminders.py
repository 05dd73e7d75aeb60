"""Reminders reach a web ticket's customer in the chat: the status note when the deadline passed
unanswered becomes a `note` item (the service's own reminder loop, its clock moved on)."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

from bot.cases.replies import local_deadline
from bot.domain import Language
from models.tables import WebVisitor
from tests.integration.conftest import BERLIN, Running
from tests.integration.webchat_flow_kit import out_items, send, visitor

OUTAGE = "Unser Mailserver ist seit heute früh nicht erreichbar"


async def late(running: Running) -> WebVisitor:
    """A verified visitor's ticket whose deadline passed unanswered; the reminder loop leads."""
    anna = await visitor(running.db, now=running.clock())
    row = await send(running, anna, OUTAGE, client_id="c1")
    [ticket] = await running.tickets()
    assert ticket.due_at is not None
    loop = running.service.reminders
    assert loop is not None
    deadline = time.monotonic() + 10
    while not loop.leading:
        assert time.monotonic() < deadline, "the reminder loop did not take the lead"
        await asyncio.sleep(0.02)
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

