"""Whether a click on a button we posted in a customer's thread may act for the ticket's customer.

Senders lie, and a signed payload only proves that Slack sent it, not that the clicker may spend
the customer's money: a user of another workspace in a shared channel, our buttons copied into
another channel, an old quote after the price changed, a value edited to a lower price. So a
click counts only when every fact below holds; the first that fails is the reason it does not.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.domain import Channel
from models.customers import slack_team_owner
from models.messages import find
from models.tables import SlackCall, Ticket


@dataclass(frozen=True)
class Expected:
    """What a valid click answers: our newest post of its kind on the ticket, as it stands."""

    post: SlackCall | None  # our newest post with these buttons (None: none was queued)
    values: frozenset[str]  # the values its buttons may carry now (e.g. "12:8500")
    closed: str | None = None  # why the ticket takes no such click any more (None: it does)


# The reasons customer_click_refusal gives; words.<language>.j2 (click_refusals) words them for
# the clicker, the audit trail keeps them as they are.
REASONS = frozenset({"not_slack", "another_conversation", "other_workspace", "not_requester",
                     "unmapped_channel", "superseded", "mismatch"})


def clicker_team(body: dict[str, Any]) -> str:
    """The clicking user's own workspace (in a shared channel not the channel's)."""
    user = body.get("user") or {}
    return str(user.get("team_id") or (body.get("team") or {}).get("id") or "")


def clicked_where(body: dict[str, Any]) -> tuple[str, str]:
    """(channel id, message ts) of the message whose button was clicked; empty when unsaid or
    when the payload's two channel fields disagree."""
    container = body.get("container") or {}
    channel = str(container.get("channel_id") or "")
    other = str((body.get("channel") or {}).get("id") or "")
    if channel and other and channel != other:
        return "", ""
    ts = str(container.get("message_ts") or (body.get("message") or {}).get("ts") or "")
    return channel or other, ts


async def customer_click_refusal(session: AsyncSession, *, ticket: Ticket, body: dict[str, Any],
                                 expected: Expected) -> str | None:
    """Why this click may not act for the ticket's customer (one of REASONS, or the caller's
    `expected.closed`), or None when it may.

    It must come from the ticket's own Slack conversation, from a user of a workspace mapped to
    the ticket's customer (in a direct message: the user who opened the ticket), on our newest
    post of its kind, carry a value that post's buttons carry now, and the ticket must still
    take it.
    """
    user = str((body.get("user") or {}).get("id") or "")
    actions = body.get("actions") or [{}]
    value = str(actions[0].get("value") or "")
    channel, ts = clicked_where(body)
    home, _, _ = ticket.requester.partition(":")
    if ticket.channel != Channel.SLACK.value or not home:
        return "not_slack"
    if channel != home:
        return "another_conversation"
    if ticket.customer_id is not None:
        # the clicker's workspace must be this customer's, and no other customer's too
        if await slack_team_owner(session, clicker_team(body)) != ticket.customer_id:
            return "other_workspace"
    elif home.startswith("D"):
        opened = await find(session, "in", ticket.requester)
        if opened is None or opened.sender != user:
            return "not_requester"
    else:
        return "unmapped_channel"
    if expected.post is None or not expected.post.result_ts or expected.post.result_ts != ts:
        return "superseded"
    if value not in expected.values:
        return "mismatch"
    return expected.closed


def shown_values(post: SlackCall | None, action_id: str) -> frozenset[str]:
    """The values the buttons with `action_id` carry on our message as it stands (a post or
    its newest update)."""
    if post is None:
        return frozenset()
    blocks = json.loads(post.payload).get("blocks") or []
    return frozenset(str(e.get("value")) for block in blocks for e in block.get("elements") or []
                     if e.get("action_id") == action_id)
