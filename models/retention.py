"""Raw bytes past their retention: found and cleared in small batches, by id."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.tables import Message, Ticket

# processing still needs these: a stored mail not yet read, a reply not yet delivered
IN_FLIGHT = ("pending", "queued")
FINISHED = ("closed", "declined")  # the states that set closed_at


@dataclass(frozen=True)
class Cleared:
    """What one batch removed."""

    messages: int
    bytes: int
    tickets: tuple[int, ...]


# the order of ix_message_raw_kept (SQLite keeps the row id last in every index): ordered by
# id alone, SQLite walked the whole message table in id order instead of that index
RAW_KEPT_ORDER = (col(Message.ticket_number), col(Message.created_at), col(Message.id))


def _kept_raw() -> list[Any]:
    # `raw IS NOT NULL` lets both queries read the partial index ix_message_raw_kept: the
    # messages still holding raw bytes, not the whole history
    return [col(Message.raw).is_not(None), col(Message.disposition).not_in(IN_FLIGHT)]


async def _expired(session: AsyncSession, cutoff: datetime,
                   limit: int) -> list[tuple[int, int | None, int]]:
    """(id, ticket, raw size) of up to `limit` messages past retention: their ticket closed
    before `cutoff`, or, belonging to no ticket, received before it; never one in flight."""
    size = func.length(Message.raw)
    # a scalar subquery per message (by the ticket's primary key), never a join: a planner may
    # hash-join a small history by scanning every ticket, which at years of history is the
    # whole table; this way the work is the messages still holding raw bytes, however old
    # the database
    closed_at = (select(Ticket.closed_at)
                 .where(col(Ticket.number) == col(Message.ticket_number),
                        col(Ticket.status).in_(FINISHED))
                 .scalar_subquery())
    of_closed = (await session.exec(
        select(Message.id, Message.ticket_number, size)
        .where(*_kept_raw(), col(Message.ticket_number).is_not(None), closed_at < cutoff)
        .order_by(*RAW_KEPT_ORDER).limit(limit))).all()
    of_none = (await session.exec(
        select(Message.id, Message.ticket_number, size)
        .where(*_kept_raw(), col(Message.ticket_number).is_(None),
               col(Message.created_at) < cutoff)
        .order_by(*RAW_KEPT_ORDER).limit(limit - len(of_closed)))).all() \
        if len(of_closed) < limit else []
    return [(int(i or 0), t, int(n or 0)) for i, t, n in [*of_closed, *of_none]]


async def clear_raw_batch(session: AsyncSession, *, cutoff: datetime, limit: int) -> Cleared:
    """Remove the raw bytes of at most `limit` expired messages, in the caller's (short)
    transaction; the text, subject, addresses and the message row itself stay."""
    rows = await _expired(session, cutoff, limit)
    if not rows:
        return Cleared(0, 0, ())
    ids = [i for i, _, _ in rows]
    await session.exec(
        update(Message).where(col(Message.id).in_(ids), col(Message.raw).is_not(None))
        .values(raw=None))
    tickets = tuple(sorted({int(t) for _, t, _ in rows if t is not None}))
    return Cleared(len(ids), sum(n for _, _, n in rows), tickets)
