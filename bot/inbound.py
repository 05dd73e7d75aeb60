"""Use case: turn one stored inbound mail into a ticket, a follow-up, or a recorded non-answer.

`understand` is the CPU part (parse, loop check, trust, language, classification) and runs in
a worker thread; `MailIntake.process` then applies it in one transaction with the reply, so a
crash leaves either nothing or everything, and the message is simply processed again.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.classify import Classifier
from bot.classify.lazy import triage_of
from bot.domain import Channel, Language, TicketStatus, Triage
from bot.intake.language import LanguageDetector
from bot.intake.loops import Verdict, judge
from bot.intake.mime import ParsedMail, normalise_subject, parse
from bot.intake.replies import build_mail, local_deadline, new_message_id, render, reply_subject
from bot.intake.trust import Trust, assess_sender
from bot.service import NewTicket, choose_product, open_ticket, record_consent
from bot.sla.engine import Assessment, Engine
from models.customers import CustomerView, find_by_email
from models.db import Database
from models.messages import lock_message, outbound_since, ticket_of_ids
from models.tables import Message, Ticket
from models.tickets import audit, get_ticket

log = logging.getLogger(__name__)

TAG = re.compile(r"\[NT#(\d+)\]")
RAW_MESSAGE_IDS = re.compile(rb"(?im)^message-id:[ \t]*(<[^<>\s]+>)")
YES = re.compile(r"^\W*(ja|yes|einverstanden|zugestimmt|agreed|i agree|ok|okay)\b", re.I)
NO = re.compile(r"^\W*(nein|no|abgelehnt|declined?)\b", re.I)


@dataclass(frozen=True)
class MailConfig:
    """The mail settings the use case needs."""

    support_addresses: tuple[str, ...]
    from_name: str
    authserv_id: str = ""
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
                    own_addresses=config.support_addresses)
    text = mail.new_text or mail.body
    triage = (classifier.classify(mail.subject, text[:4000])
              if verdict.opens_ticket and classifier is not None else None)
    refs: tuple[str, ...] = ()
    if verdict.kind == "bounce":
        own = {mail.message_id}
        found = [m.decode("ascii", "replace") for m in RAW_MESSAGE_IDS.findall(raw)]
        refs = tuple(dict.fromkeys([*mail.in_reply_to, *mail.references,
                                    *(m for m in found if m not in own)]))
    return Understanding(
        mail=mail,
        verdict=verdict,
        trust=assess_sender(mail, config.authserv_id),
        language=detector.detect(f"{normalise_subject(mail.subject)}\n{text}"),
        triage=triage,
        bounce_refs=refs,
    )


def consent_answer(text: str) -> bool | None:
    """YES/JA or NO/NEIN at the start of the new text; None when it is neither."""
    first = text.strip().splitlines()[0] if text.strip() else ""
    if YES.match(first):
        return True
    if NO.match(first):
        return False
    return None


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
        customer = await find_by_email(session, mail.sender) if u.trust.trusted else None
        number = await ticket_of_ids(session, refs) or await self._by_tag(session, mail, customer)
        ticket = await get_ticket(session, number) if number is not None else None
        if ticket is not None and await self._follow_up(session, row, ticket, u, now):
            return
        await self._new_ticket(session, row, u, customer, ticket, now)

    async def _by_tag(self, session: AsyncSession, mail: ParsedMail,
                      customer: CustomerView | None) -> int | None:
        """A [NT#n] tag counts only from the ticket's requester or its customer."""
        match = TAG.search(mail.subject)
        if match is None:
            return None
        ticket = await get_ticket(session, int(match.group(1)))
        if ticket is None:
            return None
        same_customer = customer is not None and ticket.customer_id == customer.id
        return ticket.number if same_customer or ticket.requester == mail.sender else None

    async def _follow_up(self, session: AsyncSession, row: Message, ticket: Ticket,
                         u: Understanding, now: datetime) -> bool:
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
                    action="customer_reply", now=now, message=row.external_id)
        answer = consent_answer(u.mail.new_text)
        if ticket.status == TicketStatus.AWAITING_CONSENT and answer is not None:
            ticket = await record_consent(session, engine=self.engine, number=ticket.number,
                                          consent=answer, now=now, actor="customer")
            language = Language(ticket.language)
            body = render("consent", language, name=u.mail.sender_name, consent=answer,
                          number=ticket.number, price=self._price(ticket.price_cents, language),
                          due=self._due(ticket.due_at, language))
            await self._reply(session, row, ticket, u, body, now)
        return True

    async def _new_ticket(self, session: AsyncSession, row: Message, u: Understanding,
                          customer: CustomerView | None, closed: Ticket | None,
                          now: datetime) -> None:
        mail, triage = u.mail, u.triage
        assert triage is not None
        flags = []
        if u.trust.checked and not u.trust.trusted:
            flags.append("sender_unverified")
        if customer is None:
            flags.append("unknown_sender")
        if triage.needs_triage:
            flags.append("needs_triage")
        product = choose_product(self.engine, customer, triage.product)
        new = NewTicket(
            channel=Channel.EMAIL, subject=normalise_subject(mail.subject) or "(no subject)",
            product=product, department=triage.department, severity=triage.severity,
            language=u.language, requester=mail.reply_to or mail.sender, triage=triage,
            flags=tuple(flags), linked_ticket=closed.number if closed else None,
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
        body = self._opened_text(ticket, result, customer, u)
        await self._reply(session, row, ticket, u, body, now)

    def _opened_text(self, ticket: Ticket, result: Assessment, customer: CustomerView | None,
                     u: Understanding) -> str:
        language = Language(ticket.language)
        product = self.engine.policy.products[ticket.product]
        plan = product.plans.get(ticket.plan) if ticket.plan else None
        labels = {Language.DE: {"accounting": "Abrechnung", "trouble": "Störungen",
                                "developer": "Entwickler-Unterstützung",
                                "consulting": "Beratung"},
                  Language.EN: {"accounting": "accounting", "trouble": "service disruptions",
                                "developer": "developer guidance", "consulting": "consulting"}}
        covered = ", ".join(labels[language][d] for d in sorted(plan.departments)) if plan else ""
        hours = result.target_hours
        return render(
            "ticket_opened", language,
            name=u.mail.sender_name, number=ticket.number, department=ticket.department,
            severity=ticket.severity, product_name=product.name,
            needs_triage=bool(u.triage and u.triage.needs_triage),
            unknown_sender=customer is None, unverified="sender_unverified" in ticket.flags,
            plan_name=plan.name if plan else "", entitled=result.entitled,
            covered=covered, included=result.included, included_left=result.included_left,
            is_incident=result.incident, billable=result.billable,
            price=self._price(ticket.price_cents, language),
            target_hours=int(hours) if hours == int(hours) else float(hours),
            clock=result.clock.value, due=self._due(result.due, language),
        )

    def _price(self, cents: int, language: Language) -> str:
        text = f"{cents / 100:.2f}"
        return text.replace(".", ",") if language is Language.DE else text

    def _due(self, due: datetime | None, language: Language) -> str:
        return local_deadline(due, self.engine.calendar.zone, language) if due else ""

    async def _reply(self, session: AsyncSession, row: Message, ticket: Ticket,
                     u: Understanding, body: str, now: datetime) -> None:
        """Queue an automatic answer in the same transaction, unless the daily cap is reached."""
        assert ticket.number is not None
        to = ticket.requester or u.mail.sender
        sent_today = await outbound_since(session, recipient=to, since=now - timedelta(days=1))
        if sent_today >= self.config.auto_reply_limit_per_day:
            await audit(session, ticket_number=ticket.number, actor="mail",
                        action="auto_reply_suppressed", now=now, recipient=to,
                        reason=f"{sent_today} automatic replies in 24 h")
            row.reason = "automatic reply cap reached for this sender"
            return
        message_id = new_message_id(self.config.domain, ticket.number)
        subject = reply_subject(ticket.number, normalise_subject(u.mail.subject) or
                                ticket.subject)
        mail = build_mail(
            sender=self.config.from_address, sender_name=self.config.from_name, to=to,
            subject=subject, body=body, message_id=message_id,
            in_reply_to=u.mail.message_id, references=u.mail.references,
            language=Language(ticket.language), ticket_number=ticket.number, now=now,
        )
        session.add(Message(
            ticket_number=ticket.number, direction="out", channel=Channel.EMAIL.value,
            external_id=message_id, thread_id=row.thread_id, sender=self.config.from_address,
            recipient=to, subject=subject, text=body, raw=bytes(mail),
            disposition="queued", created_at=now, next_attempt_at=now,
        ))
        await audit(session, ticket_number=ticket.number, actor="mail",
                    action="auto_reply_queued", now=now, message=message_id)

