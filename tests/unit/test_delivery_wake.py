"""The delivery loop both outboxes share: a wake-up is never lost to the one-second timer."""

from __future__ import annotations

import asyncio

from bot.jobs.delivery import DeliveryLoop


class Rounds(DeliveryLoop):
    """Counts its rounds; new work arrives (a wake-up) while the first one runs."""

    def __init__(self) -> None:
        super().__init__()
        self.rounds = 0
        self.second = asyncio.Event()

    async def run_once(self) -> int:
        self.rounds += 1
        if self.rounds == 1:
            self.wake.set()  # a reply queued while this round delivers
        else:
            self.second.set()
        return 0


async def test_a_wake_up_during_a_round_starts_the_next_round_at_once() -> None:
    loop = Rounds()
    task = asyncio.create_task(loop.run())
    try:
        async with asyncio.timeout(0.5):  # half the timer's second: only the wake-up gets here
            await loop.second.wait()
    finally:
        await loop.stop(task)
    assert loop.rounds >= 2
