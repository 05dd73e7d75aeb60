"""Slack messages in: stored before Slack gets its 200, deduped, then processed by a worker."""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.domain import Channel
from bot.intake.slack.events import (
    MalformedEvent,
    SlackMessage,
    load_envelope,
    message_event,
    message_key,
    parse_message,
)
from models.db import Database
from models.messages import lock_message, store_inbound
from models.slack import link_event, take_event
from models.tables import Message

log = logging.getLogger(__name__)

# Until the conversation pipeline takes Slack messages (issue 8, sections 1 and 3), a person's
# message is recorded with this disposition: stored, parsed, and visible, but not yet a ticket.
HELD = "held"


class Stored(enum.Enum):
    """What storing an event did."""

    NEW = "new"  # a message, stored now: process it
    DUPLICATE = "duplicate"  # the event id, or the message under another event id, was stored
    NOT_A_MESSAGE = "not-a-message"  # another event type: its id is recorded, nothing to process


async def store_event(session: AsyncSession, envelope: dict[str, Any], raw: bytes,
                      now: datetime) -> tuple[Stored, int | None]:
    """Record the event id and store the message it carries; MalformedEvent when unreadable."""
    event_id = envelope.get("event_id")
    if not isinstance(event_id, str) or not event_id:
        raise MalformedEvent("event_callback without an event_id")
    event = message_event(envelope)
    if event is not None and not (event.get("channel") and event.get("ts")):
        raise MalformedEvent("a message event without channel or ts")
    if not await take_event(session, event_id=event_id, now=now):
        return Stored.DUPLICATE, None
    if event is None:
        return Stored.NOT_A_MESSAGE, None
    stored = await store_inbound(
        session, channel=Channel.SLACK.value,
        external_id=message_key(str(event["channel"]), str(event["ts"])), raw=raw,
        sender=str(event.get("user") or event.get("bot_id") or ""),
        recipient=str(event["channel"]), now=now,
    )
    if stored is None:
        return Stored.DUPLICATE, None
    await link_event(session, event_id=event_id, message_id=stored)
    return Stored.NEW, stored


@dataclass
class BotIdentity:
    """Who we are in Slack (from auth.test), so our own messages are never taken as a customer's."""

    user_id: str | None = None
    bot_id: str | None = None


class SlackIntake:
    """Processes stored Slack messages; safe to call again for the same message."""

    def __init__(self, *, db: Database, identity: BotIdentity, max_attempts: int = 5) -> None:
        self.db = db
        self.identity = identity
        self.max_attempts = max_attempts

    def understand(self, raw: bytes) -> SlackMessage:
        """Parse a stored envelope (pure)."""
        return parse_message(load_envelope(raw), own_user_id=self.identity.user_id,
                             own_bot_id=self.identity.bot_id)

    async def process(self, message_id: int, now: datetime) -> str | None:
        """Parse one pending Slack message and record what it is; returns its disposition."""
        async with self.db.session() as session:
            row = await lock_message(session, message_id)
            if row is None or row.disposition != "pending" or row.raw is None:
                return None if row is None else row.disposition
            self._apply(row, self.understand(row.raw), now)
            session.add(row)
            disposition, reason = row.disposition, row.reason
        log.info("event=slack_processed message=%s disposition=%s reason=%s", message_id,
                 disposition, reason or "-")
        return disposition

    def _apply(self, row: Message, message: SlackMessage, now: datetime) -> None:
        files = "".join(f"\n[file] {f.name} {f.link}" for f in message.files)
        row.text = message.text + files
        row.sender = message.user or row.sender
        row.thread_id = message_key(message.channel, message.thread_ts or message.ts)
        row.done_at = now
        if message.ignore_reason is not None:
            row.disposition, row.reason = "ignored", message.ignore_reason
        else:
            kind = "reply in a thread" if message.is_reply else "top-level message"
            row.disposition = HELD
            row.reason = f"{kind}; customer chat does not open tickets yet"

    async def fail(self, message_id: int, error: str, now: datetime) -> None:
        """Record a failed attempt; retry later with backoff, or give up after the last one."""
        async with self.db.session() as session:
            row = await lock_message(session, message_id)
            if row is None or row.disposition != "pending":
                return
            row.attempts += 1
            row.reason = error[:2000]
            if row.attempts >= self.max_attempts:
                row.disposition, row.done_at = "failed", now
            else:
                row.next_attempt_at = now + timedelta(seconds=5 * 2 ** row.attempts)
            session.add(row)
        log.error("event=slack_failed message=%s attempts=%s", message_id, row.attempts)
