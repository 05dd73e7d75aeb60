"""Mail when the visitor has left: an agent's answer in the web chat that the visitor has not
seen within WEBCHAT_MAIL_AFTER_MINUTES goes to their verified address by mail too, once
(`mailed_at`), through the mail outbox; never to an unverified visitor's address (anyone can
type one). The leader runs it (the reminders' leader rule, bot/jobs/scheduler.py)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.cases.replies import mail_bytes, new_message_id, render, reply_subject
from bot.domain import Channel, Language
from models.db import Database
from models.tables import Message, Ticket
from models.webchat_out import unseen_agent_answers

log = logging.getLogger(__name__)


@dataclass
class WebchatMail:
    """Mails unseen agents' answers; `run` is safe to repeat and to run on any replica (rows
    are locked, skipping those another run holds, and marked in the same transaction)."""

    db: Database
    after: timedelta
    from_address: str
    from_name: str
    seconds: float = 60.0  # how often the leader runs it (the service: REMINDER_REFRESH_SECONDS)

    async def run(self, now: datetime) -> int:
        """Queue a mail for each answer unseen since `after` before `now`; how many."""
        async with self.db.session() as session:
            found = await unseen_agent_answers(session, older_than=now - self.after)
            for item, visitor in found:
                ticket = (await session.get(Ticket, item.ticket_number)
                          if item.ticket_number is not None else None)
                item.mailed_at = now
                session.add(item)
                if ticket is None or ticket.number is None:
                    continue  # an answer on no ticket: nothing to refer the mail to
                language = Language(ticket.language)
                body = render("webchat_away", language, name=visitor.name,
                              number=ticket.number, text=item.text, author=item.author)
                message_id = new_message_id(self.from_address.rpartition("@")[2], ticket.number)
                subject = reply_subject(ticket.number, ticket.subject)
                raw = mail_bytes(sender=self.from_address, sender_name=self.from_name,
                                 to=visitor.email, subject=subject, body=body,
                                 message_id=message_id, in_reply_to="", references=(),
                                 language=language, ticket_number=ticket.number, now=now,
                                 auto_submitted=None)  # a person's answer: it may be answered
                session.add(Message(
                    ticket_number=ticket.number, direction="out", channel=Channel.EMAIL.value,
                    external_id=message_id, sender=self.from_address, recipient=visitor.email,
                    subject=subject, text=body, raw=raw, disposition="queued", created_at=now,
                    next_attempt_at=now))
                log.info("event=webchat_mailed ticket=%s item=%s visitor=%s", ticket.number,
                         item.id, visitor.id)
        return len(found)
