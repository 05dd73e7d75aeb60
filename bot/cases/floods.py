"""Flood control (pure): when a new message must join an open ticket instead of opening one.

A sender who writes the same thing again within minutes (a customer's helpdesk acknowledging
without RFC 3834 headers, a script in a loop, an impatient user) is one ticket, and more new
tickets than the limits allow are added to the newest one: a flood must not use up a customer's
included incidents.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from difflib import SequenceMatcher

SIMILAR = 0.9  # SequenceMatcher ratio of two normalised texts that counts as "the same"
COMPARED_CHARS = 2000
CLOSED = ("closed", "declined")


@dataclass(frozen=True)
class FloodLimits:
    """The limits, from the settings."""

    window: timedelta = timedelta(hours=1)
    max_per_sender: int = 3
    max_per_customer: int = 20
    duplicate_window: timedelta = timedelta(minutes=10)
    mirror_joined: int = 5  # joined messages shown to the agents per ticket and window


@dataclass(frozen=True)
class Opened:
    """A ticket opened lately by the sender or the customer."""

    number: int
    status: str
    opened_at: datetime
    subject: str = ""
    text: str = ""


@dataclass(frozen=True)
class Join:
    """Add the message to ticket `number` instead of opening a new one, for `reason`."""

    number: int
    reason: str


def normalise(text: str) -> str:
    """Lower case, digits and white space folded: ticket numbers and dates do not differ."""
    return re.sub(r"\s+", " ", re.sub(r"\d+", "0", text.lower())).strip()[:COMPARED_CHARS]


def near_duplicate(subject: str, text: str, other_subject: str, other_text: str) -> bool:
    """True when two messages say the same thing (same subject and nearly the same text)."""
    if normalise(subject) != normalise(other_subject):
        return False
    a, b = normalise(text), normalise(other_text)
    if a == b:
        return True
    return SequenceMatcher(None, a, b, autojunk=False).ratio() >= SIMILAR


def _newest_open(opened: Sequence[Opened]) -> Opened:
    return next((t for t in opened if t.status not in CLOSED), opened[0])


def decide(limits: FloodLimits, *, subject: str, text: str, now: datetime,
           by_sender: Sequence[Opened], by_customer: Sequence[Opened]) -> Join | None:
    """Where a new message goes: None opens a ticket; a Join adds it to an existing one.

    `by_sender` and `by_customer` are the tickets opened within `limits.window`, newest first.
    """
    for ticket in by_sender:
        # a ticket stored while this message waited can be a little younger than `now`
        recent = (limits.duplicate_window > timedelta(0)
                  and abs(now - ticket.opened_at) <= limits.duplicate_window)
        if recent and near_duplicate(subject, text, ticket.subject, ticket.text):
            return Join(ticket.number, f"near-duplicate of the mail that opened NT#{ticket.number}")
    minutes = int(limits.window.total_seconds() // 60)
    if len(by_sender) >= limits.max_per_sender:
        target = _newest_open(by_sender)
        return Join(target.number, f"rate limit: {len(by_sender)} new tickets from this sender "
                                   f"in {minutes} min")
    if len(by_customer) >= limits.max_per_customer:
        target = _newest_open(by_customer)
        return Join(target.number, f"rate limit: {len(by_customer)} new tickets from this "
                                   f"customer in {minutes} min")
    return None
