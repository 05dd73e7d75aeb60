"""Whether a customer's click on one of our buttons counts for a ticket.

Slack signs the request, but anyone in a shared channel can click, and a button's value names
a ticket: the click counts only when the clicker's workspace is the one mapped to the ticket's
customer, the click is in the ticket's own conversation, and the clicked message is one we
posted on that very ticket and which, as it stands now, shows the clicked button with that
value (so a used or replaced offer, or a forged value, counts for nothing).
"""

from __future__ import annotations

import json
from typing import Any

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.domain import Channel
from models.slack import post_of_ticket
from models.tables import CustomerSlack, Ticket


def click_team(body: dict[str, Any]) -> str:
    """The clicker's own workspace (in a Slack Connect channel it differs from the channel's)."""
    return str((body.get("user") or {}).get("team_id") or (body.get("team") or {}).get("id")
               or "")


def click_place(body: dict[str, Any]) -> tuple[str, str]:
    """The channel and the ts of the message whose button was clicked."""
    container = body.get("container") or {}
    channel = container.get("channel_id") or (body.get("channel") or {}).get("id") or ""
    return str(channel), str(container.get("message_ts") or "")


async def customer_click_refusal(session: AsyncSession, ticket: Ticket,
                                 body: dict[str, Any]) -> str | None:
    """Why this click does not count for `ticket` (a sentence for the clicker); None if it does."""
    if ticket.customer_id is None or ticket.number is None:
        return "this ticket belongs to no customer account"
    teams = (await session.exec(select(CustomerSlack.team_id).where(
        CustomerSlack.customer_id == ticket.customer_id))).all()
    if click_team(body) not in teams:
        return "your Slack workspace is not the ticket's customer's"
    channel, ts = click_place(body)
    own_channel = ticket.requester.partition(":")[0]
    if ticket.channel != Channel.SLACK.value or channel != own_channel:
        return "this is not the ticket's conversation"
    post = await post_of_ticket(session, ticket_number=ticket.number, channel=channel, ts=ts)
    if post is None:
        return f"this button does not belong to ticket NT#{ticket.number}"
    clicked = [(a.get("action_id"), a.get("value")) for a in body.get("actions") or []][:1]
    shown = [(e.get("action_id"), e.get("value")) for block in json.loads(post.payload)
             .get("blocks") or [] for e in block.get("elements") or []]
    if not clicked or clicked[0] not in shown:
        return "this button is not (or no longer) on our message"
    return None
