"""Outbound mail: a Maildir outbox (the embedded default) or an SMTP relay, with retries.

A 5xx from the relay fails the message; anything else (4xx, network, timeouts, a full disk
under the Maildir) is retried with capped backoff for as long as it takes.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

import aiosmtplib

from bot.jobs.delivery import DeliveryLoop
from models.db import Database
from models.messages import due_outbound, lock_message
from models.tables import Message

log = logging.getLogger(__name__)


class PermanentFailure(Exception):
    """The relay refused the message for good (5xx): retrying will not help."""


class Transport(Protocol):
    """Where outbound mail goes."""

    async def deliver(self, message: Message) -> None:
        """Deliver one message or raise; PermanentFailure means do not retry."""
        ...


class MaildirOutbox:
    """Writes each message once into a Maildir that a person or a mail client can read.

    The file name is derived from the message's row id, so a delivery repeated after a crash
    finds the file already there and writes nothing twice.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        for sub in ("tmp", "new", "cur"):
            (root / sub).mkdir(parents=True, exist_ok=True)

    def _name(self, message: Message) -> str:
        return f"{int(message.created_at.timestamp())}.nt{message.id}.intake"

    def already_there(self, name: str) -> bool:
        """True when the message was delivered (and possibly read: moved to cur/)."""
        if (self.root / "new" / name).exists():
            return True
        return any(p.name.startswith(name) for p in (self.root / "cur").iterdir())

    async def deliver(self, message: Message) -> None:
        """Write the message to new/ (via tmp/, so readers never see half a file)."""
        name = self._name(message)
        if self.already_there(name):
            return
        await asyncio.to_thread(self._write, name, message.raw or b"")

    def _write(self, name: str, raw: bytes) -> None:
        tmp = self.root / "tmp" / name
        with open(tmp, "wb") as handle:
            handle.write(raw)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.root / "new" / name)


class SmtpRelay:
    """Hands messages to a relay: smtp://host:port (STARTTLS if offered) or smtps://."""

    def __init__(self, url: str, sender: str, timeout: float = 30) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError("MAIL_RELAY_URL must look like smtp://host:25 or smtps://u:p@host:465")
        self.hostname = parts.hostname
        self.port = parts.port or (465 if parts.scheme == "smtps" else 25)
        self.use_tls = parts.scheme == "smtps"
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.sender = sender
        self.timeout = timeout

    async def deliver(self, message: Message) -> None:
        """Send over SMTP; a 5xx answer is permanent, anything else is retried."""
        try:
            await aiosmtplib.send(
                message.raw or b"", sender=self.sender, recipients=[message.recipient],
                hostname=self.hostname, port=self.port, use_tls=self.use_tls,
                start_tls=None if not self.use_tls else False,
                username=self.username, password=self.password, timeout=self.timeout,
            )
        except aiosmtplib.SMTPResponseException as exc:
            if 500 <= exc.code < 600:
                raise PermanentFailure(f"{exc.code} {exc.message}") from exc
            raise


class Deliverer(DeliveryLoop):
    """Delivers queued outbound mail: immediately when woken, and retries with backoff."""

    outbox = "mail"

    def __init__(self, *, db: Database, transport: Transport, clock: Callable[[], datetime],
                 backoff_seconds: float = 30.0, backoff_max_seconds: float = 600.0) -> None:
        self.db = db
        self.transport = transport
        self.clock = clock
        self.backoff = backoff_seconds
        self.backoff_max = backoff_max_seconds
        super().__init__()

    def state(self) -> dict[str, object]:
        """For /health: whether delivery is paused (the relay or disk failing) and why."""
        state: dict[str, object] = {"paused": self.paused is not None}
        if self.paused is not None:
            state["reason"] = self.paused
            state["paused_since"] = self.paused_since.isoformat() if self.paused_since else None
        return state

    async def run_once(self) -> int:
        """Try every due message once, recording each outcome right after its attempt.

        A crash mid-round then repeats at most the one message whose delivery was not yet
        recorded, never the ones before it.
        """
        async with self.db.reader() as session:
            due = await due_outbound(session, now=self.clock())
        delivered = 0
        for message in due:
            error, permanent = await self._attempt(message)
            delivered += await self._record(message, error, permanent)
        return delivered

    async def _record(self, message: Message, error: str | None, permanent: bool) -> int:
        """Store one attempt's outcome; 1 when the message is now sent."""
        assert message.id is not None
        now = self.clock()
        async with self.db.session() as session:
            row = await lock_message(session, message.id)
            if row is None or row.disposition != "queued":
                return 0
            row.attempts += 1
            if error is None:
                row.disposition, row.done_at, row.reason = "sent", now, None
            elif permanent:
                row.disposition, row.done_at, row.reason = "failed", now, error
            else:  # never given up: only the relay's own 5xx says a message cannot be sent
                delay = min(self.backoff * 2 ** min(row.attempts - 1, 30), self.backoff_max)
                row.next_attempt_at = now + timedelta(seconds=delay)
                row.reason = error
            session.add(row)
        if error is None or permanent:
            self.resume(now)
        else:
            self.pause(error, now)
        return 1 if error is None else 0

    async def _attempt(self, message: Message) -> tuple[str | None, bool]:
        """Deliver one message: (None, False) on success, else (error, permanent)."""
        try:
            await self.transport.deliver(message)
        except PermanentFailure as exc:
            result: tuple[str | None, bool] = (str(exc), True)
        except Exception as exc:  # network, timeouts, 4xx: all worth another try
            result = (f"{type(exc).__name__}: {exc}", False)
        else:
            result = (None, False)
        # one warning when delivery starts failing (the pause); the retries after it are quiet
        level = (logging.INFO if result[0] is None else
                 logging.DEBUG if self.paused else logging.WARNING)
        log.log(level, "event=mail_delivery message=%s ticket=%s result=%s", message.id,
                message.ticket_number, result[0] or "sent")
        return result
