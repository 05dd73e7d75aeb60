"""Use case: turn one stored inbound mail into a ticket, a follow-up, or a recorded non-answer.

`understand` is the CPU part (parse, loop check, trust, language, classification) and runs in
a worker thread; `MailIntake.process` then applies it in one transaction with the reply, so a
crash leaves either nothing or everything, and the message is simply processed again.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.classify import Classifier
from bot.consent import Answer, read_answer
from bot.domain import Channel, Language, TicketStatus, Triage
from bot.floods import FloodLimits, Join, Opened, decide
from bot.intake.language import LanguageDetector
from bot.intake.loops import Verdict, judge
from bot.intake.mime import ParsedMail, normalise_subject, parse
from bot.intake.replies import (
    build_mail,
    business_hours,
    local_deadline,
    new_message_id,
    render,
    reply_subject,
)
from bot.intake.trust import SenderVerifier, Trust
from bot.service import (
    NewTicket,
    TicketNotFound,
    choose_product,
    confirm_sender,
    open_ticket,
    record_consent,
)
from bot.sla.engine import Assessment, Engine
from models.customers import CustomerView, find_by_email, get_customer
from models.db import Database
from models.messages import lock_message, outbound_since, ticket_of_ids
from models.senders import sent_on_ticket, serialise, tickets_of_customer_since, tickets_opened_by
from models.tables import Message, Ticket
from models.tickets import audit, get_ticket, ticket_history

log = logging.getLogger(__name__)

TAG = re.compile(r"\[NT#(\d+)\]")
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


def understand(raw: bytes, envelope_sender: str, config: MailConfig, classifier: Classifier,
               detector: LanguageDetector) -> Understanding:
    """Parse, judge, check trust, detect the language and classify (CPU only, no I/O)."""
    mail = parse(raw, envelope_sender)
    verdict = judge(mail, envelope_sender=envelope_sender,
                    own_addresses=config.support_addresses)
    text = mail.new_text or mail.body
    triage = classifier.classify(mail.subject, text[:4000]) if verdict.opens_ticket else None
    refs: tuple[str, ...] = ()
    if verdict.kind == "bounce":
        own = {mail.message_id}
        found = [m.decode("ascii", "replace") for m in RAW_MESSAGE_IDS.findall(raw)]
        refs = tuple(dict.fromkeys([*mail.in_reply_to, *mail.references,
                                    *(m for m in found if m not in own)]))
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
                 classifier: Classifier, detector: LanguageDetector) -> None:
        self.db = db
        self.engine = engine
        self.config = config
        self.classifier = classifier
        self.detector = detector

    async def process(self, message_id: int, now: datetime) -> str | None:
        """Process one pending message; returns its disposition (None if it is gone)."""
        async with self.db.reader() as session:
            row = await session.get(Message, message_id)
            if row is None or row.disposition != "pending" or row.raw is None:
                return None if row is None else row.disposition
            raw, envelope_sender = row.raw, row.sender
        understood = await asyncio.to_thread(
            understand, raw, envelope_sender, self.config, self.classifier, self.detector
        )
        async with self.db.session() as session:
            locked = await lock_message(session, message_id)
            if locked is None or locked.disposition != "pending":
                return None if locked is None else locked.disposition
            await self._apply(session, locked, understood, now)
            disposition = locked.disposition
            ticket = locked.ticket_number
        log.info("event=mail_processed message=%s disposition=%s ticket=%s",
                 message_id, disposition, ticket or "-")
        return disposition

    async def fail(self, message_id: int, error: str, now: datetime) -> None:
        """Record a failed attempt; retry later with backoff, or give up after the last one."""
        async with self.db.session() as session:
            row = await lock_message(session, message_id)
            if row is None or row.disposition != "pending":
                return
            row.attempts += 1
            row.reason = error[:2000]
            if row.attempts >= self.config.max_attempts:
                row.disposition = "failed"
                row.done_at = now
            else:
                row.next_attempt_at = now + timedelta(seconds=5 * 2 ** row.attempts)
            session.add(row)
        log.error("event=mail_failed message=%s attempts=%s error=%s", message_id,
                  row.attempts, error.splitlines()[0][:200] if error else "")

    async def _apply(self, session: AsyncSession, row: Message, u: Understanding,
                     now: datetime) -> None:
        mail = u.mail
        row.text = mail.new_text or mail.body
        row.subject = mail.subject
        row.thread_id = (mail.references or mail.in_reply_to or (mail.message_id,))[0]
        row.sender = mail.sender or row.sender
        row.done_at = now
        refs = [*mail.in_reply_to, *reversed(mail.references)]
        if u.verdict.kind == "bounce":
            row.disposition, row.reason = "bounce", u.verdict.reason
            row.ticket_number = await ticket_of_ids(session, list(u.bounce_refs))
            if row.ticket_number is not None:
                await audit(session, ticket_number=row.ticket_number, actor="mail",
                            action="bounce", now=now, message=row.external_id,
                            reason=u.verdict.reason)
            return
        if not u.verdict.opens_ticket:
            row.disposition, row.reason = u.verdict.kind, u.verdict.reason
            row.ticket_number = await ticket_of_ids(session, refs)
            return
        customer = await find_by_email(session, mail.sender) if mail.sender else None
        verified = u.trust.verified
        number = (await ticket_of_ids(session, refs)
                  or await self._by_tag(session, mail, customer if verified else None))
        ticket = await get_ticket(session, number) if number is not None else None
        if ticket is not None and await self._follow_up(session, row, ticket, u, customer, now):
            return
        join = await self._flood(session, u, customer, now)
        if join is not None:
            await self._join(session, row, join, now)
            return
        await self._new_ticket(session, row, u, customer, ticket, now)

    async def _by_tag(self, session: AsyncSession, mail: ParsedMail,
                      customer: CustomerView | None) -> int | None:
        """A [NT#n] tag counts only from the ticket's requester or its (verified) customer."""
        match = TAG.search(mail.subject)
        if match is None:
            return None
        ticket = await get_ticket(session, int(match.group(1)))
        if ticket is None:
            return None
        same_customer = customer is not None and ticket.customer_id == customer.id
        return ticket.number if same_customer or ticket.requester == mail.sender else None

    async def _follow_up(self, session: AsyncSession, row: Message, ticket: Ticket,
                         u: Understanding, customer: CustomerView | None,
                         now: datetime) -> bool:
        """Add the mail to its ticket; False when a new, linked ticket must be opened instead."""
        assert ticket.number is not None
        closed = ticket.status in (TicketStatus.CLOSED, TicketStatus.DECLINED)
        window = timedelta(days=self.config.followup_reopen_days)
        if closed and ticket.closed_at is not None and now - ticket.closed_at > window:
            return False
        row.ticket_number, row.disposition = ticket.number, "follow-up"
        if closed:
            declined = ticket.status == TicketStatus.DECLINED
            ticket.status = TicketStatus.AWAITING_CONSENT if declined else TicketStatus.OPEN
            ticket.closed_at = None
            session.add(ticket)
            await audit(session, ticket_number=ticket.number, actor="mail", action="reopened",
                        now=now, message=row.external_id)
        await audit(session, ticket_number=ticket.number, actor="customer",
                    action="customer_reply", now=now, message=row.external_id,
                    sender=u.mail.sender)
        if ticket.status == TicketStatus.AWAITING_CONSENT:
            await self._consent(session, row, ticket, u, customer, now)
        return True

    async def _consent_evidence(self, session: AsyncSession, ticket: Ticket, u: Understanding,
                                customer: CustomerView | None) -> str | None:
        """Why this answer may consent for the ticket's customer, or None when nothing shows it.

        Our quote went only to the ticket's requester, a known address of the customer; an
        answer that references one of our own (unguessable) Message-IDs of this ticket was
        written by someone who received it there. Otherwise the sender must be verified and
        belong to the ticket's customer (or be its requester, for an unknown-sender ticket).
        """
        assert ticket.number is not None
        refs = [*u.mail.in_reply_to, *reversed(u.mail.references)]
        ours = await sent_on_ticket(session, ticket_number=ticket.number, ids=refs)
        if ours is not None:
            return f"reply to our message {ours}"
        if not u.trust.verified:
            return None
        if ticket.customer_id is not None:
            owns = customer is not None and customer.id == ticket.customer_id
        else:
            owns = u.mail.sender == ticket.requester
        return f"verified sender ({u.trust.reason})" if owns else None

    async def _consent(self, session: AsyncSession, row: Message, ticket: Ticket,
                       u: Understanding, customer: CustomerView | None, now: datetime) -> None:
        """Record a clear yes or no from someone who may give it; otherwise ask again."""
        assert ticket.number is not None
        language = Language(ticket.language)
        evidence = await self._consent_evidence(session, ticket, u, customer)
        answer = read_answer(u.mail.new_text or u.mail.body)
        if evidence is None:
            await audit(session, ticket_number=ticket.number, actor="mail",
                        action="consent_refused", now=now, sender=u.mail.sender,
                        answer=answer.value,
                        reason="neither a reply to our quote nor a verified sender of the customer")
            row.reason = "answer not accepted as consent: no evidence the sender is the customer"
            body = render("consent_again", language, name="", number=ticket.number,
                          price=self._price(ticket.price_cents, language), evidence_missing=True)
            await self._reply(session, row, ticket, u, body, now)
            return
        if answer is Answer.UNCLEAR:
            await audit(session, ticket_number=ticket.number, actor="mail",
                        action="consent_unclear", now=now, sender=u.mail.sender,
                        evidence=evidence)
            row.reason = "answer to the quote is unclear: asked again"
            body = render("consent_again", language, name=u.mail.sender_name,
                          number=ticket.number, price=self._price(ticket.price_cents, language),
                          evidence_missing=False)
            await self._reply(session, row, ticket, u, body, now)
            return
        consent = answer is Answer.YES
        ticket = await record_consent(session, engine=self.engine, number=ticket.number,
                                      consent=consent, now=now,
                                      actor=f"customer {u.mail.sender}", evidence=evidence)
        body = render("consent", language, name=u.mail.sender_name, consent=consent,
                      number=ticket.number, price=self._price(ticket.price_cents, language),
                      due=self._due(ticket.due_at, language))
        await self._reply(session, row, ticket, u, body, now)

    async def _flood(self, session: AsyncSession, u: Understanding,
                     customer: CustomerView | None, now: datetime) -> Join | None:
        """Whether this mail joins an open ticket instead of opening one (floods, repeats)."""
        limits, sender = self.config.floods, u.mail.sender
        if not sender:
            return None
        since = now - limits.window
        await serialise(session, f"flood:{sender}")
        # a forged copy never joins (or counts against) the genuine sender's tickets
        unverified = customer is not None and not u.trust.verified
        by_sender = [Opened(t.number, t.status, t.opened_at, t.subject, t.text)
                     for t in await tickets_opened_by(session, sender=sender,
                                                      channel=Channel.EMAIL.value, since=since)
                     if (t.status == TicketStatus.UNVERIFIED) == unverified]
        by_customer: list[Opened] = []
        if customer is not None:
            await serialise(session, f"flood-customer:{customer.id}")
            by_customer = [Opened(n, status, now) for n, status in
                           await tickets_of_customer_since(session, customer_id=customer.id,
                                                           since=since)
                           if (status == TicketStatus.UNVERIFIED) == unverified]
        return decide(limits, subject=u.mail.subject, text=u.mail.new_text or u.mail.body,
                      now=now, by_sender=by_sender, by_customer=by_customer)

    async def _join(self, session: AsyncSession, row: Message, join: Join,
                    now: datetime) -> None:
        """Add a flooding or repeated mail to an open ticket: stored, shown, not charged."""
        row.ticket_number, row.disposition, row.reason = join.number, "follow-up", join.reason
        await audit(session, ticket_number=join.number, actor="mail", action="flood_joined",
                    now=now, message=row.external_id, sender=row.sender, reason=join.reason)
        log.info("event=mail_flood_joined message=%s ticket=%s reason=%s", row.id, join.number,
                 join.reason)

    async def _new_ticket(self, session: AsyncSession, row: Message, u: Understanding,
                          customer: CustomerView | None, closed: Ticket | None,
                          now: datetime) -> None:
        mail, triage = u.mail, u.triage
        assert triage is not None
        flags = []
        verified = u.trust.verified
        if customer is not None and not verified:
            flags.append("sender_unverified")
        if customer is None:
            flags.append("unknown_sender")
        if triage.needs_triage:
            flags.append("needs_triage")
        product = choose_product(self.engine, customer, triage.product)
        new = NewTicket(
            channel=Channel.EMAIL, subject=normalise_subject(mail.subject) or "(no subject)",
            product=product, department=triage.department, severity=triage.severity,
            language=u.language, requester=await self._requester(session, mail, customer),
            triage=triage, flags=tuple(flags), linked_ticket=closed.number if closed else None,
            verified=verified or customer is None, evidence=u.trust.reason,
        )
        ticket, result = await open_ticket(session, engine=self.engine, customer=customer,
                                           new=new, now=now)
        row.ticket_number, row.disposition = ticket.number, "ticket"
        if closed is not None:
            row.reason = f"follow-up to NT#{closed.number}, closed too long ago: new ticket"
        if not u.verdict.may_answer:
            row.reason = f"no automatic answer: {u.verdict.reason}"
            await audit(session, ticket_number=ticket.number, actor="mail",
                        action="no_auto_reply", now=now, reason=u.verdict.reason)
            return
        body = self._opened_text(ticket, result, customer, name=u.mail.sender_name,
                                 needs_triage=bool(u.triage and u.triage.needs_triage))
        await self._reply(session, row, ticket, u, body, now)

    async def _requester(self, session: AsyncSession, mail: ParsedMail,
                         customer: CustomerView | None) -> str:
        """Where answers go: the From address; a Reply-To only when it belongs to the same
        customer (or, for an unknown sender, the same domain). A forged From with an outside
        Reply-To must receive neither the customer's plan nor a quote."""
        reply_to = mail.reply_to.strip().lower()
        if not reply_to or reply_to == mail.sender:
            return mail.sender
        if customer is not None:
            other = await find_by_email(session, reply_to)
            return reply_to if other is not None and other.id == customer.id else mail.sender
        return reply_to if reply_to.rpartition("@")[2] == mail.sender.rpartition("@")[2] \
            else mail.sender

    def _opened_text(self, ticket: Ticket, result: Assessment, customer: CustomerView | None,
                     *, name: str, needs_triage: bool) -> str:
        language = Language(ticket.language)
        product = self.engine.policy.products[ticket.product]
        plan = product.plans.get(ticket.plan) if ticket.plan else None
        # the department names live in the templates (words.<language>.j2), once per language
        covered = sorted(plan.departments) if plan else []
        hours = result.target_hours
        return render(
            "ticket_opened", language,
            name=name, number=ticket.number, department=ticket.department,
            severity=ticket.severity, product_name=product.name,
            needs_triage=needs_triage,
            unknown_sender=customer is None,
            unverified=ticket.status == TicketStatus.UNVERIFIED,
            plan_name=plan.name if plan else "", entitled=result.entitled,
            covered=covered, included=result.included, included_left=result.included_left,
            is_incident=result.incident, billable=result.billable,
            price=self._price(ticket.price_cents, language),
            target_hours=int(hours) if hours == int(hours) else float(hours),
            clock=result.clock.value, due=self._due(result.due, language),
            business_hours=business_hours(self.engine.policy.business_hours, language,
                                          ticket.created_at),
        )

    def _price(self, cents: int, language: Language) -> str:
        text = f"{cents / 100:.2f}"
        return text.replace(".", ",") if language is Language.DE else text

    def _due(self, due: datetime | None, language: Language) -> str:
        return local_deadline(due, self.engine.calendar.zone, language) if due else ""

    async def _reply(self, session: AsyncSession, row: Message, ticket: Ticket,
                     u: Understanding, body: str, now: datetime) -> None:
        """Queue an automatic answer to this mail, unless the daily cap is reached."""
        queued = await self._queue_answer(
            session, ticket, body, subject=u.mail.subject, in_reply_to=u.mail.message_id,
            references=u.mail.references, thread_id=row.thread_id, now=now)
        if not queued:
            row.reason = "automatic reply cap reached for this sender"

    async def _queue_answer(self, session: AsyncSession, ticket: Ticket, body: str, *,
                            subject: str, in_reply_to: str, references: tuple[str, ...],
                            thread_id: str | None, now: datetime) -> bool:
        """Queue a mail to the ticket's requester in the caller's transaction; False when the
        daily cap of automatic answers to that address is reached."""
        assert ticket.number is not None
        to = ticket.requester
        sent_today = await outbound_since(session, recipient=to, since=now - timedelta(days=1))
        if sent_today >= self.config.auto_reply_limit_per_day:
            await audit(session, ticket_number=ticket.number, actor="mail",
                        action="auto_reply_suppressed", now=now, recipient=to,
                        reason=f"{sent_today} automatic replies in 24 h")
            return False
        message_id = new_message_id(self.config.domain, ticket.number)
        subject = reply_subject(ticket.number, normalise_subject(subject) or ticket.subject)
        mail = build_mail(
            sender=self.config.from_address, sender_name=self.config.from_name, to=to,
            subject=subject, body=body, message_id=message_id,
            in_reply_to=in_reply_to, references=references,
            language=Language(ticket.language), ticket_number=ticket.number, now=now,
        )
        session.add(Message(
            ticket_number=ticket.number, direction="out", channel=Channel.EMAIL.value,
            external_id=message_id, thread_id=thread_id, sender=self.config.from_address,
            recipient=to, subject=subject, text=body, raw=bytes(mail),
            disposition="queued", created_at=now, next_attempt_at=now,
        ))
        await audit(session, ticket_number=ticket.number, actor="mail",
                    action="auto_reply_queued", now=now, message=message_id, recipient=to)
        return True

    async def confirm_sender(self, number: int, *, agent: str, now: datetime) -> Ticket:
        """An agent vouches for the sender of an unverified ticket: it is charged, priced and
        timed now, and the customer gets the full answer (with a quote if it is billable)."""
        async with self.db.session() as session:
            ticket = await get_ticket(session, number)
            if ticket is None or ticket.customer_id is None:
                raise TicketNotFound(f"NT#{number} does not exist or names no customer")
            customer = await get_customer(session, ticket.customer_id)
            assert customer is not None
            ticket, result = await confirm_sender(session, engine=self.engine, number=number,
                                                  customer=customer, now=now,
                                                  actor=f"agent {agent}")
            messages, _ = await ticket_history(session, number)
            first = next(m for m in messages if m.direction == "in")
            body = self._opened_text(ticket, result, customer, name="",
                                     needs_triage="needs_triage" in ticket.flags)
            await self._queue_answer(session, ticket, body, subject=first.subject,
                                     in_reply_to=first.external_id, references=(),
                                     thread_id=first.thread_id, now=now)
        return ticket
