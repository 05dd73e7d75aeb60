"""A mail whose processing keeps failing: retried with backoff, then `failed` with the reason,
and its raw bytes kept (issue 7, tests the suite lacks), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from bot.domain import Triage
from models.db import Database
from models.tables import Message
from tests.integration.conftest import Clock, Running, make_settings, start_service
from tests.integration.test_email_store import request

MAX_ATTEMPTS = 3


class BrokenClassifier:
    """A Classifier whose model cannot run: every call raises."""

    def __init__(self) -> None:
        self.calls = 0

    def classify(self, subject: str, text: str) -> Triage:
        self.calls += 1
        raise RuntimeError(f"model crashed on call {self.calls}")


@pytest.fixture
async def broken(db: Database, database_url: str, tmp_path: Path) -> AsyncIterator[Running]:
    await db.dispose()
    settings = make_settings(tmp_path, database_url, processing_max_attempts=MAX_ATTEMPTS)
    started = await start_service(settings, Clock(), classifier=BrokenClassifier())
    yield started
    await started.service.stop()


async def the_message(running: Running) -> Message:
    [message] = await running.messages()
    return message


async def attempts_reach(running: Running, attempts: int, timeout: float = 10) -> Message:
    """Poll until the stored mail has `attempts` recorded; the row then."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        message = await the_message(running)
        if message.attempts >= attempts:
            return message
        await asyncio.sleep(0.02)
    raise AssertionError(f"the mail never reached {attempts} attempts")


async def test_a_failing_classifier_backs_off_then_fails_keeping_the_mail(
    broken: Running,
) -> None:
    raw = request()
    code, _ = await broken.send(raw)
    assert code == 250
    first = await attempts_reach(broken, 1)
    assert first.disposition == "pending"
    assert first.next_attempt_at == broken.clock.now + timedelta(seconds=10)
    assert first.reason == "RuntimeError: model crashed on call 1"

    worker = broken.service.worker
    assert worker is not None
    broken.clock.now += timedelta(seconds=9)
    assert await worker.scan() == 0  # not due yet: backoff is respected
    broken.clock.now += timedelta(seconds=1)
    await worker.scan()  # (the worker's own periodic scan may have queued it already)
    second = await attempts_reach(broken, 2)
    assert second.disposition == "pending"
    assert second.next_attempt_at == broken.clock.now + timedelta(seconds=20)

    broken.clock.now += timedelta(seconds=20)
    await worker.scan()
    last = await attempts_reach(broken, MAX_ATTEMPTS)
    assert last.disposition == "failed"
    assert last.done_at == broken.clock.now
    assert last.reason == "RuntimeError: model crashed on call 3"
    assert last.raw == raw  # nothing lost: the mail is kept as received
    assert await broken.tickets() == []
    broken.clock.now += timedelta(days=1)
    assert await worker.scan() == 0  # failed is final: no endless retries
