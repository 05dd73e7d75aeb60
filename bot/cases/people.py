"""The rights of the people who write to us: export what is stored about one person (GDPR
Art. 15/20), and erase it (Art. 17), keeping what billing must keep.

Erasure keeps each ticket's number, customer, plan, price, consent and its timestamps, with
the person replaced by a tombstone `erased-<n>` (n: the audit entry that records the erasure).
It removes their messages' text, subject and raw bytes, their address or user id wherever it
is named (other people's mail that copied or mentioned them, and those tickets' subjects, keep
everything else), the callbacks' phone numbers,
the Slack calls' contents on their tickets, and their customer address rows.
A person with a ticket still unfinished is refused, unless `close_open`: then those tickets are
closed first (reminders cancelled), in the same transaction.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.cases import deadlines
from bot.errors import UserError
from models import people as repo
from models.db import Database
from models.people import ERASED_TEXT, Person
from models.tables import AuditEvent, Message, Ticket
from models.tickets import audit

log = logging.getLogger(__name__)

FINISHED = ("closed", "declined")


class PersonRefused(UserError):
    """The request cannot be carried out as asked; the message says why and what to do."""


def person(value: str) -> Person:
    """The person ADDRESS names; PersonRefused when it is neither an address nor a Slack id."""
    found = repo.person_of(value)
    if found is None:
        raise PersonRefused(f"{value!r} is neither an e-mail address nor a Slack user id "
                            "(U... or W...)")
    return found


def _instant(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _message(m: Message) -> dict[str, Any]:
    return {"id": m.id, "ticket": m.ticket_number, "direction": m.direction,
            "channel": m.channel, "external_id": m.external_id, "thread_id": m.thread_id,
            "from": m.sender, "to": m.recipient, "subject": m.subject, "text": m.text,
            "disposition": m.disposition, "reason": m.reason, "flags": m.flags,
            "received_or_sent": _instant(m.created_at),
            "raw_base64": base64.b64encode(m.raw).decode("ascii") if m.raw else None}


def _ticket(t: Ticket) -> dict[str, Any]:
    dumped = t.model_dump(mode="json")
    return {key: dumped[key] for key in Ticket.model_fields}


async def export(db: Database, value: str, *, now: datetime) -> dict[str, Any]:
    """Everything stored about one person, as JSON-ready data."""
    who = person(value)
    async with db.reader() as session:
        tickets = await repo.opened_tickets(session, who)
        numbers = [t.number for t in tickets if t.number is not None]
        messages = await repo.messages_of(session, who, numbers)
        events = await repo.audit_of(session, who, numbers)
        callbacks = await repo.callbacks_of(session, numbers)
        calls = await repo.slack_calls_of(session, who, numbers)
        senders = await repo.sender_rows(session, who)
    return {
        "person": who.key, "kind": who.kind, "exported_at": now.isoformat(),
        "customer_addresses": [{"customer": number, "address": row.value}
                               for number, row in senders],
        "tickets": [_ticket(t) for t in tickets],
        # theirs, to them, or on their tickets in full; other people's messages that only
        # name them (a Cc, a quote) by id: their content is those people's data
        "messages": [_message(m) for m in messages if _about(m, who, numbers)],
        "named_in": [{"message": m.id, "ticket": m.ticket_number}
                     for m in messages if not _about(m, who, numbers)],
        "audit": [{"id": e.id, "ticket": e.ticket_number, "at": _instant(e.at),
                   "actor": e.actor, "action": e.action, "detail": e.detail} for e in events],
        "callbacks": [{"id": c.id, "ticket": c.ticket_number, "slot_start": _instant(c.slot_start),
                       "status": c.status, "phone": c.phone} for c in callbacks],
        "slack_calls": [{"id": c.id, "ticket": c.ticket_number, "method": c.method,
                         "payload": c.payload, "status": c.status} for c in calls],
    }


def _about(m: Message, who: Person, tickets: list[int]) -> bool:
    """Their own message, one to them, or one of their tickets' thread."""
    own = m.sender.lower() == who.key.lower()
    to_them = m.direction == "out" and m.recipient.lower() == who.key.lower()
    return own or to_them or m.ticket_number in tickets


@dataclass(frozen=True)
class Erased:
    """What an erasure did."""

    tombstone: str
    tickets: tuple[int, ...]
    closed: tuple[int, ...]
    messages: int
    audit: int
    callbacks: int
    slack_calls: int
    addresses: int


async def erase(db: Database, value: str, *, agent: str, now: datetime,
                close_open: bool = False) -> Erased:
    """Erase one person's personal data in one transaction; see the module's docstring."""
    who = person(value)
    async with db.session() as session:
        tickets = await repo.opened_tickets(session, who)
        numbers = [t.number for t in tickets if t.number is not None]
        unfinished = [t.number for t in tickets if t.status not in FINISHED]
        if unfinished and not close_open:
            raise PersonRefused(
                f"{who.key} has tickets still open ({_list(unfinished)}): answer and close them, "
                "or erase with --close-open to close them now; nothing was erased")
        messages = await repo.messages_of(session, who, numbers)
        pending = [m.id for m in messages if m.disposition == "pending"]
        if pending:
            raise PersonRefused(f"{len(pending)} message(s) of {who.key} are still being "
                                "processed: try again in a minute; nothing was erased")
        record = AuditEvent(ticket_number=None, at=now, actor=f"agent {agent}"[:64],
                            action="person_erased", detail="{}")
        session.add(record)
        await session.flush()
        tombstone = f"erased-{record.id}"
        closed = [n for n in unfinished if n is not None]
        for number in closed:
            await deadlines.close(session, number=number, now=now, actor="erasure")
        events = await repo.audit_of(session, who, numbers)
        result = Erased(
            tombstone=tombstone, tickets=tuple(numbers), closed=tuple(closed),
            messages=await _erase_messages(session, who, tombstone, messages, numbers),
            audit=_erase_audit(session, who, tombstone, [e for e in events if e.id != record.id]),
            callbacks=await _erase_callbacks(session, numbers),
            slack_calls=await _erase_calls(session, who, tombstone, numbers),
            addresses=await _erase_addresses(session, who),
        )
        for ticket in tickets:
            ticket.requester, ticket.subject = tombstone, ERASED_TEXT
            session.add(ticket)
            await audit(session, ticket_number=ticket.number, actor=f"agent {agent}"[:64],
                        action="personal_data_erased", now=now, person=tombstone)
        for other in await repo.tickets_naming(session, who, numbers):
            other.subject = repo.scrub(other.subject, who, tombstone) or ""
            session.add(other)
        record.detail = _summary(result)
        session.add(record)
    log.info("event=person_erased tombstone=%s tickets=%s closed=%s messages=%s audit=%s "
             "callbacks=%s slack_calls=%s addresses=%s", tombstone, _list(numbers) or "-",
             _list(closed) or "-", result.messages, result.audit, result.callbacks,
             result.slack_calls, result.addresses)
    return result


def _list(numbers: list[int | None] | list[int]) -> str:
    return ", ".join(f"NT#{n}" for n in numbers)


def _summary(result: Erased) -> str:
    import json

    return json.dumps({"person": result.tombstone, "tickets": list(result.tickets),
                       "closed": list(result.closed), "messages": result.messages,
                       "audit": result.audit, "callbacks": result.callbacks,
                       "slack_calls": result.slack_calls, "addresses": result.addresses},
                      sort_keys=True)


async def _erase_messages(session: AsyncSession, who: Person, tombstone: str,
                          messages: list[Message], tickets: list[int]) -> int:
    own_keys = []
    for m in messages:
        if _about(m, who, tickets):
            # their own message, one to them, or one of their ticket's thread: none of it stays
            if m.sender.lower() == who.key.lower():
                own_keys.append(_evidence_key(who, m))
            m.text = m.subject = ERASED_TEXT
            m.raw = None
            if m.disposition == "queued":  # never deliver to a tombstone
                m.disposition, m.reason = "failed", "erased"
        elif m.raw is not None:
            m.raw = repo.scrub_bytes(m.raw, who, tombstone)
        m.text = repo.scrub(m.text, who, tombstone) or ""
        m.subject = repo.scrub(m.subject, who, tombstone) or ""
        m.sender = repo.scrub(m.sender, who, tombstone) or ""
        m.recipient = repo.scrub(m.recipient, who, tombstone) or ""
        m.reason = repo.scrub(m.reason, who, tombstone)
        session.add(m)
    await repo.forget_evidence(session, own_keys)
    return len(messages)


def _evidence_key(who: Person, m: Message) -> str:
    # the key models/evidence.py remembers a verified sender's Message-ID by
    key = f"id:{who.key}:{m.external_id}"
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()


def _erase_audit(session: AsyncSession, who: Person, tombstone: str,
                 events: list[AuditEvent]) -> int:
    for event in events:
        event.actor = (repo.scrub(event.actor, who, tombstone) or "")[:64]
        event.detail = repo.scrub(event.detail, who, tombstone) or "{}"
        session.add(event)
    return len(events)


async def _erase_callbacks(session: AsyncSession, tickets: list[int]) -> int:
    bookings = await repo.callbacks_of(session, tickets)
    for booking in bookings:
        booking.phone = None
        session.add(booking)
    return len(bookings)


async def _erase_calls(session: AsyncSession, who: Person, tombstone: str,
                       tickets: list[int]) -> int:
    calls = await repo.slack_calls_of(session, who, tickets)
    for call in calls:
        if call.ticket_number in tickets:
            call.payload = repo.erased_payload(call.payload, tombstone)
            if call.status == "queued":
                call.status, call.reason = "failed", "erased"
        else:
            call.payload = repo.scrub(call.payload, who, tombstone) or "{}"
        call.reason = repo.scrub(call.reason, who, tombstone)
        session.add(call)
    return len(calls)


async def _erase_addresses(session: AsyncSession, who: Person) -> int:
    rows = await repo.sender_rows(session, who)
    for _, row in rows:
        await session.delete(row)
    return len(rows)
