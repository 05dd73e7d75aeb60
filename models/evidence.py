"""Evidence seen before: a DKIM signature or a proven Message-ID is new evidence only once."""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.tables import Message, SeenSignature


def evidence_keys(*, signatures: tuple[str, ...], sender: str, message_id: str) -> list[str]:
    """The keys a verified mail's evidence is remembered by: what each of its valid signatures
    signed, and its sender's Message-ID."""
    keys = [f"signed={key}" for key in signatures]
    keys.append(f"id:{sender.lower()}:{message_id}")
    return [hashlib.sha256(k.encode("utf-8", "surrogateescape")).hexdigest() for k in keys]


async def first_showing(session: AsyncSession, *, keys: list[str], message_id: int,
                        remember: bool, now: datetime) -> Message | None:
    """The earlier mail that showed any of `keys`, or None when they are new.

    With `remember` (a verified mail) new keys are recorded for this mail in the caller's
    transaction. The insert is the check: on PostgreSQL a second transaction inserting the
    same key waits for the first to commit and then finds it, so two copies processed at once
    are still one first and one replay.
    """
    insert = (postgresql.insert if session.get_bind().dialect.name == "postgresql"
              else sqlite.insert)
    for key in keys:
        if remember:
            statement = (insert(SeenSignature)
                         .values(key=key, message_id=message_id, seen_at=now)
                         .on_conflict_do_nothing().returning(col(SeenSignature.key)))
            if (await session.exec(statement)).first() is not None:
                continue
        earlier = (await session.exec(
            select(Message).join(SeenSignature, col(SeenSignature.message_id) == Message.id)
            .where(SeenSignature.key == key, Message.id != message_id))).first()
        if earlier is not None:
            return earlier
    return None
