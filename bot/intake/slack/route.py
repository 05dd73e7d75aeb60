"""The Slack channel's way back to a ticket's customer: its Slack thread (an `AnswerRoute`)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.domain import Channel
from bot.intake.slack.inbox import SlackReply
from models.tables import Ticket


class SlackRoute:
    """Answers go into the thread of the customer's message (the ticket's requester is
    `channel:thread_ts`)."""

    channel = Channel.SLACK.value
    signs_answers = True

    async def reply_channel(self, session: AsyncSession, ticket: Ticket, *,
                            key: str) -> SlackReply | None:
        """The ticket's Slack thread; None when the requester names none."""
        channel, _, thread_ts = ticket.requester.partition(":")
        if not channel or not thread_ts:
            return None
        return SlackReply(channel=channel, thread_ts=thread_ts, key=key)

    async def queue_person_answer(self, session: AsyncSession, ticket: Ticket, text: str, *,
                                  key: str, agent_name: str, now: datetime) -> bool:
        """Queue a person's answer into the thread; False when the thread is not known."""
        reply = await self.reply_channel(session, ticket, key=key)
        if reply is None:
            return False
        await reply.queue_answer(session, ticket, text, now=now, essential=True)
        return True
