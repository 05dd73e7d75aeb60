"""Use cases on telephone callbacks: offer free slots, book one atomically, cancel and rebook.

Each runs in the caller's transaction. A booking takes a place on the slot (never more than
the callback agents) and one callback of the month; if either is gone the function raises and
the caller's transaction rolls back, so nothing half-booked remains. The caller then offers
anew (`offer_for`). A booking plans reminders to the customer and the agents before the call.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.domain import Audience
from bot.sla.allowances import usage_month
from bot.sla.callbacks import bookable, offer
from bot.sla.engine import Engine
from bot.sla.rules import PlanRule
from models import callbacks as repo
from models import reminders as reminder_repo
from models.tables import CallbackBooking, Ticket
from models.tickets import allowance_used, audit, claim_allowance, get_ticket

log = logging.getLogger(__name__)

CALLBACK = "callback"  # the Usage kind, and the Reminder kind of the reminder before a call
HORIZON = timedelta(days=60)


class CallbackError(Exception):
    """A booking that cannot be made; the message says why."""


class SlotUnavailable(CallbackError):
    """The slot is full, held for priority plans, too soon, or not a slot at all."""


class NoCallbacksLeft(CallbackError):
    """The customer's plan has no callbacks (left) this month."""


def _plan(engine: Engine, ticket: Ticket) -> PlanRule | None:
    return engine.plan_rule(ticket.product, ticket.plan) if ticket.plan else None


async def callbacks_left(session: AsyncSession, *, engine: Engine, ticket: Ticket,
                         now: datetime) -> int:
    """How many callbacks the ticket's customer has left this month on its product line."""
    plan = _plan(engine, ticket)
    if plan is None or ticket.customer_id is None or plan.callbacks == 0:
        return 0
    used = await allowance_used(session, customer_id=ticket.customer_id, product=ticket.product,
                                month=usage_month(now, engine.calendar.zone), kind=CALLBACK)
    return max(plan.callbacks - used, 0)


async def offer_for(session: AsyncSession, *, engine: Engine, ticket: Ticket,
                    now: datetime) -> list[datetime]:
    """The slots to offer this ticket's customer now; empty when no callback is left."""
    if await callbacks_left(session, engine=engine, ticket=ticket, now=now) == 0:
        return []
    plan = _plan(engine, ticket)
    counts = await repo.slot_counts(session, now, now + HORIZON)
    return offer(engine.calendar, engine.policy.callbacks, now=now, booked=counts,
                 priority=bool(plan and plan.priority))


async def book(session: AsyncSession, *, engine: Engine, number: int, slot: datetime,
               now: datetime, actor: str, phone: str | None = None) -> CallbackBooking:
    """Book `slot` for ticket `number`; SlotUnavailable or NoCallbacksLeft when it cannot be."""
    ticket = await get_ticket(session, number)
    if ticket is None:
        raise CallbackError(f"no ticket NT#{number}")
    plan = _plan(engine, ticket)
    if plan is None or ticket.customer_id is None or plan.callbacks == 0:
        raise NoCallbacksLeft(f"NT#{number}: the customer's plan includes no callbacks")
    rule = engine.policy.callbacks
    counts = await repo.slot_counts(session, slot, slot)
    if not bookable(engine.calendar, rule, now=now, slot=slot, booked=counts.get(slot, 0),
                    priority=plan.priority):
        raise SlotUnavailable(f"NT#{number}: the slot {slot.isoformat()} cannot be booked")
    if not await repo.take_slot(session, slot, rule.agents):
        raise SlotUnavailable(f"NT#{number}: the slot {slot.isoformat()} was just taken")
    month = usage_month(now, engine.calendar.zone)
    if await claim_allowance(session, customer_id=ticket.customer_id, product=ticket.product,
                             month=month, kind=CALLBACK, limit=plan.callbacks) is None:
        raise NoCallbacksLeft(f"NT#{number}: no callbacks left in {month}")
    booking = CallbackBooking(
        ticket_number=number, customer_id=ticket.customer_id, product=ticket.product,
        usage_month=month, slot_start=slot,
        slot_end=slot + timedelta(minutes=rule.slot_minutes), status=repo.BOOKED,
        phone=phone, created_at=now)
    session.add(booking)
    await session.flush()
    assert booking.id is not None
    before = slot - timedelta(minutes=rule.reminder_minutes)
    await reminder_repo.add_reminders(
        session, number, ((CALLBACK, audience.value, max(before, now))
                          for audience in (Audience.CUSTOMER, Audience.AGENTS)),
        booking_id=booking.id)
    await audit(session, ticket_number=number, actor=actor, action="callback_booked", now=now,
                slot=slot, booking=booking.id, phone_known=bool(phone))
    log.info("event=callback_booked ticket=%s booking=%s slot=%s", number, booking.id,
             slot.isoformat())
    return booking


async def cancel_booking(session: AsyncSession, *, booking_id: int, now: datetime,
                         actor: str) -> CallbackBooking:
    """Cancel a booking: the slot's place and the month's callback are given back."""
    booking = await session.get(CallbackBooking, booking_id)
    if booking is None:
        raise CallbackError(f"no callback booking {booking_id}")
    if booking.status != repo.BOOKED:
        return booking
    booking.status, booking.cancelled_at = repo.CANCELLED, now
    session.add(booking)
    await repo.give_slot(session, booking.slot_start)
    await repo.give_back(session, customer_id=booking.customer_id, product=booking.product,
                         month=booking.usage_month, kind=CALLBACK)
    await reminder_repo.cancel_booking_reminders(session, booking_id, now=now)
    await audit(session, ticket_number=booking.ticket_number, actor=actor,
                action="callback_cancelled", now=now, booking=booking_id,
                slot=booking.slot_start)
    return booking


async def rebook(session: AsyncSession, *, engine: Engine, booking_id: int, slot: datetime,
                 now: datetime, actor: str) -> CallbackBooking:
    """Move a booking to another slot: cancel, then book, in one transaction."""
    old = await cancel_booking(session, booking_id=booking_id, now=now, actor=actor)
    return await book(session, engine=engine, number=old.ticket_number, slot=slot, now=now,
                      actor=actor, phone=old.phone)
