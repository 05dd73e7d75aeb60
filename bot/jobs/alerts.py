"""Manager alerts: a post to SLACK_MANAGERS_CHANNEL and a mail to MANAGERS_EMAIL.

The SLA checks call `notify_managers` when a deadline is missed (or about to be). Both the
post and the mail are queued in the caller's transaction (the Slack outbox; the mail outbox),
so an alert is never lost and never sent twice for the same ticket and kind.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.cases.notices import queue_notice
from bot.cases.replies import local_deadline
from bot.domain import Language
from bot.intake.slack.blocks import escape, section
from models.customers import CustomerView
from models.slack import queue_call
from models.tables import Ticket
from models.tickets import audit

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AlertConfig:
    """Where manager alerts go; an empty channel or address sends none that way."""

    slack_channel: str
    email: str
    from_address: str
    from_name: str
    zone: ZoneInfo


@dataclass(frozen=True)
class ManagerAlert:
    """What managers are told about one ticket."""

    number: int
    customer: str  # "Name (number)", or "unknown sender"
    plan: str  # "product plan"
    severity: str
    due: datetime | None
    now: datetime
    kind: str  # "breach", "warning", ...

    def late(self) -> str:
        """How late the ticket is: '1 h 20 min late', 'due in 25 min' or 'no deadline'."""
        if self.due is None:
            return "no deadline running"
        delta = self.now - self.due
        text = duration(abs(delta))
        return f"{text} late" if delta >= timedelta(0) else f"due in {text}"

    def subject(self) -> str:
        """The alert mail's subject."""
        what = "Deadline missed" if self.kind == "breach" else f"Attention ({self.kind})"
        return f"[NT#{self.number}] {what}: {self.customer}, severity {self.severity}"

    def headline(self, zone: ZoneInfo) -> str:
        """One line naming ticket, customer, plan, severity, deadline and how late."""
        deadline = local_deadline(self.due, zone, Language.EN) if self.due else "none"
        what = "missed its deadline" if self.kind == "breach" else f"needs attention ({self.kind})"
        return (f"NT#{self.number} {what}: customer {self.customer}, plan {self.plan}, "
                f"severity {self.severity}, deadline {deadline}, {self.late()}.")


def duration(delta: timedelta) -> str:
    """A duration in whole minutes, as people say it: '2 d 3 h', '1 h 20 min', '5 min'."""
    minutes = int(delta.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"


def make_alert(ticket: Ticket, customer: CustomerView | None, *, kind: str,
               now: datetime) -> ManagerAlert:
    """The alert for one ticket."""
    assert ticket.number is not None
    who = f"{customer.name} ({customer.number})" if customer else "unknown sender"
    who = " ".join(who.split())  # no line breaks from the customer list into a mail header
    return ManagerAlert(number=ticket.number, customer=who,
                        plan=f"{ticket.product} {ticket.plan or 'pay-per-incident'}",
                        severity=ticket.severity, due=ticket.due_at, now=now, kind=kind)


async def notify_managers(session: AsyncSession, *, config: AlertConfig, ticket: Ticket,
                          customer: CustomerView | None, kind: str, now: datetime) -> list[str]:
    """Queue the Slack post and the mail (once per ticket and kind); what was queued."""
    alert = make_alert(ticket, customer, kind=kind, now=now)
    headline = alert.headline(config.zone)
    queued: list[str] = []
    if config.slack_channel:
        text = escape(headline)  # the customer's name is theirs to choose: keep it inert
        if await queue_call(session, key=f"managers:{kind}:NT#{alert.number}",
                            method="chat.postMessage", ticket_number=alert.number, now=now,
                            args={"channel": config.slack_channel, "text": text,
                                  "blocks": [section(f":rotating_light: {text}")]}):
            queued.append("slack")
    if config.email and await _queue_mail(session, config, alert, headline):
        queued.append("email")
    if queued:
        await audit(session, ticket_number=alert.number, actor="sla", action="managers_alerted",
                    now=now, kind=kind, via=queued, late=alert.late())
    log.info("event=managers_alerted ticket=%s kind=%s via=%s", alert.number, kind,
             ",".join(queued) or "-")
    return queued


async def _queue_mail(session: AsyncSession, config: AlertConfig, alert: ManagerAlert,
                      headline: str) -> bool:
    domain = config.from_address.rpartition("@")[2]
    return await queue_notice(
        session, sender=config.from_address, sender_name=config.from_name, to=config.email,
        subject=alert.subject(), message_id=f"<nt{alert.number}.managers-{alert.kind}@{domain}>",
        text=(f"{headline}\n\nCustomer: {alert.customer}\nPlan: {alert.plan}\n"
              f"Severity: {alert.severity}\n{alert.late().capitalize()}.\n"),
        now=alert.now, ticket_number=alert.number)
