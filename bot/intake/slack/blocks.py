"""Block Kit and mrkdwn for what we post; customer text is always escaped first (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.cases.mrkdwn import escape as escape  # defined there: use cases escape notes too
from bot.domain import Choice
from bot.intake.slack.text import SECTION_LIMIT, split


def excerpt(text: str, *, lines: int = 5, limit: int = 600) -> str:
    """The first lines of a message, escaped and shortened, for a post."""
    kept = [line for line in text.strip().splitlines() if line.strip()][:lines]
    short = "\n".join(kept)
    if len(short) > limit:
        short = short[: limit - 1].rstrip() + "…"
    return escape(short)


def message_parts(text: str) -> list[str]:
    """A person's text escaped, in parts that each fit one section (and a message's `text`):
    as many messages as it takes, never cut."""
    return [escape(part) for part in split(text, SECTION_LIMIT, size=lambda t: len(escape(t)))]


def section(mrkdwn: str) -> dict[str, Any]:
    """One mrkdwn section block (text we built ourselves; escape customer parts before)."""
    if len(mrkdwn) > SECTION_LIMIT:
        mrkdwn = mrkdwn[: SECTION_LIMIT - 1] + "…"
    return {"type": "section", "text": {"type": "mrkdwn", "text": mrkdwn}}


def quote(text: str) -> str:
    """Customer text as a mrkdwn quote, escaped."""
    return "\n".join(f">{line}" for line in escape(text).splitlines()) or ">"


def quoted_parts(text: str, limit: int = SECTION_LIMIT) -> list[str]:
    """A person's text whole as escaped mrkdwn quotes, in parts of at most `limit` characters
    (cut at a line end where one is near): one post each, never cut short."""
    return [quote(part) for part in split(text, limit, size=lambda t: len(quote(t)))]


def button(action_id: str, label: str, value: str, *, style: str = "") -> dict[str, Any]:
    """One button; `style` is "primary", "danger" or empty."""
    element: dict[str, Any] = {"type": "button", "action_id": action_id, "value": value,
                               "text": {"type": "plain_text", "text": label}}
    if style:
        element["style"] = style
    return element


def actions(block_id: str, *elements: dict[str, Any]) -> dict[str, Any]:
    """An actions block holding the given buttons."""
    return {"type": "actions", "block_id": block_id, "elements": list(elements)}


def context(mrkdwn: str) -> dict[str, Any]:
    """A small grey line under a message (text we built ourselves)."""
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": mrkdwn}]}


CHOICES_BLOCK = "customer_choices"  # the block of a customer's buttons, removed once one is used


def buttons(choices: Sequence[Choice]) -> dict[str, Any]:
    """One button per choice (at most 25, Slack's limit for an actions block); action ids must
    differ within a block, so each is the choice's action and its place: `callback_book:2`."""
    return actions(CHOICES_BLOCK, *[button(f"{c.action}:{n}", c.label[:75], c.value)
                                    for n, c in enumerate(choices[:25], start=1)])


def choice_of(action_id: str) -> str:
    """The choice's action a button's action id stands for (`callback_book:2` → callback_book)."""
    return action_id.partition(":")[0]


def is_id(text: str) -> bool:
    """Whether a part of a button's value can be a database id (digits that fit an integer)."""
    return text.isdigit() and len(text) < 10
