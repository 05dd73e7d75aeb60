"""Use case: turn one stored inbound mail into a ticket, a follow-up, or a recorded non-answer.

`understand` is the CPU part (parse, loop check, trust, language, classification) and runs in
a worker thread; `MailIntake.process` then applies it in one transaction with the reply, so a
crash leaves either nothing or everything, and the message is simply processed again.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.cases.conversation import Conversation, ConversationConfig, TicketAnnouncer
from bot.cases.customer_reply import CustomerReplies
from bot.cases.floods import FloodLimits
from bot.cases.replies import (
    mail_bytes,
    new_message_id,
    reply_subject,
)
from bot.cases.service import (
    TicketNotFound,
    confirm_sender,
)
from bot.classify import Classifier
from bot.classify.language import LanguageDetector
from bot.classify.lazy import triage_of
from bot.domain import Channel, Choice, IncomingMessage, Language, TicketStatus, Triage
from bot.intake.mail.loops import Verdict, judge
from bot.intake.mail.mime import ParsedMail, normalise_subject, parse
from bot.intake.mail.trust import SenderVerifier, Trust
from bot.sla.engine import Engine
from models.customers import CustomerView, find_by_email, get_customer
from models.db import Database
from models.evidence import evidence_keys, first_showing
from models.messages import lock_message, outbound_since, record_failure, ticket_of_ids
from models.tables import Message, Ticket
from models.tickets import audit, get_ticket

log = logging.getLogger(__name__)

TAG = re.compile(r"\[NT#(\d{1,9})\]")  # at most nine digits: a ticket number, not a crash
RAW_MESSAGE_IDS = re.compile(rb"(?im)^message-id:[ \t]*(<[^<>\s]+>)")


@dataclass(frozen=True)
class MailConfig:
    """The mail settings the use case needs."""

    support_addresses: tuple[str, ...]
    from_name: str
    verifier: SenderVerifier = field(default_factory=SenderVerifier)
    floods: FloodLimits = field(default_factory=FloodLimits)
    auto_reply_limit_per_day: int = 10
    followup_reopen_days: int = 14
    max_attempts: int = 5

    @property
    def from_address(self) -> str:
        return self.support_addresses[0]

    @property
    def domain(self) -> str:
        return self.from_address.rpartition("@")[2]


@dataclass(frozen=True)
class Understanding:
    """Everything the CPU-bound part learned about one mail."""

    mail: ParsedMail
    verdict: Verdict
    trust: Trust
    language: Language
    triage: Triage | None
    bounce_refs: tuple[str, ...] = ()


def understand(raw: bytes, envelope_sender: str, config: MailConfig,
               classifier: Classifier | None, detector: LanguageDetector) -> Understanding:
    """Parse, judge, check trust, detect the language and classify (CPU only, no I/O).

    Without a classifier the triage is left out (None) for the caller to add.
    """
    mail = parse(raw, envelope_sender)
    verdict = judge(mail, envelope_sender=envelope_sender,
                    own_addresses=config.support_addresses, raw=raw, own_domain=config.domain)
    text = mail.new_text or mail.body
    triage = (classifier.classify(mail.subject, text[:4000])
              if verdict.opens_ticket and classifier is not None else None)
    refs: tuple[str, ...] = ()
    if verdict.kind == "bounce":
        own = {mail.message_id}
        found = [m.decode("ascii", "replace") for m in RAW_MESSAGE_IDS.findall(raw)]
        # A plain-text bounce may quote our Message-ID anywhere (indented, in a sentence).
        ours = re.compile(r"<nt\d+\.[0-9a-f]+@" + re.escape(config.domain) + ">", re.I)
        quoted = ours.findall(raw.decode("ascii", "replace")) + ours.findall(mail.body)
        refs = tuple(dict.fromkeys([*mail.in_reply_to, *mail.references,
                                    *(m for m in [*found, *quoted] if m not in own)]))
    return Understanding(
        mail=mail,
        verdict=verdict,
        trust=config.verifier.assess(raw, mail.sender),
        language=detector.detect(f"{normalise_subject(mail.subject)}\n{text}"),
        triage=triage,
        bounce_refs=refs,
    )


class MailIntake:
    """Processes stored inbound mail; safe to call again for the same message."""

    def __init__(self, *, db: Database, engine: Engine, config: MailConfig,
                 classifier: Classifier, detector: LanguageDetector,
                 replies: CustomerReplies, announcer: TicketAnnouncer | None = None) -> None:
        self.db = db
        self.replies = replies  # the way back to a ticket's customer, mail or Slack
        self.engine = engine
        self.config = config
        self.classifier = classifier
        self.detector = detector
        self.conversation = Conversation(engine=engine, config=ConversationConfig(
            followup_reopen_days=config.followup_reopen_days, floods=config.floods,
            mail_sender=(config.from_address, config.from_name)),
            announcer=announcer)

    async def process(self, message_id: int, now: datetime) -> str | None:
        """Process one pending message; returns its disposition (None if it is gone).

        The mail is understood and classified first (the classification awaited from the
        model's inference thread, so waiting mails form its batches), then applied in one short
        transaction. On PostgreSQL that transaction claims the row first with FOR UPDATE SKIP
        LOCKED, so that several worker processes never process one mail twice: a row another
        worker holds is skipped, and the mail it has finished is no longer pending.
        """
        async def understood_with_triage(raw: bytes, envelope_sender: str) -> Understanding:
            # Parse and judge in a worker thread, then await the classifier's answer.
            understood = await asyncio.to_thread(
                understand, raw, envelope_sender, self.config, None, self.detector
            )
            if not understood.verdict.opens_ticket:
                return understood
            text = understood.mail.new_text or understood.mail.body
            triage = await triage_of(self.classifier, understood.mail.subject, text[:4000])
            return replace(understood, triage=triage)

        if self.db.backend == "postgresql":
            async with self.db.session(background=True) as session:
                claimed = await session.exec(
                    select(Message).where(Message.id == message_id,
                                          Message.disposition == "pending")
                    .with_for_update(skip_locked=True)
                )
                row = claimed.first()
                if row is None or row.raw is None:
                    return None
                understood = await understood_with_triage(row.raw, row.sender)
                await self._apply(session, row, understood, now)
                disposition, ticket = row.disposition, row.ticket_number
        else:
            async with self.db.reader() as session:
                row = await session.get(Message, message_id)
                if row is None or row.disposition != "pending" or row.raw is None:
                    return None if row is None else row.disposition
                raw, envelope_sender = row.raw, row.sender
            understood = await understood_with_triage(raw, envelope_sender)
            async with self.db.session(background=True) as session:
                locked = await lock_message(session, message_id)
                if locked is None or locked.disposition != "pending":
                    return None if locked is None else locked.disposition
                await self._apply(session, locked, understood, now)
                disposition, ticket = locked.disposition, locked.ticket_number
        log.info("event=mail_processed message=%s disposition=%s ticket=%s",
                 message_id, disposition, ticket or "-")
        return disposition

    async def fail(self, message_id: int, error: str, now: datetime) -> None:
        """Record a failed attempt; retry later with backoff, or give up after the last one."""
        async with self.db.session() as session:
            attempts = await record_failure(session, message_id=message_id, error=error,
                                            now=now, max_attempts=self.config.max_attempts)
        if attempts is not None:
            log.error("event=mail_failed message=%s attempts=%s error=%s", message_id,
                      attempts, error.splitlines()[0][:200] if error else "")

    async def _apply(self, session: AsyncSession, row: Message, u: Understanding,
                     now: datetime) -> None:
        mail = u.mail
        row.text = mail.new_text or mail.body
        row.subject = mail.subject
        row.thread_id = (mail.references or mail.in_reply_to or (mail.message_id,))[0]
        row.sender = mail.sender or row.sender
        row.done_at = now
        refs = [*mail.in_reply_to, *reversed(mail.references)]
        if await self._replayed(session, row, u, now):
            return
        if u.verdict.kind == "bounce":
            row.disposition, row.reason = "bounce", u.verdict.reason
            row.ticket_number = await ticket_of_ids(session, list(u.bounce_refs), row.sender)
            if row.ticket_number is not None:
                await audit(session, ticket_number=row.ticket_number, actor="mail",
                            action="bounce", now=now, message=row.external_id,
                            reason=u.verdict.reason)
            return
        if not u.verdict.opens_ticket:
            row.disposition, row.reason = u.verdict.kind, u.verdict.reason
            row.ticket_number = await ticket_of_ids(session, refs, row.sender)
            return
        customer = await find_by_email(session, mail.sender) if mail.sender else None
        # a header proves something only where the signature covers it: an unsigned Subject
        # names no ticket, unsigned In-Reply-To/References carry no trust to the ticket found
        tag = TAG.search(mail.subject) if u.trust.signs("subject") else None
        refs_signed = u.trust.signs("in-reply-to") and u.trust.signs("references")
        incoming = IncomingMessage(
            channel=Channel.EMAIL, external_id=mail.message_id, thread_refs=tuple(refs),
            ticket_hint=int(tag.group(1)) if tag else None, sender=mail.sender,
            sender_name=mail.sender_name, subject=mail.subject,
            topic=normalise_subject(mail.subject), text=mail.new_text or mail.body,
            requester=await self._requester(session, mail, customer,
                                            u.trust.verified and u.trust.signs("reply-to")),
            may_open_ticket=True, may_answer=u.verdict.may_answer, trusted=u.trust.verified,
            trust_reason=u.trust.reason, quiet_reason=u.verdict.reason,
            flags=tuple(f for f in (u.verdict.flag,
                                    "mime_nesting_cut" if mail.nesting_cut else "") if f),
            refs_signed=refs_signed,
        )
        reply = MailReply(self.config, subject=mail.subject, in_reply_to=mail.message_id,
                          references=mail.references, thread_id=row.thread_id)
        await self.conversation.handle(session, row, incoming, customer=customer,
                                       language=u.language, triage=u.triage, reply=reply,
                                       now=now)

    async def _replayed(self, session: AsyncSession, row: Message, u: Understanding,
                        now: datetime) -> bool:
        """A mail showing a signature (b=) or a verified sender's Message-ID seen before is a
        replay, however late and whatever unsigned header came on top: it joins the ticket of
        the first showing (changing nothing), or is stored as a duplicate. Never evidence."""
        assert row.id is not None
        keys = evidence_keys(signatures=u.trust.signatures, sender=u.mail.sender,
                             message_id=u.mail.message_id)
        first = await first_showing(session, keys=keys, message_id=row.id,
                                    remember=u.trust.verified, now=now)
        if first is None:
            return False
        why = f"replay of message {first.id} (signature or Message-ID seen before)"
        row.ticket_number = first.ticket_number
        row.disposition = "follow-up" if first.ticket_number is not None else "duplicate"
        row.reason = f"{why}: proves nothing new, changes nothing"
        if first.ticket_number is not None:
            await audit(session, ticket_number=first.ticket_number, actor="mail",
                        action="replay_joined", now=now, message=row.external_id,
                        sender=row.sender, reason=why)
        log.info("event=mail_replay message=%s first=%s ticket=%s", row.id, first.id,
                 first.ticket_number or "-")
        return True

    async def _requester(self, session: AsyncSession, mail: ParsedMail,
                         customer: CustomerView | None, verified: bool) -> str:
        """Where answers go: the From address; a Reply-To only for a verified sender and when
        it belongs to the same customer (or, for an unknown sender, the same domain). A forged
        From with an outside Reply-To must receive neither the customer's plan nor a quote."""
        reply_to = mail.reply_to.strip().lower()
        if not reply_to or reply_to == mail.sender or not verified:
            return mail.sender
        if customer is not None:
            other = await find_by_email(session, reply_to)
            return reply_to if other is not None and other.id == customer.id else mail.sender
        return reply_to if reply_to.rpartition("@")[2] == mail.sender.rpartition("@")[2] \
            else mail.sender

    async def confirm_sender(self, number: int, *, agent: str, now: datetime) -> Ticket:
        """An agent vouches for the sender of an unverified ticket: it is charged, priced and
        timed now, and the customer gets the full answer (with a quote if it is billable) where
        the ticket came from: its mail thread, or its Slack thread."""
        async with self.db.session() as session:
            ticket = await get_ticket(session, number)
            if ticket is None or ticket.customer_id is None:
                raise TicketNotFound(f"NT#{number} does not exist or names no customer")
            customer = await get_customer(session, ticket.customer_id)
            assert customer is not None
            ticket, result = await confirm_sender(session, engine=self.engine, number=number,
                                                  customer=customer, now=now,
                                                  actor=f"agent {agent}")
            body = self.conversation.opened_text(ticket, result, customer, name="",
                                                 needs_triage="needs_triage" in ticket.flags)
            reply = await self.replies.customer_reply(session, ticket,
                                                      key=f"sender-confirmed:{number}")
            if reply is not None:
                await reply.queue_answer(
                    session, ticket, body, now=now, essential=True,
                    asks_consent=ticket.status == TicketStatus.AWAITING_CONSENT)
        return ticket


class MailReply:
    """The mail channel's ReplyChannel: an answer threaded to one mail, through the outbox."""

    def __init__(self, config: MailConfig, *, subject: str, in_reply_to: str,
                 references: tuple[str, ...], thread_id: str | None) -> None:
        self.config = config
        self.subject = subject
        self.in_reply_to = in_reply_to
        self.references = references
        self.thread_id = thread_id

    async def queue_answer(self, session: AsyncSession, ticket: Ticket, body: str, *,
                           now: datetime, essential: bool = False,
                           asks_consent: bool = False, choices: Sequence[Choice] = ()) -> bool:
        """Queue a mail to the ticket's requester in the caller's transaction; False when the
        daily cap of automatic answers to that address is reached. An essential answer (a
        quote, a recorded consent) is never held back by the cap: forged mail that used up an
        address's answers must not keep a customer from the quote they need to consent.
        A mail quote is answered by YES/NO in a reply, so `asks_consent` adds nothing here, and
        mail has no buttons: the body names the `choices` (numbered slots to answer with)."""
        assert ticket.number is not None
        to = ticket.requester
        sent_today = await outbound_since(session, recipient=to, since=now - timedelta(days=1))
        if sent_today >= self.config.auto_reply_limit_per_day and not essential:
            await audit(session, ticket_number=ticket.number, actor="mail",
                        action="auto_reply_suppressed", now=now, recipient=to,
                        reason=f"{sent_today} automatic replies in 24 h")
            return False
        message_id = new_message_id(self.config.domain, ticket.number)
        subject = reply_subject(ticket.number, normalise_subject(self.subject) or ticket.subject)
        raw = mail_bytes(
            sender=self.config.from_address, sender_name=self.config.from_name, to=to,
            subject=subject, body=body, message_id=message_id,
            in_reply_to=self.in_reply_to, references=self.references,
            language=Language(ticket.language), ticket_number=ticket.number, now=now,
        )
        session.add(Message(
            ticket_number=ticket.number, direction="out", channel=Channel.EMAIL.value,
            external_id=message_id, thread_id=self.thread_id, sender=self.config.from_address,
            recipient=to, subject=subject, text=body, raw=raw,
            disposition="queued", created_at=now, next_attempt_at=now,
        ))
        await audit(session, ticket_number=ticket.number, actor="mail",
                    action="auto_reply_queued", now=now, message=message_id, recipient=to)
        return True
