"""The reply channel back to a ticket's customer, whatever channel the ticket came in on."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.conversation import ReplyChannel
from bot.domain import Channel
from bot.inbound import MailConfig, MailReply
from bot.intake.slack.inbox import SlackReply
from models.tables import Ticket
from models.tickets import ticket_history


async def customer_reply(session: AsyncSession, ticket: Ticket, *, mail: MailConfig,
                         key: str) -> ReplyChannel | None:
    """A mail in the ticket's mail thread or a message in its Slack thread; None if neither."""
    assert ticket.number is not None
    if ticket.channel == Channel.SLACK.value:
        channel, _, thread_ts = ticket.requester.partition(":")
        if not channel or not thread_ts:
            return None
        return SlackReply(channel=channel, thread_ts=thread_ts, key=key)
    messages, _ = await ticket_history(session, ticket.number)
    inbound = [m for m in messages if m.direction == "in" and m.channel == Channel.EMAIL.value]
    if not inbound or not ticket.requester:
        return None
    first, last = inbound[0], inbound[-1]
    references = tuple(m.external_id for m in messages
                       if m.channel == Channel.EMAIL.value and m.external_id != last.external_id)
    return MailReply(mail, subject=first.subject, in_reply_to=last.external_id,
                     references=references, thread_id=first.thread_id)
