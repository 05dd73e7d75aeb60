"""What becomes of Slack calls that cannot be made: the token refused (the managers get a mail),
or one call refused for good (the ticket is flagged, the agents told, a customer's answer
goes by mail instead)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.cases.notices import queue_notice
from bot.domain import Channel
from models.customers import get_customer
from models.slack import queue_triage_note
from models.tables import SlackCall, Ticket
from models.tickets import audit

log = logging.getLogger(__name__)

FLAG = "slack_undeliverable"
NOTE_KEY = "undeliverable:"  # key prefix of the triage line that tells agents


@dataclass(frozen=True)
class NoticeConfig:
    """Who is told by mail, and as whom."""

    managers_email: str
    from_address: str
    from_name: str
    triage_channel: str


async def queue_mail(session: AsyncSession, config: NoticeConfig, *, to: str, subject: str,
                     text: str, message_id: str, now: datetime,
                     ticket_number: int | None = None) -> bool:
    """Queue one plain mail in the mail outbox, once per Message-ID; False if queued before."""
    return await queue_notice(session, sender=config.from_address, sender_name=config.from_name,
                              to=to, subject=subject, text=text, message_id=message_id, now=now,
                              ticket_number=ticket_number)


def _message_id(config: NoticeConfig, what: str) -> str:
    return f"<{what}@{config.from_address.rpartition('@')[2]}>"


async def tell_managers_token(session: AsyncSession, config: NoticeConfig, *, reason: str,
                              now: datetime) -> bool:
    """Mail the managers that Slack refuses our token (once a day per reason)."""
    if not config.managers_email:
        return False
    text = (f"Slack refuses the service's bot token ({reason}) since "
            f"{now:%Y-%m-%d %H:%M} UTC. Nothing is posted to Slack until the token works again:\n"
            "every Slack post stays queued, none is lost. Install the app again (or fix\n"
            "SLACK_BOT_TOKEN) and restart the service with the new token; the backlog is then\n"
            "delivered in order. `intake-bot outbox list` shows what waits.\n")
    return await queue_mail(session, config, to=config.managers_email,
                            subject=f"Slack delivery paused: the bot token is refused ({reason})",
                            text=text, now=now,
                            message_id=_message_id(config, f"slack-token.{now:%Y%m%d}.{reason}"))


def _describe(call: SlackCall) -> str:
    args = json.loads(call.payload)
    text = " ".join(str(args.get("text") or "").split())
    return text if len(text) <= 300 else text[:299] + "…"


async def _customer_address(session: AsyncSession, ticket: Ticket) -> str | None:
    """A verified address of the ticket's customer: a mail requester, else the first full
    address (not a domain) in the customer list."""
    if ticket.channel == Channel.EMAIL.value and "@" in ticket.requester:
        return ticket.requester
    if ticket.customer_id is None or "sender_unverified" in ticket.flags:
        return None
    customer = await get_customer(session, ticket.customer_id)
    if customer is None:
        return None
    return next((e for e in customer.emails if not e.startswith("@")), None)


async def on_call_failed(session: AsyncSession, config: NoticeConfig, call: SlackCall,
                         now: datetime) -> list[str]:
    """Give a call that failed for good a visible fate, in its own transaction; what was done."""
    done: list[str] = []
    ticket = await session.get(Ticket, call.ticket_number) if call.ticket_number else None
    args = json.loads(call.payload)
    channel = str(args.get("channel") or "")
    what = _describe(call)
    if ticket is not None:
        assert ticket.number is not None
        flags = [f for f in ticket.flags.split(",") if f]
        if FLAG not in flags:
            ticket.flags = ",".join([*flags, FLAG])[:200]
            session.add(ticket)
        await audit(session, ticket_number=ticket.number, actor="slack", action="slack_undelivered",
                    now=now, key=call.key, method=call.method, channel=channel,
                    reason=call.reason or "")
        done.append("flagged")
        to_customer = bool(ticket.requester) and ticket.requester.partition(":")[0] == channel \
            and ticket.channel == Channel.SLACK.value and call.method == "chat.postMessage"
        if to_customer:
            address = await _customer_address(session, ticket)
            if address and await queue_mail(
                    session, config, to=address, subject=f"[NT#{ticket.number}] {ticket.subject}"
                    [:200], text=str(args.get("text") or what) + "\n", now=now,
                    ticket_number=ticket.number,
                    message_id=_message_id(config, f"nt{ticket.number}.slack-{call.id}")):
                done.append(f"mailed-customer:{address}")
        line = (f":warning: Could not deliver to Slack ({call.reason}): {call.method} to "
                f"{channel}" + (f": {what}" if what else "") +
                (" It went to the customer by mail instead." if any(
                    d.startswith("mailed-customer") for d in done) else ""))
        in_triage = channel == config.triage_channel or call.key.startswith(NOTE_KEY)
        if not in_triage and await queue_triage_note(
                session, ticket_number=ticket.number, key=f"{NOTE_KEY}{call.id}", text=line,
                now=now):
            done.append("told-agents")
    if "told-agents" not in done and config.managers_email:
        subject = (f"[NT#{call.ticket_number}] " if call.ticket_number else "") + \
            f"Slack post failed: {call.reason}"
        if await queue_mail(session, config, to=config.managers_email, subject=subject,
                            text=(f"A Slack call failed for good and was not delivered:\n"
                                  f"{call.method} to {channel} ({call.reason}), outbox id "
                                  f"slack:{call.id}, key {call.key}.\n\n{what}\n\n"
                                  "`intake-bot outbox retry slack:"
                                  f"{call.id}` queues it again once the cause is fixed.\n"),
                            now=now, ticket_number=call.ticket_number,
                            message_id=_message_id(config, f"slack-failed.{call.id}")):
            done.append("mailed-managers")
    log.warning("event=slack_call_undeliverable call=%s ticket=%s reason=%s fate=%s", call.id,
                call.ticket_number or "-", call.reason, ",".join(done) or "-")
    return done
