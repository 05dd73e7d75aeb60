"""The agents' deadline reminders also reach the ticket's assignee as a direct message (channel =
the user id), once per reminder, beside the triage thread; no assignee, no DM. A policy of
seconds and a settable clock: the test moves the clock past the deadline after assigning."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import col, select

from bot.intake.slack.triage import ASSIGN
from models.db import Database
from models.slack import list_calls
from models.tables import Reminder, Ticket
from tests.fakes.slack_api import FakeSlack
from tests.fakes.slack_events import SlackSender
from tests.integration.conftest import AGENT, Clock, Slack, slack_settings, start_service
from tests.integration.reminder_kit import is_pending, poll, seconds_policy
from tests.integration.test_slack_chat import LOGISTIK, posted_to


@pytest.fixture
async def timed(db: Database, database_url: str, tmp_path: Path,
                fake: FakeSlack) -> AsyncIterator[Slack]:
    """The Slack service with windows of seconds, on a clock that only the test moves."""
    await db.dispose()
    settings = slack_settings(tmp_path, database_url, fake, policy_file=seconds_policy(tmp_path),
                              reminder_refresh_seconds=0.2)
    running = await start_service(settings, Clock())
    yield Slack(running, fake, SlackSender(running.service.http_port))
    await running.service.stop()


async def slack_ticket(slack: Slack) -> Ticket:
    await slack.sender.event(slack.sender.message(**LOGISTIK))
    await slack.processed()
    await posted_to(slack.fake, "C0TRIAGE")
    [ticket] = await slack.running.tickets()
    return ticket


async def reminders_of(slack: Slack, number: int | None) -> list[Reminder]:
    async with slack.running.db.reader() as session:
        rows = await session.exec(select(Reminder).where(col(Reminder.ticket_number) == number)
                                  .order_by(col(Reminder.id)))
        return list(rows.all())


async def past_the_deadline(slack: Slack, ticket: Ticket) -> list[Reminder]:
    """Move the clock past the deadline; the reminders once all are sent and all calls made."""
    slack.running.clock.now += timedelta(seconds=30)

    async def done() -> bool:
        rows = await reminders_of(slack, ticket.number)
        async with slack.running.db.reader() as session:
            calls = await list_calls(session, ticket_number=ticket.number)
        return bool(rows) and not any(is_pending(r) for r in rows) \
            and all(c.status != "queued" for c in calls)
    await poll(done, 20, "every reminder sent and every Slack call made")
    return await reminders_of(slack, ticket.number)


async def test_each_agents_reminder_is_sent_once_to_the_assignee_directly(timed: Slack) -> None:
    ticket = await slack_ticket(timed)
    await timed.sender.choose(AGENT, ASSIGN, str(ticket.number))
    await timed.fake.wait_for("chat.update", 1)
    rows = await past_the_deadline(timed, ticket)
    agents = [r for r in rows if r.audience == "agents"]
    dms = [c for c in timed.fake.made("chat.postMessage") if c.args["channel"] == AGENT]
    async with timed.running.db.reader() as session:
        calls = await list_calls(session, ticket_number=ticket.number)
    assert [r.kind for r in agents] == ["agents_50", "agents_75", "agents_90", "breach"]
    assert all(r.sent_at is not None for r in agents)
    assert sorted(c.key for c in calls if c.key.startswith("reminder-dm:")) == sorted(
        f"reminder-dm:{r.id}" for r in agents)
    assert len(dms) == len(agents)
    assert len({c.args["text"] for c in dms}) == len(agents)
    assert all(c.args["text"].startswith(f":alarm_clock: NT#{ticket.number} ") for c in dms)
    assert "thread_ts" not in dms[0].args


async def test_the_triage_thread_still_gets_every_agents_reminder(timed: Slack) -> None:
    ticket = await slack_ticket(timed)
    await timed.sender.choose(AGENT, ASSIGN, str(ticket.number))
    await timed.fake.wait_for("chat.update", 1)
    rows = await past_the_deadline(timed, ticket)
    [post, *thread] = await posted_to(timed.fake, "C0TRIAGE")
    assert "thread_ts" not in post.args
    assert len(thread) == len([r for r in rows if r.audience == "agents"])


async def test_without_an_assignee_no_direct_message_is_sent(timed: Slack) -> None:
    ticket = await slack_ticket(timed)
    rows = await past_the_deadline(timed, ticket)
    async with timed.running.db.reader() as session:
        calls = await list_calls(session, ticket_number=ticket.number)
    channels = {c.args["channel"] for c in timed.fake.made("chat.postMessage")}
    assert len([r for r in rows if r.audience == "agents" and r.sent_at]) == 4
    assert [c.key for c in calls if c.key.startswith("reminder-dm:")] == []
    assert channels == {"C0TRIAGE", "C0LOGNORD"}
