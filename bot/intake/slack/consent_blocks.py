"""The price quote's Confirm / Decline buttons in the customer's Slack thread, and the quote as it
reads once answered (pure). A button's value is "<ticket number>:<price in cents>"."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot.cases.replies import render, words
from bot.domain import Language
from bot.intake.slack.blocks import actions, button, context, escape, is_id, section

CONFIRM, DECLINE = "consent_confirm", "consent_decline"


def quote_value(number: int, price_cents: int) -> str:
    """What both buttons carry: the ticket and the price they answer."""
    return f"{number}:{price_cents}"


def parse_value(value: str) -> tuple[int, int] | None:
    """(ticket number, price in cents) from a button's value, or None when it is not one."""
    number, _, cents = value.partition(":")
    return (int(number), int(cents)) if is_id(number) and is_id(cents) else None


def quote_blocks(text: str, *, number: int, price_cents: int,
                 language: Language) -> list[dict[str, Any]]:
    """The quote (already escaped mrkdwn) with its two buttons, labelled in `language`."""
    labels = words("consent_buttons", language)
    value = quote_value(number, price_cents)
    return [section(text),
            actions(f"consent:{number}",
                    button(CONFIRM, labels["confirm"], value, style="primary"),
                    button(DECLINE, labels["decline"], value, style="danger"))]


def answered_blocks(text: str, *, consent: bool, user: str, at: datetime, zone: ZoneInfo,
                    language: Language) -> list[dict[str, Any]]:
    """The quote without buttons, with who answered it and when (local time)."""
    local = at.astimezone(zone)
    line = render("consent_clicked", language, consent=consent, user=escape(user),
                  clock=f"{local:%H:%M}", zone=local.tzname()).strip()
    return [section(text), context(line)]
