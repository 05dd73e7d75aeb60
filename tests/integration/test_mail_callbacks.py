"""Callback slots by mail (offered in the first answer, booked by answering with a number),
and the clock that waits for the customer."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import select

from bot.cases import deadlines
from bot.cases.callbacks import last_offer
from models.callbacks import take_slot
from models.tables import CallbackBooking, Ticket, Usage
from tests.integration.conftest import Running
from tests.integration.test_email import outage

ANNA = "anna@logistik-nord.de"  # Logistik Nord: deHOSTED Standard, 5 callbacks a month


async def first_answer(running: Running) -> tuple[str, list[datetime]]:
    await running.send(outage(), sender=ANNA)
    await running.settle()
    [answer] = running.replies()
    async with running.db.session() as session:
        offered = await last_offer(session, 1)
    return str(answer["Message-ID"]), offered


async def choose(running: Running, reply_to: str, text: str, n: int) -> None:
    raw = outage(message_id=f"<choice-{n}@logistik-nord.de>", subject="AW: Rückruf", body=text,
                 signed=False, extra=f"In-Reply-To: {reply_to}\r\n")
    await running.send(raw, sender=ANNA)
    await running.settle()


async def test_the_first_answer_offers_three_numbered_slots(running: Running) -> None:
    _, offered = await first_answer(running)
    body = running.replies()[0].get_content()
    assert len(offered) == 3
    assert "Freie Termine (30 Minuten):" in body
    assert "  3. " in body
    assert offered == sorted(offered)


async def test_answering_with_a_number_books_that_slot_and_uses_a_callback(
    running: Running,
) -> None:
    message_id, offered = await first_answer(running)
    await choose(running, message_id, "2", 1)
    async with running.db.session() as session:
        [booking] = (await session.exec(select(CallbackBooking))).all()
        usage = [u for u in (await session.exec(select(Usage))).all() if u.kind == "callback"]
    assert booking.slot_start == offered[1]
    assert [u.used for u in usage] == [1]
    confirmation = running.replies()[-1]
    assert confirmation["To"] == ANNA
    assert any(part.get_content_type() == "text/calendar" for part in confirmation.walk())


async def test_a_taken_slot_gets_a_new_offer_and_books_nothing(running: Running) -> None:
    message_id, offered = await first_answer(running)
    capacity = running.service.engine.policy.callbacks.agents
    async with running.db.session() as session:  # other customers take every place meanwhile
        for _ in range(capacity):
            assert await take_slot(session, offered[0], capacity)
    await choose(running, message_id, "Termin 1", 2)
    async with running.db.session() as session:
        bookings = (await session.exec(select(CallbackBooking))).all()
    assert bookings == []
    again = running.replies()[-1].get_content()
    assert "nicht mehr frei" in again
    assert "  1. " in again


async def test_a_forged_number_books_nothing(running: Running) -> None:
    await first_answer(running)
    forged = outage(message_id="<forged-choice@evil.example>", subject="Re: [NT#1] Rückruf",
                    body="1", signed=False)
    await running.send(forged, sender="x@evil.example")
    await running.settle()
    async with running.db.session() as session:
        assert (await session.exec(select(CallbackBooking))).all() == []


async def test_a_customer_reply_restarts_a_clock_paused_for_them(running: Running) -> None:
    message_id, _ = await first_answer(running)
    async with running.db.session() as session:
        await deadlines.wait_for_customer(session, number=1, now=running.clock(),
                                          actor="agent mia")
    running.clock.now += timedelta(hours=1)
    await choose(running, message_id, "Hier die Logdatei, der Fehler kam um 9:12 Uhr.", 3)
    async with running.db.session() as session:
        ticket = await session.get(Ticket, 1)
    assert ticket is not None
    assert ticket.status == "open"
    assert ticket.paused_at is None
    assert ticket.paused_seconds == 3600
