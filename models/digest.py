"""What the daily digest reads, and its once-per-day claim."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, union
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.sla.digest import TicketFacts
from models.tables import CallbackBooking, DigestSent, Ticket

RUNNING = ("open", "waiting_customer")


async def ticket_facts(session: AsyncSession, since: datetime) -> list[TicketFacts]:
    """Tickets created, due or confirmed since `since`, and every unanswered one."""
    # the numbers first, by a union of four indexed searches, then the tickets by number:
    # SQLite read the whole ticket table for the four conditions joined by OR, and PostgreSQL
    # for the union as a subquery (a hash join)
    found = union(*(select(Ticket.number).where(condition) for condition in (
        col(Ticket.created_at) >= since, col(Ticket.due_at) >= since,
        col(Ticket.confirmed_at) >= since, col(Ticket.status).in_(RUNNING)))).subquery()
    numbers = [int(n) for n in (await session.exec(select(found.c.number))).all()]
    rows = await session.exec(select(Ticket).where(col(Ticket.number).in_(numbers)))
    return [
        TicketFacts(
            number=t.number or 0, product=t.product, plan=t.plan, status=t.status,
            created_at=t.created_at, due_at=t.due_at, first_response_at=t.first_response_at,
            billable=t.billable, consent=t.consent, price_cents=t.price_cents,
            included=t.included, confirmed_at=t.confirmed_at, breached_at=t.breached_at,
            agreed=None if t.predicted_department is None else (
                t.predicted_department == t.department
                and t.predicted_severity == t.severity),
        )
        for t in rows.all()
    ]


async def callbacks_booked(session: AsyncSession, start: datetime, end: datetime) -> int:
    """Callback bookings made in [start, end) and not cancelled."""
    row = await session.exec(select(func.count()).select_from(CallbackBooking).where(
        col(CallbackBooking.created_at) >= start, col(CallbackBooking.created_at) < end,
        col(CallbackBooking.status) == "booked"))
    return int(row.one())


async def claim_day(session: AsyncSession, day: str, *, now: datetime, owner: str) -> bool:
    """Take the digest of `day`; False when it was sent already."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" \
        else sqlite.insert
    result = await session.exec(
        insert(DigestSent).values(day=day, sent_at=now, sent_by=owner)
        .on_conflict_do_nothing().returning(col(DigestSent.day)))
    return result.first() is not None


LOOKBACK = timedelta(days=2)
