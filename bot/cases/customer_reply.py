"""The reply channel back to a ticket's customer, whatever channel the ticket came in on."""

from __future__ import annotations

from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.cases.conversation import ReplyChannel
from bot.cases.replies import mail_bytes, new_message_id, reply_subject
from bot.domain import Channel, Language
from bot.intake.mail.inbound import MailConfig, MailReply
from bot.intake.mail.mime import normalise_subject
from bot.intake.slack.inbox import SlackReply
from models.tables import Message, Ticket
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


def signed(body: str, agent_name: str, language: Language) -> str:
    """An agent's answer with their name under it."""
    regards = "Mit freundlichen Grüßen" if language is Language.DE else "Kind regards"
    return f"{body.strip()}\n\n{regards}\n{agent_name or 'NetTask Support'}\nNetTask Support"


async def queue_person_answer(session: AsyncSession, ticket: Ticket, body: str, *,
                              mail: MailConfig, key: str, agent_name: str,
                              now: datetime) -> str | None:
    """Queue an agent's answer on the ticket's own channel; the channel, or None if unreachable.

    A mail goes into the ticket's mail thread (In-Reply-To/References, [NT#n] in the subject)
    without Auto-Submitted: a person wrote it, and the customer's autoresponder may answer it.
    """
    assert ticket.number is not None
    language = Language(ticket.language)
    text = signed(body, agent_name, language)
    if ticket.channel == Channel.SLACK.value:
        reply = await customer_reply(session, ticket, mail=mail, key=key)
        if reply is None:
            return None
        await reply.queue_answer(session, ticket, text, now=now, essential=True)
        return Channel.SLACK.value
    messages, _ = await ticket_history(session, ticket.number)
    thread = [m for m in messages if m.channel == Channel.EMAIL.value]
    inbound = [m for m in thread if m.direction == "in"]
    if not inbound or not ticket.requester:
        return None
    last = inbound[-1]
    message_id = new_message_id(mail.domain, ticket.number)
    subject = reply_subject(ticket.number, normalise_subject(inbound[0].subject) or ticket.subject)
    raw = mail_bytes(
        sender=mail.from_address, sender_name=f"{agent_name} (NetTask Support)" if agent_name
        else mail.from_name, to=ticket.requester, subject=subject, body=text,
        message_id=message_id, in_reply_to=last.external_id,
        references=tuple(m.external_id for m in thread if m.external_id != last.external_id),
        language=language, ticket_number=ticket.number, now=now, auto_submitted=None)
    session.add(Message(
        ticket_number=ticket.number, direction="out", channel=Channel.EMAIL.value,
        external_id=message_id, thread_id=inbound[0].thread_id, sender=mail.from_address,
        recipient=ticket.requester, subject=subject, text=text, raw=raw,
        disposition="queued", created_at=now, next_attempt_at=now))
    return Channel.EMAIL.value
