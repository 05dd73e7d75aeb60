"""Web chat messages in: the socket stored each one (a `webchat_item` and its pipeline `message`
row) before its ack; a `MailWorker(channel="web")` feeds them here, and they go through the same
conversation use case as mail and Slack. Answers are `out` items (reply.py)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.cases.callbacks import BOOK_SLOT, slot_choice
from bot.cases.conversation import Conversation
from bot.classify import Classifier
from bot.classify.language import LanguageDetector
from bot.domain import Channel, IncomingMessage, Language, Triage
from bot.intake.web.reply import WebReplyChannel
from models.customers import CustomerView, find_by_email, get_customer
from models.db import Database
from models.messages import lock_message, record_failure
from models.senders import serialise
from models.tables import Message, WebItem, WebVisitor
from models.webchat_out import item_of_message, last_ticket_message, newest_choice, requester

log = logging.getLogger(__name__)


class ChoiceHandler(Protocol):
    """What a clicked choice does (actions.py), in the caller's transaction."""

    async def apply(self, session: AsyncSession, row: Message, item: WebItem,
                    visitor: WebVisitor, now: datetime) -> None:
        """Apply the click; sets the row's disposition and reason."""
        ...


@dataclass(frozen=True)
class Understood:
    """What the CPU-bound part learned about one chat message."""

    language: Language
    triage: Triage


class WebIntake:
    """Processes stored web chat messages through the conversation use case; safe to repeat."""

    def __init__(self, *, db: Database, conversation: Conversation, classifier: Classifier,
                 detector: LanguageDetector, choices: ChoiceHandler | None = None,
                 max_attempts: int = 5) -> None:
        self.db = db
        self.conversation = conversation
        self.classifier = classifier
        self.detector = detector
        self.choices = choices
        self.max_attempts = max_attempts

    def understand(self, text: str) -> Understood:
        """Detect the language and classify (CPU only, no I/O)."""
        return Understood(language=self.detector.detect(text),
                          triage=self.classifier.classify(topic(text), text[:4000]))

    async def process(self, message_id: int, now: datetime) -> str | None:
        """Process one pending web message; returns its disposition (None if it is gone)."""
        async with self.db.reader() as session:
            row = await session.get(Message, message_id)
            if row is None or row.disposition != "pending":
                return None if row is None else row.disposition
            found = await item_of_message(session, message_id)
        understood = None
        if found is not None and found[0].kind == "text":
            understood = await asyncio.to_thread(self.understand, found[0].text)
        async with self.db.session() as session:
            locked = await lock_message(session, message_id)
            if locked is None or locked.disposition != "pending":
                return None if locked is None else locked.disposition
            await self._apply(session, locked, understood, now)
            session.add(locked)
            disposition, reason, ticket = locked.disposition, locked.reason, locked.ticket_number
        log.info("event=web_processed message=%s disposition=%s ticket=%s reason=%s",
                 message_id, disposition, ticket or "-", reason or "-")
        return disposition

    async def _apply(self, session: AsyncSession, row: Message, understood: Understood | None,
                     now: datetime) -> None:
        assert row.id is not None
        row.done_at = now
        found = await item_of_message(session, row.id)
        if found is None:  # the socket stores both in one transaction: not ours to read
            row.disposition, row.reason = "ignored", "no web chat item for this message"
            return
        item, visitor = found
        assert visitor.id is not None
        row.thread_id = requester(visitor.id)
        if item.kind == "choice":
            row.text, row.subject = f"[{item.action}] {item.value}", item.action
            if self.choices is None:
                row.disposition, row.reason = "ignored", "choices are not handled here"
                return
            await self.choices.apply(session, row, item, visitor, now)
        elif understood is None:
            row.disposition, row.reason = "ignored", f"a web item of kind {item.kind!r}"
            return
        else:
            await self._message(session, row, item, visitor, understood, now)
        if item.ticket_number is None and row.ticket_number is not None:
            item.ticket_number = row.ticket_number
            session.add(item)

    async def _message(self, session: AsyncSession, row: Message, item: WebItem,
                       visitor: WebVisitor, understood: Understood, now: datetime) -> None:
        assert row.id is not None and visitor.id is not None
        row.text, row.subject = item.text, topic(item.text)
        if await self._typed_slot(session, row, item, visitor, now):
            return
        customer, trusted, reason = await visitor_identity(session, visitor)
        # one visitor's messages take turns (PostgreSQL; SQLite has one writer), so that the
        # second of two sent at once finds the ticket the first opened
        await serialise(session, f"web-visitor:{visitor.id}")
        ref = await last_ticket_message(session, visitor_id=visitor.id, besides=row.id)
        incoming = IncomingMessage(
            channel=Channel.WEB, external_id=row.external_id,
            thread_refs=(ref,) if ref else (), ticket_hint=None, sender=row.sender,
            sender_name=visitor.name if trusted else "", subject=row.subject,
            topic=row.subject, text=row.text, requester=requester(visitor.id),
            may_open_ticket=True, may_answer=True, trusted=trusted, trust_reason=reason,
        )
        reply = WebReplyChannel(visitor_id=visitor.id, key=f"answer:{row.external_id}")
        await self.conversation.handle(session, row, incoming, customer=customer,
                                       language=understood.language, triage=understood.triage,
                                       reply=reply, now=now)

    async def _typed_slot(self, session: AsyncSession, row: Message, item: WebItem,
                          visitor: WebVisitor, now: datetime) -> bool:
        """A typed slot number ("2", "Slot 2") answering the slot buttons the visitor sees last
        is that button's click: the same checks (a verified visitor of the ticket's customer,
        the current offer) and the same booking, without a calendar mail (the requester is
        `web:<id>`). The conversation's own typed reading is for mail only."""
        assert visitor.id is not None
        number = slot_choice(item.text)
        if number is None or self.choices is None:
            return False
        value = await newest_choice(session, visitor_id=visitor.id, action=BOOK_SLOT,
                                    number=number)
        if value is None:  # no slot buttons showing: just a message
            return False
        typed = WebItem(visitor_id=visitor.id, direction="in", kind="choice",
                        client_id=item.client_id, message_id=row.id, action=BOOK_SLOT,
                        value=value, created_at=now)  # never added: read by apply only
        await self.choices.apply(session, row, typed, visitor, now)
        log.info("event=web_typed_slot message=%s visitor=%s number=%s", row.id, visitor.id,
                 number)
        return True

    async def fail(self, message_id: int, error: str, now: datetime) -> None:
        """Record a failed attempt; retry later with backoff, or give up after the last one."""
        async with self.db.session() as session:
            attempts = await record_failure(session, message_id=message_id, error=error,
                                            now=now, max_attempts=self.max_attempts)
        if attempts is not None:
            log.error("event=web_failed message=%s attempts=%s", message_id, attempts)


async def visitor_identity(session: AsyncSession, visitor: WebVisitor
                           ) -> tuple[CustomerView | None, bool, str]:
    """The visitor's customer, whether the visitor is proven to be that customer's person (a
    valid portal identity, or the code mailed to the address typed in), and why (or why not)."""
    customer = None
    if visitor.customer_id is not None:
        customer = await get_customer(session, visitor.customer_id)
    elif visitor.email:
        customer = await find_by_email(session, visitor.email)
    if customer is None:
        return None, False, ""
    if visitor.verified_by:
        return customer, True, (f"web chat visitor verified by {visitor.verified_by} as "
                                f"{visitor.email}")
    return customer, False, (f"web chat address {visitor.email or '(none)'} not verified: no "
                             "portal identity, no code typed")


def topic(text: str) -> str:
    """A chat message's first line, short: the ticket's subject."""
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return first if len(first) <= 80 else first[:79].rstrip() + "…"
