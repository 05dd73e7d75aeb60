"""A proven follow-up that reopens a closed ticket (by mail over SMTP, by a Slack thread reply)
starts a new first-response window from the reopen, with the ticket's severity window, and plans
its reminders at once; the reminders sent in the first window do not block them. A settable
clock; the reminder loop re-reads the rows every 0.2 s, so moving the clock makes them due."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import col, select

from bot.cases import deadlines
from bot.intake.slack.triage import WAIT
from models.db import Database
from models.tables import Reminder, Ticket
from models.tickets import ticket_history
from tests.fakes.slack_api import FakeSlack
from tests.fakes.slack_events import SlackSender
from tests.integration.conftest import (
    Clock,
    Running,
    Slack,
    make_settings,
    slack_settings,
    start_service,
)
from tests.integration.reminder_kit import is_pending, poll
from tests.integration.test_email import outage
from tests.integration.test_slack_chat import LOGISTIK, TS
from tests.integration.test_slack_triage import POST_TS
from tests.integration.test_slack_waiting import buttons

Planned = list[tuple[str, str, datetime]]


@pytest.fixture
async def reminding(db: Database, database_url: str, tmp_path: Path) -> AsyncIterator[Running]:
    await db.dispose()
    settings = make_settings(tmp_path, database_url, reminder_refresh_seconds=0.2)
    started = await start_service(settings, Clock())
    yield started
    await started.service.stop()


@pytest.fixture
async def slack_reminding(db: Database, database_url: str, tmp_path: Path,
                          fake: FakeSlack) -> AsyncIterator[Slack]:
    await db.dispose()
    settings = slack_settings(tmp_path, database_url, fake, reminder_refresh_seconds=0.2)
    running = await start_service(settings, Clock())
    yield Slack(running, fake, SlackSender(running.service.http_port))
    await running.service.stop()


async def reminders_of(db: Database, number: int | None) -> list[Reminder]:
    async with db.reader() as session:
        rows = await session.exec(select(Reminder).where(col(Reminder.ticket_number) == number)
                                  .order_by(col(Reminder.id)))
        return list(rows.all())


def pending(rows: list[Reminder]) -> Planned:
    return sorted((r.kind, r.audience, r.due_at) for r in rows if is_pending(r))


async def past_the_deadline(running: Running, number: int | None) -> list[Reminder]:
    """Move the clock a day on; the reminders once none is pending."""
    running.clock.now += timedelta(days=1)

    async def done() -> bool:
        rows = await reminders_of(running.db, number)
        return bool(rows) and not any(is_pending(r) for r in rows)
    await poll(done, 20, "every reminder sent")
    return await reminders_of(running.db, number)


async def missed_and_closed(running: Running, ticket: Ticket) -> Planned:
    """The first window runs out (every reminder sent), then an agent closes the ticket three
    days later; what the first window had planned."""
    assert ticket.number is not None
    planned = pending(await reminders_of(running.db, ticket.number))
    sent = await past_the_deadline(running, ticket.number)
    assert len([r for r in sent if r.sent_at is not None]) == len(planned)
    async with running.db.session() as session:
        await deadlines.close(session, number=ticket.number, now=running.clock.now,
                              actor="agent U0AGENT")
    running.clock.now += timedelta(days=3)
    return planned


def shifted(planned: Planned, start: datetime | None, reopened: datetime) -> Planned:
    """The first window's points moved to a window starting at the reopen (around the clock)."""
    assert start is not None
    return sorted((kind, audience, due - start + reopened) for kind, audience, due in planned)


async def test_a_mail_follow_up_gives_the_reopened_ticket_a_new_deadline_and_reminders(
        reminding: Running) -> None:
    await reminding.send(outage())
    await reminding.settle()
    [ticket] = await reminding.tickets()
    planned = await missed_and_closed(reminding, ticket)
    reopened = reminding.clock.now
    await reminding.send(outage(message_id="<o-4@logistik-nord.de>", subject="[NT#1] wieder da"))
    await reminding.settle()
    [after] = await reminding.tickets()
    assert ticket.due_at is not None and ticket.accepted_at is not None
    assert (after.status, after.closed_at, after.first_response_at) == ("open", None, None)
    assert (after.accepted_at, after.clock) == (reopened, "around_the_clock")
    assert after.target_hours == ticket.target_hours
    assert after.due_at == reopened + (ticket.due_at - ticket.accepted_at)
    assert pending(await reminders_of(reminding.db, 1)) == shifted(
        planned, ticket.accepted_at, reopened)


async def test_the_reopened_tickets_reminders_are_sent_though_their_kinds_went_out_before(
        reminding: Running) -> None:
    await reminding.send(outage())
    await reminding.settle()
    [ticket] = await reminding.tickets()
    planned = await missed_and_closed(reminding, ticket)
    await reminding.send(outage(message_id="<o-4@logistik-nord.de>", subject="[NT#1] wieder da"))
    await reminding.settle()
    rows = await past_the_deadline(reminding, 1)
    sent = Counter((r.kind, r.audience) for r in rows if r.sent_at is not None)
    assert sent == Counter({(kind, audience): 2 for kind, audience, _ in planned})


async def test_the_audit_trail_keeps_the_first_window(reminding: Running) -> None:
    await reminding.send(outage())
    await reminding.settle()
    [ticket] = await reminding.tickets()
    await missed_and_closed(reminding, ticket)
    await reminding.send(outage(message_id="<o-4@logistik-nord.de>", subject="[NT#1] wieder da"))
    await reminding.settle()
    [after] = await reminding.tickets()
    async with reminding.db.reader() as session:
        _, trail = await ticket_history(session, 1)
    [event] = [e for e in trail if e.action == "reopened"]
    assert event.detail.count(str(ticket.due_at)) == 1
    assert str(after.due_at) in event.detail


async def test_an_unproven_follow_up_neither_reopens_nor_plans_reminders(
        reminding: Running) -> None:
    await reminding.send(outage())
    await reminding.settle()
    [ticket] = await reminding.tickets()
    await missed_and_closed(reminding, ticket)
    forged = outage(message_id="<forged@evil.example>", signed=False, subject="Re: [NT#1] doch",
                    extra="In-Reply-To: <o-1@logistik-nord.de>\r\n")
    await reminding.send(forged, sender="x@evil.example")
    await reminding.settle()
    [after] = await reminding.tickets()
    last = (await reminding.messages())[-1]
    assert (last.ticket_number, last.disposition) == (1, "follow-up")  # it reached the ticket
    assert (after.status, after.due_at) == ("closed", ticket.due_at)
    assert pending(await reminders_of(reminding.db, 1)) == []


async def test_a_slack_thread_reply_gives_the_reopened_ticket_a_new_deadline_and_reminders(
        slack_reminding: Slack) -> None:
    slack = slack_reminding
    await slack.sender.event(slack.sender.message(**LOGISTIK))
    await slack.processed()
    [ticket] = await slack.running.tickets()
    planned = await missed_and_closed(slack.running, ticket)
    reopened = slack.running.clock.now
    reply = slack.sender.message("Es ist wieder ausgefallen.", ts="1763990000.000200",
                                 thread_ts=TS, **LOGISTIK)
    await slack.sender.event(reply)
    await slack.processed()
    [after] = await slack.running.tickets()
    assert ticket.due_at is not None and ticket.accepted_at is not None
    assert (after.status, after.accepted_at, after.first_response_at) == ("open", reopened, None)
    assert after.due_at == reopened + (ticket.due_at - ticket.accepted_at)
    assert pending(await reminders_of(slack.running.db, after.number)) == shifted(
        planned, ticket.accepted_at, reopened)


async def test_the_reopened_tickets_triage_post_shows_it_open_again(
        slack_reminding: Slack) -> None:
    slack = slack_reminding
    await slack.sender.event(slack.sender.message(**LOGISTIK))
    await slack.processed()
    [ticket] = await slack.running.tickets()
    await missed_and_closed(slack.running, ticket)
    reply = slack.sender.message("Es ist wieder ausgefallen.", ts="1763990000.000200",
                                 thread_ts=TS, **LOGISTIK)
    await slack.sender.event(reply)
    [update] = await slack.fake.wait_for("chat.update", 1)
    assert (buttons(update)[-1], update.args["ts"]) == (WAIT, POST_TS)
