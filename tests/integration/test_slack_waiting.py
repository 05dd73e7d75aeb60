"""'Waiting for customer' and 'Resume' on the triage post (signed clicks): the clock stops and
the pending reminders are cancelled; on resume the deadline and every reminder move by exactly
the time waited. Only agents may; the customer's own proven reply resumes too."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta

from sqlmodel import col, select

from bot.intake.slack.triage import RESUME, WAIT
from models.tables import Reminder, Ticket
from models.tickets import ticket_history
from tests.fakes.slack_api import Call
from tests.integration.conftest import AGENT, Slack
from tests.integration.reminder_kit import is_pending
from tests.integration.test_email import outage
from tests.integration.test_slack_chat import LOGISTIK, TS
from tests.integration.test_slack_triage import (
    POST_TS,
    fresh,
    slack_ticket,
    updates,
    wait_for_mails,
)

WAITED = timedelta(minutes=90)


async def reminders_of(slack: Slack, number: int | None) -> list[Reminder]:
    async with slack.running.db.reader() as session:
        rows = await session.exec(select(Reminder).where(col(Reminder.ticket_number) == number)
                                  .order_by(col(Reminder.id)))
        return list(rows.all())


def pending_times(rows: list[Reminder]) -> list[tuple[str, str, datetime]]:
    return sorted((r.kind, r.audience, r.due_at) for r in rows if is_pending(r))


def buttons(update: Call) -> list[str]:
    [*_, actions] = update.args["blocks"]
    return [e["action_id"] for e in actions["elements"] if e["type"] == "button"]


async def until_status(slack: Slack, number: int | None, status: str) -> Ticket:
    deadline = time.monotonic() + 10
    while (ticket := await fresh(slack, number)).status != status:
        assert time.monotonic() < deadline, f"NT#{number} did not become {status}"
        await asyncio.sleep(0.02)
    return ticket


async def test_waiting_for_the_customer_stops_the_clock_and_cancels_the_reminders(
        slack: Slack) -> None:
    ticket = await slack_ticket(slack)
    before = await reminders_of(slack, ticket.number)
    await slack.sender.choose(AGENT, WAIT, str(ticket.number))
    [update] = await updates(slack.fake)
    after = await fresh(slack, ticket.number)
    rows = await reminders_of(slack, ticket.number)
    assert len(pending_times(before)) == 7  # severity A: agents, managers and the customer
    assert (after.status, after.paused_at) == ("waiting_customer", slack.running.clock.now)
    assert pending_times(rows) == []
    assert {r.reason for r in rows} == {"paused"}
    assert after.due_at == ticket.due_at
    assert buttons(update)[-1] == RESUME
    assert WAIT not in buttons(update)
    assert "*Waiting for the customer* since" in update.args["blocks"][0]["text"]["text"]


async def test_resume_moves_the_deadline_and_every_reminder_by_the_time_waited(
        slack: Slack) -> None:
    ticket = await slack_ticket(slack)
    assert ticket.due_at is not None
    planned = pending_times(await reminders_of(slack, ticket.number))
    await slack.sender.choose(AGENT, WAIT, str(ticket.number))
    await updates(slack.fake)
    slack.running.clock.now += WAITED
    await slack.sender.choose(AGENT, RESUME, str(ticket.number))
    _, update = await updates(slack.fake, 2)
    after = await fresh(slack, ticket.number)
    assert (after.status, after.paused_at) == ("open", None)
    assert after.paused_seconds == WAITED.total_seconds()
    assert after.due_at == ticket.due_at + WAITED
    assert pending_times(await reminders_of(slack, ticket.number)) == [
        (kind, audience, due + WAITED) for kind, audience, due in planned]
    assert buttons(update)[-1] == WAIT
    assert "Waiting for the customer" not in update.args["blocks"][0]["text"]["text"]


async def test_the_audit_trail_names_the_agent_who_paused_and_resumed(slack: Slack) -> None:
    ticket = await slack_ticket(slack)
    assert ticket.number is not None
    await slack.sender.choose(AGENT, WAIT, str(ticket.number))
    await updates(slack.fake)
    await slack.sender.choose("U0AGENT2", RESUME, str(ticket.number))
    await updates(slack.fake, 2)
    async with slack.running.db.reader() as session:
        _, trail = await ticket_history(session, ticket.number)
    assert [(e.action, e.actor) for e in trail if e.action in (
        "waiting_for_customer", "clock_resumed")] == [
        ("waiting_for_customer", f"agent {AGENT}"), ("clock_resumed", "agent U0AGENT2")]


async def test_a_non_agent_cannot_pause_the_clock(slack: Slack) -> None:
    ticket = await slack_ticket(slack)
    before = pending_times(await reminders_of(slack, ticket.number))
    await slack.sender.choose("U0STRANGER", WAIT, str(ticket.number))
    [refusal] = await slack.fake.wait_for("chat.postEphemeral", 1)
    after = await fresh(slack, ticket.number)
    assert refusal.args["user"] == "U0STRANGER"
    assert (after.status, after.paused_at) == ("open", None)
    assert pending_times(await reminders_of(slack, ticket.number)) == before
    assert slack.fake.made("chat.update") == []


async def test_a_non_agent_cannot_resume_the_clock(slack: Slack) -> None:
    ticket = await slack_ticket(slack)
    await slack.sender.choose(AGENT, WAIT, str(ticket.number))
    await updates(slack.fake)
    slack.running.clock.now += WAITED
    await slack.sender.choose("U0STRANGER", RESUME, str(ticket.number))
    [refusal] = await slack.fake.wait_for("chat.postEphemeral", 1)
    after = await fresh(slack, ticket.number)
    assert refusal.args["user"] == "U0STRANGER"
    assert (after.status, after.due_at) == ("waiting_customer", ticket.due_at)
    assert pending_times(await reminders_of(slack, ticket.number)) == []
    assert len(slack.fake.made("chat.update")) == 1


async def test_only_an_open_ticket_can_wait(slack: Slack) -> None:
    ticket = await slack_ticket(slack)
    await slack.sender.choose(AGENT, WAIT, str(ticket.number))
    await updates(slack.fake)
    await slack.sender.choose(AGENT, WAIT, str(ticket.number))
    [refusal] = await slack.fake.wait_for("chat.postEphemeral", 1)
    after = await fresh(slack, ticket.number)
    assert refusal.args["text"] == (f"Nothing was changed: NT#{ticket.number} is "
                                    "waiting_customer: only an open ticket can wait.")
    assert after.paused_at == slack.running.clock.now


async def paused_then_answered(slack: Slack, ticket: Ticket) -> None:
    """An agent waits on the customer; 90 minutes later the customer answers in the thread."""
    await slack.sender.choose(AGENT, WAIT, str(ticket.number))
    await updates(slack.fake)
    slack.running.clock.now += WAITED
    reply = slack.sender.message("Hier die Logdatei.", ts="1763900100.000200", thread_ts=TS,
                                 **LOGISTIK)
    await slack.sender.event(reply)


async def test_the_customers_reply_in_the_thread_resumes_the_clock(slack: Slack) -> None:
    ticket = await slack_ticket(slack)
    assert ticket.due_at is not None
    await paused_then_answered(slack, ticket)
    after = await until_status(slack, ticket.number, "open")
    assert after.due_at == ticket.due_at + WAITED
    assert after.paused_seconds == WAITED.total_seconds()
    assert len(pending_times(await reminders_of(slack, ticket.number))) == 7


async def test_the_customers_reply_shows_the_running_clock_on_the_post(slack: Slack) -> None:
    ticket = await slack_ticket(slack)
    await paused_then_answered(slack, ticket)
    _, update = await updates(slack.fake, 2)
    assert (buttons(update)[-1], update.args["ts"]) == (WAIT, POST_TS)


async def test_resume_after_the_customer_resumed_refreshes_the_post_and_moves_nothing(
        slack: Slack) -> None:
    ticket = await slack_ticket(slack)
    await paused_then_answered(slack, ticket)
    resumed = await until_status(slack, ticket.number, "open")
    slack.running.clock.now += WAITED
    await slack.sender.choose(AGENT, RESUME, str(ticket.number))
    *_, update = await updates(slack.fake, 3)  # paused, resumed by the customer, by the agent
    after = await fresh(slack, ticket.number)
    assert (after.due_at, after.paused_seconds) == (resumed.due_at, WAITED.total_seconds())
    assert buttons(update)[-1] == WAIT


async def paused_mail_ticket(slack: Slack) -> Ticket:
    """Logistik Nord reports an outage by mail; an agent waits on the customer; 90 min pass."""
    code, _ = await slack.running.send(outage())
    assert code == 250
    await wait_for_mails(slack, 1)
    [ticket] = await slack.running.tickets()
    await slack.sender.choose(AGENT, WAIT, str(ticket.number))
    await updates(slack.fake)
    slack.running.clock.now += WAITED
    return ticket


async def test_the_customers_signed_mail_resumes_the_clock(slack: Slack) -> None:
    ticket = await paused_mail_ticket(slack)
    assert ticket.due_at is not None
    await slack.running.send(outage(message_id="<o-2@logistik-nord.de>",
                                    subject=f"Re: [NT#{ticket.number}] Logdatei anbei"))
    after = await until_status(slack, ticket.number, "open")
    assert after.due_at == ticket.due_at + WAITED
    assert len(pending_times(await reminders_of(slack, ticket.number))) == 7


async def test_an_unproven_mail_does_not_resume_the_clock(slack: Slack) -> None:
    ticket = await paused_mail_ticket(slack)
    forged = outage(message_id="<forged@evil.example>", signed=False,
                    subject=f"Re: [NT#{ticket.number}] weiter",
                    extra="In-Reply-To: <o-1@logistik-nord.de>\r\n")
    await slack.running.send(forged, sender="x@evil.example")
    await slack.running.settle()
    last = (await slack.running.messages())[-1]
    after = await fresh(slack, ticket.number)
    assert (last.ticket_number, last.disposition) == (ticket.number, "follow-up")
    assert (after.status, after.due_at) == ("waiting_customer", ticket.due_at)
    assert pending_times(await reminders_of(slack, ticket.number)) == []


async def test_two_agents_resuming_at_once_add_the_pause_once(slack: Slack) -> None:
    ticket = await slack_ticket(slack)
    assert ticket.due_at is not None
    await slack.sender.choose(AGENT, WAIT, str(ticket.number))
    await updates(slack.fake)
    slack.running.clock.now += WAITED
    await asyncio.gather(slack.sender.choose(AGENT, RESUME, str(ticket.number)),
                         slack.sender.choose("U0AGENT2", RESUME, str(ticket.number)))
    await updates(slack.fake, 3)
    after = await fresh(slack, ticket.number)
    assert after.paused_seconds == WAITED.total_seconds()
    assert after.due_at == ticket.due_at + WAITED
    assert len(pending_times(await reminders_of(slack, ticket.number))) == 7
