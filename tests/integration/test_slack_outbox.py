"""The Slack outbox against the Slack stand-in: pacing, Retry-After, order per conversation,
never giving up on transient errors, permanent errors, restarts."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from bot.intake.slack.outbox import JsonLinesTransport, SlackDeliverer, WebApiTransport
from models.db import Database
from models.slack import list_calls, queue_call
from tests.fakes.slack_api import FakeSlack
from tests.integration.conftest import Clock

TOKEN = "xoxb-test-token"


@dataclass
class Seconds:
    """A settable monotonic clock for the outbox's pacing and pauses."""

    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


def deliverer(db: Database, fake: FakeSlack, clock: Clock,
              seconds: Seconds | None = None) -> SlackDeliverer:
    return SlackDeliverer(db=db, transport=WebApiTransport(TOKEN, fake.base_url), clock=clock,
                          backoff_seconds=5, backoff_max_seconds=60,
                          pace_clock=seconds or Seconds())


async def queue(db: Database, clock: Clock, key: str = "k1", channel: str = "C0TRIAGE",
                text: str = "NT#1 opened", thread: str | None = None) -> None:
    args = {"channel": channel, "text": text}
    if thread:
        args["thread_ts"] = thread
    async with db.session() as session:
        await queue_call(session, key=key, method="chat.postMessage", args=args, now=clock())


async def test_429_then_200_delivers_exactly_once_after_retry_after(
        db: Database, fake: FakeSlack) -> None:
    clock, seconds = Clock(), Seconds()
    fake.fail_next(1, status=429, retry_after=7)
    await queue(db, clock)
    out = deliverer(db, fake, clock, seconds)
    assert await out.run_once() == 0
    seconds.now += 6.9
    assert await out.run_once() == 0  # Retry-After is honoured: not yet
    seconds.now += 0.1
    assert await out.run_once() == 1
    assert await out.run_once() == 0
    assert len(fake.made("chat.postMessage")) == 1
    assert len(fake.calls) == 2
    async with db.reader() as session:
        [call] = await list_calls(session)
    assert call.status == "sent"
    assert call.result_ts == "1763900000.000001"
    assert call.attempts == 1  # the 429 is not an attempt: nothing counts towards giving up


async def test_a_429_pauses_that_channel_only(db: Database, fake: FakeSlack) -> None:
    clock, seconds = Clock(), Seconds()
    fake.post_rate = None  # the outbox's pacing runs on the test's clock here, Slack's does not
    fake.fail_next(1, status=429, retry_after=30)
    await queue(db, clock, key="a1", channel="C0ACME", text="a1")
    await queue(db, clock, key="a2", channel="C0ACME", text="a2")
    await queue(db, clock, key="b1", channel="C0BETA", text="b1")
    out = deliverer(db, fake, clock, seconds)
    assert await out.run_once() == 1
    assert [c.args["text"] for c in fake.made("chat.postMessage")] == ["b1"]
    seconds.now += 29
    assert await out.run_once() == 0
    seconds.now += 1
    assert await out.run_once() == 1
    seconds.now += 1
    assert await out.run_once() == 1
    assert [c.args["text"] for c in fake.made("chat.postMessage")] == ["b1", "a1", "a2"]


async def test_posts_go_at_slacks_rate_in_order_per_channel_without_a_429(
        db: Database, fake: FakeSlack) -> None:
    clock = Clock()
    for n in range(3):
        for channel in ("C0ACME", "C0BETA"):
            await queue(db, clock, key=f"{channel}{n}", channel=channel, text=f"{channel}{n}")
    out = SlackDeliverer(db=db, transport=WebApiTransport(TOKEN, fake.base_url), clock=clock)
    loop = asyncio.get_running_loop()
    started = loop.time()
    task = asyncio.create_task(out.run())
    try:
        made = await fake.wait_for("chat.postMessage", 6, timeout=15)
    finally:
        await out.stop(task)
    elapsed = loop.time() - started
    assert [c.args["text"] for c in made if c.args["channel"] == "C0ACME"] == \
        ["C0ACME0", "C0ACME1", "C0ACME2"]
    assert [c.args["text"] for c in made if c.args["channel"] == "C0BETA"] == \
        ["C0BETA0", "C0BETA1", "C0BETA2"]
    assert [c for c in fake.calls if not c.args["_ok"]] == []  # no 429: the rate was kept
    assert elapsed >= 2.0  # three posts a channel take two seconds at one a second
    assert elapsed < 4.0  # and not much more


async def test_a_thread_waits_for_its_post_and_earlier_replies_not_for_other_threads(
        db: Database, fake: FakeSlack) -> None:
    clock, seconds = Clock(), Seconds()
    fake.post_rate = None  # the outbox's pacing runs on the test's clock here, Slack's does not
    async with db.session() as session:  # the thread's post is not due for a minute
        await queue_call(session, key="post", method="chat.postMessage",
                         args={"channel": "C0ACME", "text": "post"},
                         now=clock() + timedelta(minutes=1))
        for n in (1, 2):
            await queue_call(session, key=f"reply{n}", method="chat.postMessage",
                             args={"channel": "C0ACME", "text": f"reply{n}",
                                   "_thread_of": "post"}, now=clock())
    await queue(db, clock, key="other", channel="C0ACME", text="other thread", thread="1.1")
    out = deliverer(db, fake, clock, seconds)
    assert await out.run_once() == 1
    clock.now += timedelta(minutes=1)
    for _ in range(3):
        seconds.now += 1  # the channel's rate: one post a second
        assert await out.run_once() == 1
    made = fake.made("chat.postMessage")
    assert [c.args["text"] for c in made] == ["other thread", "post", "reply1", "reply2"]
    assert made[2].args["thread_ts"] == made[3].args["thread_ts"] == "1763900000.000002"


async def test_a_post_waits_for_an_earlier_one_of_its_conversation_that_is_not_due(
        db: Database, fake: FakeSlack) -> None:
    clock, seconds = Clock(), Seconds()
    fake.post_rate = None  # the outbox's pacing runs on the test's clock here, Slack's does not
    async with db.session() as session:
        await queue_call(session, key="first", method="chat.postMessage",
                         args={"channel": "C0ACME", "text": "first"},
                         now=clock() + timedelta(seconds=30))
    await queue(db, clock, key="second", channel="C0ACME", text="second")
    out = deliverer(db, fake, clock, seconds)
    assert await out.run_once() == 0
    clock.now += timedelta(seconds=30)
    assert await out.run_once() == 1
    seconds.now += 1
    assert await out.run_once() == 1
    assert [c.args["text"] for c in fake.made("chat.postMessage")] == ["first", "second"]


async def test_5xx_is_retried_with_capped_backoff_and_never_given_up(
        db: Database, database_url: str, fake: FakeSlack) -> None:
    clock, seconds = Clock(), Seconds()
    fake.fail_next(12, status=503)
    await queue(db, clock)
    out = deliverer(db, fake, clock, seconds)
    for _ in range(12):
        assert await out.run_once() == 0
        seconds.now += 60  # the cap: 5, 10, 20, 40, then 60 s
    async with db.reader() as session:
        [call] = await list_calls(session)
    assert (call.status, call.attempts) == ("queued", 12)
    assert len(fake.calls) == 12
    await db.dispose()
    restarted = Database(database_url)  # a new process: nothing in memory survives
    try:
        assert await deliverer(restarted, fake, clock).run_once() == 1
    finally:
        await restarted.dispose()
    assert [c.args["text"] for c in fake.made("chat.postMessage")] == ["NT#1 opened"]


async def test_backoff_doubles_up_to_the_cap(db: Database, fake: FakeSlack) -> None:
    clock, seconds = Clock(), Seconds()
    fake.fail_next(6, status=500)
    await queue(db, clock)
    out = deliverer(db, fake, clock, seconds)
    waits = []
    for _ in range(6):
        await out.run_once()
        waits.append(round(out._hold_until - seconds.now))
        seconds.now = out._hold_until
    assert waits == [5, 10, 20, 40, 60, 60]


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


async def test_the_same_key_is_queued_once(db: Database, fake: FakeSlack) -> None:
    clock = Clock()
    await queue(db, clock, key="alert:NT#1")
    await queue(db, clock, key="alert:NT#1")
    assert await deliverer(db, fake, clock).run_once() == 1
    assert len(fake.made("chat.postMessage")) == 1


async def test_an_outage_pauses_the_outbox_once_and_it_resumes_when_slack_is_back(
        db: Database, fake: FakeSlack, caplog: pytest.LogCaptureFixture) -> None:
    clock, seconds = Clock(), Seconds()
    caplog.set_level(logging.INFO)
    await queue(db, clock, key="k1", channel="C0ACME")
    await queue(db, clock, key="k2", channel="C0BETA")
    await fake.stop()  # Slack is down: nothing listens on the port
    out = deliverer(db, fake, clock, seconds)
    for _ in range(30):  # fifteen minutes and more of retries
        assert await out.run_once() == 0
        seconds.now += 60
        clock.now += timedelta(seconds=60)
    async with db.reader() as session:
        calls = await list_calls(session)
    assert [c.status for c in calls] == ["queued", "queued"]
    assert out.state()["paused"] is True
    await fake.start()  # back, on the same port
    assert await out.run_once() == 2
    assert out.state() == {"paused": False}
    lines = [r.getMessage() for r in caplog.records if "event=outbox_" in r.getMessage()]
    assert [line.split()[0] for line in lines] == ["event=outbox_paused", "event=outbox_resumed"]
    assert "paused_seconds=1800" in lines[1]
    assert sorted(c.args["text"] for c in fake.made("chat.postMessage")) == ["NT#1 opened"] * 2


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
    clock, seconds = Clock(), Seconds()
    await queue(db, clock)
    transport = WebApiTransport(TOKEN, "http://127.0.0.1:1/api/")  # nothing listens on port 1
    out = SlackDeliverer(db=db, transport=transport, clock=clock, backoff_seconds=5,
                         pace_clock=seconds)
    assert await out.run_once() == 0
    seconds.now += 4.9
    assert await out.run_once() == 0  # not again before the backoff
    async with db.reader() as session:
        [call] = await list_calls(session)
    assert (call.status, call.attempts) == ("queued", 1)
    assert out._hold_until == pytest.approx(seconds.now + 0.1)


async def test_a_full_or_read_only_disk_under_the_outbox_file_is_retried_never_failed(
        db: Database, tmp_path: Path) -> None:
    clock, seconds = Clock(), Seconds()
    path = tmp_path / "slack-outbox.jsonl"
    path.mkdir()  # writing the file fails (IsADirectoryError), as a full or read-only disk does
    await queue(db, clock, channel="C0MANAGERS")
    out = SlackDeliverer(db=db, transport=JsonLinesTransport(path), clock=clock,
                         pace_clock=seconds)
    for _ in range(20):
        assert await out.run_once() == 0
        seconds.now += 60
    async with db.reader() as session:
        [call] = await list_calls(session)
    assert (call.status, call.attempts) == ("queued", 20)
    assert "IsADirectoryError" in (call.reason or "")
    path.rmdir()  # space again
    assert await out.run_once() == 1
    assert len(path.read_text(encoding="utf-8").splitlines()) == 1


# ---- once across crashes: a post in doubt is looked up before it is made again ---------------

async def in_doubt(db: Database, fake: FakeSlack, clock: Clock, *, reached_slack: bool,
                   thread: str | None = None) -> None:
    """A previous process marked the call as going out, (maybe) made it, and died."""
    await queue(db, clock, thread=thread)
    async with db.session() as session:
        [call] = await list_calls(session)
        call.sending_at = clock()
        session.add(call)
    if reached_slack:
        await WebApiTransport(TOKEN, fake.base_url).call(call)


@pytest.mark.parametrize("thread", [None, "1763800000.000001"])
async def test_a_post_made_before_a_crash_is_found_and_not_made_again(
        db: Database, fake: FakeSlack, thread: str | None) -> None:
    clock = Clock()
    fake.post_rate = None
    await in_doubt(db, fake, clock, reached_slack=True, thread=thread)
    assert await deliverer(db, fake, clock).run_once() == 1
    async with db.reader() as session:
        [call] = await list_calls(session)
    assert len(fake.made("chat.postMessage")) == 1
    assert [c.method for c in fake.calls][-1] == \
        ("conversations.replies" if thread else "conversations.history")
    assert (call.status, call.result_ts, call.sending_at) == ("sent", "1763900000.000001", None)


async def test_a_post_in_doubt_that_never_reached_slack_is_made_once(
        db: Database, fake: FakeSlack) -> None:
    clock = Clock()
    await in_doubt(db, fake, clock, reached_slack=False)
    assert await deliverer(db, fake, clock).run_once() == 1
    assert [c.method for c in fake.calls] == ["conversations.history", "chat.postMessage"]
    assert fake.posted()[0]["metadata"]["event_payload"]["call"] == 1


async def test_a_post_whose_answer_was_cut_off_is_looked_up_not_repeated(
        db: Database, fake: FakeSlack) -> None:
    clock, seconds = Clock(), Seconds()
    fake.post_rate = None
    fake.latency["chat.postMessage"] = 1.5  # Slack takes the post, the answer comes too late
    await queue(db, clock)
    out = SlackDeliverer(db=db, transport=WebApiTransport(TOKEN, fake.base_url, timeout=1),
                         clock=clock, pace_clock=seconds)
    assert await out.run_once() == 0
    await fake.wait_for("chat.postMessage", 1)  # it did go out
    async with db.reader() as session:
        [call] = await list_calls(session)
    assert (call.status, call.sending_at) == ("queued", clock.now)
    seconds.now += 60
    assert await out.run_once() == 1
    assert len(fake.made("chat.postMessage")) == 1
    assert [c.method for c in fake.calls][-1] == "conversations.history"


async def test_a_post_carries_metadata_naming_its_outbox_row(
        db: Database, fake: FakeSlack) -> None:
    clock = Clock()
    await queue(db, clock, key="triage:NT#7")
    await deliverer(db, fake, clock).run_once()
    [message] = fake.posted()
    assert message["metadata"] == {"event_type": "nettask_outbox",
                                   "event_payload": {"call": 1, "key": "triage:NT#7"}}


async def test_a_429_on_a_tiered_method_pauses_that_method_everywhere_not_posts(
        db: Database, fake: FakeSlack) -> None:
    clock, seconds = Clock(), Seconds()
    fake.fail_next(1, status=429, retry_after=20, method="chat.update")
    async with db.session() as session:
        for n, channel in enumerate(("C0ACME", "C0BETA")):
            await queue_call(session, key=f"u{n}", method="chat.update",
                             args={"channel": channel, "ts": "1.1", "text": "x"}, now=clock())
    await queue(db, clock, key="p", channel="C0ACME", text="post")
    out = deliverer(db, fake, clock, seconds)
    assert await out.run_once() == 1
    assert [c.method for c in fake.calls if c.args["_ok"]] == ["chat.postMessage"]
    seconds.now += 20
    assert await out.run_once() == 2
    assert len(fake.made("chat.update")) == 2
