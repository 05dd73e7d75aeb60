"""Web chat visitors and their stored messages, for the conversation tests: stored by the
socket's own `store_in_item` (a `webchat_item` and its pipeline `message` row in one
transaction), then handed to the service's web worker as the socket's `on_stored` does."""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
import time
from datetime import datetime

from sqlmodel import col, select

from models.db import Database
from models.tables import Customer, Message, WebItem, WebVisitor
from models.webchat import store_in_item
from tests.integration.conftest import Running, Slack
from tests.integration.test_slack_answers import post_ts, reply_in_thread

ANNA = "anna@logistik-nord.de"  # Logistik Nord AG, D-1003: plan standard
LOGISTIK_NORD = "D-1003"


async def visitor(db: Database, *, now: datetime, email: str = ANNA, verified: bool = True,
                  customer: str | None = LOGISTIK_NORD, name: str = "Anna Adler",
                  language: str = "de") -> WebVisitor:
    """A visitor as the socket leaves it: verified by a portal identity, or with an address
    given and no code typed (`verified=False`)."""
    async with db.session() as session:
        customer_id = None
        if customer is not None:
            found = (await session.exec(select(Customer).where(Customer.number == customer))
                     ).one()
            customer_id = found.id if verified else None
        row = WebVisitor(token_hash=hashlib.sha256(secrets.token_bytes(32)).hexdigest(),
                         language=language, name=name if verified else "", email=email,
                         customer_id=customer_id, verified_by="identity" if verified else "",
                         verified_at=now if verified else None, created_at=now,
                         last_seen_at=now)
        session.add(row)
        await session.flush()
        await session.refresh(row)
    return row


async def store(db: Database, who: WebVisitor, text: str = "", *, client_id: str, now: datetime,
                kind: str = "text", action: str = "", value: str = "") -> int:
    """Store one `message` or `choice` frame as the socket does; the pipeline message's id."""
    assert who.id is not None
    frame = ({"type": "message", "client_id": client_id, "text": text} if kind == "text" else
             {"type": "choice", "client_id": client_id, "action": action, "value": value})
    async with db.session() as session:
        item, new = await store_in_item(session, visitor=who, client_id=client_id, kind=kind,
                                        text=text, action=action, value=value,
                                        raw=json.dumps(frame).encode(), now=now)
    assert new and item.message_id is not None
    message_id = item.message_id
    return message_id


async def send(running: Running, who: WebVisitor, text: str = "", *, client_id: str,
               kind: str = "text", action: str = "", value: str = "") -> Message:
    """Store a frame, hand it to the web worker (the socket's `on_stored`), and wait until it
    is processed; its pipeline row."""
    message_id = await store(running.db, who, text, client_id=client_id, now=running.clock(),
                             kind=kind, action=action, value=value)
    worker = running.service.web_worker
    assert worker is not None
    worker.submit(message_id)
    return await processed(running, message_id)


async def processed(running: Running, message_id: int, timeout: float = 15) -> Message:
    """The message once it is no longer pending."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        async with running.db.reader() as session:
            row = await session.get(Message, message_id)
        if row is not None and row.disposition != "pending":
            return row
        await asyncio.sleep(0.02)
    raise AssertionError(f"web message {message_id} was still pending after {timeout} s")


async def out_items(db: Database, who: WebVisitor) -> list[WebItem]:
    """The visitor's `out` items, oldest first."""
    async with db.reader() as session:
        rows = await session.exec(select(WebItem).where(
            WebItem.visitor_id == who.id, WebItem.direction == "out").order_by(col(WebItem.id)))
        return list(rows.all())


async def items_coming(db: Database, who: WebVisitor, count: int,
                       timeout: float = 10) -> list[WebItem]:
    """The visitor's `out` items once there are `count` of them."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = await out_items(db, who)
        if len(found) >= count:
            return found
        await asyncio.sleep(0.02)
    raise AssertionError(f"fewer than {count} out items for visitor {who.id}")


def choices(item: WebItem) -> list[dict[str, str]]:
    """An out item's choices as the widget gets them."""
    return list(json.loads(item.choices)) if item.choices else []


async def answered_visitor(running: Running, text: str, *, email: str = ANNA,
                           verified: bool = True, customer: str | None = LOGISTIK_NORD,
                           language: str = "de") -> tuple[WebVisitor, WebItem]:
    """A new visitor (as `visitor` makes it) whose first message is `text`; the visitor and
    the one answer the chat gave it."""
    person = await visitor(running.db, now=running.clock(), email=email, verified=verified,
                           customer=customer, language=language)
    await send(running, person, text, client_id="c1")
    [answer] = await out_items(running.db, person)
    return person, answer


async def choose(running: Running, who: WebVisitor, choice: dict[str, str], *,
                 client_id: str) -> Message:
    """The visitor presses the button `choice` (one of an out item's `choices`)."""
    return await send(running, who, client_id=client_id, kind="choice",
                      action=choice["action"], value=choice["value"])


async def agent_answered(slack: Slack, text: str, answer: str) -> tuple[WebVisitor, Message, str]:
    """A verified visitor writes `text`, and an agent writes `answer` in its ticket's triage
    thread; the visitor, its message's pipeline row, and the thread's ts."""
    running = slack.running
    who = await visitor(running.db, now=running.clock())
    row = await send(running, who, text, client_id="c1")
    thread = await post_ts(slack, row.ticket_number)
    await reply_in_thread(slack, thread, answer)
    return who, row, thread


async def book_first_slot(running: Running, who: WebVisitor,
                          answer: WebItem) -> tuple[dict[str, str], WebItem]:
    """The visitor presses the first callback slot `answer` offers (as its message c2); that
    slot's choice and the confirmation the chat answered with."""
    first = choices(answer)[0]
    await choose(running, who, first, client_id="c2")
    _, booked = await out_items(running.db, who)
    return first, booked
