"""A customer's click on the Confirm / Decline buttons of our price quote in their thread.

Thin: the evidence rule is customer_evidence's, the consent is the conversation's own use case
(the same as a JA/NEIN reply). One click is one transaction: the consent, the answer in the
thread, the quote's chat.update, the note to the agents and the audit commit together or not at
all. A refused click changes nothing but the audit trail; the clicker is told why.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.cases.conversation import Conversation
from bot.cases.replies import words
from bot.domain import Language, TicketStatus
from bot.intake.slack.blocks import escape
from bot.intake.slack.consent_blocks import CONFIRM, DECLINE, answered_blocks, parse_value
from bot.intake.slack.customer_evidence import (
    Expected,
    clicked_where,
    clicker_team,
    customer_click_refusal,
)
from bot.intake.slack.inbox import SlackReply
from models.slack import QUOTE, in_triage_thread, newest_post, queue_call
from models.tables import SlackCall, Ticket
from models.tickets import audit, lock_ticket

log = logging.getLogger(__name__)

HANDLED = frozenset({CONFIRM, DECLINE})


def is_customer_click(body: dict[str, Any]) -> bool:
    """A click on one of the customer-facing buttons (anyone may click; evidence decides)."""
    return any(a.get("action_id") in HANDLED for a in body.get("actions") or [])


class CustomerActions:
    """Confirm / Decline on a quote: the consent use case on evidence, or a refusal."""

    def __init__(self, *, conversation: Conversation, zone: ZoneInfo,
                 triage_channel: str) -> None:
        self.conversation = conversation
        self.zone = zone
        self.triage_channel = triage_channel

    async def apply(self, session: AsyncSession, body: dict[str, Any],
                    now: datetime) -> str | None:
        """Record the click's answer in the caller's transaction; if refused, the reason in the
        clicker's words (the ticket's language)."""
        action = (body.get("actions") or [{}])[0]
        user = str((body.get("user") or {}).get("id") or "")
        parsed = parse_value(str(action.get("value") or ""))
        ticket = None
        if parsed is not None:  # locked: a double click, or a new price, waits its turn
            ticket = await lock_ticket(session, parsed[0])
        if ticket is None or ticket.number is None:
            log.info("event=consent_click_refused user=%s value=%s reason=not_ours", user,
                     action.get("value"))
            return str(words("click_refusals", Language.EN)["not_ours"])
        number = ticket.number
        quote = await newest_post(session, ticket_number=number, prefix=QUOTE)
        waiting = ticket.status == TicketStatus.AWAITING_CONSENT
        expected = Expected(post=quote, values=frozenset({f"{number}:{ticket.price_cents}"}),
                            closed=None if waiting else "answered")
        refusal = await customer_click_refusal(session, ticket=ticket, body=body,
                                               expected=expected)
        if refusal is not None:
            await audit(session, ticket_number=number, actor=f"slack user {user}",
                        action="consent_click_refused", now=now, reason=refusal,
                        value=action.get("value"), team=clicker_team(body),
                        where=":".join(clicked_where(body)))
            log.info("event=consent_click_refused ticket=%s user=%s reason=%s", number, user,
                     refusal)
            return str(words("click_refusals", Language(ticket.language))[refusal])
        assert quote is not None and quote.result_ts is not None
        consent = action.get("action_id") == CONFIRM
        channel, thread_ts = ticket.requester.split(":", 1)
        trigger = str(body.get("trigger_id") or action.get("action_ts") or "")
        ticket = await self.conversation.answer_quote(
            session, ticket, consent=consent, actor=f"slack user {user}",
            evidence=f"button on our quote {quote.result_ts} by a user of team "
                     f"{clicker_team(body)}",
            name="", reply=SlackReply(channel=channel, thread_ts=thread_ts,
                                      key=f"consent-click:{trigger}"), now=now)
        await self._update_quote(session, ticket, quote, consent, user, now)
        await self._tell_agents(session, ticket, quote, consent, user, now)
        if self.conversation.announcer is not None:
            await self.conversation.announcer.ticket_changed(
                session, ticket=ticket, key=f"consent-click:{trigger}", now=now)
        log.info("event=consent_click ticket=%s user=%s consent=%s", number, user, consent)
        return None

    async def _update_quote(self, session: AsyncSession, ticket: Ticket, quote: SlackCall,
                            consent: bool, user: str, now: datetime) -> None:
        """The quote in place: buttons gone, who answered and when."""
        args = quote_args(quote)
        blocks = answered_blocks(str(args.get("text") or ""), consent=consent, user=user, at=now,
                                 zone=self.zone, language=Language(ticket.language))
        await queue_call(session, key=f"quote-answered:{quote.id}", method="chat.update",
                         ticket_number=ticket.number, now=now,
                         args={"channel": args.get("channel"), "ts": quote.result_ts,
                               "text": str(args.get("text") or ""), "blocks": blocks})

    async def _tell_agents(self, session: AsyncSession, ticket: Ticket, quote: SlackCall,
                           consent: bool, user: str, now: datetime) -> None:
        """Into the ticket's triage thread, as a customer's reply to the quote is mirrored."""
        if not self.triage_channel:
            return
        answer = "confirmed" if consent else "declined"
        text = (f"*Customer <@{escape(user)}> {answer} the quote on NT#{ticket.number} "
                f"(EUR {ticket.price_cents / 100:.2f}) with the button.*")
        assert ticket.number is not None
        args = await in_triage_thread(session, ticket.number,
                                      {"channel": self.triage_channel, "text": text})
        await queue_call(session, key=f"mirror-consent:{quote.id}",
                         method="chat.postMessage", ticket_number=ticket.number, now=now,
                         args=args)


def quote_args(quote: SlackCall) -> dict[str, Any]:
    """The arguments the quote was posted with (its channel and text)."""
    loaded = json.loads(quote.payload)
    return loaded if isinstance(loaded, dict) else {}
