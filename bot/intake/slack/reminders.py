"""Deadline reminders into Slack through the durable Slack outbox, in the reminder's transaction:
agents in the ticket's triage thread and, when it has an assignee, in a direct message to them;
managers in SLACK_MANAGERS_CHANNEL (the manager notifier); a Slack ticket's customer in their own
thread. Keys carry the reminder id: sent once."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.cases.deadlines import ticket_clock
from bot.cases.replies import local_deadline, render
from bot.domain import Audience, Channel, Language
from bot.intake.slack.blocks import escape, section
from bot.jobs.alerts import AlertConfig, notify_managers
from bot.jobs.notify import summary
from bot.sla.engine import Engine
from bot.sla.reminders import next_expected
from models.customers import get_customer
from models.slack import in_triage_thread, queue_call
from models.tables import CallbackBooking, Reminder, Ticket

log = logging.getLogger(__name__)


@dataclass
class SlackReminders:
    """The Slack side of the reminder Router (a Notifier)."""

    engine: Engine
    triage_channel: str
    alerts: AlertConfig  # its Slack channel only: the mail side sends the managers' mail

    async def send(self, session: AsyncSession, reminder: Reminder, ticket: Ticket,
                   now: datetime) -> None:
        """Queue this reminder's Slack post for its audience."""
        assert reminder.id is not None and ticket.number is not None
        audience = Audience(reminder.audience)
        if audience is Audience.MANAGERS:
            customer = (await get_customer(session, ticket.customer_id)
                        if ticket.customer_id else None)
            kind = ("breach" if ticket.due_at is not None and now >= ticket.due_at
                    else reminder.kind)
            await notify_managers(session, config=replace(self.alerts, email=""),
                                  ticket=ticket, customer=customer, kind=kind, now=now)
            return
        if audience is Audience.CUSTOMER:
            await self._customer(session, reminder, ticket, now)
            return
        booking = (await session.get(CallbackBooking, reminder.booking_id)
                   if reminder.booking_id else None)
        text = f":alarm_clock: {escape(summary(self.engine, reminder, ticket, booking))}"
        if ticket.assignee:  # a DM: channel is the user id
            await queue_call(session, key=f"reminder-dm:{reminder.id}",
                             method="chat.postMessage", ticket_number=ticket.number, now=now,
                             args={"channel": ticket.assignee, "text": text,
                                   "blocks": [section(text)]})
        if not self.triage_channel:
            log.warning("event=reminder_not_posted reminder=%s reason=no_triage_channel",
                        reminder.id)
            return
        args = await in_triage_thread(session, ticket.number,
                                      {"channel": self.triage_channel, "text": text,
                                       "blocks": [section(text)]})
        await queue_call(session, key=f"reminder:{reminder.id}", method="chat.postMessage",
                         ticket_number=ticket.number, now=now, args=args)

    async def _customer(self, session: AsyncSession, reminder: Reminder, ticket: Ticket,
                        now: datetime) -> None:
        assert ticket.number is not None
        channel, _, thread = ticket.requester.partition(":")
        if ticket.channel != Channel.SLACK.value or not channel or not thread:
            return  # a mail ticket's customer hears by mail
        language = Language(ticket.language)
        zone = self.engine.calendar.zone
        booking = (await session.get(CallbackBooking, reminder.booking_id)
                   if reminder.booking_id else None)
        if booking is not None:
            body = (f"NT#{ticket.number}: "
                    + local_deadline(booking.slot_start, zone, language))
            body = ("Erinnerung: Wir rufen Sie an zu " if language is Language.DE
                    else "A reminder: we will call you about ") + body
        else:
            running = ticket_clock(ticket)
            expected = (next_expected(self.engine.calendar, self.engine.policy.reminders,
                                      running) if running else None)
            body = render("slack_status_note", language, number=ticket.number,
                          due=local_deadline(ticket.due_at, zone, language)
                          if ticket.due_at else "-",
                          next_expected=local_deadline(expected, zone, language)
                          if expected else "-")
        text = escape(body.strip())
        await queue_call(session, key=f"reminder:{reminder.id}", method="chat.postMessage",
                         ticket_number=ticket.number, now=now,
                         args={"channel": channel, "thread_ts": thread, "text": text,
                               "blocks": [section(text)]})
