"""What is stored about one person (an e-mail address or a Slack user id), and its erasure.

A person's data: the messages they sent or that were sent to them, the tickets they opened
(and every message, audit entry, callback and Slack call of those), the audit entries and
messages elsewhere that name them, and the customer address rows that are theirs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, func, or_, text
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.tables import (
    AuditEvent,
    CallbackBooking,
    Customer,
    CustomerEmail,
    Message,
    SeenSignature,
    SlackCall,
    Ticket,
)

ERASED_TEXT = "[erased]"


@dataclass(frozen=True)
class Person:
    """Whom a request is about: `key` as stored (addresses lower-case), and the channel."""

    key: str
    kind: str  # "email" or "slack"

    def pattern(self) -> re.Pattern[str]:
        """The person's key in a text, in any letter case, not as part of a longer address
        or id (`jo.anna@x.de` does not name `anna@x.de`)."""
        return re.compile(rf"(?<![\w.%+-]){re.escape(self.key)}(?![\w-])(?!\.\w)", re.IGNORECASE)


SLACK_USER = re.compile(r"^[UW][A-Z0-9]{2,20}$")
ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+$")


def person_of(value: str) -> Person | None:
    """The person an ADDRESS names: an e-mail address, or a Slack user id; None if neither."""
    value = value.strip()
    if SLACK_USER.match(value):
        return Person(value, "slack")
    if ADDRESS.match(value) and len(value) <= 320:
        return Person(value.lower(), "email")
    return None


def _own_messages(person: Person) -> ColumnElement[bool]:
    if person.kind == "slack":
        return (col(Message.channel) == "slack") & (col(Message.sender) == person.key)
    return or_(func.lower(col(Message.sender)) == person.key,
               (col(Message.direction) == "out")
               & (func.lower(col(Message.recipient)) == person.key))


async def opened_tickets(session: AsyncSession, person: Person) -> list[Ticket]:
    """Tickets the person opened: requested by their address, or opened by their message."""
    opened_by = select(Message.ticket_number).where(
        _own_messages(person), Message.direction == "in", Message.disposition == "ticket",
        col(Message.ticket_number).is_not(None))
    condition: ColumnElement[bool] = col(Ticket.number).in_(opened_by)
    if person.kind == "email":
        condition = or_(condition, func.lower(col(Ticket.requester)) == person.key)
    rows = await session.exec(select(Ticket).where(condition).order_by(col(Ticket.number)))
    return list(rows.all())


async def tickets_naming(session: AsyncSession, person: Person,
                         tickets: Sequence[int]) -> list[Ticket]:
    """Other people's tickets whose subject names the person (a mention, an address)."""
    rows = await session.exec(select(Ticket).where(
        func.lower(col(Ticket.subject)).like(f"%{person.key.lower()}%"),
        col(Ticket.number).not_in(list(tickets))))
    return list(rows.all())


def _mentions(session: AsyncSession, person: Person) -> ColumnElement[bool]:
    """A message whose text, subject, addresses, reason or raw bytes name the person."""
    like = f"%{person.key.lower()}%"
    columns = (Message.text, Message.subject, Message.sender, Message.recipient, Message.reason)
    texts = [func.lower(col(c)).like(like) for c in columns]
    if session.get_bind().dialect.name == "postgresql":
        # bytea has no lower(); its escape form keeps printable ASCII as it is
        raw = text("lower(encode(message.raw, 'escape')) LIKE :like").bindparams(like=like)
    else:
        raw = text("instr(lower(CAST(message.raw AS TEXT)), :needle) > 0").bindparams(
            needle=person.key.lower())
    return or_(*texts, raw)


async def messages_of(session: AsyncSession, person: Person,
                      tickets: Sequence[int]) -> list[Message]:
    """The person's messages, every message of their tickets, and messages naming them."""
    rows = await session.exec(
        select(Message).where(or_(_own_messages(person), col(Message.ticket_number).in_(tickets),
                                  _mentions(session, person)))
        .order_by(col(Message.id)))
    return list(rows.all())


async def audit_of(session: AsyncSession, person: Person,
                   tickets: Sequence[int]) -> list[AuditEvent]:
    """Audit entries of the person's tickets, and those naming them elsewhere."""
    like = f"%{person.key.lower()}%"
    rows = await session.exec(
        select(AuditEvent).where(or_(col(AuditEvent.ticket_number).in_(tickets),
                                     func.lower(col(AuditEvent.detail)).like(like),
                                     func.lower(col(AuditEvent.actor)).like(like)))
        .order_by(col(AuditEvent.id)))
    return list(rows.all())


async def callbacks_of(session: AsyncSession, tickets: Sequence[int]) -> list[CallbackBooking]:
    """Callbacks booked on the person's tickets."""
    rows = await session.exec(select(CallbackBooking).where(
        col(CallbackBooking.ticket_number).in_(tickets)).order_by(col(CallbackBooking.id)))
    return list(rows.all())


async def slack_calls_of(session: AsyncSession, person: Person,
                         tickets: Sequence[int]) -> list[SlackCall]:
    """Slack calls made on the person's tickets, and those naming them."""
    like = f"%{person.key.lower()}%"
    rows = await session.exec(select(SlackCall).where(or_(
        col(SlackCall.ticket_number).in_(tickets), func.lower(col(SlackCall.payload)).like(like)))
        .order_by(col(SlackCall.id)))
    return list(rows.all())


async def sender_rows(session: AsyncSession, person: Person) -> list[tuple[str, CustomerEmail]]:
    """The customer address rows that are the person's, with their customer's number."""
    if person.kind != "email":
        return []
    rows = await session.exec(
        select(Customer.number, CustomerEmail)
        .join(CustomerEmail, col(CustomerEmail.customer_id) == col(Customer.id))
        .where(CustomerEmail.kind == "address", CustomerEmail.value == person.key))
    return [(str(number), row) for number, row in rows.all()]


def scrub(value: str | None, person: Person, tombstone: str) -> str | None:
    """`value` with the person's key replaced by the tombstone."""
    return None if value is None else person.pattern().sub(tombstone, value)


def scrub_bytes(value: bytes, person: Person, tombstone: str) -> bytes:
    """Raw bytes with the person's key replaced by the tombstone (any letter case)."""
    pattern = re.compile(person.pattern().pattern.encode("utf-8"), re.IGNORECASE)
    return pattern.sub(tombstone.encode("ascii"), value)


async def forget_evidence(session: AsyncSession, keys: Sequence[str]) -> None:
    """Drop remembered evidence keys (hashes that include the person's address)."""
    if keys:
        await session.exec(
            delete(SeenSignature).where(col(SeenSignature.key).in_(list(keys))))


def erased_payload(payload: str, tombstone: str) -> str:
    """A Slack call's arguments with everything but the channel gone (the channel is how
    later clicks find the post)."""
    try:
        channel = json.loads(payload).get("channel")
    except (ValueError, AttributeError):
        channel = None
    return json.dumps({"channel": channel, "erased": tombstone})
