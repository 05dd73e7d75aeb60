"""Use cases on telephone callbacks: offer free slots, book one atomically, cancel and rebook.

Each runs in the caller's transaction. A booking takes a place on the slot (never more than
the callback agents) and one callback of the month; if either is gone the function raises and
the caller's transaction rolls back, so nothing half-booked remains. The caller then offers
anew (`offer_for`). A booking plans reminders to the customer and the agents before the call.
Bookings, cancellations and moves are told in the ticket's triage thread, whatever the channel.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.cases.consent import first_lines
from bot.cases.mrkdwn import escape
from bot.cases.replies import (
    as_message,
    local_deadline,
    mail_bytes,
    new_message_id,
    render,
    reply_subject,
)
from bot.domain import Audience, Channel, Choice, Language, TicketStatus
from bot.sla.allowances import usage_month
from bot.sla.callbacks import bookable, offer
from bot.sla.engine import Engine
from bot.sla.rules import PlanRule
from models import callbacks as repo
from models import reminders as reminder_repo
from models.slack import queue_triage_note
from models.tables import AuditEvent, CallbackBooking, Message, Ticket
from models.tickets import allowance_used, audit, claim_allowance, lock_ticket

log = logging.getLogger(__name__)

CALLBACK = "callback"  # the Usage kind, and the Reminder kind of the reminder before a call
HORIZON = timedelta(days=60)
BOOK_SLOT, CANCEL_BOOKING = "callback_book", "callback_cancel"  # the customer's choices
MOVE_BOOKING = "callback_move"
# a ticket being worked on takes a callback; one awaiting proof or consent, or done, does not
BOOKABLE = (TicketStatus.OPEN, TicketStatus.ANSWERED, TicketStatus.WAITING_CUSTOMER)


class CallbackError(Exception):
    """A booking that cannot be made; the message says why."""


class SlotUnavailable(CallbackError):
    """The slot is full, held for priority plans, too soon, or not a slot at all."""


class NotBookable(CallbackError):
    """The ticket takes no (further) callback: it is not being worked on, or has one booked."""


class NoCallbacksLeft(CallbackError):
    """The customer's plan has no callbacks (left) this month."""


class CallStarted(CallbackError):
    """The booked slot has begun: it can no longer be cancelled or moved."""


def _plan(engine: Engine, ticket: Ticket) -> PlanRule | None:
    return engine.ticket_plan(ticket.product, ticket.plan, ticket.plan_terms)


async def callbacks_left(session: AsyncSession, *, engine: Engine, ticket: Ticket,
                         now: datetime) -> int:
    """How many callbacks the ticket's customer has left this month on its product line."""
    plan = _plan(engine, ticket)
    if plan is None or ticket.customer_id is None or plan.callbacks == 0:
        return 0
    used = await allowance_used(session, customer_id=ticket.customer_id, product=ticket.product,
                                month=usage_month(now, engine.calendar.zone), kind=CALLBACK)
    return max(plan.callbacks - used, 0)


async def offer_for(session: AsyncSession, *, engine: Engine, ticket: Ticket,
                    now: datetime, moving: bool = False) -> list[datetime]:
    """The slots to offer this ticket's customer now; empty when no callback is left (unless
    `moving` a booked one: a move gives its callback back before it takes another)."""
    if not moving and await callbacks_left(session, engine=engine, ticket=ticket, now=now) == 0:
        return []
    plan = _plan(engine, ticket)
    counts = await repo.slot_counts(session, now, now + HORIZON)
    return offer(engine.calendar, engine.policy.callbacks, now=now, booked=counts,
                 priority=bool(plan and plan.priority))


async def book(session: AsyncSession, *, engine: Engine, number: int, slot: datetime,
               now: datetime, actor: str, phone: str | None = None,
               sender: tuple[str, str] | None = None) -> CallbackBooking:
    """Book `slot` for ticket `number`; SlotUnavailable or NoCallbacksLeft when it cannot be.

    With `sender` (our address and name) the customer gets a confirmation mail in their
    language with an .ics invitation, asking for a phone number when none is known.
    """
    booking = await _book(session, engine=engine, number=number, slot=slot, now=now,
                          actor=actor, phone=phone, sender=sender)
    await queue_triage_note(
        session, ticket_number=number, key=f"triage-note:booked:{booking.id}", now=now,
        text=f"Callback booked on NT#{number} for {_when(slot)}, phone "
             f"{escape(booking.phone or 'not known yet')} ({escape(actor)}).")
    return booking


def _when(slot: datetime) -> str:
    """A slot for agents: Slack shows it in each reader's own time zone (UTC as fallback)."""
    moment = slot.astimezone(UTC)
    return (f"<!date^{int(moment.timestamp())}^{{date_short_pretty}} {{time}}|"
            f"{moment:%Y-%m-%d %H:%M} UTC>")


async def _book(session: AsyncSession, *, engine: Engine, number: int, slot: datetime,
                now: datetime, actor: str, phone: str | None,
                sender: tuple[str, str] | None) -> CallbackBooking:
    ticket = await lock_ticket(session, number)  # two bookings of one ticket take turns
    if ticket is None:
        raise CallbackError(f"no ticket NT#{number}")
    if ticket.status not in BOOKABLE:
        raise NotBookable(f"NT#{number} is {ticket.status.replace('_', ' ')}: no callback")
    if await repo.active_booking(session, number) is not None:
        raise NotBookable(f"NT#{number} has a callback booked already; cancel it first")
    plan = _plan(engine, ticket)
    if plan is None or ticket.customer_id is None or plan.callbacks == 0:
        raise NoCallbacksLeft(f"NT#{number}: the customer's plan includes no callbacks")
    rule = engine.policy.callbacks
    counts = await repo.slot_counts(session, slot, slot)
    if not bookable(engine.calendar, rule, now=now, slot=slot, booked=counts.get(slot, 0),
                    priority=plan.priority):
        raise SlotUnavailable(f"NT#{number}: the slot {slot.isoformat()} cannot be booked")
    if not await repo.take_slot(session, slot, rule.agents):
        raise SlotUnavailable(f"NT#{number}: the slot {slot.isoformat()} was just taken")
    month = usage_month(now, engine.calendar.zone)
    if await claim_allowance(session, customer_id=ticket.customer_id, product=ticket.product,
                             month=month, kind=CALLBACK, limit=plan.callbacks) is None:
        raise NoCallbacksLeft(f"NT#{number}: no callbacks left in {month}")
    booking = CallbackBooking(
        ticket_number=number, customer_id=ticket.customer_id, product=ticket.product,
        usage_month=month, slot_start=slot,
        slot_end=slot + timedelta(minutes=rule.slot_minutes), status=repo.BOOKED,
        phone=phone, created_at=now)
    session.add(booking)
    await session.flush()
    assert booking.id is not None
    before = slot - timedelta(minutes=rule.reminder_minutes)
    await reminder_repo.add_reminders(
        session, number, ((CALLBACK, audience.value, max(before, now))
                          for audience in (Audience.CUSTOMER, Audience.AGENTS)),
        booking_id=booking.id)
    await audit(session, ticket_number=number, actor=actor, action="callback_booked", now=now,
                slot=slot, booking=booking.id, phone_known=bool(phone))
    if sender is not None and mailable(ticket.requester):
        left = await callbacks_left(session, engine=engine, ticket=ticket, now=now)
        booking.calendar_uid = f"callback-{booking.id}@{sender[0].rpartition('@')[2]}"
        booking.calendar_sequence = 0
        _invite(session, engine=engine, sender=sender, ticket=ticket, booking=booking,
                template="callback_booked", now=now, total=plan.callbacks, left=left)
    log.info("event=callback_booked ticket=%s booking=%s slot=%s", number, booking.id,
             slot.isoformat())
    return booking


def mailable(requester: str) -> bool:
    """Whether a ticket's requester is a mail address: a web ticket's `web:<id>` and a Slack
    thread are not, and a mail to them would bounce at our own relay or worse."""
    return MAIL_ADDRESS.fullmatch(requester) is not None


MAIL_ADDRESS = re.compile(r"[^@\s:<>]+@[^@\s:<>]+\.[^@\s:<>]+")


def ics_invitation(*, booking: CallbackBooking, ticket: Ticket, organizer: str,
                   now: datetime, method: str = "REQUEST") -> bytes:
    """An RFC 5545 invitation for the callback (times in UTC): METHOD:REQUEST for a new or
    moved callback, METHOD:CANCEL for a cancelled one, the same UID with a higher SEQUENCE for
    each update (RFC 5546 3.2.2, 3.2.5)."""
    def stamp(moment: datetime) -> str:
        return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")

    uid = booking.calendar_uid or f"callback-{booking.id}@{organizer.rpartition('@')[2]}"
    lines = [
        "BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//NetTask//Intake//EN", f"METHOD:{method}",
        "BEGIN:VEVENT", f"UID:{uid}", f"SEQUENCE:{booking.calendar_sequence or 0}",
        f"DTSTAMP:{stamp(now)}", f"DTSTART:{stamp(booking.slot_start)}",
        f"DTEND:{stamp(booking.slot_end)}",
        f"SUMMARY:NetTask callback NT#{ticket.number}",
        f"ORGANIZER:mailto:{organizer}", f"ATTENDEE;RSVP=FALSE:mailto:{ticket.requester}",
        *(["STATUS:CANCELLED"] if method == "CANCEL" else []),
        "END:VEVENT", "END:VCALENDAR",
    ]
    return ("\r\n".join(lines) + "\r\n").encode()


def _invite(session: AsyncSession, *, engine: Engine, sender: tuple[str, str], ticket: Ticket,
            booking: CallbackBooking, template: str, now: datetime, method: str = "REQUEST",
            **values: object) -> None:
    """Queue a mail about the booking with its calendar update, in the customer's language."""
    assert ticket.number is not None
    language = Language(ticket.language)
    address, name = sender
    body = render(template, language, number=ticket.number, subject=ticket.subject,
                  slot=local_deadline(booking.slot_start, engine.calendar.zone, language),
                  phone=booking.phone or "", **values)
    message_id = new_message_id(address.rpartition("@")[2], ticket.number)
    subject = reply_subject(ticket.number, ticket.subject)
    mail = as_message(mail_bytes(sender=address, sender_name=name, to=ticket.requester,
                                 subject=subject, body=body, message_id=message_id,
                                 in_reply_to="", references=(), language=language,
                                 ticket_number=ticket.number, now=now))
    mail.add_attachment(ics_invitation(booking=booking, ticket=ticket, organizer=address,
                                       now=now, method=method),
                        maintype="text", subtype="calendar", filename="callback.ics",
                        params={"method": method})
    session.add(Message(
        ticket_number=ticket.number, direction="out", channel=Channel.EMAIL.value,
        external_id=message_id, sender=address, recipient=ticket.requester, subject=subject,
        text=body, raw=bytes(mail), disposition="queued", created_at=now, next_attempt_at=now))


async def cancel_booking(session: AsyncSession, *, booking_id: int, now: datetime,
                         actor: str, sender: tuple[str, str] | None = None,
                         engine: Engine | None = None) -> CallbackBooking:
    """Cancel a booking: the slot's place and the month's callback are given back.

    CallStarted once the slot has begun: the call is under way or over, nothing to give back.
    A booking whose invitation is in the customer's calendar gets a METHOD:CANCEL for it
    (with `sender`, our address and name, and the `engine`).
    """
    booked = await session.get(CallbackBooking, booking_id)
    was_booked = booked is not None and booked.status == repo.BOOKED
    booking = await _cancel(session, booking_id=booking_id, now=now, actor=actor)
    if was_booked and sender is not None and engine is not None \
            and booking.calendar_sequence is not None:
        ticket = await lock_ticket(session, booking.ticket_number)
        if ticket is not None and mailable(ticket.requester):
            booking.calendar_sequence += 1
            session.add(booking)
            _invite(session, engine=engine, sender=sender, ticket=ticket, booking=booking,
                    template="callback_cancelled", now=now, method="CANCEL")
    await queue_triage_note(
        session, ticket_number=booking.ticket_number, key=f"triage-note:cancelled:{booking_id}",
        now=now, text=f"Callback on NT#{booking.ticket_number} for {_when(booking.slot_start)} "
                      f"cancelled; the callback was given back ({escape(actor)}).")
    return booking


async def _cancel(session: AsyncSession, *, booking_id: int, now: datetime,
                  actor: str) -> CallbackBooking:
    booking = await session.get(CallbackBooking, booking_id)
    if booking is None:
        raise CallbackError(f"no callback booking {booking_id}")
    if booking.status != repo.BOOKED:
        return booking
    if booking.slot_start <= now:
        raise CallStarted(f"NT#{booking.ticket_number}: the callback at "
                          f"{booking.slot_start.isoformat()} has already begun")
    booking.status, booking.cancelled_at = repo.CANCELLED, now
    session.add(booking)
    await repo.give_slot(session, booking.slot_start)
    await repo.give_back(session, customer_id=booking.customer_id, product=booking.product,
                         month=booking.usage_month, kind=CALLBACK)
    await reminder_repo.cancel_booking_reminders(session, booking_id, now=now)
    await audit(session, ticket_number=booking.ticket_number, actor=actor,
                action="callback_cancelled", now=now, booking=booking_id,
                slot=booking.slot_start)
    return booking


async def rebook(session: AsyncSession, *, engine: Engine, booking_id: int, slot: datetime,
                 now: datetime, actor: str,
                 sender: tuple[str, str] | None = None) -> CallbackBooking:
    """Move a booking to another slot: cancel, then book, in one transaction.

    The callback keeps its calendar entry: with `sender` (our address and name) a booking
    whose invitation is in the customer's calendar gets an updated one (METHOD:REQUEST, the
    same UID, the next SEQUENCE), so the old slot does not stay in their calendar.
    """
    old = await _cancel(session, booking_id=booking_id, now=now, actor=actor)
    new = await _book(session, engine=engine, number=old.ticket_number, slot=slot, now=now,
                      actor=actor, phone=old.phone, sender=None)
    new.calendar_uid, new.calendar_sequence = old.calendar_uid, old.calendar_sequence
    if sender is not None and new.calendar_sequence is not None:
        ticket = await lock_ticket(session, new.ticket_number)
        if ticket is not None and mailable(ticket.requester):
            new.calendar_sequence += 1
            _invite(session, engine=engine, sender=sender, ticket=ticket, booking=new,
                    template="callback_moved", now=now, old_slot=local_deadline(
                        old.slot_start, engine.calendar.zone, Language(ticket.language)))
    session.add(new)
    await queue_triage_note(
        session, ticket_number=new.ticket_number, key=f"triage-note:moved:{new.id}", now=now,
        text=f"Callback on NT#{new.ticket_number} moved from {_when(old.slot_start)} to "
             f"{_when(new.slot_start)} ({escape(actor)}).")
    return new


CHOICE = re.compile(r"^\W*(?:(?:rückruf|rueckruf|termin|slot|option|nr\.?|nummer|number|callback)"
                    r"\s*)?(\d)\W*$", re.I)


def slot_choice(text: str) -> int | None:
    """The number a customer answered to our list of callback slots ("2", "Termin 2"), if the
    first non-empty line says nothing else."""
    lines = first_lines(text, 1)  # quotes and a greeting ("Hallo,") aside
    match = CHOICE.match(lines[0]) if lines else None
    return int(match.group(1)) if match else None


async def record_offer(session: AsyncSession, *, number: int, slots: list[datetime],
                       now: datetime, actor: str, moves: int | None = None) -> None:
    """Remember which slots we offered (in the audit trail), so that a number answers them;
    `moves`: the booking the offer is to move (a choice then rebooks it)."""
    await audit(session, ticket_number=number, actor=actor, action="callback_offered",
                now=now, slots=[s.astimezone(UTC).isoformat() for s in slots], moves=moves)


@dataclass(frozen=True)
class Offer:
    """The newest slots offered on a ticket, in the order they were numbered, and the booking
    the offer was made to move (None: a plain offer)."""

    slots: list[datetime]
    moves: int | None


async def newest_offer(session: AsyncSession, number: int) -> Offer:
    """The newest offer on a ticket (no slots when none was made)."""
    rows = await session.exec(
        select(AuditEvent).where(AuditEvent.ticket_number == number,
                                 AuditEvent.action == "callback_offered")
        .order_by(col(AuditEvent.id).desc()).limit(1))
    event = rows.first()
    if event is None:
        return Offer(slots=[], moves=None)
    detail = json.loads(event.detail)
    moves = detail.get("moves")
    return Offer(slots=[datetime.fromisoformat(s) for s in detail.get("slots", [])],
                 moves=int(moves) if isinstance(moves, int) else None)


async def last_offer(session: AsyncSession, number: int) -> list[datetime]:
    """The slots of the newest offer on a ticket, in the order they were numbered."""
    return (await newest_offer(session, number)).slots


async def held_booking(session: AsyncSession, number: int,
                       offer: Offer) -> tuple[CallbackBooking | None, int | None]:
    """The ticket's active booking, and its id when `offer` was made to move it (a slot of
    that offer then rebooks it instead of booking a second callback)."""
    held = await repo.active_booking(session, number)
    moving = held.id if held is not None and held.id is not None and offer.moves == held.id \
        else None
    return held, moving


def slot_choices(number: int, slots: list[datetime], *, zone: ZoneInfo,
                 language: Language) -> list[Choice]:
    """One choice per offered slot, labelled in the customer's language and local time."""
    return [Choice(action=BOOK_SLOT, value=f"{number}:{slot.astimezone(UTC).isoformat()}",
                   label=local_deadline(slot, zone, language)) for slot in slots]


def cancel_choice(booking: CallbackBooking, language: Language) -> Choice:
    """The choice that cancels a booking."""
    label = "Rückruf absagen" if language is Language.DE else "Cancel the callback"
    return Choice(action=CANCEL_BOOKING, value=f"{booking.ticket_number}:{booking.id}",
                  label=label)


def move_choice(booking: CallbackBooking, language: Language) -> Choice:
    """The choice that offers other slots for a booking (a slot chosen then moves it)."""
    label = "Rückruf verschieben" if language is Language.DE else "Move the callback"
    return Choice(action=MOVE_BOOKING, value=f"{booking.ticket_number}:{booking.id}",
                  label=label)


CANCEL_WORDS = re.compile(r"\b(absagen|stornieren|storniere|sage\w*\s+\w+\s+ab|cancel)\b", re.I)
MOVE_WORDS = re.compile(r"\b(verschieben|verlegen|anderen\s+termin|andere\s+zeit|reschedule|"
                        r"move|another\s+time|different\s+time)\b", re.I)
ABOUT_CALLBACK = re.compile(r"\b(rückruf|rueckruf|termin|callback|call|slot|appointment)\b",
                            re.I)


def callback_change(text: str) -> str | None:
    """What a customer's answer asks of their booked callback: "cancel", "move", or None.

    Only a short first line (quotes and a greeting aside) that names the callback and one of
    the two wishes counts ("Rückruf absagen", "Termin verschieben", "Please cancel the
    callback"); a refusal word elsewhere in a long message does not cancel anything.
    """
    lines = first_lines(text, 1)
    line = lines[0] if lines else ""
    if len(line) > 80 or not ABOUT_CALLBACK.search(line):
        return None
    cancel, move = CANCEL_WORDS.search(line), MOVE_WORDS.search(line)
    if cancel and not move:
        return "cancel"
    if move and not cancel:
        return "move"
    return None
