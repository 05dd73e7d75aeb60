"""Customers chat: a message in a mapped channel opens a ticket through the same conversation
use case as mail, answered in its thread; replies are follow-ups (signed HTTP + the fake API)."""

from __future__ import annotations

import asyncio
import time

from models.tickets import ticket_history
from tests.fakes.slack_api import Call, FakeSlack
from tests.fakes.slack_events import CUSTOMER_CHANNEL
from tests.integration.conftest import AGENT, Slack
from tests.integration.test_email import outage

LOGISTIK = {"channel": "C0LOGNORD", "team": "T0LOGNORD"}  # D-1003 in bot/demo_customers.csv
TS = "1763900000.000100"


async def posted_to(fake: FakeSlack, channel: str, count: int = 1) -> list[Call]:
    """The chat.postMessage calls to one channel, once `count` of them were made."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = [c for c in fake.made("chat.postMessage") if c.args["channel"] == channel]
        if len(found) >= count:
            return found
        await asyncio.sleep(0.02)
    raise AssertionError(f"fewer than {count} posts to {channel}")


async def test_a_message_in_a_mapped_channel_opens_the_customers_ticket(slack: Slack) -> None:
    await slack.sender.event(slack.sender.message(**LOGISTIK))
    [row] = await slack.processed()
    [ticket] = await slack.running.tickets()
    assert (row.disposition, row.ticket_number) == ("ticket", ticket.number)
    assert (ticket.channel, ticket.plan, ticket.department) == ("slack", "standard", "trouble")
    assert ticket.requester == f"C0LOGNORD:{TS}"
    assert ticket.subject == "Unser Mailserver ist seit heute früh nicht erreichbar"
    assert ticket.included is True
    assert "unknown_sender" not in ticket.flags


async def test_the_answer_goes_into_the_messages_thread_in_german(slack: Slack) -> None:
    await slack.sender.event(slack.sender.message(**LOGISTIK))
    await slack.processed()
    [ticket] = await slack.running.tickets()
    [answer] = await posted_to(slack.fake, "C0LOGNORD")
    assert answer.args["thread_ts"] == TS
    text = answer.args["text"]
    assert f"Ticket NT#{ticket.number} erstellt" in text
    assert "Abteilung:    Störung" in text
    assert "Bitte antworten Sie hier im Thread." in text
    assert "[NT#" not in text.replace(f"NT#{ticket.number}", "")


async def test_a_reply_in_the_thread_is_a_follow_up_not_a_new_ticket(slack: Slack) -> None:
    await slack.sender.event(slack.sender.message(**LOGISTIK))
    await slack.processed()
    reply = slack.sender.message("Es betrifft auch den Kalender.", ts="1763900100.000200",
                                 thread_ts=TS, **LOGISTIK)
    await slack.sender.event(reply)
    first, second = await slack.processed()
    [ticket] = await slack.running.tickets()
    assert (second.disposition, second.ticket_number) == ("follow-up", ticket.number)
    assert ticket.number is not None
    async with slack.running.db.reader() as session:
        _, trail = await ticket_history(session, ticket.number)
    assert [e.action for e in trail][-1] == "customer_reply"


async def test_an_unmapped_channel_is_asked_for_the_customer_number(slack: Slack) -> None:
    await slack.sender.event(slack.sender.message("Our website is down since this morning"))
    await slack.processed()
    [ticket] = await slack.running.tickets()
    [answer] = await posted_to(slack.fake, CUSTOMER_CHANNEL)
    assert ticket.customer_id is None
    assert "unknown_sender" in ticket.flags
    assert "Please reply with your NetTask customer" in answer.args["text"]


async def test_an_agents_message_in_a_customer_channel_opens_nothing(slack: Slack) -> None:
    await slack.sender.event(slack.sender.message("Wir schauen uns das an", user=AGENT,
                                                  **LOGISTIK))
    [row] = await slack.processed()
    assert (row.disposition, row.reason) == ("ignored", "agent message")
    assert await slack.running.tickets() == []


async def test_a_reply_under_a_message_without_ticket_opens_nothing(slack: Slack) -> None:
    await slack.sender.event(slack.sender.message("danke", ts="1763900100.000200",
                                                  thread_ts="1763800000.000001", **LOGISTIK))
    [row] = await slack.processed()
    assert (row.disposition, row.reason) == ("ignored",
                                             "a reply outside any ticket's conversation")
    assert await slack.running.tickets() == []


async def test_our_own_answer_coming_back_as_an_event_opens_nothing(slack: Slack) -> None:
    await slack.sender.event(slack.sender.message(**LOGISTIK))
    await slack.processed()
    [answer] = await posted_to(slack.fake, "C0LOGNORD")
    echo = slack.sender.message(answer.args["text"], ts="1763900000.000001", thread_ts=TS,
                                user="U0NTBOT", bot_id="B0NTBOT", **LOGISTIK)
    await slack.sender.event(echo)
    rows = await slack.processed()
    assert [(r.disposition, r.reason) for r in rows][-1] == ("ignored", "own message")
    assert len(await slack.running.tickets()) == 1


async def test_every_new_ticket_is_posted_to_triage_escaped(slack: Slack) -> None:
    text = "<!channel> Mailserver down <script>alert(1)</script> <https://evil.example|bank>"
    await slack.sender.event(slack.sender.message(text, **LOGISTIK))
    await slack.processed()
    [ticket] = await slack.running.tickets()
    [triage] = await posted_to(slack.fake, "C0TRIAGE")
    assert triage.args["text"] == (f"New ticket NT#{ticket.number} (slack) from "
                                   "Logistik Nord AG (D-1003)")
    quoted = triage.args["blocks"][1]["text"]["text"]
    assert quoted == (">&lt;!channel&gt; Mailserver down &lt;script&gt;alert(1)&lt;/script&gt; "
                      "&lt;https://evil.example|bank&gt;")


async def test_a_mail_ticket_is_posted_to_triage_too(slack: Slack) -> None:
    code, _ = await slack.running.send(outage())
    assert code == 250
    await slack.running.settle()
    [ticket] = await slack.running.tickets()
    [triage] = await posted_to(slack.fake, "C0TRIAGE")
    assert triage.args["text"].startswith(f"New ticket NT#{ticket.number} (email) from ")
