"""Automatic notices by mail (a sign-in code, a manager alert, an undeliverable Slack answer):
one plain mail queued in the mail outbox, built like every other mail we send."""

from __future__ import annotations

from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.cases.replies import mail_bytes
from bot.domain import Channel, Language
from models.messages import find
from models.tables import Message


async def queue_notice(session: AsyncSession, *, sender: str, sender_name: str, to: str,
                       subject: str, text: str, message_id: str, now: datetime,
                       ticket_number: int | None = None,
                       language: Language | None = None) -> bool:
    """Queue one automatic mail in the caller's transaction, once per Message-ID; False if it
    was queued before."""
    if await find(session, "out", message_id) is not None:
        return False
    raw = mail_bytes(sender=sender, sender_name=sender_name, to=to, subject=subject, body=text,
                     message_id=message_id, in_reply_to="", references=(), language=language,
                     ticket_number=ticket_number, now=now, auto_submitted="auto-generated")
    session.add(Message(
        ticket_number=ticket_number, direction="out", channel=Channel.EMAIL.value,
        external_id=message_id, sender=sender, recipient=to, subject=subject, text=text,
        raw=raw, disposition="queued", created_at=now, next_attempt_at=now))
    return True
