"""The web chat's conversation side: our `out` items, the visitor's ticket, unseen agent answers.

The socket's queries (visitors, `in` items, history) are models/webchat.py's; these are the ones
the conversation use case, the reminders and the mail-when-away job need.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.domain import Choice
from models.commit_hooks import CommitHooks
from models.tables import Message, WebItem, WebVisitor

OUT, IN = "out", "in"
AGENT = "agent:"  # the key prefix of an agent's answer: the mail-when-away job mails these
_added = CommitHooks("webchat-out")


def on_out_item(hook: Callable[[], None]) -> Callable[[], None]:
    """Run `hook` after each commit that added an `out` item (the push loop's wake-up)."""
    return _added.subscribe(hook)


def requester(visitor_id: int) -> str:
    """A web ticket's requester and a web message's recipient: `web:<visitor id>`."""
    return f"web:{visitor_id}"


def visitor_of(requester_: str) -> int | None:
    """The visitor id in a web requester, or None when it names none."""
    prefix, _, rest = requester_.partition(":")
    return int(rest) if prefix == "web" and rest.isdigit() else None


def _insert(session: AsyncSession) -> Any:
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


async def add_out_item(session: AsyncSession, *, visitor_id: int, key: str, text: str,
                       now: datetime, ticket_number: int | None = None, kind: str = "text",
                       choices: Sequence[Choice] = (), author: str = "") -> bool:
    """Add an `out` item once per key, in the caller's transaction; False if the key exists.
    `author`: the agent who wrote it; "" for our automatic answers and notes."""
    shown = json.dumps([{"action": c.action, "value": c.value, "label": c.label}
                        for c in choices], ensure_ascii=False) if choices else ""
    statement = (
        _insert(session)(WebItem)
        .values(visitor_id=visitor_id, direction=OUT, kind=kind, key=key[:200],
                ticket_number=ticket_number, text=text, choices=shown, action="", value="",
                author=author[:200], created_at=now)
        .on_conflict_do_nothing().returning(col(WebItem.id))
    )
    added = (await session.exec(statement)).first() is not None
    if added:
        _added.note(session)
    return added


async def item_of_message(session: AsyncSession,
                          message_id: int) -> tuple[WebItem, WebVisitor] | None:
    """The `in` item a pipeline message was stored with, and its visitor."""
    row = (await session.exec(
        select(WebItem, WebVisitor)
        .join(WebVisitor, col(WebVisitor.id) == col(WebItem.visitor_id))
        .where(WebItem.message_id == message_id, WebItem.direction == IN)
    )).first()
    return None if row is None else (row[0], row[1])


async def last_ticket_message(session: AsyncSession, *, visitor_id: int,
                              besides: int) -> str | None:
    """The external id of the visitor's newest other message (not `besides`) that belongs to
    a ticket: a follow-up names it, as a Slack reply names its thread."""
    row = (await session.exec(
        select(Message.external_id)
        .join(WebItem, col(WebItem.message_id) == col(Message.id))
        .where(WebItem.visitor_id == visitor_id, WebItem.direction == IN,
               col(Message.ticket_number).is_not(None), col(Message.id) != besides)
        .order_by(col(Message.id).desc()).limit(1)
    )).first()
    return None if row is None else str(row)


async def unseen_agent_answers(session: AsyncSession, *, older_than: datetime,
                               limit: int = 100) -> list[tuple[WebItem, WebVisitor]]:
    """Agents' answers not seen nor mailed, written before `older_than`, whose visitor is
    verified and has an address; locked (skipping those another replica holds)."""
    rows = await session.exec(
        select(WebItem, WebVisitor)
        .join(WebVisitor, col(WebVisitor.id) == col(WebItem.visitor_id))
        .where(WebItem.direction == OUT, WebItem.kind == "text",
               col(WebItem.key).startswith(AGENT), col(WebItem.seen_at).is_(None),
               col(WebItem.mailed_at).is_(None), col(WebItem.created_at) <= older_than,
               WebVisitor.verified_by != "", WebVisitor.email != "")
        .order_by(col(WebItem.id)).limit(limit)
        .with_for_update(of=WebItem, skip_locked=True)
    )
    return [(item, visitor) for item, visitor in rows.all()]


async def offered_to(session: AsyncSession, *, visitor_id: int, ticket_number: int,
                     action: str, value: str) -> bool:
    """Whether one of our `out` items on the ticket showed this visitor that choice: a click on
    anything else (another visitor's ticket, an invented value) is not ours."""
    rows = await session.exec(
        select(WebItem.choices).where(WebItem.visitor_id == visitor_id, WebItem.direction == OUT,
                                      WebItem.ticket_number == ticket_number,
                                      WebItem.choices != ""))
    return any(c.get("action") == action and c.get("value") == value
               for shown in rows.all() for c in json.loads(shown))


async def label_shown(session: AsyncSession, *, visitor_id: int, action: str, value: str) -> str:
    """The label of the newest button with this action and value we showed the visitor, or ""
    when we showed none: a click is stored with the words the visitor clicked, never with words
    the frame brings (anyone can write a frame)."""
    rows = await session.exec(
        select(WebItem.choices).where(WebItem.visitor_id == visitor_id, WebItem.direction == OUT,
                                      WebItem.choices != "")
        .order_by(col(WebItem.id).desc()).limit(200))
    for shown in rows.all():
        for choice in json.loads(shown):
            if choice.get("action") == action and choice.get("value") == value:
                return str(choice.get("label", ""))
    return ""


async def newest_choice(session: AsyncSession, *, visitor_id: int, action: str,
                        number: int) -> str | None:
    """The value of the `number`-th (from 1) button with this action on the newest `out` item
    that showed the visitor buttons at all, or None: a typed "2" answers only the buttons the
    visitor sees last, never an older offer."""
    rows = await session.exec(
        select(WebItem.choices).where(WebItem.visitor_id == visitor_id, WebItem.direction == OUT,
                                      WebItem.choices != "")
        .order_by(col(WebItem.id).desc()).limit(1))
    shown = rows.first()
    values = [str(c.get("value", "")) for c in json.loads(shown or "[]")
              if c.get("action") == action]
    return values[number - 1] if 1 <= number <= len(values) else None
