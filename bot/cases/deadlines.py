"""Use cases on a ticket's deadline reminders; each runs in the caller's transaction.

Reminder rows change together with the ticket: planned when its clock starts, re-planned when
its severity or department changes or a pause ends, cancelled by the first answer, a close or
a pause, planned afresh when a follow-up reopens a closed ticket (a new first-response window
from the reopen: reminders sent in an earlier window do not count). Waiting on the customer
stops the clock: the clock time spent waiting (open time for a business-hours ticket) is added
to every point, the deadline included.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from decimal import Decimal

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.domain import Clock, Language, Severity, TicketStatus
from bot.sla.engine import Engine
from bot.sla.reminders import TicketClock, clock_elapsed, deadline, plan, still_to_send
from models import reminders as repo
from models.tables import Ticket
from models.tickets import audit

log = logging.getLogger(__name__)

# the clock runs (and reminders are due) only in these states
RUNNING = (TicketStatus.OPEN,)


class TicketNotFound(LookupError):
    """No ticket has that number."""


def ticket_clock(ticket: Ticket) -> TicketClock | None:
    """The ticket's first-response clock, or None before it started (consent, unverified)."""
    if ticket.accepted_at is None or ticket.target_hours is None or ticket.clock is None:
        return None
    return TicketClock(accepted_at=ticket.accepted_at,
                       target_hours=Decimal(str(ticket.target_hours)), clock=Clock(ticket.clock),
                       paused=timedelta(seconds=ticket.paused_seconds))


def _running(ticket: Ticket) -> bool:
    return ticket.status in RUNNING and ticket.first_response_at is None


async def plan_reminders(session: AsyncSession, *, engine: Engine, ticket: Ticket,
                         now: datetime) -> int:
    """Store the reminders still to come for a running ticket; how many."""
    running = ticket_clock(ticket)
    if running is None or not _running(ticket):
        return 0
    assert ticket.number is not None
    due = plan(engine.calendar, engine.policy.reminders, running, Severity(ticket.severity))
    sent = await repo.sent_kinds(session, ticket.number, since=running.accepted_at)
    keep = still_to_send(due, sent=sent, now=now)
    count = await repo.add_reminders(
        session, ticket.number, ((d.kind, d.audience.value, d.due_at) for d in keep))
    log.info("event=reminders_planned ticket=%s count=%s first=%s", ticket.number, count,
             keep[0].due_at.isoformat() if keep else "-")
    return count


async def cancel(session: AsyncSession, *, ticket: Ticket, now: datetime, reason: str) -> int:
    """Cancel the ticket's pending reminders; how many."""
    assert ticket.number is not None
    count = await repo.cancel_pending(session, ticket.number, now=now, reason=reason)
    if count:
        log.info("event=reminders_cancelled ticket=%s count=%s reason=%s", ticket.number, count,
                 reason)
    return count


async def reschedule(session: AsyncSession, *, engine: Engine, ticket: Ticket,
                     now: datetime) -> int:
    """Re-time a ticket after a change of severity or department: target, deadline, reminders.

    Call it after setting the new values on `ticket`. What was sent is not repeated; points
    now in the past are dropped, except an overdue deadline, which is reported at once.
    """
    rule = engine.ticket_plan(ticket.product, ticket.plan, ticket.plan_terms)
    target, clock = engine.first_response_target(
        rule, Severity(ticket.severity), Language(ticket.language), ticket.billable)
    ticket.target_hours, ticket.clock = float(target), clock.value
    running = ticket_clock(ticket)
    if running is not None:
        ticket.due_at = deadline(engine.calendar, running)
    if (ticket.breached_at is not None and ticket.first_response_at is None
            and ticket.due_at is not None and ticket.due_at > now):
        ticket.breached_at = None  # a longer window (a lower severity): not breached after all
    session.add(ticket)
    await cancel(session, ticket=ticket, now=now, reason="rescheduled")
    return await plan_reminders(session, engine=engine, ticket=ticket, now=now)


async def _load(session: AsyncSession, number: int) -> Ticket:
    """The ticket, its row locked until the transaction ends: two agents' clicks, or a click and
    the customer's reply, change it one after the other (a pause is never added twice)."""
    ticket = (await session.exec(
        select(Ticket).where(col(Ticket.number) == number).with_for_update()
        .execution_options(populate_existing=True))).first()
    if ticket is None:
        raise TicketNotFound(f"no ticket NT#{number}")
    return ticket


async def record_breach(session: AsyncSession, ticket: Ticket, now: datetime) -> bool:
    """The deadline passed without a first answer: `breached_at` is the deadline, set once, in
    the transaction that sends the reminder due at (or after) it; True when set now."""
    if (ticket.breached_at is not None or ticket.due_at is None or now < ticket.due_at
            or ticket.first_response_at is not None or ticket.status != TicketStatus.OPEN):
        return False
    ticket.breached_at = ticket.due_at
    session.add(ticket)
    assert ticket.number is not None
    await audit(session, ticket_number=ticket.number, actor="reminders", action="breached",
                now=now, due=ticket.due_at)
    log.info("event=deadline_breached ticket=%s due=%s", ticket.number,
             ticket.due_at.isoformat())
    return True


async def record_first_answer(session: AsyncSession, *, number: int, now: datetime,
                              actor: str) -> Ticket:
    """An agent answered the customer: the deadline is met (or not), reminders stop."""
    ticket = await _load(session, number)
    if ticket.first_response_at is not None:
        return ticket
    ticket.first_response_at = now
    if ticket.status in (TicketStatus.OPEN, TicketStatus.WAITING_CUSTOMER):
        ticket.status = TicketStatus.ANSWERED
    met = ticket.due_at is None or now <= ticket.due_at
    if not met:
        ticket.breached_at = ticket.breached_at or ticket.due_at
    session.add(ticket)
    await cancel(session, ticket=ticket, now=now, reason="answered")
    await audit(session, ticket_number=number, actor=actor, action="first_response", now=now,
                deadline_met=met)
    return ticket


async def close(session: AsyncSession, *, number: int, now: datetime, actor: str) -> Ticket:
    """Close a ticket; its pending reminders are cancelled."""
    ticket = await _load(session, number)
    ticket.status, ticket.closed_at = TicketStatus.CLOSED, now
    session.add(ticket)
    await cancel(session, ticket=ticket, now=now, reason="closed")
    await audit(session, ticket_number=number, actor=actor, action="closed", now=now)
    return ticket


async def wait_for_customer(session: AsyncSession, *, number: int, now: datetime,
                            actor: str) -> Ticket:
    """Stop the clock while an agent waits on the customer; pending reminders are cancelled."""
    ticket = await _load(session, number)
    if ticket.status != TicketStatus.OPEN:
        raise ValueError(f"NT#{number} is {ticket.status}: only an open ticket can wait")
    ticket.status, ticket.paused_at = TicketStatus.WAITING_CUSTOMER, now
    session.add(ticket)
    await cancel(session, ticket=ticket, now=now, reason="paused")
    await audit(session, ticket_number=number, actor=actor, action="waiting_for_customer",
                now=now)
    return ticket


async def resume(session: AsyncSession, *, engine: Engine, number: int, now: datetime,
                 actor: str) -> Ticket:
    """Restart the clock: the time waited is added to the deadline and every reminder."""
    ticket = await _load(session, number)
    if ticket.status != TicketStatus.WAITING_CUSTOMER or ticket.paused_at is None:
        return ticket
    assert ticket.clock is not None
    waited = clock_elapsed(engine.calendar, Clock(ticket.clock), ticket.paused_at, now)
    ticket.paused_seconds += waited.total_seconds()
    ticket.status, ticket.paused_at = TicketStatus.OPEN, None
    running = ticket_clock(ticket)
    if running is not None:
        ticket.due_at = deadline(engine.calendar, running)
    session.add(ticket)
    await audit(session, ticket_number=number, actor=actor, action="clock_resumed", now=now,
                paused_seconds=waited.total_seconds(), due=ticket.due_at)
    await plan_reminders(session, engine=engine, ticket=ticket, now=now)
    return ticket


async def reopen(session: AsyncSession, *, engine: Engine, number: int, now: datetime,
                 actor: str, message: str) -> Ticket:
    """A proven follow-up reopens a closed ticket: it waits for a first answer again.

    Its new deadline is its severity's window (as the policy gives it today), counted from the
    reopen; its reminders are planned in this transaction. A ticket whose clock never ran
    reopens where it stood: closed while a quote waited, it awaits the consent again (a
    billable incident is never worked on without a yes); closed before its sender was
    confirmed, it waits for that again. The old window stays in the audit trail.
    """
    ticket = await _load(session, number)
    previous = {"previous_due": ticket.due_at, "previous_first_response": ticket.first_response_at}
    ticket.status, ticket.closed_at = TicketStatus.OPEN, None
    if ticket.accepted_at is None and "sender_unverified" in ticket.flags.split(","):
        ticket.status = TicketStatus.UNVERIFIED
    elif ticket.accepted_at is None and ticket.billable and not ticket.consent:
        ticket.status, ticket.consent, ticket.consent_at = (TicketStatus.AWAITING_CONSENT,
                                                            None, None)
    session.add(ticket)
    if ticket.accepted_at is not None:
        ticket.accepted_at, ticket.first_response_at, ticket.breached_at = now, None, None
        ticket.paused_at, ticket.paused_seconds = None, 0.0
        await reschedule(session, engine=engine, ticket=ticket, now=now)
    await audit(session, ticket_number=number, actor=actor, action="reopened", now=now,
                message=message, due=ticket.due_at, status=ticket.status, **previous)
    return ticket
