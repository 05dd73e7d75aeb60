"""Answers from the triage thread: an agent's reply (a signed event in the triage channel) reaches
the customer on the ticket's own channel; notes and non-agents' messages go nowhere; customer
replies are mirrored into the thread (signed HTTP in, the fake Web API and the Maildir out)."""

from __future__ import annotations

import asyncio
import time

from models.slack import list_calls
from models.tables import SlackCall, Ticket
from tests.fakes.slack_api import Call
from tests.integration.conftest import AGENT, Slack
from tests.integration.test_email import outage
from tests.integration.test_slack_chat import LOGISTIK, TS, posted_to

TRIAGE = {"channel": "C0TRIAGE", "team": "T0NETTASK"}
AGENT_NAME = "Anna Agentin"


async def calls_of(slack: Slack, number: int | None) -> list[SlackCall]:
    async with slack.running.db.reader() as session:
        return await list_calls(session, ticket_number=number)


async def post_ts(slack: Slack, number: int | None) -> str:
    """The ts Slack gave the ticket's triage post, once the outbox made it."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for call in await calls_of(slack, number):
            if call.key == f"triage:NT#{number}" and call.result_ts:
                return call.result_ts
        await asyncio.sleep(0.02)
    raise AssertionError("the triage post was not made")


async def slack_ticket(slack: Slack) -> tuple[Ticket, str]:
    await slack.sender.event(slack.sender.message(**LOGISTIK))
    await slack.processed()
    [ticket] = await slack.running.tickets()
    return ticket, await post_ts(slack, ticket.number)


async def mail_ticket(slack: Slack) -> tuple[Ticket, str]:
    assert (await slack.running.send(outage()))[0] == 250
    await slack.running.settle()
    [ticket] = await slack.running.tickets()
    return ticket, await post_ts(slack, ticket.number)


async def reply_in_thread(slack: Slack, thread: str, text: str, *, user: str = AGENT,
                          ts: str = "1763900500.000100") -> None:
    await slack.sender.event(slack.sender.message(
        text, ts=ts, thread_ts=thread, user=user,
        user_profile={"real_name": AGENT_NAME, "display_name": "anna"}, **TRIAGE))
    await slack.processed()


async def confirmation(slack: Slack, thread: str) -> Call:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = [c for c in slack.fake.made("chat.postMessage")
                 if c.args["channel"] == "C0TRIAGE" and c.args.get("thread_ts") == thread]
        if found:
            return found[-1]
        await asyncio.sleep(0.02)
    raise AssertionError("no line in the triage thread")


async def fresh(slack: Slack, number: int | None) -> Ticket:
    [ticket] = [t for t in await slack.running.tickets() if t.number == number]
    return ticket


async def test_an_agents_reply_reaches_a_slack_customer_in_their_thread(slack: Slack) -> None:
    ticket, thread = await slack_ticket(slack)
    await reply_in_thread(slack, thread, "Wir haben den Dienst neu gestartet.")
    answer = (await posted_to(slack.fake, "C0LOGNORD", 2))[-1]
    assert answer.args["thread_ts"] == TS
    assert answer.args["text"].startswith("Wir haben den Dienst neu gestartet.")
    assert AGENT_NAME in answer.args["text"]
    assert (await confirmation(slack, thread)).args["text"] == "Sent to the customer in Slack."


async def test_the_first_agent_answer_sets_the_first_response(slack: Slack) -> None:
    ticket, thread = await slack_ticket(slack)
    await reply_in_thread(slack, thread, "Wir kümmern uns darum.")
    after = await fresh(slack, ticket.number)
    assert (after.first_response_at, after.status) == (slack.running.clock.now, "answered")


async def test_an_agents_reply_reaches_a_mail_customer_as_a_threaded_mail(slack: Slack) -> None:
    ticket, thread = await mail_ticket(slack)
    await reply_in_thread(slack, thread, "Bitte starten Sie Outlook einmal neu.")
    await slack.running.settle()
    first, answer = slack.running.replies()
    assert answer["In-Reply-To"] == "<o-1@logistik-nord.de>"
    assert f"[NT#{ticket.number}]" in str(answer["Subject"])
    assert answer["Auto-Submitted"] is None
    assert first["Auto-Submitted"] == "auto-replied"  # the automatic answer before it
    assert answer["To"] == "anna@logistik-nord.de"
    assert answer.get_content().startswith("Bitte starten Sie Outlook einmal neu.")
    assert AGENT_NAME in answer.get_content()
    assert (await confirmation(slack, thread)).args["text"] == "Sent to the customer by mail."


async def test_an_internal_note_goes_nowhere(slack: Slack) -> None:
    ticket, thread = await slack_ticket(slack)
    await reply_in_thread(slack, thread, "Note: Kunde hatte das schon letzte Woche.")
    assert (await confirmation(slack, thread)).args["text"] == (
        "Internal note: not sent to the customer.")
    keys = [c.key for c in await calls_of(slack, ticket.number)]
    assert [k for k in keys if k.startswith("agent-answer:")] == []
    assert len(slack.fake.made("chat.postMessage")) == 3  # answer, triage post, the note line
    assert (await fresh(slack, ticket.number)).first_response_at is None


async def test_a_non_agents_message_in_the_triage_thread_goes_nowhere(slack: Slack) -> None:
    ticket, thread = await slack_ticket(slack)
    await reply_in_thread(slack, thread, "Ich bin kein Agent", user="U0STRANGER")
    rows = await slack.rows()
    assert (rows[-1].disposition, rows[-1].reason) == (
        "ignored", "triage thread: not an agent, nothing goes to the customer")
    keys = [c.key for c in await calls_of(slack, ticket.number)]
    assert keys == [k for k in keys if k.startswith(("answer:", "triage:"))]
    assert (await fresh(slack, ticket.number)).first_response_at is None


async def test_a_slack_customers_reply_is_mirrored_into_the_triage_thread(slack: Slack) -> None:
    ticket, thread = await slack_ticket(slack)
    await slack.sender.event(slack.sender.message("Es betrifft auch den Kalender.",
                                                  ts="1763900100.000200", thread_ts=TS,
                                                  **LOGISTIK))
    await slack.processed()
    mirror = await confirmation(slack, thread)
    assert f"Customer reply on NT#{ticket.number} (slack)" in mirror.args["text"]
    assert ">Es betrifft auch den Kalender." in mirror.args["text"]


async def test_a_mail_customers_reply_is_mirrored_into_the_triage_thread(slack: Slack) -> None:
    ticket, thread = await mail_ticket(slack)
    [answer] = slack.running.replies()
    follow = outage(message_id="<o-2@logistik-nord.de>", subject="Re: Mailserver ausgefallen",
                    extra=f"In-Reply-To: {answer['Message-ID']}\r\n",
                    body="auch der Kalender <!channel> geht nicht.")
    assert (await slack.running.send(follow))[0] == 250
    await slack.running.settle()
    mirror = await confirmation(slack, thread)
    assert f"Customer reply on NT#{ticket.number} (email)" in mirror.args["text"]
    assert "auch der Kalender &lt;!channel&gt; geht nicht." in mirror.args["text"]
