"""Slack messages in: stored before Slack gets its 200, deduped, then processed by a worker
through the same conversation use case as mail; answers go into the message's thread."""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.cases.conversation import Conversation
from bot.classify import Classifier
from bot.classify.language import LanguageDetector
from bot.domain import Channel, Choice, IncomingMessage, Language, Triage
from bot.intake.slack.blocks import buttons, message_parts, section
from bot.intake.slack.consent_blocks import quote_blocks
from bot.intake.slack.directory import SlackDirectory, SlackUser
from bot.intake.slack.events import (
    MalformedEvent,
    SlackMessage,
    event_text,
    load_envelope,
    message_event,
    message_key,
    parse_message,
)
from bot.intake.slack.text import mentioned_users
from bot.intake.slack.triage_thread import TriageThread
from models.customers import CustomerView, find_by_email, find_by_slack, slack_team_owner
from models.db import Database
from models.messages import lock_message, record_failure, store_inbound
from models.slack import QUOTE, link_event, queue_call, take_event
from models.tables import Message, Ticket
from models.tickets import audit

log = logging.getLogger(__name__)

MENTIONS_LOOKED_UP = 20  # users.info calls one message may cause; further mentions show the id


class Stored(enum.Enum):
    """What storing an event did."""

    NEW = "new"  # a message, stored now: process it
    DUPLICATE = "duplicate"  # the event id, or the message under another event id, was stored
    NOT_A_MESSAGE = "not-a-message"  # another event type: its id is recorded, nothing to process


async def store_event(session: AsyncSession, envelope: dict[str, Any], raw: bytes,
                      now: datetime) -> tuple[Stored, int | None]:
    """Record the event id and store the message it carries; MalformedEvent when unreadable."""
    event_id = envelope.get("event_id")
    if not isinstance(event_id, str) or not event_id:
        raise MalformedEvent("event_callback without an event_id")
    event = message_event(envelope)
    if event is not None and not (event.get("channel") and event.get("ts")):
        raise MalformedEvent("a message event without channel or ts")
    if not await take_event(session, event_id=event_id, now=now):
        return Stored.DUPLICATE, None
    if event is None:
        return Stored.NOT_A_MESSAGE, None
    stored = await store_inbound(
        session, channel=Channel.SLACK.value,
        external_id=message_key(str(event["channel"]), str(event["ts"])),
        digest="",  # one Slack message is one channel:ts, whatever envelope (event id) it came in
        raw=raw,
        sender=str(event.get("user") or event.get("bot_id") or ""),
        recipient=str(event["channel"]), now=now,
    )
    if stored is None:
        return Stored.DUPLICATE, None
    await link_event(session, event_id=event_id, message_id=stored)
    return Stored.NEW, stored


@dataclass
class BotIdentity:
    """Who we are in Slack (from auth.test), so our own messages are never taken as a customer's."""

    user_id: str | None = None
    bot_id: str | None = None


@dataclass(frozen=True)
class SlackUnderstanding:
    """What the CPU-bound part learned about one Slack message."""

    message: SlackMessage
    language: Language
    triage: Triage | None


class SlackReply:
    """The Slack channel's ReplyChannel: an answer in the message's thread, via the outbox."""

    def __init__(self, *, channel: str, thread_ts: str, key: str) -> None:
        self.channel = channel
        self.thread_ts = thread_ts
        self.key = key

    async def queue_answer(self, session: AsyncSession, ticket: Ticket, body: str, *,
                           now: datetime, essential: bool = False,
                           asks_consent: bool = False, choices: Sequence[Choice] = ()) -> bool:
        """Queue chat.postMessage into the thread, in the caller's transaction (no cap: the
        thread is the customer's own channel, and a flood is held by the flood rules), with a
        button per choice.

        A quote that asks for consent carries Confirm / Decline buttons; its call's key starts
        with QUOTE, so that a click can be checked against the ticket's newest quote. A text
        longer than a section goes out whole, as several messages in order; the last one has
        the call's key and the buttons."""
        assert ticket.number is not None
        *before, text = message_parts(body)
        for n, part in enumerate(before, start=1):
            await queue_call(
                session, key=f"part{n}:{self.key}"[:200], method="chat.postMessage",
                ticket_number=ticket.number, now=now,
                args={"channel": self.channel, "thread_ts": self.thread_ts, "text": part,
                      "blocks": [section(part)]})
        key, blocks = self.key, [section(text)]
        if asks_consent:
            key = f"{QUOTE}{self.key}"[:200]
            blocks = quote_blocks(text, number=ticket.number, price_cents=ticket.price_cents,
                                  language=Language(ticket.language))
        if choices:
            blocks = [*blocks, buttons(choices)]
        queued = await queue_call(
            session, key=key, method="chat.postMessage", ticket_number=ticket.number,
            now=now, args={"channel": self.channel, "thread_ts": self.thread_ts, "text": text,
                           "blocks": blocks})
        if queued:
            await audit(session, ticket_number=ticket.number, actor="slack",
                        action="auto_reply_queued", now=now, call=key)
        return True


class SlackIntake:
    """Processes stored Slack messages through the conversation use case; safe to repeat."""

    def __init__(self, *, db: Database, identity: BotIdentity, conversation: Conversation,
                 classifier: Classifier, detector: LanguageDetector,
                 agents: frozenset[str] = frozenset(), max_attempts: int = 5,
                 thread: TriageThread | None = None,
                 directory: SlackDirectory | None = None) -> None:
        self.db = db
        self.identity = identity
        self.directory = directory
        self.conversation = conversation
        self.classifier = classifier
        self.detector = detector
        self.agents = agents
        self.max_attempts = max_attempts
        self.thread = thread

    def understand(self, raw: bytes,
                   names: Mapping[str, str] | None = None) -> SlackUnderstanding:
        """Parse a stored envelope, detect the language, classify (CPU only, no I/O);
        `names` shows the users the text mentions."""
        message = parse_message(load_envelope(raw), own_user_id=self.identity.user_id,
                                own_bot_id=self.identity.bot_id, names=names)
        in_triage = self.thread is not None and self.thread.is_ours(message)
        if message.ignore_reason is None and message.user in self.agents and not in_triage:
            message = replace(message, ignore_reason="agent message")
        text = message.text.strip()
        triage = None
        if message.may_open_ticket:
            triage = self.classifier.classify(topic(text), text[:4000])
        return SlackUnderstanding(message=message, language=self.detector.detect(text),
                                  triage=triage)

    async def process(self, message_id: int, now: datetime) -> str | None:
        """Process one pending Slack message; returns its disposition (None if it is gone)."""
        async with self.db.reader() as session:
            row = await session.get(Message, message_id)
            if row is None or row.disposition != "pending" or row.raw is None:
                return None if row is None else row.disposition
            raw = row.raw
        names = await self._names(raw, now)  # I/O, before the CPU part
        understood = await asyncio.to_thread(self.understand, raw, names)
        author = await self._author(understood.message, now)  # before the transaction: I/O
        async with self.db.session() as session:
            locked = await lock_message(session, message_id)
            if locked is None or locked.disposition != "pending":
                return None if locked is None else locked.disposition
            await self._apply(session, locked, understood, author, now)
            session.add(locked)
            disposition, reason, ticket = locked.disposition, locked.reason, locked.ticket_number
        log.info("event=slack_processed message=%s disposition=%s ticket=%s reason=%s",
                 message_id, disposition, ticket or "-", reason or "-")
        return disposition

    async def _names(self, raw: bytes, now: datetime) -> dict[str, str]:
        """The names of the users a message mentions, as far as users.info tells (cached);
        without a bot token, or when Slack cannot be asked, a mention shows the user id: the
        message is not held back for a name."""
        if self.directory is None or b"<@" not in raw:
            return {}
        try:
            ids = mentioned_users(event_text(load_envelope(raw)))
        except MalformedEvent:
            return {}  # understand() says what is wrong with it
        names: dict[str, str] = {}
        for user_id in ids[:MENTIONS_LOOKED_UP]:
            try:
                user = await self.directory.user(user_id, now)
            except Exception as exc:  # 5xx, ratelimited, network: the id will do
                log.warning("event=slack_mention_unresolved user=%s error=%s", user_id, exc)
                continue
            if user is not None and user.name:
                names[user_id] = user.name
        return names

    async def _author(self, message: SlackMessage, now: datetime) -> SlackUser | None:
        """A direct message's author as Slack knows them; raises when Slack cannot be asked,
        so that the message stays pending and is retried. None for channel messages, and
        without a bot token (no one can be looked up: the author is asked for the number)."""
        if self.directory is None or not message.is_direct or message.ignore_reason is not None:
            return None
        return await self.directory.user(message.user, now)

    async def _apply(self, session: AsyncSession, row: Message, u: SlackUnderstanding,
                     author: SlackUser | None, now: datetime) -> None:
        message = u.message
        files = "".join(f"\n[file] {f.name} {f.link}" for f in message.files)
        root = message_key(message.channel, message.thread_ts or message.ts)
        row.text = message.text + files
        row.subject = topic(message.text)
        row.sender = message.user or row.sender
        row.thread_id = root
        row.done_at = now
        if self.thread is not None and self.thread.is_ours(message):
            await self.thread.apply(session, row, message, now)
            return
        if message.ignore_reason is not None:
            row.disposition, row.reason = "ignored", message.ignore_reason
            return
        if message.is_direct:
            customer, trusted, reason = await direct_identity(session, author)
        else:
            customer, trusted, reason = await channel_identity(session, message)
        incoming = IncomingMessage(
            channel=Channel.SLACK, external_id=message.external_id,
            thread_refs=(root,) if message.is_reply else (), ticket_hint=None,
            sender=message.user, sender_name="", subject=row.subject, topic=row.subject,
            text=row.text, requester=root, may_open_ticket=message.may_open_ticket,
            may_answer=True, trusted=trusted, trust_reason=reason,
        )
        reply = SlackReply(channel=message.channel, thread_ts=message.thread_ts or message.ts,
                           key=f"answer:{message.external_id}")
        await self.conversation.handle(session, row, incoming, customer=customer,
                                       language=u.language, triage=u.triage, reply=reply,
                                       now=now)

    async def fail(self, message_id: int, error: str, now: datetime) -> None:
        """Record a failed attempt; retry later with backoff, or give up after the last one."""
        async with self.db.session() as session:
            attempts = await record_failure(session, message_id=message_id, error=error,
                                            now=now, max_attempts=self.max_attempts)
        if attempts is not None:
            log.error("event=slack_failed message=%s attempts=%s", message_id, attempts)


async def channel_identity(session: AsyncSession, message: SlackMessage
                           ) -> tuple[CustomerView | None, bool, str]:
    """The customer of a channel, whether the author is that customer, and why (or why not)."""
    match = await find_by_slack(session, message.channel, message.team)
    if match.customer is None:
        return None, False, ""
    if match.trusted:
        return match.customer, True, f"a user of the customer's Slack team {message.team}"
    return match.customer, False, (f"author's team {message.team or '(none)'} is not the "
                                   "customer's team mapped for the channel")


async def direct_identity(session: AsyncSession, author: SlackUser | None
                          ) -> tuple[CustomerView | None, bool, str]:
    """The customer whose address is a direct message author's profile email; trusted only
    with a confirmed email from the customer's own mapped workspace (anyone can confirm an
    address of a customer's domain in a workspace of their own)."""
    customer = (await find_by_email(session, author.email)
                if author is not None and author.email else None)
    if author is None or customer is None:
        return None, False, ""
    if not author.email_confirmed:
        return customer, False, f"Slack profile email {author.email} is not confirmed"
    if await slack_team_owner(session, author.team) != customer.id:
        return customer, False, f"Slack workspace {author.team} is not the customer's"
    return customer, True, (f"confirmed Slack profile email {author.email} in the customer's "
                            f"workspace {author.team}")


def topic(text: str) -> str:
    """A chat message's first line, short: the ticket's subject."""
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return first if len(first) <= 80 else first[:79].rstrip() + "…"
