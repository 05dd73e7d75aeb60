"""`intake-bot sla status`: the unanswered tickets by time left, for the person on call."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import select

from bot.domain import TicketStatus
from models import reminders as repo
from models.db import Database
from models.tables import Customer

SHOWN = (TicketStatus.OPEN.value, TicketStatus.WAITING_CUSTOMER.value)


@dataclass(frozen=True)
class Row:
    """One ticket's deadline as the on-call person reads it."""

    ticket: int
    left_seconds: int  # negative: overdue by that much
    due: str
    severity: str
    status: str
    customer: str
    plan: str
    subject: str
    next_reminder: str


def left(seconds: int) -> str:
    """'2h05m left', '12m overdue', '40s left'."""
    span = abs(seconds)
    hours, rest = divmod(span, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{hours}h{minutes:02d}m" if hours else f"{minutes}m" if minutes else f"{secs}s"
    return f"{text} overdue" if seconds < 0 else f"{text} left"


async def status_rows(db: Database, zone: ZoneInfo, now: datetime) -> list[Row]:
    """Unanswered tickets, least time left first; a paused ticket's time left stands still."""
    async with db.reader() as session:
        found = await repo.running_tickets(session, SHOWN)
        names = {cid: number for cid, number in (await session.exec(
            select(Customer.id, Customer.number))).all()} if found else {}
    rows = []
    for ticket, upcoming in found:
        assert ticket.due_at is not None and ticket.number is not None
        until = ticket.paused_at or now
        next_text = "-"
        if upcoming is not None:
            next_text = (f"{upcoming.kind} to {upcoming.audience} at "
                         f"{upcoming.due_at.astimezone(zone):%a %H:%M:%S}")
        elif ticket.paused_at is not None:
            next_text = "paused: waiting for the customer"
        rows.append(Row(
            ticket=ticket.number,
            left_seconds=int((ticket.due_at - until) // timedelta(seconds=1)),
            due=ticket.due_at.astimezone(zone).isoformat(timespec="seconds"),
            severity=ticket.severity, status=ticket.status,
            customer=names.get(ticket.customer_id, "-") if ticket.customer_id else "-",
            plan=ticket.plan or "-", subject=ticket.subject, next_reminder=next_text,
        ))
    return sorted(rows, key=lambda r: (r.left_seconds, r.ticket))


def render(rows: list[Row], as_json: bool) -> str:
    """The table (or JSON lines) the command prints."""
    if as_json:
        return "\n".join(json.dumps(asdict(r), ensure_ascii=False) for r in rows)
    if not rows:
        return "no unanswered tickets with a deadline"
    lines = [f"{'ticket':<9} {'time left':<16} {'due':<26} sev {'status':<17} {'customer':<9} "
             f"{'plan':<14} next reminder"]
    for r in rows:
        lines.append(f"NT#{r.ticket:<6} {left(r.left_seconds):<16} {r.due:<26} {r.severity:<3} "
                     f"{r.status:<17} {r.customer:<9} {r.plan:<14} {r.next_reminder}")
        lines.append(f"{'':<10}{r.subject[:90]}")
    return "\n".join(lines)
