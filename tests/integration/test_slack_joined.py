"""Messages the flood rules join to an open ticket reach the agents in its triage thread, up to
FLOOD_MIRROR_MAX per ticket and window; a sender's repeat never joins another customer's ticket
(signed mail and Slack events in, the fake Web API out)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from models.db import Database
from models.slack import list_calls
from tests.fakes.slack_api import Call, FakeSlack
from tests.fakes.slack_events import SlackSender
from tests.integration.conftest import Clock, Slack, slack_settings, start_service
from tests.integration.test_email import PROBLEMS, outage
from tests.integration.test_slack_answers import confirmation, post_ts
from tests.integration.test_slack_chat import LOGISTIK

STADTWERKE = {"channel": "C0SWDEMO", "team": "T0DEMO"}  # D-1004, same demo team as LOGISTIK


@pytest.fixture
async def flooded(db: Database, database_url: str, tmp_path: Path,
                  fake: FakeSlack) -> AsyncIterator[Slack]:
    """The Slack service with at most two joined messages mirrored per ticket."""
    await db.dispose()
    settings = slack_settings(tmp_path, database_url, fake, flood_mirror_max=2)
    running = await start_service(settings, Clock())
    yield Slack(running, fake, SlackSender(running.service.http_port))
    await running.service.stop()


async def mail_flood(slack: Slack, count: int) -> None:
    """`count` different outage mails from one verified sender."""
    for n in range(count):
        raw = outage(message_id=f"<flood-{n}@logistik-nord.de>", subject=f"Problem {n}",
                     body=PROBLEMS[n])
        assert (await slack.running.send(raw))[0] == 250
    await slack.running.settle()


async def thread_lines(slack: Slack, thread: str) -> list[str]:
    """The lines in a triage thread once the Slack outbox has nothing queued."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        async with slack.running.db.reader() as session:
            calls = await list_calls(session)
        if calls and all(c.status != "queued" for c in calls):
            return [c.args["text"] for c in slack.fake.made("chat.postMessage")
                    if c.args["channel"] == "C0TRIAGE" and c.args.get("thread_ts") == thread]
        await asyncio.sleep(0.02)
    raise AssertionError("the Slack outbox still had queued calls")


async def joined_ticket_thread(slack: Slack) -> tuple[int, str]:
    """The ticket the flood joined (mails are classified in batches sorted by length, so which
    of the sender's three tickets is the newest depends on the order they were processed)."""
    [number] = {m.ticket_number for m in await slack.running.messages()
                if m.direction == "in" and m.disposition == "follow-up"}
    assert number is not None
    return number, await post_ts(slack, number)


async def test_a_joined_mail_is_mirrored_into_the_tickets_triage_thread(flooded: Slack) -> None:
    await mail_flood(flooded, 4)
    number, thread = await joined_ticket_thread(flooded)
    mirror: Call = await confirmation(flooded, thread)
    assert mirror.args["text"].startswith(
        f"*Customer reply on NT#{number} (email) from anna@logistik-nord.de (joined: rate limit: "
        "3 new tickets from this sender in 60 min)*")


async def test_the_joined_mail_is_quoted_in_the_mirror(flooded: Slack) -> None:
    await mail_flood(flooded, 4)
    _, thread = await joined_ticket_thread(flooded)
    mirror = await confirmation(flooded, thread)
    assert f">{PROBLEMS[3]}" in mirror.args["text"]


async def test_the_last_mirrored_join_says_the_rest_stay_on_the_ticket(flooded: Slack) -> None:
    await mail_flood(flooded, 6)
    _, thread = await joined_ticket_thread(flooded)
    lines = await thread_lines(flooded, thread)
    assert ["further joined messages stay on the ticket (limit 2)" in line
            for line in lines] == [False, True]


async def test_joins_beyond_the_limit_are_kept_but_not_mirrored(flooded: Slack) -> None:
    await mail_flood(flooded, 6)
    number, thread = await joined_ticket_thread(flooded)
    lines = await thread_lines(flooded, thread)
    joined = [m for m in await flooded.running.messages()
              if m.direction == "in" and m.ticket_number == number]
    assert (len(joined), len(lines)) == (4, 2)


async def test_a_repeat_in_another_customers_channel_opens_that_customers_ticket(
        slack: Slack) -> None:
    await slack.sender.event(slack.sender.message(ts="1763900000.000100", **LOGISTIK))
    await slack.processed()
    await slack.sender.event(slack.sender.message(ts="1763900060.000100", **STADTWERKE))
    rows = await slack.processed()
    [logistik, stadtwerke] = await slack.running.tickets()
    assert [r.disposition for r in rows] == ["ticket", "ticket"]
    assert stadtwerke.customer_id != logistik.customer_id
