"""Deadline reminders through the Slack outbox (a bot token, the fake Web API): agents in the
ticket's triage thread, managers in their channel, a Slack customer in their own thread; each
reminder once. The ticket comes in as a signed Slack event; windows of seconds, real time."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlmodel import col, select

from bot.app import Service, build, utc_now
from models.db import Database
from models.slack import list_calls
from models.tables import Reminder, Ticket
from tests.fakes.slack_api import FakeSlack
from tests.fakes.slack_events import SECRET, SlackSender
from tests.integration.conftest import AGENT, make_settings
from tests.integration.reminder_kit import is_pending, load_demo_customers, poll, seconds_policy

pytestmark = pytest.mark.slow  # waits out reminder windows of seconds

STADTWERKE = {"channel": "C0SWDEMO", "team": "T0SWDEMO"}  # D-1004, dehosted professional
TS = "1763900000.000100"


@pytest.fixture
async def service(db: Database, database_url: str, tmp_path: Path,
                  fake: FakeSlack) -> AsyncIterator[Service]:
    await db.dispose()
    settings = make_settings(
        tmp_path, database_url, _env_file=None, policy_file=seconds_policy(tmp_path),
        slack_signing_secret=SECRET, slack_bot_token="xoxb-test", slack_api_url=fake.base_url,
        slack_agents=AGENT, slack_triage_channel="C0TRIAGE",
        slack_managers_channel="C0MANAGERS", slack_outbox_file=tmp_path / "slack.jsonl",
        reminder_refresh_seconds=30)
    running = build(settings, clock=utc_now)
    await load_demo_customers(running.db, running.engine, utc_now())
    await running.start()
    yield running
    await running.stop()


async def the_ticket(service: Service) -> Ticket:
    async def one() -> bool:
        async with service.db.reader() as session:
            return (await session.exec(select(Ticket))).first() is not None
    await poll(one, 10, "the Slack message became a ticket")
    async with service.db.reader() as session:
        ticket = (await session.exec(select(Ticket))).one()
    return ticket


async def reminders_of(service: Service, number: int | None) -> list[Reminder]:
    async with service.db.reader() as session:
        rows = await session.exec(select(Reminder).where(col(Reminder.ticket_number) == number))
        return list(rows.all())


async def every_reminder_posted(service: Service, fake: FakeSlack) -> Ticket:
    sender = SlackSender(service.http_port)
    assert (await sender.event(sender.message(ts=TS, **STADTWERKE))).status == 200
    ticket = await the_ticket(service)

    async def done() -> bool:
        rows = await reminders_of(service, ticket.number)
        async with service.db.reader() as session:
            calls = await list_calls(session, ticket_number=ticket.number)
        queued = [c for c in calls if c.status == "queued"]
        return bool(rows) and not any(is_pending(r) for r in rows) and not queued
    await poll(done, 30, "every reminder sent and every Slack call made")
    return ticket


async def test_reminders_go_to_the_triage_thread_managers_and_customer_once_each(
        service: Service, fake: FakeSlack) -> None:
    ticket = await every_reminder_posted(service, fake)
    async with service.db.reader() as session:
        calls = await list_calls(session, ticket_number=ticket.number)
    [post] = [c for c in calls if c.key == f"triage:NT#{ticket.number}"]
    rows = await reminders_of(service, ticket.number)
    agents = {f"reminder:{r.id}" for r in rows if r.audience == "agents"}
    customer = {f"reminder:{r.id}" for r in rows if r.audience == "customer"}
    made = fake.made("chat.postMessage")
    in_thread = Counter(c.args["text"] for c in made if c.args["channel"] == "C0TRIAGE"
                        and c.args.get("thread_ts") == post.result_ts)
    to_managers = [c for c in made if c.args["channel"] == "C0MANAGERS"]
    to_customer = [c for c in made if c.args["channel"] == "C0SWDEMO"
                   and "zugesagten Zeit" in c.args["text"]]
    assert len(agents) == 4  # 50, 75, 90 %, breach
    assert {c.key for c in calls if c.key in agents} == agents
    assert sum(in_thread.values()) == len(agents)
    assert all(text.startswith(":alarm_clock: NT#") for text in in_thread)
    assert len(to_managers) == 2  # 75 % (severity A) and the breach
    assert "missed its deadline" in to_managers[-1].args["text"]
    assert len(customer) == 1
    assert [c.args["thread_ts"] for c in to_customer] == [TS]


async def test_the_reminders_json_lines_file_is_not_used_with_a_token(
        service: Service, fake: FakeSlack, tmp_path: Path) -> None:
    await every_reminder_posted(service, fake)
    lines = ((tmp_path / "slack.jsonl").read_text(encoding="utf-8").splitlines()
             if (tmp_path / "slack.jsonl").exists() else [])
    assert [json.loads(line) for line in lines] == []
