"""Slack repository: event ids taken once, and the durable outbox of Web API calls."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.commit_hooks import CommitHooks, Hook
from models.tables import SlackCall, SlackEvent

QUOTE = "quote:"  # key prefix of the posts that ask a customer to confirm a price

_queued_hooks = CommitHooks("slack_call_queued")


def on_queued(hook: Hook) -> Callable[[], None]:
    """Run `hook` after every commit that queued a Web API call (the outbox delivers at once
    instead of on its timer); returns the unsubscriber. Process-wide, as the reminders' hooks:
    the sessions that queue calls (events, clicks, reminders) do not know the outbox."""
    return _queued_hooks.subscribe(hook)


def _insert(session: AsyncSession) -> Any:
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


async def take_event(session: AsyncSession, *, event_id: str, now: datetime) -> bool:
    """Record a Slack event id; False when it was taken before (a retry, or another replica)."""
    statement = (
        _insert(session)(SlackEvent).values(event_id=event_id, received_at=now)
        .on_conflict_do_nothing().returning(col(SlackEvent.event_id))
    )
    return (await session.exec(statement)).first() is not None


async def link_event(session: AsyncSession, *, event_id: str, message_id: int) -> None:
    """Note which stored message an event carried."""
    row = await session.get(SlackEvent, event_id)
    if row is not None:
        row.message_id = message_id
        session.add(row)


def conversation_of(method: str, args: dict[str, Any]) -> str:
    """The conversation a call belongs to (calls of one are made in order): a channel's top
    level, one thread, or the updates of one message."""
    channel = str(args.get("channel") or "")
    if method == "chat.postMessage":
        thread = args.get("thread_ts") or args.get(THREAD_OF) or ""
        return f"{channel}/{thread}"[:200]
    if method == "chat.update":
        return f"{channel}@{args.get('ts') or args.get(TS_OF) or ''}"[:200]
    return f"{method}:{channel}"[:200]


async def queue_call(session: AsyncSession, *, key: str, method: str, args: dict[str, Any],
                     now: datetime, ticket_number: int | None = None) -> bool:
    """Queue a Web API call once per key; False when that key was queued before."""
    statement = (
        _insert(session)(SlackCall)
        .values(key=key, method=method, payload=json.dumps(args, ensure_ascii=False),
                ticket_number=ticket_number, status="queued", attempts=0,
                next_attempt_at=now, created_at=now,
                conversation=conversation_of(method, args))
        .on_conflict_do_nothing().returning(col(SlackCall.id))
    )
    queued = (await session.exec(statement)).first() is not None
    if queued:
        _queued_hooks.note(session)
    return queued


async def due_calls(session: AsyncSession, *, now: datetime, limit: int = 100) -> list[SlackCall]:
    """Queued calls whose (next) attempt is due, oldest first."""
    rows = await session.exec(
        select(SlackCall)
        .where(SlackCall.status == "queued",
               or_(col(SlackCall.next_attempt_at).is_(None),
                   col(SlackCall.next_attempt_at) <= now))
        .order_by(col(SlackCall.id)).limit(limit)
    )
    return list(rows.all())


async def head_calls(session: AsyncSession, *, limit: int = 1000) -> list[SlackCall]:
    """The oldest queued call of each conversation (due or not), oldest first; calls without a
    conversation (queued before it was recorded) each count as their own."""
    heads = (select(func.min(SlackCall.id))
             .where(SlackCall.status == "queued", col(SlackCall.conversation).is_not(None))
             .group_by(col(SlackCall.conversation)))
    rows = await session.exec(
        select(SlackCall)
        .where(SlackCall.status == "queued",
               or_(col(SlackCall.conversation).is_(None), col(SlackCall.id).in_(heads)))
        .order_by(col(SlackCall.id)).limit(limit))
    return list(rows.all())


async def ticket_of_post(session: AsyncSession, ts: str) -> int | None:
    """The ticket whose triage post has this ts (the post must have been made)."""
    rows = await session.exec(
        select(SlackCall.ticket_number)
        .where(col(SlackCall.key).startswith("triage:NT#"), SlackCall.result_ts == ts))
    return rows.first()


async def triage_post_ts(session: AsyncSession, ticket_number: int) -> str | None:
    """The ts of a ticket's triage post, once it was made."""
    row = await session.exec(
        select(SlackCall.result_ts).where(SlackCall.key == f"triage:NT#{ticket_number}"))
    return row.first()


THREAD_OF = "_thread_of"  # in a call's args: post under the post that call makes, once it is out
TS_OF = "_ts_of"  # in a call's args: act on the message that call makes (chat.update), once out


async def in_triage_thread(session: AsyncSession, ticket_number: int,
                           args: dict[str, Any]) -> dict[str, Any]:
    """`args` for a line in the ticket's triage thread: under its post now if the post is out,
    else once the outbox has made it (top level if it never can be)."""
    thread = await triage_post_ts(session, ticket_number)
    if thread:
        return {**args, "thread_ts": thread}
    return {**args, THREAD_OF: f"triage:NT#{ticket_number}"}


async def on_triage_post(session: AsyncSession, ticket_number: int,
                         args: dict[str, Any]) -> dict[str, Any] | None:
    """`args` for a chat.update of the ticket's triage post: now if the post is out, else once
    the outbox has made it; None when the ticket has no triage post."""
    post = await call_by_key(session, f"triage:NT#{ticket_number}")
    if post is None or post.status == "failed":
        return None
    channel = json.loads(post.payload).get("channel")
    if post.result_ts:
        return {**args, "channel": channel, "ts": post.result_ts}
    return {**args, "channel": channel, TS_OF: f"triage:NT#{ticket_number}"}


async def call_by_key(session: AsyncSession, key: str) -> SlackCall | None:
    """The call queued under `key`, if any."""
    return (await session.exec(select(SlackCall).where(SlackCall.key == key))).first()


async def newest_post(session: AsyncSession, *, ticket_number: int,
                      prefix: str) -> SlackCall | None:
    """A ticket's newest chat.postMessage whose key starts with `prefix` (made or not)."""
    rows = await session.exec(
        select(SlackCall)
        .where(SlackCall.ticket_number == ticket_number, SlackCall.method == "chat.postMessage",
               col(SlackCall.key).startswith(prefix))
        .order_by(col(SlackCall.id).desc()).limit(1))
    return rows.first()


async def queue_triage_note(session: AsyncSession, *, ticket_number: int, key: str, text: str,
                            now: datetime) -> bool:
    """Queue a line for the agents in the ticket's triage thread (once its post is out); False
    when the ticket has no triage post."""
    post = await call_by_key(session, f"triage:NT#{ticket_number}")
    if post is None or post.status == "failed":
        return False
    args = await in_triage_thread(session, ticket_number,
                                  {"channel": json.loads(post.payload)["channel"], "text": text})
    return await queue_call(session, key=key, method="chat.postMessage", args=args, now=now,
                            ticket_number=ticket_number)


async def post_of_ticket(session: AsyncSession, *, ticket_number: int, channel: str,
                         ts: str) -> SlackCall | None:
    """Our message `ts` in `channel` as it stands (its newest post or update), if we posted it
    on this ticket."""
    rows = await session.exec(
        select(SlackCall).where(SlackCall.ticket_number == ticket_number,
                                SlackCall.result_ts == ts, SlackCall.status == "sent")
        .order_by(col(SlackCall.id).desc()))
    return next((call for call in rows.all()
                 if json.loads(call.payload).get("channel") == channel), None)


async def lock_call(session: AsyncSession, call_id: int) -> SlackCall | None:
    """A call, locked until the transaction ends."""
    rows = await session.exec(select(SlackCall).where(SlackCall.id == call_id).with_for_update())
    return rows.first()


async def list_calls(session: AsyncSession, *, ticket_number: int | None = None) -> list[SlackCall]:
    """Calls oldest first, of one ticket or all."""
    query = select(SlackCall).order_by(col(SlackCall.id))
    if ticket_number is not None:
        query = query.where(SlackCall.ticket_number == ticket_number)
    return list((await session.exec(query)).all())
