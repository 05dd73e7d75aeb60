"""The loop both outboxes share (mail relay, Slack calls): deliver what is due, at once when
woken, else every second for retries; stop only between rounds."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime

log = logging.getLogger(__name__)


class DeliveryLoop:
    """Runs `run_once` until stopped; subclasses deliver one round and return how many."""

    loop_error_event = "delivery_loop_error"
    outbox = "mail"  # its name in logs and /health

    def __init__(self) -> None:
        self.wake = asyncio.Event()
        self._stopping = False
        self.paused: str | None = None  # why nothing goes out now (Slack down, disk full, ...)
        self.paused_since: datetime | None = None

    def pause(self, reason: str, now: datetime) -> None:
        """Note that delivery stopped working; logged once, not once per retry."""
        if self.paused is None:
            self.paused_since = now
            log.warning("event=outbox_paused outbox=%s reason=%r", self.outbox, reason)
        self.paused = reason

    def resume(self, now: datetime) -> None:
        """Note that a delivery went through again; logged once, with how long it was paused."""
        if self.paused is not None:
            since = self.paused_since or now
            log.warning("event=outbox_resumed outbox=%s paused_seconds=%.0f last_reason=%r",
                        self.outbox, (now - since).total_seconds(), self.paused)
        self.paused, self.paused_since = None, None

    async def run_once(self) -> int:
        """Deliver everything due now; how many went out."""
        raise NotImplementedError

    def idle_seconds(self) -> float:
        """How long to wait for a wake-up before the next round (a subclass that knows when its
        next call may go says so)."""
        return 1.0

    async def run(self) -> None:
        """Deliver until stopped: at once when woken, else every second for retries."""
        while not self._stopping:
            # Cleared before the round: a wake-up during it (new work, or stop) starts the next
            # round at once instead of being lost until the one-second timer.
            self.wake.clear()
            try:
                await self.run_once()
            except Exception:  # a database hiccup must not end delivery for good
                log.exception("event=%s", self.loop_error_event)
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that
            # races with the event being set, and the loop would then never stop.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.idle_seconds()):
                    await self.wake.wait()

    async def stop(self, task: asyncio.Task[None], grace_seconds: float = 10.0) -> None:
        """Let the running round finish (no half-recorded delivery), then end `task`."""
        self._stopping = True
        self.wake.set()
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            async with asyncio.timeout(grace_seconds):
                await asyncio.shield(task)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
