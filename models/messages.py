"""Message repository: inbound mail stored once, outbound mail queued for delivery."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import case, func, or_
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.tables import Message

INBOUND, OUTBOUND = "in", "out"
ADDRESS_COLUMN = 320  # Message.sender and Message.recipient
REUSED = "message_id_reused"


def _column_text(value: str, size: int = ADDRESS_COLUMN) -> str:
    """Envelope text as the column can hold it: no NUL, at most `size` characters."""
    return value.replace("\x00", "")[:size]


async def store_inbound(
    session: AsyncSession,
    *,
    channel: str,
    external_id: str,
    digest: str,
    raw: bytes,
    sender: str,
    recipient: str,
    now: datetime,
) -> int | None:
    """Store a raw inbound message; its id, or None when the same message is stored already.

    The same message is the same external id with the same digest. The same external id with
    another digest is stored as a message of its own, flagged `message_id_reused`. The raw
    bytes are kept as received; the envelope sender and recipients are cut to the column size.
    """
    reused = (await session.exec(
        select(Message.id).where(
            Message.channel == channel, Message.direction == INBOUND,
            Message.external_id == external_id, Message.digest != digest,
        ).limit(1)
    )).first() is not None
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    statement = (
        insert(Message)
        .values(direction=INBOUND, channel=channel, external_id=external_id, digest=digest,
                raw=raw, sender=_column_text(sender), recipient=_column_text(recipient),
                text="", subject="", flags=REUSED if reused else "",
                disposition="pending", attempts=0, created_at=now)
        .on_conflict_do_nothing()
        .returning(col(Message.id))
    )
    row = (await session.exec(statement)).first()
    return None if row is None else int(row[0])


async def lock_message(session: AsyncSession, message_id: int) -> Message | None:
    """The message, locked against concurrent processing until the transaction ends."""
    result = await session.exec(
        select(Message).where(Message.id == message_id).with_for_update()
    )
    return result.first()


async def record_failure(session: AsyncSession, *, message_id: int, error: str, now: datetime,
                         max_attempts: int) -> int | None:
    """Count a failed processing attempt: retry later with backoff, or mark the message failed
    after the last one (it is never deleted). The attempts so far; None when not pending."""
    row = await lock_message(session, message_id)
    if row is None or row.disposition != "pending":
        return None
    row.attempts += 1
    row.reason = error[:2000]
    if row.attempts >= max_attempts:
        row.disposition, row.done_at = "failed", now
    else:
        row.next_attempt_at = now + timedelta(seconds=5 * 2 ** row.attempts)
    session.add(row)
    return row.attempts


async def pending_inbound(session: AsyncSession, *, now: datetime, limit: int = 500,
                          channel: str = "email") -> list[int]:
    """Inbound messages of one channel still to process whose retry time has come, oldest first.

    Each channel has its own worker: a Slack event must never reach the MIME parser.
    """
    rows = await session.exec(
        select(Message.id)
        .where(
            Message.direction == INBOUND,
            Message.channel == channel,
            Message.disposition == "pending",
            or_(col(Message.next_attempt_at).is_(None), col(Message.next_attempt_at) <= now),
        )
        .order_by(col(Message.id))
        .limit(limit)
    )
    return [int(i) for i in rows.all() if i is not None]


async def ticket_of_ids(session: AsyncSession, ids: list[str], sender: str) -> int | None:
    """The ticket a conversation belongs to, from Message-IDs it refers to.

    Our own (unguessable) ids decide first; then the newest message that belongs to a ticket.
    A message stored under an id used before (flagged `message_id_reused`) decides only for its
    own sender (a mail client that reuses its ids): whoever else knows a customer's Message-ID
    must not pull their replies into a ticket of his own.
    """
    if not ids:
        return None
    rows = await session.exec(
        select(Message.ticket_number)
        .where(col(Message.external_id).in_(ids), col(Message.ticket_number).is_not(None),
               or_(col(Message.direction) == OUTBOUND,
                   col(Message.flags).not_like(f"%{REUSED}%"), col(Message.sender) == sender))
        .order_by(case((col(Message.direction) == OUTBOUND, 0), else_=1), col(Message.id).desc())
        .limit(1)
    )
    found = rows.first()
    return None if found is None else int(found)


async def outbound_since(session: AsyncSession, *, recipient: str, since: datetime) -> int:
    """How many automatic replies went to `recipient` since `since`.

    On PostgreSQL this takes a transaction lock per recipient first, so that two mails of one
    sender processed at once cannot both see the count below a cap (SQLite's write lock
    already serialises them).
    """
    if session.get_bind().dialect.name == "postgresql":
        await session.exec(
            select(func.pg_advisory_xact_lock(func.hashtext(recipient)))
        )
    rows = await session.exec(
        select(func.count()).select_from(Message).where(
            Message.direction == OUTBOUND, Message.recipient == recipient,
            col(Message.created_at) >= since,
        )
    )
    return int(rows.one())


async def due_outbound(session: AsyncSession, *, now: datetime, limit: int = 100,
                       channel: str = "email") -> list[Message]:
    """Queued outbound messages of one channel whose (next) delivery attempt is due."""
    rows = await session.exec(
        select(Message)
        .where(
            Message.direction == OUTBOUND,
            Message.channel == channel,
            Message.disposition == "queued",
            or_(col(Message.next_attempt_at).is_(None), col(Message.next_attempt_at) <= now),
        )
        .order_by(col(Message.id))
        .limit(limit)
    )
    return list(rows.all())


async def list_inbound(session: AsyncSession, *, limit: int = 200) -> list[Message]:
    """The newest inbound messages first."""
    rows = await session.exec(
        select(Message).where(Message.direction == INBOUND)
        .order_by(col(Message.id).desc()).limit(limit)
    )
    return list(rows.all())


async def find(session: AsyncSession, direction: str, external_id: str) -> Message | None:
    """The newest message with this direction and external id (Message-ID)."""
    rows = await session.exec(
        select(Message).where(Message.direction == direction, Message.external_id == external_id)
        .order_by(col(Message.id).desc()).limit(1)
    )
    return rows.first()


async def reply_to(session: AsyncSession, external_id: str) -> Message | None:
    """Our automatic reply to an inbound Message-ID, if one was queued."""
    inbound = await find(session, INBOUND, external_id)
    if inbound is None or inbound.ticket_number is None:
        return None
    rows = await session.exec(
        select(Message).where(
            Message.direction == OUTBOUND, Message.ticket_number == inbound.ticket_number,
            col(Message.created_at) >= inbound.created_at,
        ).order_by(col(Message.id))
    )
    return rows.first()
