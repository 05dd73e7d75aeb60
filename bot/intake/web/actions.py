"""A visitor's click on a choice in the web chat: Yes / No on a quote, a callback slot, cancel or
move a booked callback. Thin: the consent is the conversation's own use case (as a typed JA/NEIN),
bookings are bot/cases/callbacks.py's. One click is one transaction with its answer.

Evidence first: the choice must be one we showed this visitor on that ticket, and anything that
spends the customer's money or callbacks needs a verified visitor of the ticket's customer. A
refused click changes nothing but the audit trail; the visitor is told why.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.cases import callbacks
from bot.cases.callbacks import (
    BOOK_SLOT,
    BOOKABLE,
    CANCEL_BOOKING,
    MOVE_BOOKING,
    CallbackError,
    NotBookable,
)
from bot.cases.conversation import Conversation
from bot.cases.replies import local_deadline, render, words
from bot.domain import Channel, Language, TicketStatus
from bot.intake.web.inbox import visitor_identity
from bot.intake.web.reply import CONSENT_NO, CONSENT_YES, WebReplyChannel
from bot.sla.engine import Engine
from models import callbacks as repo
from models.tables import CallbackBooking, Message, Ticket, WebItem, WebVisitor
from models.tickets import audit, lock_ticket
from models.webchat_out import add_out_item, offered_to

log = logging.getLogger(__name__)

CONSENT = frozenset({CONSENT_YES, CONSENT_NO})
CALLBACK = frozenset({BOOK_SLOT, CANCEL_BOOKING, MOVE_BOOKING})


class WebActions:
    """Applies clicked choices (a ChoiceHandler for WebIntake)."""

    def __init__(self, *, conversation: Conversation, engine: Engine) -> None:
        self.conversation = conversation
        self.engine = engine

    async def apply(self, session: AsyncSession, row: Message, item: WebItem,
                    visitor: WebVisitor, now: datetime) -> None:
        """Do what the click asks in the caller's transaction, or refuse it and say why."""
        assert visitor.id is not None
        number, _, rest = item.value.partition(":")
        ticket = await lock_ticket(session, int(number)) if number.isdigit() else None
        if ticket is None or ticket.number is None or not await offered_to(
                session, visitor_id=visitor.id, ticket_number=ticket.number,
                action=item.action, value=item.value):
            await self._refuse(session, row, visitor, None, "not_ours", now)  # not theirs
            return
        row.ticket_number = ticket.number
        customer, trusted, _ = await visitor_identity(session, visitor)
        if not trusted or customer is None or customer.id != ticket.customer_id:
            await audit(session, ticket_number=ticket.number, actor=f"web visitor {visitor.id}",
                        action=("consent_click_refused" if item.action in CONSENT
                                else "callback_click_refused"), now=now,
                        reason="the visitor is not verified for the ticket's customer",
                        value=item.value, message=row.external_id)
            await self._refuse(session, row, visitor, ticket, "not_verified", now)
            return
        if item.action in CONSENT:
            await self._consent(session, row, item, visitor, ticket, rest, now)
        elif item.action == BOOK_SLOT:
            await self._book(session, row, visitor, ticket, rest, now)
        elif item.action == CANCEL_BOOKING:
            await self._cancel(session, row, visitor, ticket, rest, now)
        elif item.action == MOVE_BOOKING:
            await self._move(session, row, visitor, ticket, rest, now)
        else:
            await self._refuse(session, row, visitor, ticket, "not_ours", now)

    async def _consent(self, session: AsyncSession, row: Message, item: WebItem,
                       visitor: WebVisitor, ticket: Ticket, cents: str, now: datetime) -> None:
        assert visitor.id is not None
        if ticket.status != TicketStatus.AWAITING_CONSENT:
            await self._refuse(session, row, visitor, ticket, "answered", now)
            return
        if cents != str(ticket.price_cents):  # a new price since: this Yes was for the old one
            await self._refuse(session, row, visitor, ticket, "mismatch", now)
            return
        consent = item.action == CONSENT_YES
        ticket = await self.conversation.answer_quote(
            session, ticket, consent=consent, actor=f"web visitor {visitor.id}",
            evidence=f"choice on our quote in the web chat by a visitor verified by "
                     f"{visitor.verified_by} as {visitor.email}",
            name=visitor.name, reply=self._reply(visitor, f"consent:{row.external_id}"),
            now=now)
        row.disposition = "follow-up"
        row.reason = "quote confirmed with the chat's choice" if consent else (
            "quote declined with the chat's choice")
        announcer = self.conversation.announcer
        if announcer is not None:
            await announcer.customer_replied(session, ticket=ticket, row=row, proven=True,
                                             now=now, note=row.reason)
            await announcer.ticket_changed(session, ticket=ticket, key=row.external_id, now=now)
        log.info("event=web_consent_click ticket=%s visitor=%s consent=%s", ticket.number,
                 visitor.id, consent)

    async def _book(self, session: AsyncSession, row: Message, visitor: WebVisitor,
                    ticket: Ticket, value: str, now: datetime) -> None:
        assert ticket.number is not None
        try:
            slot = datetime.fromisoformat(value)
        except ValueError:
            await self._refuse(session, row, visitor, ticket, "not_ours", now)
            return
        if ticket.status not in BOOKABLE:
            await self._refuse(session, row, visitor, ticket, "not_callbackable", now)
            return
        offer = await callbacks.newest_offer(session, ticket.number)
        if slot not in offer.slots:
            await self._refuse(session, row, visitor, ticket, "mismatch", now)  # an old offer
            return
        held, moving = await callbacks.held_booking(session, ticket.number, offer)
        if held is not None and moving is None:  # a double click
            await self._refuse(session, row, visitor, ticket, "not_callbackable", now)
            return
        actor = f"web visitor {visitor.id}"
        try:
            async with session.begin_nested():  # a failed booking leaves nothing behind
                if moving is not None:
                    booking = await callbacks.rebook(session, engine=self.engine,
                                                     booking_id=moving, slot=slot, now=now,
                                                     actor=actor)
                else:
                    booking = await callbacks.book(session, engine=self.engine,
                                                   number=ticket.number, slot=slot, now=now,
                                                   actor=actor)
        except NotBookable:
            await self._refuse(session, row, visitor, ticket, "not_callbackable", now)
            return
        except CallbackError as exc:  # taken meanwhile: the free slots anew
            row.disposition, row.reason = "follow-up", f"callback not booked: {exc}"
            await self._offer(session, row, visitor, ticket, now, taken=True, moves=moving)
            return
        row.disposition, row.reason = "follow-up", "callback booked with the chat's choice"
        rule = self.engine.ticket_plan(ticket.product, ticket.plan, ticket.plan_terms)
        left = await callbacks.callbacks_left(session, engine=self.engine, ticket=ticket,
                                              now=now)
        language = Language(ticket.language)
        body = render("slack_callback_booked", language, number=ticket.number, channel="web",
                      slot=local_deadline(slot, self.engine.calendar.zone, language),
                      phone=booking.phone or "", total=rule.callbacks if rule else 0, left=left)
        await self._reply(visitor, f"callback-booked:{row.external_id}").queue_answer(
            session, ticket, body, now=now, essential=True,
            choices=[callbacks.cancel_choice(booking, language),
                     callbacks.move_choice(booking, language)])

    async def _cancel(self, session: AsyncSession, row: Message, visitor: WebVisitor,
                      ticket: Ticket, value: str, now: datetime) -> None:
        booking = await self._booking(session, ticket, value)
        if booking is None or booking.id is None:
            await self._refuse(session, row, visitor, ticket, "not_callbackable", now)
            return
        try:
            async with session.begin_nested():
                await callbacks.cancel_booking(session, booking_id=booking.id, now=now,
                                               actor=f"web visitor {visitor.id}")
        except CallbackError:  # it has begun: nothing to give back
            await self._refuse(session, row, visitor, ticket, "not_callbackable", now)
            return
        row.disposition, row.reason = "follow-up", "callback cancelled with the chat's choice"
        await self._offer(session, row, visitor, ticket, now, taken=False)

    async def _move(self, session: AsyncSession, row: Message, visitor: WebVisitor,
                    ticket: Ticket, value: str, now: datetime) -> None:
        """Offer other slots; the booking stays until one of them is chosen."""
        booking = await self._booking(session, ticket, value)
        if booking is None or booking.slot_start <= now:
            await self._refuse(session, row, visitor, ticket, "not_callbackable", now)
            return
        row.disposition, row.reason = "follow-up", "callback move asked: slots offered"
        await self._offer(session, row, visitor, ticket, now, taken=False, moves=booking.id)

    async def _booking(self, session: AsyncSession, ticket: Ticket,
                       value: str) -> CallbackBooking | None:
        """The ticket's booked callback a choice names, or None."""
        booking = await session.get(CallbackBooking, int(value)) if value.isdigit() else None
        if booking is None or booking.ticket_number != ticket.number:
            return None
        return booking if booking.status == repo.BOOKED else None

    async def _offer(self, session: AsyncSession, row: Message, visitor: WebVisitor,
                     ticket: Ticket, now: datetime, *, taken: bool,
                     moves: int | None = None) -> None:
        """The free slots as choices (`moves`: to move that booking, which stays meanwhile)."""
        assert ticket.number is not None
        slots = await callbacks.offer_for(session, engine=self.engine, ticket=ticket, now=now,
                                          moving=moves is not None)
        if slots:
            await callbacks.record_offer(session, number=ticket.number, slots=slots, now=now,
                                         actor=Channel.WEB.value, moves=moves)
        language = Language(ticket.language)
        body = render("slack_callback_offer", language, number=ticket.number, taken=taken,
                      slots=bool(slots), slot_minutes=self.engine.policy.callbacks.slot_minutes,
                      moving=moves is not None)
        await self._reply(visitor, f"callback-offer:{row.external_id}").queue_answer(
            session, ticket, body, now=now, essential=True,
            choices=callbacks.slot_choices(ticket.number, slots, zone=self.engine.calendar.zone,
                                           language=language))

    async def _refuse(self, session: AsyncSession, row: Message, visitor: WebVisitor,
                      ticket: Ticket | None, reason: str, now: datetime) -> None:
        """Nothing changes; the visitor reads why, as a note in the chat."""
        assert visitor.id is not None
        shown = ticket.language if ticket is not None else visitor.language
        language = Language(shown) if shown in {lang.value for lang in Language} else Language.DE
        worded = {**words("click_refusals", language), **words("web_refusals", language)}
        row.disposition, row.reason = "ignored", f"click refused: {reason}"
        await add_out_item(session, visitor_id=visitor.id, key=f"refused:{row.external_id}",
                           text=str(worded[reason]), now=now, kind="note",
                           ticket_number=ticket.number if ticket is not None else None)
        log.info("event=web_click_refused visitor=%s ticket=%s reason=%s", visitor.id,
                 ticket.number if ticket is not None else "-", reason)

    def _reply(self, visitor: WebVisitor, key: str) -> WebReplyChannel:
        assert visitor.id is not None
        return WebReplyChannel(visitor_id=visitor.id, key=key)
