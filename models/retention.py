"""Raw bytes past their retention: found and cleared in small batches, by id."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, update
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


def _expired(cutoff: datetime) -> object:
    """Messages whose raw bytes are past retention: their ticket closed before `cutoff`, or,
    belonging to no ticket, received before it; never one still in flight."""
    closed_before = (
        select(Ticket.number)
        .where(col(Ticket.status).in_(FINISHED), col(Ticket.closed_at) < cutoff)
        .where(col(Ticket.number) == col(Message.ticket_number))
        .exists()
    )
    no_ticket = (col(Message.ticket_number).is_(None)) & (col(Message.created_at) < cutoff)
    return (col(Message.raw).is_not(None)
            & col(Message.disposition).not_in(IN_FLIGHT)
            & or_(closed_before, no_ticket))


async def clear_raw_batch(session: AsyncSession, *, cutoff: datetime, limit: int) -> Cleared:
    """Remove the raw bytes of at most `limit` expired messages, in the caller's (short)
    transaction; the text, subject, addresses and the message row itself stay."""
    rows = (await session.exec(
        select(Message.id, Message.ticket_number, func.length(Message.raw))
        .where(_expired(cutoff))  # type: ignore[arg-type]
        .order_by(col(Message.id)).limit(limit)
    )).all()
    if not rows:
        return Cleared(0, 0, ())
    ids = [int(i) for i, _, _ in rows if i is not None]
    await session.exec(
        update(Message).where(col(Message.id).in_(ids), col(Message.raw).is_not(None))
        .values(raw=None))
    tickets = tuple(sorted({int(t) for _, t, _ in rows if t is not None}))
    return Cleared(len(ids), sum(int(size or 0) for _, _, size in rows), tickets)
