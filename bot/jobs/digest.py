"""Sends the managers' daily digest once per day: to MANAGERS_EMAIL and the Slack side.

The day's row in `digest_sent` is claimed in the transaction that queues the mail and, with a
bot token, the post to the managers' channel in the Slack outbox, so two replicas, or a
restart after the digest time, never send it twice. Without a token the Slack line is written
to the JSON-lines file once per day (the file is checked first).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from email.utils import make_msgid
from pathlib import Path

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.cases.replies import mail_bytes
from bot.domain import Channel, Language
from bot.intake.slack.blocks import message_parts, section
from bot.sla.digest import build, day_bounds, next_run, render
from bot.sla.engine import Engine
from models import digest as repo
from models.db import Database
from models.slack import queue_call
from models.tables import Message

log = logging.getLogger(__name__)


@dataclass
class DailyDigest:
    """Yesterday's digest, sent after `at` local time each day."""

    db: Database
    engine: Engine
    at: time
    owner: str
    slack_file: Path
    managers_email: str = ""
    from_address: str = "support@nettask.de"
    from_name: str = "NetTask Support"
    slack_channel: str = ""  # the managers' channel, posted to through the Slack outbox

    def due(self, now: datetime) -> bool:
        """Whether today's digest time has passed."""
        return now.astimezone(self.engine.calendar.zone).time() >= self.at

    def next_time(self, now: datetime) -> datetime:
        """When the next digest is due (UTC)."""
        return next_run(self.at, self.engine.calendar.zone, now)

    async def run(self, now: datetime) -> bool:
        """Send yesterday's digest unless it was sent; True when this call sent it."""
        zone = self.engine.calendar.zone
        day = now.astimezone(zone).date() - timedelta(days=1)
        start, end = day_bounds(day, zone)
        async with self.db.session() as session:
            if not await repo.claim_day(session, day.isoformat(), now=now, owner=self.owner):
                return False
            facts = await repo.ticket_facts(session, start - repo.LOOKBACK)
            booked = await repo.callbacks_booked(session, start, end)
            text = render(build(day, zone, now, facts, booked))
            if self.managers_email:
                subject = f"Support digest {day.isoformat()}"
                message_id = make_msgid(domain=self.from_address.rpartition("@")[2])
                raw = mail_bytes(sender=self.from_address, sender_name=self.from_name,
                                 to=self.managers_email, subject=subject, body=text + "\n",
                                 message_id=message_id, in_reply_to="", references=(),
                                 language=Language.EN, ticket_number=0, now=now,
                                 auto_submitted="auto-generated")
                session.add(Message(
                    direction="out", channel=Channel.EMAIL.value, external_id=message_id,
                    sender=self.from_address, recipient=self.managers_email, subject=subject,
                    text=text, raw=raw, disposition="queued", created_at=now,
                    next_attempt_at=now))
            if self.slack_channel:
                await self._queue_post(session, day.isoformat(), text, now)
            else:
                self._post(day.isoformat(), text, now)
        log.info("event=digest_sent day=%s owner=%s", day.isoformat(), self.owner)
        return True

    async def _queue_post(self, session: AsyncSession, day: str, text: str,
                          now: datetime) -> None:
        """The digest as posts to the managers' channel (several if it is long), in order."""
        for n, part in enumerate(message_parts(text), start=1):
            await queue_call(session, key=f"digest:{day}" + (f":{n}" if n > 1 else ""),
                             method="chat.postMessage", now=now,
                             args={"channel": self.slack_channel, "text": part,
                                   "blocks": [section(part)]})

    def _post(self, day: str, text: str, now: datetime) -> None:
        if self.slack_file.exists():
            for line in self.slack_file.read_text(encoding="utf-8").splitlines():
                if f'"digest": "{day}"' in line:
                    return  # written before a crash that undid the claim
        self.slack_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.slack_file, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"digest": day, "audience": "managers",
                                     "posted_at": now.isoformat(), "text": text},
                                    ensure_ascii=False) + "\n")
