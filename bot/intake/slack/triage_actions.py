"""Clicks on the triage post's controls: thin, the policy runs in bot/service.py and
bot/deadlines.py (waiting for the customer, resuming).

Each click is one transaction: the ticket's change, the post's chat.update, the note to the
customer (when the price changed) and the audit commit together or not at all.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.cases import deadlines
from bot.cases.customer_reply import CustomerReplies
from bot.cases.replies import local_deadline, render
from bot.cases.service import (
    NotRetriageable,
    TicketNotFound,
    escalate_premier,
    retriage,
)
from bot.domain import Department, Language, Severity
from bot.intake.slack.triage import (
    ASSIGN,
    CONFIRM,
    DEPARTMENT,
    PREMIER,
    RESUME,
    SEVERITY,
    WAIT,
    post_as_it_stands,
)
from bot.sla.engine import Engine
from models.slack import queue_call
from models.tables import Ticket
from models.tickets import audit, get_ticket

log = logging.getLogger(__name__)

HANDLED = frozenset({CONFIRM, DEPARTMENT, SEVERITY, ASSIGN, PREMIER, WAIT, RESUME})


@dataclass(frozen=True)
class Click:
    """One control used on a triage post."""

    action_id: str
    number: int
    value: str  # the chosen department or severity; empty for buttons
    agent: str
    channel: str  # where the post is
    ts: str  # the post's ts
    trigger: str  # Slack's id of this click, unique per click


def parse_click(body: dict[str, Any]) -> Click | None:
    """The click in a block_actions payload, or None when it is not one of ours."""
    actions = body.get("actions") or []
    if not actions or actions[0].get("action_id") not in HANDLED:
        return None
    action = actions[0]
    raw = str((action.get("selected_option") or {}).get("value") or action.get("value") or "")
    number, _, value = raw.partition(":")
    if not number.isdigit():
        return None
    container = body.get("container") or {}
    return Click(action_id=str(action["action_id"]), number=int(number), value=value,
                 agent=str((body.get("user") or {}).get("id") or ""),
                 channel=str(container.get("channel_id") or
                             (body.get("channel") or {}).get("id") or ""),
                 ts=str(container.get("message_ts") or ""),
                 trigger=str(body.get("trigger_id") or action.get("action_ts") or ""))


class TriageActions:
    """An agent's click: re-triage through the policy, update the post, tell the customer."""

    def __init__(self, *, engine: Engine, replies: CustomerReplies, zone: ZoneInfo) -> None:
        self.engine = engine
        self.replies = replies
        self.zone = zone

    async def apply(self, session: AsyncSession, click: Click, now: datetime) -> str:
        """Do what the click asks in the caller's transaction; a sentence for the agent if not."""
        try:
            if click.action_id == ASSIGN:
                ticket = await self._assign(session, click, now)
            elif click.action_id == WAIT:
                ticket = await deadlines.wait_for_customer(
                    session, number=click.number, now=now, actor=f"agent {click.agent}")
            elif click.action_id == RESUME:  # a ticket no longer waiting: the post is refreshed
                ticket = await deadlines.resume(session, engine=self.engine, number=click.number,
                                                now=now, actor=f"agent {click.agent}")
            elif click.action_id == PREMIER:
                escalation = await escalate_premier(session, self.engine, click.number,
                                                    click.agent, now)
                if not escalation.escalated:
                    return f"Not escalated: {escalation.reason}."
                ticket = escalation.ticket
                await self._tell(session, ticket, "premier_escalated", click, now,
                                 used=escalation.used, total=escalation.total)
            else:
                ticket = await self._retriage(session, click, now)
        except (TicketNotFound, deadlines.TicketNotFound, NotRetriageable, ValueError) as exc:
            log.info("event=slack_triage_refused ticket=%s agent=%s reason=%s", click.number,
                     click.agent, exc)
            return f"Nothing was changed: {exc}."
        await self._update_post(session, ticket, click, now)
        return ""

    async def _assign(self, session: AsyncSession, click: Click, now: datetime) -> Ticket:
        ticket = await get_ticket(session, click.number)
        if ticket is None:
            raise TicketNotFound(f"there is no ticket NT#{click.number}")
        ticket.assignee = click.agent
        session.add(ticket)
        await audit(session, ticket_number=click.number, actor=f"agent {click.agent}",
                    action="assigned", now=now, assignee=click.agent)
        log.info("event=ticket_assigned ticket=%s agent=%s", click.number, click.agent)
        return ticket

    async def _retriage(self, session: AsyncSession, click: Click, now: datetime) -> Ticket:
        ticket = await get_ticket(session, click.number)
        if ticket is None:
            raise TicketNotFound(f"there is no ticket NT#{click.number}")
        department, severity = Department(ticket.department), Severity(ticket.severity)
        if click.action_id == DEPARTMENT:
            department = Department(click.value)
        elif click.action_id == SEVERITY:
            severity = Severity(click.value)
        done = await retriage(session, self.engine, click.number, department, severity,
                              click.agent, now)
        if done.price_changed:
            await self._tell_customer(session, done.ticket, done.old_price_cents,
                                      asks_consent=done.asks_consent, click=click, now=now)
        return done.ticket

    async def _tell_customer(self, session: AsyncSession, ticket: Ticket, old_cents: int, *,
                             asks_consent: bool, click: Click, now: datetime) -> None:
        language = Language(ticket.language)

        def price(cents: int) -> str:
            text = f"{cents / 100:.2f}"
            return text.replace(".", ",") if language is Language.DE else text

        old = (f"EUR {price(old_cents)}" + (" zzgl. MwSt." if language is Language.DE
                                            else " plus VAT") if old_cents else
               ("nicht berechnet" if language is Language.DE else "not billed"))
        await self._tell(session, ticket, "retriaged", click, now, severity=ticket.severity,
                         billable=ticket.billable, price=price(ticket.price_cents),
                         old_price=old, asks_consent=asks_consent,
                         due=local_deadline(ticket.due_at, self.zone, language)
                         if ticket.due_at else "")

    async def _tell(self, session: AsyncSession, ticket: Ticket, template: str, click: Click,
                    now: datetime, **values: Any) -> None:
        """Queue a note to the customer in the ticket's own conversation (mail or Slack)."""
        body = render(template, Language(ticket.language), number=ticket.number,
                      channel=ticket.channel, **values)
        reply = await self.replies.customer_reply(
            session, ticket, key=f"{template}:NT#{ticket.number}:{click.trigger}")
        if reply is None:
            log.warning("event=customer_unreachable ticket=%s note=%s", ticket.number, template)
            return
        await reply.queue_answer(session, ticket, body, now=now, essential=True,
                                 asks_consent=bool(values.get("asks_consent")))

    async def _update_post(self, session: AsyncSession, ticket: Ticket, click: Click,
                           now: datetime) -> None:
        if not click.channel or not click.ts:
            return
        fallback, blocks = await post_as_it_stands(session, engine=self.engine, zone=self.zone,
                                                   ticket=ticket, now=now)
        await queue_call(session, key=f"triage-update:NT#{ticket.number}:{click.trigger}",
                         method="chat.update", ticket_number=ticket.number, now=now,
                         args={"channel": click.channel, "ts": click.ts, "text": fallback,
                               "blocks": blocks})


