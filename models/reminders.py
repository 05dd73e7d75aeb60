"""Reminder repository: rows written with the ticket, claimed exactly once, then marked sent.

Whoever changes reminder rows calls `changed(session)`: after the transaction commits, every
registered hook runs (the scheduler re-arms its wake-up). The hooks are process-wide because
the sessions that write rows (mail intake, Slack actions, the CLI) do not know the scheduler.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.commit_hooks import CommitHooks, Hook
from models.tables import Reminder, Ticket

_changed_hooks = CommitHooks("reminders_changed")


def on_change(hook: Hook) -> Callable[[], None]:
    """Run `hook` after every commit that changed reminder rows; returns the unsubscriber."""
    return _changed_hooks.subscribe(hook)


def changed(session: AsyncSession) -> None:
    """Note that this transaction changed reminder rows: the hooks run after it commits."""
    _changed_hooks.note(session)


def _pending() -> list[Any]:
    return [col(Reminder.sent_at).is_(None), col(Reminder.cancelled_at).is_(None)]


def _ready_at() -> Any:
    return func.coalesce(col(Reminder.next_attempt_at), col(Reminder.due_at))


async def add_reminders(session: AsyncSession, ticket_number: int,
                        due: Iterable[tuple[str, str, datetime]],
                        booking_id: int | None = None) -> int:
    """Insert (kind, audience, due_at) rows for a ticket (or one of its callbacks); how many."""
    rows = [Reminder(ticket_number=ticket_number, kind=kind, audience=audience, due_at=due_at,
                     booking_id=booking_id)
            for kind, audience, due_at in due]
    session.add_all(rows)
    if rows:
        changed(session)
    return len(rows)


async def cancel_pending(session: AsyncSession, ticket_number: int, *, now: datetime,
                         reason: str) -> int:
    """Cancel a ticket's pending deadline reminders (claimed or not); how many.

    Reminders of a booked callback stay: the call still takes place after a first answer.
    """
    result = await session.exec(
        update(Reminder)
        .where(col(Reminder.ticket_number) == ticket_number, col(Reminder.booking_id).is_(None),
               *_pending())
        .values(cancelled_at=now, reason=reason)
        .returning(col(Reminder.id))
    )
    count = len(result.all())
    if count:
        changed(session)
    return count


async def cancel_booking_reminders(session: AsyncSession, booking_id: int, *,
                                   now: datetime) -> int:
    """Cancel the pending reminders of a cancelled callback booking; how many."""
    result = await session.exec(
        update(Reminder)
        .where(col(Reminder.booking_id) == booking_id, *_pending())
        .values(cancelled_at=now, reason="callback cancelled")
        .returning(col(Reminder.id)))
    count = len(result.all())
    if count:
        changed(session)
    return count


async def sent_kinds(session: AsyncSession, ticket_number: int,
                     since: datetime | None = None) -> set[tuple[str, str]]:
    """(kind, audience) of the reminders already sent for a ticket (at or after `since`)."""
    query = select(Reminder.kind, Reminder.audience).where(
        col(Reminder.ticket_number) == ticket_number, col(Reminder.sent_at).is_not(None))
    if since is not None:
        query = query.where(col(Reminder.sent_at) >= since)
    rows = await session.exec(query)
    return {(kind, audience) for kind, audience in rows.all()}


async def pending_for(session: AsyncSession, ticket_number: int) -> list[Reminder]:
    """A ticket's pending reminders, earliest first."""
    rows = await session.exec(
        select(Reminder).where(col(Reminder.ticket_number) == ticket_number, *_pending())
        .order_by(col(Reminder.due_at), col(Reminder.id))
    )
    return list(rows.all())


async def next_due(session: AsyncSession) -> datetime | None:
    """When the earliest unclaimed pending reminder is ready, or None when there is none."""
    row = (await session.exec(
        select(Reminder.next_attempt_at, Reminder.due_at)
        .where(*_pending(), col(Reminder.claimed_at).is_(None))
        .order_by(_ready_at()).limit(1)
    )).first()
    if row is None:
        return None
    return row[0] or row[1]


async def claim_due(session: AsyncSession, *, now: datetime, owner: str, limit: int = 200,
                    late_after: timedelta = timedelta(seconds=5)) -> list[Reminder]:
    """Claim up to `limit` ready reminders for `owner` in one conditional UPDATE.

    A row is claimed by at most one caller: PostgreSQL skips rows another transaction holds
    and re-checks `claimed_at IS NULL` on the row it updates; SQLite has one writer at a time.
    """
    ready = (
        select(col(Reminder.id))
        .where(*_pending(), col(Reminder.claimed_at).is_(None), _ready_at() <= now)
        .order_by(_ready_at(), col(Reminder.id))
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        ready = ready.with_for_update(skip_locked=True)
    result = await session.exec(
        update(Reminder)
        .where(col(Reminder.id).in_(ready.scalar_subquery()), *_pending(),
               col(Reminder.claimed_at).is_(None))
        .values(claimed_at=now, claimed_by=owner, attempts=col(Reminder.attempts) + 1,
                late=col(Reminder.late) | (col(Reminder.due_at) < now - late_after))
        .returning(Reminder)
    )
    claimed = list(result.scalars().all())
    return sorted(claimed, key=lambda r: (r.due_at, r.id or 0))


async def mark_sent(session: AsyncSession, reminder_id: int, *, owner: str,
                    now: datetime) -> Reminder | None:
    """Mark a claimed reminder sent; None when it was cancelled meanwhile (send nothing)."""
    result = await session.exec(
        update(Reminder)
        .where(col(Reminder.id) == reminder_id, col(Reminder.claimed_by) == owner, *_pending())
        .values(sent_at=now)
        .returning(Reminder)
    )
    return result.scalars().first()


async def cancel_claimed(session: AsyncSession, reminder_ids: list[int], *, owner: str,
                         now: datetime, reason: str) -> None:
    """Cancel claimed reminders instead of sending them."""
    if reminder_ids:
        await session.exec(
            update(Reminder)
            .where(col(Reminder.id).in_(reminder_ids), col(Reminder.claimed_by) == owner,
                   *_pending())
            .values(cancelled_at=now, reason=reason))


async def mark_sent_many(session: AsyncSession, reminder_ids: list[int], *, owner: str,
                         now: datetime) -> list[Reminder]:
    """Mark several claimed reminders sent; those cancelled meanwhile are left out."""
    result = await session.exec(
        update(Reminder)
        .where(col(Reminder.id).in_(reminder_ids), col(Reminder.claimed_by) == owner,
               *_pending())
        .values(sent_at=now)
        .returning(Reminder)
    )
    return sorted(result.scalars().all(), key=lambda r: (r.due_at, r.id or 0))


async def tickets_by_number(session: AsyncSession, numbers: set[int]) -> dict[int, Ticket]:
    """Tickets by number, in one query."""
    rows = await session.exec(select(Ticket).where(col(Ticket.number).in_(numbers)))
    return {t.number: t for t in rows.all() if t.number is not None}


async def record_failure(session: AsyncSession, reminder_id: int, *, owner: str, now: datetime,
                         error: str, retry_at: datetime | None) -> None:
    """Give a claimed reminder back for a retry at `retry_at`, or give up when None."""
    values: dict[str, Any] = {"claimed_at": None, "claimed_by": None, "reason": error[:2000]}
    if retry_at is None:
        values = {"cancelled_at": now, "reason": f"failed: {error}"[:2000]}
    else:
        values["next_attempt_at"] = retry_at
    await session.exec(
        update(Reminder)
        .where(col(Reminder.id) == reminder_id, col(Reminder.claimed_by) == owner, *_pending())
        .values(**values)
    )
    changed(session)


async def release_claims(session: AsyncSession) -> int:
    """Release claims on unsent reminders: a new leader's first step (their owner is gone)."""
    result = await session.exec(
        update(Reminder)
        .where(*_pending(), col(Reminder.claimed_at).is_not(None))
        .values(claimed_at=None, claimed_by=None)
        .returning(col(Reminder.id))
    )
    return len(result.all())


async def running_tickets(session: AsyncSession,
                          statuses: tuple[str, ...]) -> list[tuple[Ticket, Reminder | None]]:
    """Unanswered tickets in these states with a deadline, and each one's next reminder."""
    tickets = list((await session.exec(
        select(Ticket).where(col(Ticket.status).in_(statuses),
                             col(Ticket.first_response_at).is_(None),
                             col(Ticket.due_at).is_not(None))
    )).all())
    numbers = [t.number for t in tickets]
    upcoming = (await session.exec(
        select(Reminder).where(col(Reminder.ticket_number).in_(numbers), *_pending())
        .order_by(col(Reminder.due_at), col(Reminder.id))
    )).all() if numbers else []
    first: dict[int, Reminder] = {}
    for reminder in upcoming:
        first.setdefault(reminder.ticket_number, reminder)
    return [(t, first.get(t.number or 0)) for t in tickets]
