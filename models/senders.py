"""What one sender or customer did lately, and what we sent on a ticket: the evidence that
flood control and consent need.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func
from sqlalchemy.orm import load_only
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.tables import Message, Ticket


@dataclass(frozen=True)
class RecentTicket:
    """A ticket a sender's mail opened lately, with that mail's text."""

    number: int
    status: str
    text: str
    subject: str
    opened_at: datetime


# what tickets_opened_by reads of a message: not its raw bytes, up to the size limit each
RECENT_COLUMNS = load_only(*(getattr(Message, name) for name in
                             ("ticket_number", "text", "subject", "created_at")))


async def serialise(session: AsyncSession, key: str) -> None:
    """Hold a lock on `key` until the transaction ends (PostgreSQL; SQLite has one writer)."""
    if session.get_bind().dialect.name == "postgresql":
        await session.exec(select(func.pg_advisory_xact_lock(func.hashtext(key))))


async def tickets_opened_by(session: AsyncSession, *, sender: str, channel: str,
                            since: datetime, customer_id: int | None) -> list[RecentTicket]:
    """Tickets of one customer (None: of no customer) opened by `sender`'s messages since
    `since`, newest first."""
    same_customer = (col(Ticket.customer_id).is_(None) if customer_id is None
                     else col(Ticket.customer_id) == customer_id)
    rows = await session.exec(
        select(Message, Ticket.status)
        .options(RECENT_COLUMNS)
        .join(Ticket, col(Ticket.number) == col(Message.ticket_number))
        .where(Message.direction == "in", Message.channel == channel,
               Message.sender == sender, Message.disposition == "ticket",
               col(Message.created_at) >= since, same_customer)
        .order_by(col(Message.id).desc())
    )
    return [RecentTicket(int(m.ticket_number), status, m.text, m.subject, m.created_at)
            for m, status in rows.all() if m.ticket_number is not None]


async def tickets_of_customer_since(session: AsyncSession, *, customer_id: int,
                                    since: datetime) -> list[tuple[int, str]]:
    """(number, status) of the customer's tickets created since `since`, newest first."""
    rows = await session.exec(
        select(Ticket.number, Ticket.status)
        .where(Ticket.customer_id == customer_id, col(Ticket.created_at) >= since)
        .order_by(col(Ticket.number).desc())
    )
    return [(int(n), s) for n, s in rows.all() if n is not None]


async def sent_on_ticket(session: AsyncSession, *, ticket_number: int,
                         ids: list[str]) -> str | None:
    """The first of `ids` that is a message we sent on this ticket, or None."""
    if not ids:
        return None
    rows = await session.exec(
        select(Message.external_id).where(
            Message.direction == "out", Message.ticket_number == ticket_number,
            col(Message.external_id).in_(ids),
        )
    )
    found = set(rows.all())
    return next((i for i in ids if i in found), None)
