"""The conversation use case, the same for every channel: a customer's message becomes a new
ticket, a follow-up (reopening, consent), or joins an open ticket; the answer goes out through
the channel's ReplyChannel. Adapters parse, find the customer, classify, and call `handle`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Protocol

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.cases.callbacks import (
    CallbackError,
    NotBookable,
    book,
    callback_change,
    cancel_booking,
    held_booking,
    newest_offer,
    offer_for,
    rebook,
    record_offer,
    slot_choice,
    slot_choices,
)
from bot.cases.consent import Answer, read_answer
from bot.cases.deadlines import reopen, resume
from bot.cases.floods import FloodLimits, Join, Opened, decide
from bot.cases.replies import business_hours, local_deadline, render
from bot.cases.service import NewTicket, choose_product, open_ticket, record_consent
from bot.domain import Channel, Choice, IncomingMessage, Language, TicketStatus, Triage
from bot.sla.engine import Assessment, Engine
from models.callbacks import active_booking
from models.customers import CustomerView
from models.messages import ticket_of_ids
from models.senders import sent_on_ticket, serialise, tickets_of_customer_since, tickets_opened_by
from models.tables import Message, Ticket
from models.tickets import audit, count_audit, get_ticket

log = logging.getLogger(__name__)


class ReplyChannel(Protocol):
    """How one channel queues an answer to the message being handled, in its own form."""

    async def queue_answer(self, session: AsyncSession, ticket: Ticket, body: str, *,
                           now: datetime, essential: bool = False,
                           asks_consent: bool = False, choices: Sequence[Choice] = ()) -> bool:
        """Queue `body` in the caller's transaction; False when the channel's cap says no.

        An essential answer (a quote, a recorded consent) is never held back by a cap; an
        answer that asks for consent to the ticket's price may carry the channel's own
        controls for it (Slack: Confirm / Decline buttons). `choices` become buttons where the
        channel has them (the body names them for mail)."""
        ...


class TicketAnnouncer(Protocol):
    """Where agents learn of every new ticket (the Slack triage channel)."""

    async def ticket_opened(self, session: AsyncSession, *, ticket: Ticket, result: Assessment,
                            customer: CustomerView | None, triage: Triage | None, text: str,
                            now: datetime) -> None:
        """Announce a ticket in the caller's transaction."""
        ...

    async def customer_replied(self, session: AsyncSession, *, ticket: Ticket, row: Message,
                               proven: bool, now: datetime, note: str = "") -> None:
        """Mirror a customer's reply on a ticket to the agents, in the caller's transaction."""
        ...

    async def ticket_changed(self, session: AsyncSession, *, ticket: Ticket, key: str,
                             now: datetime) -> None:
        """Show the agents the ticket as it stands after a change (`key`: the change, once)."""
        ...


@dataclass(frozen=True)
class ConversationConfig:
    """The settings the use case needs."""

    followup_reopen_days: int = 14
    floods: FloodLimits = field(default_factory=FloodLimits)
    mail_sender: tuple[str, str] | None = None  # our address and name, for callback mails


def actor_of(channel: Channel) -> str:
    """The audit trail's name for a channel's automatic steps."""
    return "mail" if channel is Channel.EMAIL else channel.value


def owns(ticket: Ticket, m: IncomingMessage, customer: CustomerView | None) -> bool:
    """Whether the sender is the ticket's requester or one of its customer's people."""
    if ticket.customer_id is not None:
        return customer is not None and customer.id == ticket.customer_id
    return m.sender == ticket.requester


class Conversation:
    """Applies one understood message in the caller's transaction."""

    def __init__(self, *, engine: Engine, config: ConversationConfig,
                 announcer: TicketAnnouncer | None = None) -> None:
        self.engine = engine
        self.config = config
        self.announcer = announcer

    async def handle(self, session: AsyncSession, row: Message, m: IncomingMessage, *,
                     customer: CustomerView | None, language: Language, triage: Triage | None,
                     reply: ReplyChannel, now: datetime) -> None:
        """A follow-up to its ticket, a flood joining one, a new ticket, or nothing to do.

        One sender's messages are decided one after another (a transaction lock per sender on
        PostgreSQL, shared by every replica and `intake-bot work`; SQLite has one writer), so
        that identical messages arriving at once see each other's tickets.
        """
        if m.sender:
            await serialise(session, f"sender:{m.channel.value}:{m.sender}")
        number = await ticket_of_ids(session, list(m.thread_refs), m.sender)
        follow = m
        if number is not None and m.trusted and not m.refs_signed:
            # unsigned In-Reply-To/References: the signature says nothing about which ticket
            # this answers, so it is proven for that ticket only by our own Message-ID
            follow = replace(m, trusted=False, trust_reason=f"{m.trust_reason}; its "
                             "In-Reply-To/References are not signed")
        if number is None and m.trusted:
            number = await self._by_hint(session, m, customer)
        ticket = await get_ticket(session, number) if number is not None else None
        if ticket is not None and await self._follow_up(session, row, ticket, follow, customer,
                                                        reply, now):
            return
        if not m.may_open_ticket:
            row.disposition = "ignored"
            row.reason = "a reply outside any ticket's conversation"
            return
        join = await self._flood(session, m, customer, now)
        if join is not None:
            await self._join(session, row, m, join, now)
            return
        assert triage is not None
        await self._new_ticket(session, row, m, customer, language, triage, ticket, reply, now)

    async def _by_hint(self, session: AsyncSession, m: IncomingMessage,
                       customer: CustomerView | None) -> int | None:
        """A ticket a verified sender names counts for its requester or its customer."""
        if m.ticket_hint is None:
            return None
        ticket = await get_ticket(session, m.ticket_hint)
        if ticket is None:
            return None
        same_customer = customer is not None and ticket.customer_id == customer.id
        return ticket.number if same_customer or ticket.requester == m.sender else None

    async def _follow_up(self, session: AsyncSession, row: Message, ticket: Ticket,
                         m: IncomingMessage, customer: CustomerView | None, reply: ReplyChannel,
                         now: datetime) -> bool:
        """Add the message to its ticket; False when a new, linked ticket must be opened.

        Only a proven sender (trusted, or answering a message we sent on this ticket) reopens
        a closed ticket or answers a quote; anything else is kept on the ticket for the agents
        and changes nothing. A declined quote stays declined: a change of mind needs a new
        quote, which an agent (or a new message) starts.
        """
        assert ticket.number is not None
        closed = ticket.status in (TicketStatus.CLOSED, TicketStatus.DECLINED)
        window = timedelta(days=self.config.followup_reopen_days)
        if closed and ticket.closed_at is not None and now - ticket.closed_at > window:
            return False
        row.ticket_number, row.disposition = ticket.number, "follow-up"
        ours = await sent_on_ticket(session, ticket_number=ticket.number,
                                    ids=list(m.thread_refs))
        # a verified sender proves only their own identity: they speak for this ticket only as
        # its requester or one of its customer's people (an outsider copied on the thread not)
        proven = ours is not None or (m.trusted and owns(ticket, m, customer))
        await audit(session, ticket_number=ticket.number, actor=f"sender {m.sender}",
                    action="customer_reply" if proven else "unverified_reply", now=now,
                    message=row.external_id, evidence=ours or m.trust_reason)
        if self.announcer is not None:
            await self.announcer.customer_replied(session, ticket=ticket, row=row,
                                                  proven=proven, now=now)
        if not proven:
            row.reason = "sender not verified: kept on the ticket, changes nothing"
            return True
        before = ticket.status
        if ticket.status == TicketStatus.CLOSED:
            reopened = await reopen(session, engine=self.engine, number=ticket.number,
                                    now=now, actor=actor_of(m.channel), message=row.external_id)
            if reopened.status == TicketStatus.AWAITING_CONSENT:
                # closed while its quote waited: this message answers the quote, or it is
                # asked again; never worked on (or billed) without a yes
                await self._consent(session, row, reopened, m, customer, reply, now)
        elif ticket.status == TicketStatus.DECLINED:
            row.reason = "the quote was declined: kept on the ticket for the agents"
        elif ticket.status == TicketStatus.AWAITING_CONSENT:
            await self._consent(session, row, ticket, m, customer, reply, now)
        elif ticket.status == TicketStatus.WAITING_CUSTOMER:
            # the customer answered what the agent was waiting for: the clock runs again
            await resume(session, engine=self.engine, number=ticket.number, now=now,
                         actor=f"sender {m.sender}")
        elif m.channel is Channel.EMAIL and (choice := slot_choice(m.text)) is not None:
            await self._book_callback(session, row, ticket, m, choice, reply, now)
        elif m.channel is Channel.EMAIL and (change := callback_change(m.text)) is not None:
            await self._change_callback(session, row, ticket, m, change, reply, now)
        after = await get_ticket(session, ticket.number)
        if self.announcer is not None and after is not None and after.status != before:
            await self.announcer.ticket_changed(session, ticket=after, key=row.external_id,
                                                now=now)
        return True

    async def _offer_callbacks(self, session: AsyncSession, ticket: Ticket, m: IncomingMessage,
                               now: datetime) -> list[datetime]:
        """Free callback slots for a proven customer with callbacks left this month (a number
        answers them by mail, a button in Slack); remembered, so that only these are booked."""
        mail_ready = m.channel is not Channel.EMAIL or self.config.mail_sender is not None
        if (not m.trusted or not mail_ready or ticket.status != TicketStatus.OPEN
                or ticket.number is None):
            return []
        slots = await offer_for(session, engine=self.engine, ticket=ticket, now=now)
        if slots:
            await record_offer(session, number=ticket.number, slots=slots, now=now,
                               actor=actor_of(m.channel))
        return slots

    async def _book_callback(self, session: AsyncSession, row: Message, ticket: Ticket,
                             m: IncomingMessage, choice: int, reply: ReplyChannel,
                             now: datetime) -> None:
        """Book the slot the customer chose by its number; a taken slot gets a new offer."""
        assert ticket.number is not None
        offer = await newest_offer(session, ticket.number)
        offered = offer.slots
        if not offered or not 1 <= choice <= len(offered):
            return  # a number that answers no offer of ours is just a message
        _, moving = await held_booking(session, ticket.number, offer)
        try:
            async with session.begin_nested():  # a failed booking leaves nothing behind
                if moving is not None:
                    await rebook(session, engine=self.engine, booking_id=moving,
                                 slot=offered[choice - 1], now=now,
                                 actor=f"sender {m.sender}", sender=self.config.mail_sender)
                    row.reason = f"callback moved to slot {choice}"
                    return
                await book(session, engine=self.engine, number=ticket.number,
                           slot=offered[choice - 1], now=now, actor=f"sender {m.sender}",
                           sender=self.config.mail_sender)
            row.reason = f"callback slot {choice} booked"
            return
        except NotBookable as exc:  # booked already, or not being worked on: no new offer
            row.reason = f"callback slot {choice} not booked: {exc}"
            return
        except CallbackError as exc:
            row.reason = f"callback slot {choice} not booked: {exc}"
        slots = await offer_for(session, engine=self.engine, ticket=ticket, now=now,
                                moving=moving is not None)
        if slots:  # a move stays a move: the next number moves the booking still held
            await record_offer(session, number=ticket.number, slots=slots, now=now,
                               actor=actor_of(m.channel), moves=moving)
        language = Language(ticket.language)
        body = render("callback_offer", language, name=m.sender_name, number=ticket.number,
                      channel=ticket.channel,
                      callbacks=[self.due(slot, language) for slot in slots],
                      slot_minutes=self.engine.policy.callbacks.slot_minutes)
        await self._answer(session, row, ticket, reply, body, now)

    async def _change_callback(self, session: AsyncSession, row: Message, ticket: Ticket,
                               m: IncomingMessage, change: str, reply: ReplyChannel,
                               now: datetime) -> None:
        """A proven customer cancels their booked callback (a METHOD:CANCEL for their calendar)
        or asks to move it (free slots offered; the number they answer moves it)."""
        assert ticket.number is not None
        held = await active_booking(session, ticket.number)
        if held is None or held.id is None:
            row.reason = f"asked to {change} a callback, but none is booked"
            return
        if change == "cancel":
            try:
                async with session.begin_nested():
                    await cancel_booking(session, booking_id=held.id, now=now,
                                         actor=f"sender {m.sender}",
                                         sender=self.config.mail_sender, engine=self.engine)
            except CallbackError as exc:  # it has begun: nothing to give back
                row.reason = f"callback not cancelled: {exc}"
                return
            row.reason = "callback cancelled"
            return
        slots = await offer_for(session, engine=self.engine, ticket=ticket, now=now,
                                moving=True)
        if slots:
            await record_offer(session, number=ticket.number, slots=slots, now=now,
                               actor=actor_of(m.channel), moves=held.id)
        language = Language(ticket.language)
        body = render("callback_offer", language, name=m.sender_name, number=ticket.number,
                      channel=ticket.channel,
                      callbacks=[self.due(slot, language) for slot in slots],
                      slot_minutes=self.engine.policy.callbacks.slot_minutes, moving=True)
        row.reason = "callback move asked: slots offered"
        await self._answer(session, row, ticket, reply, body, now, essential=True)

    async def _consent_evidence(self, session: AsyncSession, ticket: Ticket, m: IncomingMessage,
                                customer: CustomerView | None) -> str | None:
        """Why this answer may consent for the ticket's customer, or None when nothing shows it.

        The sender must be the ticket's requester or belong to its customer, and prove it: by
        being trusted (a verified signature; a user of the customer's mapped Slack channel), or
        by answering one of our own (unguessable) message ids of this ticket, which went only to
        the requester.
        """
        assert ticket.number is not None
        if not owns(ticket, m, customer):
            return None
        ours = await sent_on_ticket(session, ticket_number=ticket.number,
                                    ids=list(m.thread_refs))
        if ours is not None:
            return f"reply to our message {ours}"
        return f"verified sender ({m.trust_reason})" if m.trusted else None

    async def _consent(self, session: AsyncSession, row: Message, ticket: Ticket,
                       m: IncomingMessage, customer: CustomerView | None, reply: ReplyChannel,
                       now: datetime) -> None:
        """Record a clear yes or no from someone who may give it; otherwise ask again."""
        assert ticket.number is not None
        language = Language(ticket.language)
        evidence = await self._consent_evidence(session, ticket, m, customer)
        answer = read_answer(m.text, m.sender_name)
        actor = actor_of(m.channel)
        if evidence is None:
            await audit(session, ticket_number=ticket.number, actor=actor,
                        action="consent_refused", now=now, sender=m.sender,
                        answer=answer.value,
                        reason="neither a reply to our quote nor a verified sender of the customer")
            row.reason = "answer not accepted as consent: no evidence the sender is the customer"
            body = render("consent_again", language, name="", number=ticket.number,
                          channel=ticket.channel,
                          price=self.price(ticket.price_cents, language), evidence_missing=True)
            await self._answer(session, row, ticket, reply, body, now)
            return
        if answer is Answer.UNCLEAR:
            await audit(session, ticket_number=ticket.number, actor=actor,
                        action="consent_unclear", now=now, sender=m.sender, evidence=evidence)
            row.reason = "answer to the quote is unclear: asked again"
            body = render("consent_again", language, name=m.sender_name, channel=ticket.channel,
                          number=ticket.number, price=self.price(ticket.price_cents, language),
                          evidence_missing=False)
            await self._answer(session, row, ticket, reply, body, now)
            return
        await self.answer_quote(session, ticket, consent=answer is Answer.YES,
                                actor=f"sender {m.sender}", evidence=evidence,
                                name=m.sender_name, reply=reply, now=now)

    async def answer_quote(self, session: AsyncSession, ticket: Ticket, *, consent: bool,
                           actor: str, evidence: str, name: str, reply: ReplyChannel,
                           now: datetime) -> Ticket:
        """The customer's proven yes or no to the quote (a reply or a button): recorded (a yes
        starts the clock), and confirmed to them; a repeated answer changes nothing."""
        assert ticket.number is not None
        language = Language(ticket.language)
        ticket = await record_consent(session, engine=self.engine, number=ticket.number,
                                      consent=consent, now=now, actor=actor, evidence=evidence)
        body = render("consent", language, name=name, consent=consent, channel=ticket.channel,
                      number=ticket.number, price=self.price(ticket.price_cents, language),
                      due=self.due(ticket.due_at, language))
        await reply.queue_answer(session, ticket, body, now=now, essential=True)
        return ticket

    async def _flood(self, session: AsyncSession, m: IncomingMessage,
                     customer: CustomerView | None, now: datetime) -> Join | None:
        """Whether this message joins an open ticket instead of opening one (floods, repeats)."""
        limits, sender = self.config.floods, m.sender
        if not sender:
            return None
        since = now - limits.window
        await serialise(session, f"flood:{sender}")
        # a forged copy never joins (or counts against) the genuine sender's tickets
        unverified = customer is not None and not m.trusted
        # a sender's tickets count only within one customer (or among unknown senders): the
        # same Slack user in two customers' channels must not join one's message to the other's
        by_sender = [Opened(t.number, t.status, t.opened_at, t.subject, t.text)
                     for t in await tickets_opened_by(
                         session, sender=sender, channel=m.channel.value, since=since,
                         customer_id=customer.id if customer is not None else None)
                     if (t.status == TicketStatus.UNVERIFIED) == unverified]
        by_customer: list[Opened] = []
        if customer is not None:
            await serialise(session, f"flood-customer:{customer.id}")
            by_customer = [Opened(n, status, now) for n, status in
                           await tickets_of_customer_since(session, customer_id=customer.id,
                                                           since=since)
                           if (status == TicketStatus.UNVERIFIED) == unverified]
        return decide(limits, subject=m.subject, text=m.text, now=now, by_sender=by_sender,
                      by_customer=by_customer)

    async def _join(self, session: AsyncSession, row: Message, m: IncomingMessage, join: Join,
                    now: datetime) -> None:
        """Add a flooding or repeated message to an open ticket: stored, shown, not charged."""
        row.ticket_number, row.disposition, row.reason = join.number, "follow-up", join.reason
        await audit(session, ticket_number=join.number, actor=actor_of(m.channel),
                    action="flood_joined", now=now, message=row.external_id, sender=row.sender,
                    reason=join.reason)
        log.info("event=%s_flood_joined message=%s ticket=%s reason=%s", actor_of(m.channel),
                 row.id, join.number, join.reason)
        await self._mirror_joined(session, row, join, now, proven=m.trusted)

    async def _mirror_joined(self, session: AsyncSession, row: Message, join: Join,
                             now: datetime, *, proven: bool) -> None:
        """Show a joined message to the agents, up to the limit per ticket and flood window."""
        limit = self.config.floods.mirror_joined
        if self.announcer is None or limit <= 0:
            return
        joined = await count_audit(session, ticket_number=join.number, action="flood_joined",
                                   since=now - self.config.floods.window)
        ticket = await get_ticket(session, join.number)
        if joined > limit or ticket is None:
            return
        note = f"joined: {join.reason}"
        if joined == limit:
            note += f"; further joined messages stay on the ticket (limit {limit})"
        await self.announcer.customer_replied(session, ticket=ticket, row=row,
                                              proven=proven, now=now, note=note)

    async def _new_ticket(self, session: AsyncSession, row: Message, m: IncomingMessage,
                          customer: CustomerView | None, language: Language, triage: Triage,
                          closed: Ticket | None, reply: ReplyChannel, now: datetime) -> None:
        flags = []
        if customer is not None and not m.trusted:
            flags.append("sender_unverified")
        if customer is None:
            flags.append("unknown_sender")
        if triage.needs_triage:
            flags.append("needs_triage")
        flags.extend(m.flags)  # e.g. an out-of-office-looking subject, for agents
        product = choose_product(self.engine, customer, triage.product)
        new = NewTicket(
            channel=m.channel, subject=m.topic or "(no subject)", product=product,
            department=triage.department, severity=triage.severity, language=language,
            requester=m.requester, triage=triage, flags=tuple(flags),
            linked_ticket=closed.number if closed else None,
            verified=m.trusted or customer is None, evidence=m.trust_reason,
        )
        ticket, result = await open_ticket(session, engine=self.engine, customer=customer,
                                           new=new, now=now)
        row.ticket_number, row.disposition = ticket.number, "ticket"
        if self.announcer is not None:
            await self.announcer.ticket_opened(session, ticket=ticket, result=result,
                                               customer=customer, triage=triage, text=m.text,
                                               now=now)
        if closed is not None:
            row.reason = f"follow-up to NT#{closed.number}, closed too long ago: new ticket"
        if not m.may_answer:
            row.reason = f"no automatic answer: {m.quiet_reason}"
            await audit(session, ticket_number=ticket.number, actor=actor_of(m.channel),
                        action="no_auto_reply", now=now, reason=m.quiet_reason)
            return
        slots = await self._offer_callbacks(session, ticket, m, now)
        body = self.opened_text(ticket, result, customer, name=m.sender_name,
                                needs_triage=triage.needs_triage, callback_slots=slots)
        asks = ticket.status == TicketStatus.AWAITING_CONSENT
        assert ticket.number is not None
        choices = slot_choices(ticket.number, slots, zone=self.engine.calendar.zone,
                               language=Language(ticket.language))
        await self._answer(session, row, ticket, reply, body, now,
                           essential=asks and customer is not None, asks_consent=asks,
                           choices=choices)

    async def _answer(self, session: AsyncSession, row: Message, ticket: Ticket,
                      reply: ReplyChannel, body: str, now: datetime, *,
                      essential: bool = False, asks_consent: bool = False,
                      choices: Sequence[Choice] = ()) -> None:
        if not await reply.queue_answer(session, ticket, body, now=now, essential=essential,
                                        asks_consent=asks_consent, choices=choices):
            row.reason = "automatic reply cap reached for this sender"

    def opened_text(self, ticket: Ticket, result: Assessment, customer: CustomerView | None,
                    *, name: str, needs_triage: bool,
                    callback_slots: Sequence[datetime] = ()) -> str:
        """The answer to a new ticket, in its language, worded for its channel."""
        language = Language(ticket.language)
        product = self.engine.policy.products[ticket.product]
        plan = self.engine.ticket_plan(ticket.product, ticket.plan, ticket.plan_terms)
        # the department names live in the templates (words.<language>.j2), once per language
        covered = sorted(plan.departments) if plan else []
        hours = result.target_hours
        return render(
            "ticket_opened", language,
            channel=ticket.channel, name=name, number=ticket.number,
            department=ticket.department, severity=ticket.severity, product_name=product.name,
            needs_triage=needs_triage,
            unknown_sender=customer is None,
            unverified=ticket.status == TicketStatus.UNVERIFIED,
            plan_name=plan.name if plan else "", entitled=result.entitled,
            covered=covered, included=result.included, included_left=result.included_left,
            plan_includes=plan.included_incidents if plan else 0,
            is_incident=result.incident, billable=result.billable,
            price=self.price(ticket.price_cents, language),
            target_hours=int(hours) if hours == int(hours) else float(hours),
            clock=result.clock.value, due=self.due(result.due, language),
            business_hours=business_hours(self.engine.policy.business_hours, language,
                                          ticket.created_at),
            callbacks=[self.due(slot, language) for slot in callback_slots],
            slot_minutes=self.engine.policy.callbacks.slot_minutes,
        )

    def price(self, cents: int, language: Language) -> str:
        """A price as the customer reads it: 85,00 or 85.00."""
        text = f"{cents / 100:.2f}"
        return text.replace(".", ",") if language is Language.DE else text

    def due(self, due: datetime | None, language: Language) -> str:
        """A deadline in Berlin time, or empty."""
        return local_deadline(due, self.engine.calendar.zone, language) if due else ""
