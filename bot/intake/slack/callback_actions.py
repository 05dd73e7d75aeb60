"""A customer's click on a callback button: book the slot, or cancel the booking (thin: the
use cases are bot/callbacks.py). Each click is one transaction: the booking, the confirmation
or new offer in the ticket's thread and the update of the clicked message, or nothing."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

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
from bot.cases.replies import local_deadline, render, words
from bot.domain import Choice, Language
from bot.intake.slack.blocks import CHOICES_BLOCK, choice_of, is_id, section
from bot.intake.slack.customer_evidence import (
    Expected,
    clicked_where,
    customer_click_refusal,
    shown_values,
)
from bot.intake.slack.inbox import SlackReply
from bot.sla.engine import Engine
from models import callbacks as repo
from models.slack import post_of_ticket, queue_call
from models.tables import CallbackBooking, Ticket
from models.tickets import get_ticket

log = logging.getLogger(__name__)

HANDLED = frozenset({BOOK_SLOT, CANCEL_BOOKING, MOVE_BOOKING})
DONE = {  # the line that replaces a used message's buttons
    Language.DE: {"booked": "Gebucht: {slot}", "taken": "Nicht mehr frei: {slot}",
                  "cancelled": "Abgesagt: {slot}"},
    Language.EN: {"booked": "Booked: {slot}", "taken": "No longer free: {slot}",
                  "cancelled": "Cancelled: {slot}"},
}


@dataclass(frozen=True)
class Click:
    """The click being handled: its payload, who made it (for the audit), Slack's unique id."""

    body: dict[str, Any]
    actor: str
    trigger: str


def is_callback_click(body: dict[str, Any]) -> bool:
    """Whether the payload is a click on one of our callback buttons."""
    actions = body.get("actions") or []
    return bool(actions) and choice_of(str(actions[0].get("action_id") or "")) in HANDLED


class CallbackActions:
    """Books and cancels callbacks for the customer who clicked, on evidence only."""

    def __init__(self, *, engine: Engine, sender: tuple[str, str] | None = None) -> None:
        self.engine = engine
        self.sender = sender  # our mail address and name: calendar updates of mail bookings

    async def apply(self, session: AsyncSession, body: dict[str, Any],
                    now: datetime) -> str | None:
        """Do what the click asks in the caller's transaction; the reason if it is refused."""
        action = body["actions"][0]
        number, _, rest = str(action.get("value") or "").partition(":")
        ticket = await get_ticket(session, int(number)) if is_id(number) else None
        if ticket is None or ticket.number is None:
            return str(words("click_refusals", Language.EN)["not_ours"])
        channel, ts = clicked_where(body)
        post = await post_of_ticket(session, ticket_number=ticket.number, channel=channel, ts=ts)
        expected = Expected(post=post, values=shown_values(post, str(action.get("action_id"))),
                            closed=None if ticket.status in BOOKABLE else "not_callbackable")
        refusal = await customer_click_refusal(session, ticket=ticket, body=body,
                                               expected=expected)
        if refusal is not None:
            log.info("event=callback_click_refused ticket=%s reason=%s", ticket.number, refusal)
            return str(words("click_refusals", Language(ticket.language))[refusal])
        user = str((body.get("user") or {}).get("id") or "")
        click = Click(body, f"slack user {user}",
                      str(body.get("trigger_id") or action.get("action_ts") or ""))
        chosen = choice_of(str(action["action_id"]))
        if chosen == BOOK_SLOT:
            reason = await self._book(session, ticket, rest, click, now)
        elif chosen == MOVE_BOOKING:
            reason = await self._move(session, ticket, rest, click, now)
        else:
            reason = await self._cancel(session, ticket, rest, click, now)
        return None if reason is None else f"Nothing was changed: {reason}."

    async def _book(self, session: AsyncSession, ticket: Ticket, value: str, click: Click,
                    now: datetime) -> str | None:
        assert ticket.number is not None
        try:
            slot = datetime.fromisoformat(value)
        except ValueError:
            return "this button names no slot"
        offer = await callbacks.newest_offer(session, ticket.number)
        if slot not in offer.slots:
            return f"this slot is not among those last offered on NT#{ticket.number}"
        held, moving = await callbacks.held_booking(session, ticket.number, offer)
        if held is not None and moving is None:  # a double click, or an old offer
            return (f"NT#{ticket.number} already has a callback, "
                    f"{self._label(held.slot_start, ticket)}; cancel it first")
        try:
            async with session.begin_nested():  # a failed booking leaves nothing behind
                if moving is not None:  # the offer the Move button made: this moves it
                    booking = await callbacks.rebook(session, engine=self.engine,
                                                     booking_id=moving, slot=slot, now=now,
                                                     actor=click.actor, sender=self.sender)
                else:
                    booking = await callbacks.book(session, engine=self.engine,
                                                   number=ticket.number, slot=slot, now=now,
                                                   actor=click.actor)
        except NotBookable as exc:  # e.g. the other of two clicks at once booked first
            return str(exc)
        except CallbackError as exc:
            log.info("event=callback_not_booked ticket=%s reason=%s", ticket.number, exc)
            await self._mark_used(session, ticket, click, "taken", slot, now)
            await self._offer(session, ticket, click, now, taken=True, moves=moving)
            return None
        await self._mark_used(session, ticket, click, "booked", slot, now)
        rule = self.engine.ticket_plan(ticket.product, ticket.plan, ticket.plan_terms)
        left = await callbacks.callbacks_left(session, engine=self.engine, ticket=ticket,
                                              now=now)
        language = Language(ticket.language)
        body = render("slack_callback_booked", language, number=ticket.number, channel="slack",
                      slot=self._label(slot, ticket), phone=booking.phone or "",
                      total=rule.callbacks if rule else 0, left=left)
        await self._reply(ticket, f"callback-booked:{click.trigger}").queue_answer(
            session, ticket, body, now=now, essential=True,
            choices=[callbacks.cancel_choice(booking, language),
                     callbacks.move_choice(booking, language)])
        return None

    async def _move(self, session: AsyncSession, ticket: Ticket, value: str, click: Click,
                    now: datetime) -> str | None:
        """Offer other slots for a booking; it stays booked until one of them is clicked."""
        booking = await session.get(CallbackBooking, int(value)) if is_id(value) else None
        if booking is None or booking.ticket_number != ticket.number:
            return f"this is not a callback booked on NT#{ticket.number}"
        if booking.status != repo.BOOKED:
            return "this callback is cancelled; choose a new slot instead"
        if booking.slot_start <= now:
            return "the callback has already begun; it can no longer be moved"
        await self._offer(session, ticket, click, now, taken=False, moves=booking.id)
        return None

    async def _cancel(self, session: AsyncSession, ticket: Ticket, value: str, click: Click,
                      now: datetime) -> str | None:
        booking = await session.get(CallbackBooking, int(value)) if is_id(value) else None
        if booking is None or booking.ticket_number != ticket.number:
            return f"this is not a callback booked on NT#{ticket.number}"
        if booking.status != repo.BOOKED:
            return "this callback is already cancelled"
        if booking.slot_start <= now:
            return "the callback has already begun; it can no longer be cancelled"
        assert booking.id is not None
        try:
            await callbacks.cancel_booking(session, booking_id=booking.id, now=now,
                                           actor=click.actor, sender=self.sender,
                                           engine=self.engine)
        except CallbackError as exc:
            return str(exc)
        await self._mark_used(session, ticket, click, "cancelled", booking.slot_start, now)
        await self._offer(session, ticket, click, now, taken=False)
        return None

    async def _offer(self, session: AsyncSession, ticket: Ticket, click: Click, now: datetime,
                     *, taken: bool, moves: int | None = None) -> None:
        """Offer the free slots anew in the ticket's thread, with their buttons (`moves`: to
        move that booking, which stays booked meanwhile)."""
        assert ticket.number is not None
        slots = await callbacks.offer_for(session, engine=self.engine, ticket=ticket, now=now,
                                          moving=moves is not None)
        if slots:
            await callbacks.record_offer(session, number=ticket.number, slots=slots, now=now,
                                         actor="slack", moves=moves)
        language = Language(ticket.language)
        body = render("slack_callback_offer", language, number=ticket.number, taken=taken,
                      slots=bool(slots), slot_minutes=self.engine.policy.callbacks.slot_minutes,
                      moving=moves is not None)
        choices: list[Choice] = callbacks.slot_choices(
            ticket.number, slots, zone=self.engine.calendar.zone, language=language)
        await self._reply(ticket, f"callback-offer:{click.trigger}").queue_answer(
            session, ticket, body, now=now, essential=True, choices=choices)

    async def _mark_used(self, session: AsyncSession, ticket: Ticket, click: Click, what: str,
                         slot: datetime, now: datetime) -> None:
        """Replace the clicked message's buttons by what became of the click (chat.update)."""
        assert ticket.number is not None
        channel, ts = clicked_where(click.body)
        post = await post_of_ticket(session, ticket_number=ticket.number, channel=channel, ts=ts)
        if post is None:
            return
        sent = json.loads(post.payload)
        line = DONE[Language(ticket.language)][what].format(slot=self._label(slot, ticket))
        blocks = [b for b in sent.get("blocks") or [] if b.get("block_id") != CHOICES_BLOCK]
        await queue_call(session, key=f"callback-used:{click.trigger}", method="chat.update",
                         ticket_number=ticket.number, now=now,
                         args={"channel": channel, "ts": ts, "text": sent.get("text", ""),
                               "blocks": [*blocks, section(line)]})

    def _label(self, slot: datetime, ticket: Ticket) -> str:
        return local_deadline(slot, self.engine.calendar.zone, Language(ticket.language))

    def _reply(self, ticket: Ticket, key: str) -> SlackReply:
        channel, _, thread_ts = ticket.requester.partition(":")
        return SlackReply(channel=channel, thread_ts=thread_ts, key=key)
