"""The Slack outbox against the fake Web API: retries, Retry-After, permanent errors, restarts."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from bot.intake.slack.outbox import JsonLinesTransport, SlackDeliverer, WebApiTransport
from models.db import Database
from models.slack import list_calls, queue_call
from tests.fakes.slack_api import FakeSlack
from tests.integration.conftest import Clock

TOKEN = "xoxb-test-token"


def deliverer(db: Database, fake: FakeSlack, clock: Clock) -> SlackDeliverer:
    return SlackDeliverer(db=db, transport=WebApiTransport(TOKEN, fake.base_url), clock=clock,
                          max_attempts=3, backoff_seconds=5)


async def queue(db: Database, clock: Clock, key: str = "k1", channel: str = "C0TRIAGE") -> None:
    async with db.session() as session:
        await queue_call(session, key=key, method="chat.postMessage",
                         args={"channel": channel, "text": "NT#1 opened"}, now=clock())


async def test_429_then_200_delivers_exactly_once_after_retry_after(
        db: Database, fake: FakeSlack) -> None:
    clock = Clock()
    fake.fail_next(1, status=429, retry_after=7)
    await queue(db, clock)
    out = deliverer(db, fake, clock)
    assert await out.run_once() == 0
    async with db.reader() as session:
        [call] = await list_calls(session)
    assert call.next_attempt_at == clock.now + timedelta(seconds=7)
    clock.now += timedelta(seconds=6)
    assert await out.run_once() == 0  # Retry-After is honoured: not yet
    clock.now += timedelta(seconds=1)
    assert await out.run_once() == 1
    assert await out.run_once() == 0
    assert len(fake.made("chat.postMessage")) == 1
    assert len(fake.calls) == 2
    async with db.reader() as session:
        [call] = await list_calls(session)
    assert call.status == "sent"
    assert call.result_ts == "1763900000.000001"


async def test_5xx_backs_off_and_a_restart_resumes(db: Database, database_url: str,
                                                   fake: FakeSlack) -> None:
    clock = Clock()
    fake.fail_next(1, status=503)
    await queue(db, clock)
    assert await deliverer(db, fake, clock).run_once() == 0
    async with db.reader() as session:
        [call] = await list_calls(session)
    assert (call.status, call.reason) == ("queued", "internal_error")
    assert call.next_attempt_at == clock.now + timedelta(seconds=5)
    await db.dispose()
    restarted = Database(database_url)  # a new process: nothing in memory survives
    clock.now += timedelta(seconds=5)
    try:
        assert await deliverer(restarted, fake, clock).run_once() == 1
    finally:
        await restarted.dispose()
    assert [c.args["text"] for c in fake.made("chat.postMessage")] == ["NT#1 opened"]


@pytest.mark.parametrize("error", ["channel_not_found", "not_in_channel"])
async def test_a_permanent_error_fails_at_once_with_the_reason(
        db: Database, fake: FakeSlack, error: str) -> None:
    clock = Clock()
    fake.fail_next(1, error=error)
    await queue(db, clock)
    out = deliverer(db, fake, clock)
    await out.run_once()
    clock.now += timedelta(hours=1)
    await out.run_once()
    async with db.reader() as session:
        [call] = await list_calls(session)
    assert (call.status, call.reason, call.attempts) == ("failed", error, 1)
    assert len(fake.calls) == 1


async def test_gives_up_after_the_last_attempt(db: Database, fake: FakeSlack) -> None:
    clock = Clock()
    fake.fail_next(5, status=500)
    await queue(db, clock)
    out = deliverer(db, fake, clock)
    for _ in range(4):
        await out.run_once()
        clock.now += timedelta(hours=1)
    async with db.reader() as session:
        [call] = await list_calls(session)
    assert (call.status, call.attempts) == ("failed", 3)
    assert len(fake.calls) == 3


async def test_the_same_key_is_queued_once(db: Database, fake: FakeSlack) -> None:
    clock = Clock()
    await queue(db, clock, key="alert:NT#1")
    await queue(db, clock, key="alert:NT#1")
    assert await deliverer(db, fake, clock).run_once() == 1
    assert len(fake.made("chat.postMessage")) == 1


async def test_an_unreachable_slack_is_retried(db: Database, fake: FakeSlack) -> None:
    clock = Clock()
    await queue(db, clock)
    await fake.stop()  # nothing listens on the port now
    assert await deliverer(db, fake, clock).run_once() == 0
    async with db.reader() as session:
        [call] = await list_calls(session)
    assert call.status == "queued"
    assert call.attempts == 1


async def test_without_a_token_calls_go_to_the_json_lines_file_once(
        db: Database, tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "slack-outbox.jsonl"
    await queue(db, clock, channel="C0MANAGERS")
    out = SlackDeliverer(db=db, transport=JsonLinesTransport(path), clock=clock)
    assert await out.run_once() == 1
    # a second run after a crash before the commit would find the line and not write it again
    again = JsonLinesTransport(path)
    async with db.reader() as session:
        [call] = await list_calls(session)
    await again.call(call)
    [line] = path.read_text(encoding="utf-8").splitlines()
    written = json.loads(line)
    assert written["method"] == "chat.postMessage"
    assert written["args"] == {"channel": "C0MANAGERS", "text": "NT#1 opened"}
    assert call.status == "sent"


async def test_a_dropped_connection_is_retried_with_backoff(db: Database, fake: FakeSlack) -> None:
    clock = Clock()
    await queue(db, clock)
    transport = WebApiTransport(TOKEN, "http://127.0.0.1:1/api/")  # nothing listens on port 1
    out = SlackDeliverer(db=db, transport=transport, clock=clock, backoff_seconds=5)
    assert await out.run_once() == 0
    assert await out.run_once() == 0  # not due again before the backoff
    async with db.reader() as session:
        [call] = await list_calls(session)
    assert (call.status, call.attempts) == ("queued", 1)
    assert call.next_attempt_at == clock.now + timedelta(seconds=5)
