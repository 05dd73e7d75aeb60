"""The triage post: every new ticket, from any channel, announced in SLACK_TRIAGE_CHANNEL.

Agents see customer and plan, included incidents left, the predicted department and severity
with their confidences, the deadline, the price if billable, and the message's first lines,
escaped so that a customer's `<!channel>` or link can neither ping nor mislead anyone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.cases.replies import local_deadline
from bot.cases.service import premier_left
from bot.domain import Department, Language, Severity, TicketStatus, Triage
from bot.intake.slack.blocks import escape, excerpt, quoted_parts, section
from bot.intake.slack.text import SECTION_LIMIT
from bot.sla.engine import Assessment, Engine
from models.customers import CustomerView, get_customer
from models.slack import in_triage_thread, on_triage_post, queue_call
from models.tables import Message, Ticket
from models.tickets import allowance_used, ticket_history


@dataclass(frozen=True)
class TriageFacts:
    """What the triage post shows about one new ticket."""

    number: int
    channel: str
    customer: str
    plan: str
    included_left: int | None
    department: str
    severity: str
    confidence: dict[str, float]
    needs_triage: bool
    due: str
    price_eur: str | None
    text: str
    set_by: str = ""  # the agent who set or confirmed department and severity
    assignee: str = ""
    extra: tuple[str, ...] = ()  # further lines
    premier_left: int = 0  # Premier escalations this ticket may still use: >0 shows the button
    premier: bool = False  # escalated to Microsoft Premier
    status: str = ""  # open: "Waiting for customer" is offered; waiting_customer: "Resume"
    paused_since: str = ""  # while waiting on the customer: since when (the clock is stopped)


# action ids of the triage post's controls; their values start with the ticket number
CONFIRM, DEPARTMENT, SEVERITY, ASSIGN, PREMIER = (
    "triage_confirm", "triage_department", "triage_severity", "triage_assign", "triage_premier")
WAIT, RESUME = "triage_wait", "triage_resume"


def _option(number: int, value: str, label: str) -> dict[str, Any]:
    return {"text": {"type": "plain_text", "text": label}, "value": f"{number}:{value}"}


def controls(number: int, department: str, severity: str, *,
             premier_left: int = 0, status: str = "") -> dict[str, Any]:
    """The agents' controls: Confirm, a department and a severity select, Assign to me,
    Waiting for customer on an open ticket (Resume while it waits), and Escalate to Microsoft
    Premier while the month's escalations last."""
    departments = [_option(number, d.value, d.value) for d in Department]
    severities = [_option(number, s.value, s.value) for s in Severity]
    current_d = next((o for o in departments if o["value"] == f"{number}:{department}"), None)
    current_s = next((o for o in severities if o["value"] == f"{number}:{severity}"), None)
    department_select: dict[str, Any] = {
        "type": "static_select", "action_id": DEPARTMENT, "options": departments,
        "placeholder": {"type": "plain_text", "text": "Department"}}
    severity_select: dict[str, Any] = {
        "type": "static_select", "action_id": SEVERITY, "options": severities,
        "placeholder": {"type": "plain_text", "text": "Severity"}}
    if current_d is not None:
        department_select["initial_option"] = current_d
    if current_s is not None:
        severity_select["initial_option"] = current_s
    elements: list[dict[str, Any]] = [
        {"type": "button", "action_id": CONFIRM, "style": "primary", "value": str(number),
         "text": {"type": "plain_text", "text": "Confirm"}},
        department_select, severity_select,
        {"type": "button", "action_id": ASSIGN, "value": str(number),
         "text": {"type": "plain_text", "text": "Assign to me"}},
    ]
    if status == TicketStatus.OPEN:
        elements.append({"type": "button", "action_id": WAIT, "value": str(number),
                         "text": {"type": "plain_text", "text": "Waiting for customer"}})
    elif status == TicketStatus.WAITING_CUSTOMER:
        elements.append({"type": "button", "action_id": RESUME, "value": str(number),
                         "text": {"type": "plain_text", "text": "Resume"}})
    if premier_left > 0:
        elements.append({"type": "button", "action_id": PREMIER, "value": str(number),
                         "text": {"type": "plain_text", "text": "Escalate to Microsoft Premier"
                                  f" ({premier_left} left this month)"}})
    return {"type": "actions", "block_id": f"triage:{number}", "elements": elements}


def triage_post(facts: TriageFacts) -> tuple[str, list[dict[str, Any]]]:
    """The post's fallback text and blocks (pure); customer-written parts are escaped."""
    head = f"New ticket NT#{facts.number} ({facts.channel}) from {escape(facts.customer)}"
    dept = f"{int(facts.confidence.get('department', 0) * 100)} %"
    sev = f"{int(facts.confidence.get('severity', 0) * 100)} %"
    labels = (f"Department: {facts.department}, severity: {facts.severity} "
              f"(set by <@{facts.set_by}>)" if facts.set_by else
              f"Department: {facts.department} ({dept}), severity: {facts.severity} ({sev})"
              + (" *needs triage*" if facts.needs_triage else ""))
    lines = [
        f"*{head}*",
        f"Plan: {escape(facts.plan)}" + (f", included incidents left: {facts.included_left}"
                                         if facts.included_left is not None else ""),
        labels,
        f"Deadline: {facts.due or 'not running (waiting for consent or a check)'}"
        if not facts.paused_since else
        f"*Waiting for the customer* since {facts.paused_since}: the clock is stopped",
    ]
    if facts.price_eur is not None:
        lines.append(f"Billable: EUR {facts.price_eur}")
    if facts.assignee:
        lines.append(f"Assigned to <@{facts.assignee}>")
    if facts.premier:
        lines.append("*Escalated to Microsoft Premier*")
    lines.extend(facts.extra)
    quoted = "\n".join(f">{line}" for line in excerpt(facts.text).splitlines()) or ">"
    return head, [section("\n".join(lines)), section(quoted),
                  controls(facts.number, facts.department, facts.severity,
                           premier_left=0 if facts.premier else facts.premier_left,
                           status=facts.status)]


def ticket_facts(ticket: Ticket, customer: CustomerView | None, *, included_left: int | None,
                 zone: ZoneInfo, text: str, triage: Triage | None = None, set_by: str = "",
                 extra: tuple[str, ...] = (),
                 premier_left: int = 0) -> TriageFacts:
    """What the post shows about a ticket as it stands now."""
    assert ticket.number is not None
    return TriageFacts(
        number=ticket.number, channel=ticket.channel,
        customer=f"{customer.name} ({customer.number})" if customer
        else f"unknown sender {ticket.requester}",
        plan=f"{ticket.product} {ticket.plan or 'none (pay per incident)'}",
        included_left=included_left if ticket.plan else None,
        department=ticket.department, severity=ticket.severity,
        confidence=dict(triage.confidence) if triage else {},
        needs_triage=bool(triage and triage.needs_triage),
        due=local_deadline(ticket.due_at, zone, Language.EN) if ticket.due_at else "",
        price_eur=f"{ticket.price_cents / 100:.2f}" if ticket.billable else None,
        text=text, set_by=set_by, assignee=ticket.assignee or "", extra=extra,
        premier_left=premier_left,
        premier="premier" in ticket.flags.split(","), status=ticket.status,
        paused_since=local_deadline(ticket.paused_at, zone, Language.EN)
        if ticket.status == TicketStatus.WAITING_CUSTOMER and ticket.paused_at else "",
    )


async def post_as_it_stands(session: AsyncSession, *, engine: Engine, zone: ZoneInfo,
                            ticket: Ticket, now: datetime) -> tuple[str, list[dict[str, Any]]]:
    """The triage post (fallback text, blocks) for the ticket as it stands now."""
    assert ticket.number is not None
    customer = await get_customer(session, ticket.customer_id) if ticket.customer_id else None
    messages, trail = await ticket_history(session, ticket.number)
    first = next((m.text for m in messages if m.direction == "in"), ticket.subject)
    set_by = next((e.actor.removeprefix("agent ") for e in reversed(trail)
                   if e.action == "retriaged"), "")
    facts = ticket_facts(ticket, customer, included_left=await included_left(session, engine,
                                                                             ticket),
                         zone=zone, text=first, set_by=set_by,
                         premier_left=await premier_left(session, engine, ticket, now))
    return triage_post(facts)


async def included_left(session: AsyncSession, engine: Engine, ticket: Ticket) -> int | None:
    """The customer's included incidents left this month on the ticket's plan."""
    rule = engine.ticket_plan(ticket.product, ticket.plan, ticket.plan_terms)
    if rule is None or ticket.customer_id is None:
        return None
    used = await allowance_used(session, customer_id=ticket.customer_id,
                                product=ticket.product, month=ticket.usage_month,
                                kind="incident")
    return max(rule.included_incidents - used, 0)


class TriagePoster:
    """Queues the triage post for each new ticket in the ticket's own transaction."""

    def __init__(self, *, channel: str, zone: ZoneInfo, engine: Engine | None = None) -> None:
        self.channel = channel
        self.zone = zone
        self.engine = engine

    async def ticket_opened(self, session: AsyncSession, *, ticket: Ticket, result: Assessment,
                            customer: CustomerView | None, triage: Triage | None, text: str,
                            now: datetime) -> None:
        """Queue chat.postMessage to the triage channel, once per ticket."""
        assert ticket.number is not None
        premier = (await premier_left(session, self.engine, ticket, now)
                   if self.engine is not None else 0)
        facts = ticket_facts(ticket, customer, included_left=result.included_left,
                             zone=self.zone, text=text, triage=triage, premier_left=premier)
        fallback, blocks = triage_post(facts)
        await queue_call(session, key=f"triage:NT#{ticket.number}", method="chat.postMessage",
                         ticket_number=ticket.number, now=now,
                         args={"channel": self.channel, "text": fallback, "blocks": blocks})

    async def ticket_changed(self, session: AsyncSession, *, ticket: Ticket, key: str,
                             now: datetime) -> None:
        """Update the ticket's triage post in place (once it is out) to show it as it stands."""
        assert ticket.number is not None
        if self.engine is None:
            return
        fallback, blocks = await post_as_it_stands(session, engine=self.engine, zone=self.zone,
                                                   ticket=ticket, now=now)
        args = await on_triage_post(session, ticket.number, {"text": fallback, "blocks": blocks})
        if args is not None:
            await queue_call(session, key=f"triage-update:NT#{ticket.number}:{key}"[:200],
                             method="chat.update", ticket_number=ticket.number, now=now,
                             args=args)

    async def customer_replied(self, session: AsyncSession, *, ticket: Ticket, row: Message,
                               proven: bool, now: datetime, note: str = "") -> None:
        """Mirror the reply into the ticket's triage thread, whole: a long one as several
        posts in order, the first under the heading."""
        assert ticket.number is not None
        head = (f"Customer reply on NT#{ticket.number} ({row.channel}) from "
                f"{escape(row.sender)}" + ("" if proven else " (sender not verified)")
                + (f" ({escape(note)})" if note else ""))
        limit = max(SECTION_LIMIT - len(head) - 3, SECTION_LIMIT // 2)
        for n, quoted in enumerate(quoted_parts(row.text.strip(), limit), start=1):
            text = f"*{head}*\n{quoted}" if n == 1 else quoted
            key = f"mirror:{row.external_id}" if n == 1 else f"mirror:{n}:{row.external_id}"
            args = await in_triage_thread(session, ticket.number,
                                          {"channel": self.channel, "text": text})
            await queue_call(session, key=key[:200], method="chat.postMessage",
                             ticket_number=ticket.number, now=now, args=args)
