"""The loop both outboxes share (mail relay, Slack calls): deliver what is due, at once when
woken, else every second for retries; stop only between rounds."""

from __future__ import annotations

import asyncio
import contextlib
import logging

log = logging.getLogger(__name__)


class DeliveryLoop:
    """Runs `run_once` until stopped; subclasses deliver one round and return how many."""

    loop_error_event = "delivery_loop_error"

    def __init__(self) -> None:
        self.wake = asyncio.Event()
        self._stopping = False

    async def run_once(self) -> int:
        """Deliver everything due now; how many went out."""
        raise NotImplementedError

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
                async with asyncio.timeout(1.0):
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
