"""Reminders for a web ticket's customer: the status note when we are late, and the reminder
before a booked callback, as `note` items in the visitor's chat through the web ReplyChannel, in
the reminder's transaction (keyed by the reminder id: sent once)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.cases.deadlines import ticket_clock
from bot.cases.replies import local_deadline, render
from bot.domain import Audience, Language
from bot.intake.web.reply import WebAnswerRoute
from bot.sla.engine import Engine
from bot.sla.reminders import next_expected
from models.tables import CallbackBooking, Reminder, Ticket


@dataclass
class WebReminders:
    """The web side of the reminder Router (a Notifier): the customer audience only."""

    engine: Engine

    async def send(self, session: AsyncSession, reminder: Reminder, ticket: Ticket,
                   now: datetime) -> None:
        """Add the note to the visitor's chat; nothing when the ticket names no visitor."""
        assert ticket.number is not None
        if Audience(reminder.audience) is not Audience.CUSTOMER:
            return
        reply = await WebAnswerRoute().reply_channel(session, ticket,
                                                     key=f"reminder:{reminder.id}")
        if reply is None:
            return
        reply.kind = "note"
        language = Language(ticket.language)
        zone = self.engine.calendar.zone
        booking = (await session.get(CallbackBooking, reminder.booking_id)
                   if reminder.booking_id else None)
        if booking is not None:
            slot = local_deadline(booking.slot_start, zone, language)
            body = (f"Erinnerung: Wir rufen Sie an zu NT#{ticket.number}: {slot}"
                    if language is Language.DE else
                    f"A reminder: we will call you about NT#{ticket.number}: {slot}")
        else:
            running = ticket_clock(ticket)
            expected = (next_expected(self.engine.calendar, self.engine.policy.reminders,
                                      running) if running else None)
            body = render("webchat_status_note", language, number=ticket.number,
                          due=local_deadline(ticket.due_at, zone, language)
                          if ticket.due_at else "-",
                          next_expected=local_deadline(expected, zone, language)
                          if expected else "-")
        await reply.queue_answer(session, ticket, body, now=now, essential=True)
