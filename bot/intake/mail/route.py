"""The mail channel's way back to a ticket's customer: its mail thread (an `AnswerRoute`)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.cases.replies import mail_bytes, new_message_id, reply_subject
from bot.domain import Channel, Language
from bot.intake.mail.inbound import MailConfig, MailReply
from bot.intake.mail.mime import normalise_subject
from models.tables import Message, Ticket
from models.tickets import ticket_history


class MailRoute:
    """Answers go into the ticket's mail thread (In-Reply-To/References, [NT#n] in the
    subject)."""

    channel = Channel.EMAIL.value
    signs_answers = True

    def __init__(self, mail: MailConfig) -> None:
        self.mail = mail

    async def reply_channel(self, session: AsyncSession, ticket: Ticket, *,
                            key: str) -> MailReply | None:
        """A mail threaded to the customer's last mail; None without one or an address."""
        assert ticket.number is not None
        messages, _ = await ticket_history(session, ticket.number)
        inbound = [m for m in messages
                   if m.direction == "in" and m.channel == Channel.EMAIL.value]
        if not inbound or not ticket.requester:
            return None
        first, last = inbound[0], inbound[-1]
        references = tuple(m.external_id for m in messages
                           if m.channel == Channel.EMAIL.value
                           and m.external_id != last.external_id)
        return MailReply(self.mail, subject=first.subject, in_reply_to=last.external_id,
                         references=references, thread_id=first.thread_id)

    async def queue_person_answer(self, session: AsyncSession, ticket: Ticket, text: str, *,
                                  key: str, agent_name: str, now: datetime) -> bool:
        """Queue a person's answer into the mail thread; False without a mail to answer.

        Without Auto-Submitted: a person wrote it, and the customer's autoresponder may
        answer it."""
        assert ticket.number is not None
        mail = self.mail
        language = Language(ticket.language)
        messages, _ = await ticket_history(session, ticket.number)
        thread = [m for m in messages if m.channel == Channel.EMAIL.value]
        inbound = [m for m in thread if m.direction == "in"]
        if not inbound or not ticket.requester:
            return False
        last = inbound[-1]
        message_id = new_message_id(mail.domain, ticket.number)
        subject = reply_subject(ticket.number,
                                normalise_subject(inbound[0].subject) or ticket.subject)
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
        return True
