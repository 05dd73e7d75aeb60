"""Delivery of deadline reminders: the port, the mail side, and a JSON-lines file for Slack.

A notifier is called inside the transaction that marks the reminder sent: whatever it writes
to the database (a queued mail) commits with that mark or not at all. What it writes elsewhere
must be idempotent per reminder id, since a crash after the write and before the commit sends
the reminder again after the restart.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.cases.deadlines import ticket_clock
from bot.cases.replies import local_deadline, mail_bytes, new_message_id, render, reply_subject
from bot.domain import Audience, Channel, Language
from bot.sla.engine import Engine
from bot.sla.reminders import next_expected
from models.tables import CallbackBooking, Customer, Message, Reminder, Ticket

log = logging.getLogger(__name__)


class Notifier(Protocol):
    """Sends one reminder; raises when it could not (the reminder is retried)."""

    async def send(self, session: AsyncSession, reminder: Reminder, ticket: Ticket,
                   now: datetime) -> None:
        """Send `reminder` about `ticket`, writing to the database through `session` only."""
        ...


def _percent(engine: Engine, kind: str) -> str:
    rule = next((r for r in engine.policy.reminders.rules if r.kind == kind), None)
    return "?" if rule is None else f"{rule.percent.normalize():f}"


def summary(engine: Engine, reminder: Reminder, ticket: Ticket,
            booking: CallbackBooking | None = None) -> str:
    """One line for a Slack thread or a log: what is due on which ticket."""
    if booking is not None:
        slot = local_deadline(booking.slot_start, engine.calendar.zone, Language.EN)
        return (f"NT#{ticket.number} {ticket.subject!r}: callback at {slot}, "
                f"phone {booking.phone or 'unknown: ask the customer'}")
    due = local_deadline(ticket.due_at, engine.calendar.zone, Language.EN) if ticket.due_at \
        else "-"
    what = ("deadline missed" if _percent(engine, reminder.kind) == "100"
            else f"{_percent(engine, reminder.kind)} % of the response time passed")
    late = " (late: the service was down when it came due)" if reminder.late else ""
    return (f"NT#{ticket.number} {ticket.subject!r}: {what}, severity {ticket.severity}, "
            f"first answer due {due}{late}")


class SlackFile:
    """Writes Slack-bound reminders as JSON lines, once per reminder id (for a demo, or until
    the Slack notifier is plugged in); readable without a workspace."""

    def __init__(self, path: Path, engine: Engine) -> None:
        self.path = path
        self.engine = engine
        path.parent.mkdir(parents=True, exist_ok=True)
        self._written: set[int] = set()
        self._read()

    def _read(self) -> None:
        if not self.path.exists():
            return
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                self._written.add(int(json.loads(line)["reminder"]))
            except (ValueError, KeyError, TypeError):
                continue  # a line cut off by a crash: its reminder is written again

    async def send(self, session: AsyncSession, reminder: Reminder, ticket: Ticket,
                   now: datetime) -> None:
        """Append one line, unless this reminder was written already."""
        assert reminder.id is not None
        if reminder.attempts > 1:
            self._read()  # claimed before, maybe by an instance that died after writing
        if reminder.id in self._written:
            return
        booking = (await session.get(CallbackBooking, reminder.booking_id)
                   if reminder.booking_id else None)
        line = json.dumps({
            "reminder": reminder.id, "ticket": ticket.number, "kind": reminder.kind,
            "audience": reminder.audience, "due_at": reminder.due_at.isoformat(),
            "posted_at": now.isoformat(), "late": reminder.late,
            "text": summary(self.engine, reminder, ticket, booking),
        }, ensure_ascii=False)
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")
        self._written.add(reminder.id)


@dataclass
class MailSide:
    """Queues reminder mail in the outbox: the customer's status note, the managers' alert."""

    engine: Engine
    from_address: str
    from_name: str
    managers_email: str = ""
    managers_language: Language = Language.DE

    async def send(self, session: AsyncSession, reminder: Reminder, ticket: Ticket,
                   now: datetime) -> None:
        """Queue the mail for this reminder's audience (nothing for the agents)."""
        if reminder.audience == Audience.CUSTOMER and ticket.requester and reminder.booking_id:
            await self._callback(session, reminder.booking_id, ticket, now)
        elif reminder.audience == Audience.CUSTOMER and ticket.requester:
            await self._customer(session, ticket, now)
        elif reminder.audience == Audience.MANAGERS and self.managers_email:
            await self._managers(session, reminder, ticket, now)

    def _due(self, moment: datetime | None, language: Language) -> str:
        return local_deadline(moment, self.engine.calendar.zone, language) if moment else "-"

    async def _customer(self, session: AsyncSession, ticket: Ticket, now: datetime) -> None:
        assert ticket.number is not None
        language = Language(ticket.language)
        running = ticket_clock(ticket)
        expected = (next_expected(self.engine.calendar, self.engine.policy.reminders, running)
                    if running else None)
        body = render("status_note", language, number=ticket.number, subject=ticket.subject,
                      due=self._due(ticket.due_at, language),
                      next_expected=self._due(expected, language))
        first = (await session.exec(
            select(Message).where(col(Message.ticket_number) == ticket.number,
                                  col(Message.direction) == "in")
            .order_by(col(Message.id)).limit(1))).first()
        await self._queue(session, ticket, to=ticket.requester, body=body, language=language,
                          subject=reply_subject(ticket.number, ticket.subject), now=now,
                          in_reply_to=first.external_id if first else "",
                          thread=first.thread_id if first else None)

    async def _callback(self, session: AsyncSession, booking_id: int, ticket: Ticket,
                        now: datetime) -> None:
        assert ticket.number is not None
        booking = await session.get(CallbackBooking, booking_id)
        assert booking is not None
        language = Language(ticket.language)
        body = render("callback_reminder", language, number=ticket.number,
                      subject=ticket.subject, slot=self._due(booking.slot_start, language),
                      phone=booking.phone or "")
        await self._queue(session, ticket, to=ticket.requester, body=body, language=language,
                          subject=reply_subject(ticket.number, ticket.subject), now=now,
                          in_reply_to="", thread=None)

    async def _managers(self, session: AsyncSession, reminder: Reminder, ticket: Ticket,
                        now: datetime) -> None:
        assert ticket.number is not None
        language = self.managers_language
        customer = await session.get(Customer, ticket.customer_id) if ticket.customer_id else None
        percent = _percent(self.engine, reminder.kind)
        body = render("manager_alert", language, number=ticket.number, subject=ticket.subject,
                      customer=f"{customer.number} {customer.name}" if customer else "-",
                      plan=ticket.plan or "-", product=ticket.product,
                      department=ticket.department, severity=ticket.severity,
                      status=ticket.status, due=self._due(ticket.due_at, language),
                      breach=percent == "100", percent=percent, late=reminder.late)
        head = "Frist verpasst" if language is Language.DE else "Deadline missed"
        if percent != "100":
            head = "Frist gefährdet" if language is Language.DE else "Deadline at risk"
        await self._queue(session, ticket, to=self.managers_email, body=body, language=language,
                          subject=f"[NT#{ticket.number}] {head}: {ticket.subject}", now=now,
                          in_reply_to="", thread=None)

    async def _queue(self, session: AsyncSession, ticket: Ticket, *, to: str, body: str,
                     language: Language, subject: str, now: datetime, in_reply_to: str,
                     thread: str | None) -> None:
        assert ticket.number is not None
        domain = self.from_address.rpartition("@")[2]
        message_id = new_message_id(domain, ticket.number)
        raw = mail_bytes(sender=self.from_address, sender_name=self.from_name, to=to,
                         subject=subject, body=body, message_id=message_id,
                         in_reply_to=in_reply_to, references=(), language=language,
                         ticket_number=ticket.number, now=now, auto_submitted="auto-generated")
        session.add(Message(
            ticket_number=ticket.number, direction="out", channel=Channel.EMAIL.value,
            external_id=message_id, thread_id=thread, sender=self.from_address, recipient=to,
            subject=subject, text=body, raw=raw, disposition="queued", created_at=now,
            next_attempt_at=now,
        ))


@dataclass
class Router:
    """Sends each audience where it belongs: agents to Slack; managers to Slack and mail;
    the customer by mail, in their Slack conversation for a Slack ticket, in their chat for a
    web ticket."""

    mail: Notifier
    slack: Notifier
    web: Notifier | None = None

    async def send(self, session: AsyncSession, reminder: Reminder, ticket: Ticket,
                   now: datetime) -> None:
        """Route one reminder."""
        audience = Audience(reminder.audience)
        if audience is Audience.CUSTOMER and ticket.channel == Channel.WEB.value:
            if self.web is not None:
                await self.web.send(session, reminder, ticket, now)
            return
        if audience is not Audience.CUSTOMER or ticket.channel == Channel.SLACK.value:
            await self.slack.send(session, reminder, ticket, now)
        by_mail = audience is Audience.CUSTOMER and ticket.channel == Channel.EMAIL.value
        if by_mail or audience is Audience.MANAGERS:
            await self.mail.send(session, reminder, ticket, now)
