"""Agents answer in a ticket's triage thread: the reply goes to the customer on the ticket's own
channel (mail thread or Slack thread), unless it starts with the note prefix; the thread shows
which replies went out. Anyone else's message there goes nowhere."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.cases.customer_reply import CustomerReplies
from bot.cases.service import record_first_response
from bot.intake.slack.events import SlackMessage
from models.slack import queue_call, ticket_of_post
from models.tables import Message
from models.tickets import audit, get_ticket

log = logging.getLogger(__name__)

SENT = {"email": "Sent to the customer by mail.", "slack": "Sent to the customer in Slack.",
        "web": "Sent to the customer in the web chat."}
NOTE = "Internal note: not sent to the customer."


class TriageThread:
    """What a message in the triage channel does."""

    def __init__(self, *, channel: str, agents: frozenset[str], note_prefix: str,
                 replies: CustomerReplies) -> None:
        self.channel = channel
        self.agents = agents
        self.note_prefix = note_prefix.lower()
        self.replies = replies

    def is_ours(self, message: SlackMessage) -> bool:
        """A message in the triage channel (handled here, never as a customer's)."""
        return bool(self.channel) and message.channel == self.channel

    async def apply(self, session: AsyncSession, row: Message, message: SlackMessage,
                    now: datetime) -> None:
        """Send an agent's reply to the customer, keep a note, or ignore; in one transaction."""
        row.disposition = "ignored"
        if message.ignore_reason is not None:
            row.reason = message.ignore_reason
            return
        number = (await ticket_of_post(session, message.thread_ts)
                  if message.thread_ts else None)
        ticket = await get_ticket(session, number) if number is not None else None
        if ticket is None:
            row.reason = "triage channel: not a reply under a ticket's triage post"
            return
        row.ticket_number = ticket.number
        if message.user not in self.agents:
            row.reason = "triage thread: not an agent, nothing goes to the customer"
            log.info("event=triage_reply_ignored ticket=%s user=%s", number, message.user)
            return
        actor = f"agent {message.user}"
        if row.text.strip().lower().startswith(self.note_prefix):
            row.disposition, row.reason = "note", "internal note"
            await audit(session, ticket_number=number, actor=actor, action="internal_note",
                        now=now, message=row.external_id)
            await self._confirm(session, row, message, NOTE, now)
            return
        channel = await self.replies.queue_person_answer(
            session, ticket, row.text, key=f"agent-answer:{row.external_id}",
            agent_name=message.author_name, now=now)
        if channel is None:
            row.reason = "the ticket's customer cannot be reached on its channel"
            await self._confirm(session, row, message, "Not sent: the customer cannot be "
                                "reached on the ticket's channel.", now)
            return
        row.disposition = "agent-answer"
        await audit(session, ticket_number=number, actor=actor, action="agent_answer", now=now,
                    message=row.external_id, channel=channel)
        await record_first_response(session, ticket, now, actor=actor)
        await self._confirm(session, row, message, SENT[channel], now)
        log.info("event=agent_answer ticket=%s agent=%s channel=%s", number, message.user,
                 channel)

    async def _confirm(self, session: AsyncSession, row: Message, message: SlackMessage,
                       text: str, now: datetime) -> None:
        await queue_call(session, key=f"confirm:{row.external_id}", method="chat.postMessage",
                         ticket_number=row.ticket_number, now=now,
                         args={"channel": message.channel, "thread_ts": message.thread_ts,
                               "text": text})
