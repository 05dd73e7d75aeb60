"""Ticket repository: allowances claimed atomically, tickets, and their audit trail."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import func, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.tables import AuditEvent, Message, Ticket, Usage


def _insert_usage_row(dialect: str, key: dict[str, Any]) -> Any:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(Usage).values(**key, used=0).on_conflict_do_nothing()


async def claim_allowance(
    session: AsyncSession, *, customer_id: int, product: str, month: str, kind: str, limit: int
) -> int | None:
    """Take one unit of a monthly allowance; the new count, or None when none is left.

    One conditional UPDATE does the check and the increment, so concurrent claims never
    exceed `limit` on either database (PostgreSQL re-checks the row after a concurrent update).
    """
    if limit <= 0:
        return None
    key = {"customer_id": customer_id, "product": product, "month": month, "kind": kind}
    dialect = session.get_bind().dialect.name
    await session.exec(_insert_usage_row(dialect, key))
    result = await session.exec(
        update(Usage)
        .where(
            col(Usage.customer_id) == customer_id,
            col(Usage.product) == product,
            col(Usage.month) == month,
            col(Usage.kind) == kind,
            col(Usage.used) < limit,
        )
        .values(used=col(Usage.used) + 1)
        .returning(col(Usage.used))
    )
    row = result.first()
    return None if row is None else int(row[0])


async def release_allowance(
    session: AsyncSession, *, customer_id: int, product: str, month: str, kind: str
) -> None:
    """Give back one unit of a monthly allowance (a ticket no longer uses it); never below 0."""
    await session.exec(
        update(Usage)
        .where(col(Usage.customer_id) == customer_id, col(Usage.product) == product,
               col(Usage.month) == month, col(Usage.kind) == kind, col(Usage.used) > 0)
        .values(used=col(Usage.used) - 1))


async def allowance_used(
    session: AsyncSession, *, customer_id: int, product: str, month: str, kind: str
) -> int:
    """How much of an allowance is used this month."""
    usage = await session.get(Usage, (customer_id, product, month, kind))
    return 0 if usage is None else usage.used


async def audit(
    session: AsyncSession,
    *,
    ticket_number: int | None,
    actor: str,
    action: str,
    now: datetime,
    **detail: Any,
) -> None:
    """Append one event to the audit trail."""
    session.add(
        AuditEvent(
            ticket_number=ticket_number,
            at=now,
            actor=actor,
            action=action,
            detail=json.dumps(detail, default=str, sort_keys=True),
        )
    )


async def count_audit(session: AsyncSession, *, ticket_number: int, action: str,
                      since: datetime) -> int:
    """How many `action` events the ticket's audit trail has had since `since`."""
    rows = await session.exec(
        select(func.count()).select_from(AuditEvent)
        .where(AuditEvent.ticket_number == ticket_number, AuditEvent.action == action,
               col(AuditEvent.at) >= since)
    )
    return int(rows.one())


async def add_ticket(session: AsyncSession, ticket: Ticket) -> Ticket:
    """Insert a ticket and return it with its number."""
    session.add(ticket)
    await session.flush()
    return ticket


async def get_ticket(session: AsyncSession, number: int) -> Ticket | None:
    """One ticket by number."""
    return await session.get(Ticket, number)


async def lock_ticket(session: AsyncSession, number: int) -> Ticket | None:
    """One ticket by number, read afresh and locked until the transaction ends (PostgreSQL;
    SQLite has one writer), so that two answers to one quote, or an answer and a new price,
    take turns."""
    rows = await session.exec(select(Ticket).where(Ticket.number == number).with_for_update()
                              .execution_options(populate_existing=True))
    return rows.first()


async def list_tickets(session: AsyncSession, *, limit: int = 200) -> list[Ticket]:
    """The newest tickets first."""
    rows = await session.exec(select(Ticket).order_by(col(Ticket.number).desc()).limit(limit))
    return list(rows.all())


async def ticket_history(
    session: AsyncSession, number: int
) -> tuple[list[Message], list[AuditEvent]]:
    """A ticket's messages and audit events, oldest first."""
    messages = await session.exec(
        select(Message).where(Message.ticket_number == number).order_by(col(Message.id))
    )
    events = await session.exec(
        select(AuditEvent)
        .where(AuditEvent.ticket_number == number)
        .order_by(col(AuditEvent.at), col(AuditEvent.id))
    )
    return list(messages.all()), list(events.all())
