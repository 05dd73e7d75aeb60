"""Background work of the service: processing stored inbound messages, resuming after a restart.

One worker per channel (mail; Slack), each fed only its own channel's stored messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import traceback
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from models.db import Database
from models.messages import pending_inbound

log = logging.getLogger(__name__)


class Processor(Protocol):
    """A channel's use case on stored messages (MailIntake, SlackIntake)."""

    db: Database

    async def process(self, message_id: int, now: datetime) -> str | None:
        """Process one stored message."""
        ...

    async def fail(self, message_id: int, error: str, now: datetime) -> None:
        """Record a failed attempt."""
        ...


class MailWorker:
    """Feeds stored mail to MailIntake: new mail at once, leftovers and retries by scanning."""

    def __init__(self, intake: Processor, *, clock: Callable[[], datetime],
                 on_processed: Callable[[], None], concurrency: int = 16,
                 scan_seconds: float = 5.0, channel: str = "email") -> None:
        self.intake = intake
        self.channel = channel
        self.label = "mail" if channel == "email" else channel  # log events: mail_*, slack_*
        self.clock = clock
        self.on_processed = on_processed
        self.concurrency = concurrency
        self.scan_seconds = scan_seconds
        self.queue: asyncio.Queue[int] = asyncio.Queue()
        self._queued: set[int] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._busy = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._stopping = False

    def submit(self, message_id: int) -> None:
        """Queue a stored message (called by the SMTP handler right after 250)."""
        if message_id not in self._queued:
            self._queued.add(message_id)
            self.queue.put_nowait(message_id)

    async def scan(self) -> int:
        """Queue every pending message whose time has come; returns how many."""
        async with self.intake.db.reader() as session:
            ids = await pending_inbound(session, now=self.clock(), channel=self.channel)
        for message_id in ids:
            self.submit(message_id)
        return len(ids)

    async def _work(self) -> None:
        while not self._stopping:
            message_id = await self.queue.get()  # cancelled here on stop: nothing is open
            self._busy += 1
            self._idle.clear()
            try:
                await self.intake.process(message_id, self.clock())
            except Exception as exc:
                log.exception("event=%s_processing_error message=%s", self.label, message_id)
                detail = "".join(traceback.format_exception_only(exc)).strip()
                try:
                    await self.intake.fail(message_id, detail, self.clock())
                except Exception:
                    log.exception("event=%s_fail_record_error message=%s", self.label,
                                  message_id)
            finally:
                self._queued.discard(message_id)
                self.queue.task_done()
                self.on_processed()
                self._busy -= 1
                if self._busy == 0:
                    self._idle.set()

    async def _rescan(self) -> None:
        while True:
            await asyncio.sleep(self.scan_seconds)
            try:
                await self.scan()
            except Exception:
                log.exception("event=%s_scan_error", self.label)

    async def start(self) -> None:
        """Resume what a previous run left pending, then work on."""
        resumed = await self.scan()
        if resumed:
            log.info("event=%s_resumed pending=%s", self.label, resumed)
        self._tasks = [asyncio.create_task(self._work()) for _ in range(self.concurrency)]
        self._tasks.append(asyncio.create_task(self._rescan()))

    async def stop(self, grace_seconds: float = 10.0) -> None:
        """Finish the messages in hand, then stop; queued ones stay pending for the next start."""
        self._stopping = True
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace_seconds):
                await self._idle.wait()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
