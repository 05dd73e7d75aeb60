"""Callback bookings: a per-slot counter taken in one conditional UPDATE, so a slot never has
more bookings than callback agents, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.tables import CallbackBooking, CallbackSlot, Usage

BOOKED, CANCELLED = "booked", "cancelled"


async def slot_counts(session: AsyncSession, since: datetime,
                      until: datetime) -> dict[datetime, int]:
    """Bookings per slot start in [since, until]."""
    rows = await session.exec(
        select(CallbackSlot).where(col(CallbackSlot.slot_start) >= since,
                                   col(CallbackSlot.slot_start) <= until,
                                   col(CallbackSlot.booked) > 0))
    return {row.slot_start: row.booked for row in rows.all()}


async def take_slot(session: AsyncSession, slot_start: datetime, capacity: int) -> bool:
    """Count one booking on the slot if it has room; False when it is full."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" \
        else sqlite.insert
    await session.exec(insert(CallbackSlot).values(slot_start=slot_start, booked=0)
                       .on_conflict_do_nothing())
    result = await session.exec(
        update(CallbackSlot)
        .where(col(CallbackSlot.slot_start) == slot_start, col(CallbackSlot.booked) < capacity)
        .values(booked=col(CallbackSlot.booked) + 1)
        .returning(col(CallbackSlot.booked)))
    return result.first() is not None


async def give_slot(session: AsyncSession, slot_start: datetime) -> None:
    """Free one booking's place on the slot."""
    await session.exec(
        update(CallbackSlot)
        .where(col(CallbackSlot.slot_start) == slot_start, col(CallbackSlot.booked) > 0)
        .values(booked=col(CallbackSlot.booked) - 1))


async def give_back(session: AsyncSession, *, customer_id: int, product: str, month: str,
                    kind: str) -> None:
    """Return one unit of a monthly allowance (a cancelled callback)."""
    await session.exec(
        update(Usage)
        .where(col(Usage.customer_id) == customer_id, col(Usage.product) == product,
               col(Usage.month) == month, col(Usage.kind) == kind, col(Usage.used) > 0)
        .values(used=col(Usage.used) - 1))


async def active_booking(session: AsyncSession, ticket_number: int) -> CallbackBooking | None:
    """The ticket's booked (not cancelled) callback, if any."""
    rows = await session.exec(
        select(CallbackBooking).where(col(CallbackBooking.ticket_number) == ticket_number,
                                      col(CallbackBooking.status) == BOOKED))
    return rows.first()
