"""A Slack click (block action) is stored before it is acknowledged and applied from the store,
as events are: a crash between the ack and the change loses nothing, the next start applies
it. Stored clicks are inbound messages of their own channel, so neither the mail nor the Slack
message worker ever sees one; a worker of their own applies them one after another.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from models.db import Database
from models.messages import lock_message, record_failure, store_inbound

log = logging.getLogger(__name__)

CLICKS = "slackclick"  # Message.channel of stored clicks (at most ten characters)
Apply = Callable[[AsyncSession, dict[str, Any], datetime], Awaitable[str]]


def is_click(body: dict[str, Any]) -> bool:
    """Whether a payload is a click on one of our messages' controls."""
    return body.get("type") == "block_actions"


async def store_click(session: AsyncSession, body: dict[str, Any], raw: bytes,
                      now: datetime) -> int | None:
    """Store a click before it is acked; its row id, None when this click is stored already."""
    actions = body.get("actions") or [{}]
    first = actions[0] if isinstance(actions[0], dict) else {}
    # Slack's trigger_id is unique per interaction; action_ts with the user as fallback
    key = str(body.get("trigger_id") or
              f"{(body.get('user') or {}).get('id', '')}:{first.get('action_ts', '')}")
    return await store_inbound(
        session, channel=CLICKS, external_id=f"click:{key}"[:998],
        digest=hashlib.sha256(raw).hexdigest(), raw=raw,
        sender=str((body.get("user") or {}).get("id") or ""),
        recipient=str((body.get("channel") or {}).get("id") or ""), now=now)


class ClickIntake:
    """Applies stored clicks; safe to call again for the same one (it is applied once)."""

    def __init__(self, *, db: Database, apply: Apply, max_attempts: int = 5) -> None:
        self.db = db
        self.apply = apply
        self.max_attempts = max_attempts

    async def process(self, message_id: int, now: datetime) -> str | None:
        """Apply one pending click and mark it done, in one transaction."""
        async with self.db.session(background=True) as session:
            row = await lock_message(session, message_id)  # another replica waits, then skips
            if row is None or row.disposition != "pending" or row.raw is None:
                return None if row is None else row.disposition
            body = json.loads(row.raw)
            outcome = await self.apply(session, body, now)
            row.disposition, row.reason, row.done_at = "applied", outcome[:2000], now
            session.add(row)
        log.info("event=slack_click_applied message=%s outcome=%s", message_id, outcome)
        return "applied"

    async def fail(self, message_id: int, error: str, now: datetime) -> None:
        """Record a failed attempt; retried with backoff, `failed` after the last one."""
        async with self.db.session() as session:
            attempts = await record_failure(session, message_id=message_id, error=error,
                                            now=now, max_attempts=self.max_attempts)
        if attempts is not None:
            log.error("event=slack_click_failed message=%s attempts=%s error=%s", message_id,
                      attempts, error.splitlines()[0][:200] if error else "")
