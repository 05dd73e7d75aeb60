"""The relay loop records each delivery as soon as it is made (issue 7 item 10)."""

from __future__ import annotations

import pytest
from sqlmodel import col, select

from bot.intake.mail.outbound import Deliverer, SmtpRelay
from models.db import Database
from models.tables import Message
from tests.fakes.smtp_sink import SmtpSink
from tests.integration.conftest import Clock


class ProcessDied(BaseException):
    """Stands in for the process ending (SIGKILL, power loss) in the middle of a round."""


class DiesAfter:
    """A Transport that hands `limit` messages to the real relay, then the process dies."""

    def __init__(self, relay: SmtpRelay, limit: int) -> None:
        self.relay = relay
        self.limit = limit

    async def deliver(self, message: Message) -> None:
        if self.limit == 0:
            raise ProcessDied
        await self.relay.deliver(message)
        self.limit -= 1


async def queue(db: Database, count: int, clock: Clock) -> None:
    async with db.session() as session:
        for n in range(count):
            session.add(Message(
                direction="out", channel="email", external_id=f"<out-{n}@nettask.de>",
                sender="support@nettask.de", recipient=f"kunde{n}@acme.de", subject=f"R {n}",
                raw=f"Subject: R {n}\\r\\nTo: kunde{n}@acme.de\\r\\n\\r\\nText {n}\\r\\n".encode(),
                disposition="queued", created_at=clock(), next_attempt_at=clock(),
            ))


async def test_a_crash_mid_round_resends_nothing_that_was_delivered(db: Database) -> None:
    sink, clock = SmtpSink(), Clock()
    port = await sink.start()
    relay = SmtpRelay(f"smtp://127.0.0.1:{port}", sender="support@nettask.de")
    await queue(db, 5, clock)
    try:
        dying = Deliverer(db=db, transport=DiesAfter(relay, 3), clock=clock)
        with pytest.raises(ProcessDied):
            await dying.run_once()
        assert len(sink.received) == 3
        restarted = Deliverer(db=db, transport=relay, clock=clock)
        assert await restarted.run_once() == 2
    finally:
        await sink.stop()
    recipients = sorted(r for got in sink.received for r in got.recipients)
    assert recipients == [f"kunde{n}@acme.de" for n in range(5)]
    async with db.session() as session:
        states = (await session.exec(select(Message.disposition).order_by(col(Message.id)))).all()
    assert list(states) == ["sent"] * 5
