"""Callback bookings on SQLite and PostgreSQL: never more than capacity, two customers racing
for the last place get one booking and one new offer, cancelling gives everything back."""

from __future__ import annotations

import asyncio
import email
import email.policy
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import col, select

from bot.cases import callbacks, deadlines
from bot.cases.service import NewTicket, open_ticket
from bot.domain import Channel, Department, Language, Severity
from bot.sla.engine import Engine
from models.customers import find_by_email
from models.db import Database
from models.tables import CallbackBooking, Message, Reminder, SlackCall, Ticket
from tests.integration.reminder_kit import load_demo_customers

BERLIN = ZoneInfo("Europe/Berlin")
MONDAY_10 = datetime(2026, 11, 23, 10, tzinfo=BERLIN)
SLOT = datetime(2026, 11, 23, 14, tzinfo=BERLIN)


@pytest.fixture
def one_agent(engine: Engine) -> Engine:
    """The shipped policy with a single callback agent: one booking per slot."""
    policy = engine.policy.model_copy(update={
        "callbacks": engine.policy.callbacks.model_copy(update={"agents": 1})})
    return Engine(policy)


async def ticket_of(db: Database, engine: Engine, address: str) -> int:
    async with db.session() as session:
        customer = await find_by_email(session, address)
        ticket, _ = await open_ticket(
            session, engine=engine, customer=customer, now=MONDAY_10,
            new=NewTicket(channel=Channel.EMAIL, subject="Bitte Rückruf", product="dehosted",
                          department=Department.TROUBLE, severity=Severity.C,
                          language=Language.DE, requester=address))
    assert ticket.number is not None
    return ticket.number


async def book(db: Database, engine: Engine, number: int) -> str:
    """Book SLOT; the outcome as a word, and a new offer on failure."""
    try:
        async with db.session() as session:
            await callbacks.book(session, engine=engine, number=number, slot=SLOT,
                                 now=MONDAY_10, actor="customer")
        return "booked"
    except callbacks.SlotUnavailable:
        return "offer"


async def test_two_customers_racing_for_the_last_place_get_one_booking(
    db: Database, one_agent: Engine
) -> None:
    await load_demo_customers(db, one_agent, MONDAY_10)
    first = await ticket_of(db, one_agent, "it@stadtwerke-demo.de")  # Professional
    second = await ticket_of(db, one_agent, "it@logistik-nord.de")  # Standard
    other = Database(db.engine.url.render_as_string(hide_password=False)
                     .replace("+asyncpg", "").replace("+aiosqlite", ""))
    try:
        outcomes = await asyncio.gather(book(db, one_agent, first), book(other, one_agent,
                                                                         second))
    finally:
        await other.dispose()
    assert sorted(outcomes) == ["booked", "offer"]
    async with db.session() as session:
        booked = (await session.exec(select(CallbackBooking))).all()
    assert len(booked) == 1


async def test_the_loser_gets_a_new_offer_without_the_taken_slot(
    db: Database, one_agent: Engine
) -> None:
    await load_demo_customers(db, one_agent, MONDAY_10)
    winner = await ticket_of(db, one_agent, "it@stadtwerke-demo.de")
    loser = await ticket_of(db, one_agent, "it@logistik-nord.de")
    assert await book(db, one_agent, winner) == "booked"
    assert await book(db, one_agent, loser) == "offer"
    async with db.session() as session:
        ticket = await session.get(Ticket, loser)
        assert ticket is not None
        fresh = await callbacks.offer_for(session, engine=one_agent, ticket=ticket,
                                          now=MONDAY_10)
    assert len(fresh) == 3
    assert SLOT not in fresh


async def test_a_booking_plans_reminders_15_minutes_before(db: Database,
                                                           engine: Engine) -> None:
    await load_demo_customers(db, engine, MONDAY_10)
    number = await ticket_of(db, engine, "it@stadtwerke-demo.de")
    assert await book(db, engine, number) == "booked"
    async with db.session() as session:
        rows = (await session.exec(select(Reminder).where(col(Reminder.kind) == "callback")
                                   .order_by(col(Reminder.audience)))).all()
    assert [(r.audience, r.due_at) for r in rows] == [
        ("agents", SLOT - timedelta(minutes=15)), ("customer", SLOT - timedelta(minutes=15))]


async def test_the_first_answer_keeps_the_callback_reminders(db: Database,
                                                             engine: Engine) -> None:
    await load_demo_customers(db, engine, MONDAY_10)
    number = await ticket_of(db, engine, "it@stadtwerke-demo.de")
    await book(db, engine, number)
    async with db.session() as session:
        await deadlines.record_first_answer(session, number=number, now=MONDAY_10,
                                            actor="agent")
    async with db.session() as session:
        rows = (await session.exec(select(Reminder).where(col(Reminder.kind) == "callback")))
        assert [r.cancelled_at for r in rows.all()] == [None, None]


async def test_cancel_gives_back_the_place_and_the_callback(db: Database,
                                                           one_agent: Engine) -> None:
    await load_demo_customers(db, one_agent, MONDAY_10)
    number = await ticket_of(db, one_agent, "it@stadtwerke-demo.de")
    async with db.session() as session:
        ticket = await session.get(Ticket, number)
        assert ticket is not None
        before = await callbacks.callbacks_left(session, engine=one_agent, ticket=ticket,
                                                now=MONDAY_10)
        booking = await callbacks.book(session, engine=one_agent, number=number, slot=SLOT,
                                       now=MONDAY_10, actor="customer")
    async with db.session() as session:
        assert booking.id is not None
        await callbacks.cancel_booking(session, booking_id=booking.id, now=MONDAY_10,
                                       actor="customer")
    async with db.session() as session:
        after = await callbacks.callbacks_left(session, engine=one_agent, ticket=ticket,
                                               now=MONDAY_10)
        reminders = (await session.exec(select(Reminder).where(
            col(Reminder.kind) == "callback"))).all()
    assert after == before
    assert [r.reason for r in reminders] == ["callback cancelled"] * 2
    other = await ticket_of(db, one_agent, "it@logistik-nord.de")
    assert await book(db, one_agent, other) == "booked"  # the place is free again


async def test_rebook_moves_the_booking(db: Database, engine: Engine) -> None:
    await load_demo_customers(db, engine, MONDAY_10)
    number = await ticket_of(db, engine, "it@stadtwerke-demo.de")
    later = SLOT + timedelta(hours=1)
    async with db.session() as session:
        first = await callbacks.book(session, engine=engine, number=number, slot=SLOT,
                                     now=MONDAY_10, actor="customer")
    async with db.session() as session:
        assert first.id is not None
        moved = await callbacks.rebook(session, engine=engine, booking_id=first.id, slot=later,
                                       now=MONDAY_10, actor="customer")
    assert moved.slot_start == later


async def test_a_plan_without_callbacks_cannot_book(db: Database, engine: Engine) -> None:
    await load_demo_customers(db, engine, MONDAY_10)
    number = await ticket_of(db, engine, "it@kanzlei-weber.de")  # Basic Plus: no callbacks
    with pytest.raises(callbacks.NoCallbacksLeft):
        async with db.session() as session:
            await callbacks.book(session, engine=engine, number=number, slot=SLOT,
                                 now=MONDAY_10, actor="customer")


async def test_a_booking_is_confirmed_with_an_invitation_and_asks_for_a_phone(
    db: Database, engine: Engine
) -> None:
    await load_demo_customers(db, engine, MONDAY_10)
    number = await ticket_of(db, engine, "it@stadtwerke-demo.de")
    async with db.session() as session:
        await callbacks.book(session, engine=engine, number=number, slot=SLOT, now=MONDAY_10,
                             actor="customer", sender=("support@nettask.de", "NetTask Support"))
    async with db.session() as session:
        [sent] = (await session.exec(select(Message).where(
            col(Message.direction) == "out", col(Message.ticket_number) == number))).all()
    mail = email.message_from_bytes(sent.raw or b"", policy=email.policy.default)
    [invitation] = [p for p in mail.walk() if p.get_content_type() == "text/calendar"]
    assert "DTSTART:20261123T130000Z" in invitation.get_content()
    assert "Unter welcher Telefonnummer erreichen wir Sie?" in sent.text
    assert "noch 24 übrig" in sent.text  # Professional: 25 callbacks a month


async def test_a_callback_that_has_begun_cannot_be_cancelled(db: Database,
                                                             engine: Engine) -> None:
    await load_demo_customers(db, engine, MONDAY_10)
    number = await ticket_of(db, engine, "it@stadtwerke-demo.de")
    async with db.session() as session:
        booking = await callbacks.book(session, engine=engine, number=number, slot=SLOT,
                                       now=MONDAY_10, actor="customer")
    assert booking.id is not None
    with pytest.raises(callbacks.CallStarted):
        async with db.session() as session:
            await callbacks.cancel_booking(session, booking_id=booking.id, now=SLOT,
                                           actor="customer")
    async with db.session() as session:
        after = await session.get(CallbackBooking, booking.id)
    assert after is not None
    assert after.status == "booked"


async def test_without_a_triage_post_a_booking_queues_nothing_for_slack(
    db: Database, engine: Engine
) -> None:
    await load_demo_customers(db, engine, MONDAY_10)
    number = await ticket_of(db, engine, "it@stadtwerke-demo.de")
    async with db.session() as session:
        booking = await callbacks.book(session, engine=engine, number=number, slot=SLOT,
                                       now=MONDAY_10, actor="customer")
    assert booking.id is not None
    async with db.session() as session:
        await callbacks.cancel_booking(session, booking_id=booking.id, now=MONDAY_10,
                                       actor="customer")
    async with db.session() as session:
        assert (await session.exec(select(SlackCall))).all() == []
