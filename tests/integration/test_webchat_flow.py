"""Web chat messages go through the same conversation use case as mail and Slack: a ticket with
its triage post (on the fake Slack Web API), an answer in the chat naming the ticket and its
deadline, follow-ups on the visitor's ticket, agents' answers from the triage thread (a signed
Slack event) into the chat, and what was stored before a crash processed once after it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlmodel import select

from bot.cases.replies import local_deadline
from bot.domain import Language
from models.db import Database
from models.tables import WebItem
from tests.fakes.slack_api import FakeSlack
from tests.integration.conftest import BERLIN, Clock, Slack, slack_settings, start_service
from tests.integration.test_slack_answers import confirmation, post_ts
from tests.integration.test_slack_chat import posted_to
from tests.integration.webchat_flow_kit import (
    agent_answered,
    answered_visitor,
    choices,
    items_coming,
    out_items,
    processed,
    send,
    store,
    visitor,
)
from tests.integration.webchat_kit import Chat, chat_service, receive, send_message

OUTAGE = "Unser Mailserver ist seit heute früh nicht erreichbar"
ADVICE = "Wir brauchen eine Beratung zur Architektur unserer Server-Umgebung"


async def test_a_verified_visitors_message_opens_a_web_ticket(slack: Slack) -> None:
    running = slack.running
    anna = await visitor(running.db, now=running.clock())
    row = await send(running, anna, OUTAGE, client_id="c1")
    [ticket] = await running.tickets()
    assert (row.disposition, row.ticket_number) == ("ticket", ticket.number)
    assert (ticket.channel, ticket.requester) == ("web", f"web:{anna.id}")
    assert (ticket.status, ticket.plan) == ("open", "standard")
    assert "sender_unverified" not in ticket.flags


async def test_the_new_ticket_gets_its_triage_post(slack: Slack) -> None:
    running = slack.running
    anna = await visitor(running.db, now=running.clock())
    await send(running, anna, OUTAGE, client_id="c1")
    [ticket] = await running.tickets()
    [post] = await posted_to(slack.fake, "C0TRIAGE")
    assert f"New ticket NT#{ticket.number} (web)" in post.args["text"]


async def test_the_visitor_is_answered_with_the_ticket_number_and_deadline(slack: Slack) -> None:
    running = slack.running
    anna, answer = await answered_visitor(running, OUTAGE)
    [ticket] = await running.tickets()
    assert ticket.due_at is not None
    assert (answer.kind, answer.ticket_number) == ("text", ticket.number)
    assert f"NT#{ticket.number}" in answer.text
    assert local_deadline(ticket.due_at, BERLIN, Language.DE) in answer.text


async def test_the_answer_is_worded_for_the_chat(slack: Slack) -> None:
    running = slack.running
    anna, answer = await answered_visitor(running, OUTAGE)
    assert "Bitte antworten Sie hier im Chat." in answer.text
    assert "Betreff" not in answer.text
    assert "Wählen Sie unten einen freien Termin" in answer.text


async def test_the_incoming_item_names_its_ticket(slack: Slack) -> None:
    running = slack.running
    anna = await visitor(running.db, now=running.clock())
    row = await send(running, anna, OUTAGE, client_id="c1")
    async with running.db.reader() as session:
        [item] = (await session.exec(select(WebItem).where(WebItem.message_id == row.id))).all()
    assert item.ticket_number == row.ticket_number


async def test_a_second_message_joins_the_visitors_ticket(slack: Slack) -> None:
    running = slack.running
    anna = await visitor(running.db, now=running.clock())
    first = await send(running, anna, OUTAGE, client_id="c1")
    second = await send(running, anna, "Auch der Kalender geht nicht.", client_id="c2")
    assert len(await running.tickets()) == 1
    assert (second.disposition, second.ticket_number) == ("follow-up", first.ticket_number)


async def test_a_follow_up_is_mirrored_into_the_triage_thread(slack: Slack) -> None:
    running = slack.running
    anna = await visitor(running.db, now=running.clock())
    first = await send(running, anna, OUTAGE, client_id="c1")
    thread = await post_ts(slack, first.ticket_number)
    await send(running, anna, "Auch der Kalender geht nicht.", client_id="c2")
    mirror = await confirmation(slack, thread)
    assert f"Customer reply on NT#{first.ticket_number} (web)" in mirror.args["text"]


async def test_another_visitors_message_opens_its_own_ticket(slack: Slack) -> None:
    running = slack.running
    anna = await visitor(running.db, now=running.clock())
    ben = await visitor(running.db, now=running.clock(), email="ben@logistik-nord.de")
    first = await send(running, anna, OUTAGE, client_id="c1")
    other = await send(running, ben, "Der Drucker im Lager druckt nur leere Seiten.",
                       client_id="c1")
    assert other.disposition == "ticket"
    assert other.ticket_number != first.ticket_number


async def test_an_unverified_visitors_ticket_is_unverified(slack: Slack) -> None:
    running = slack.running
    stranger = await visitor(running.db, now=running.clock(), verified=False)
    await send(running, stranger, ADVICE, client_id="c1")
    [ticket] = await running.tickets()
    assert (ticket.status, ticket.price_cents) == ("unverified", 0)
    assert "sender_unverified" in ticket.flags


async def test_an_unverified_visitor_gets_no_quote(slack: Slack) -> None:
    running = slack.running
    stranger, answer = await answered_visitor(running, ADVICE, verified=False)
    assert choices(answer) == []
    assert "EUR" not in answer.text


async def test_an_unverified_visitor_reads_why(slack: Slack) -> None:
    running = slack.running
    stranger, answer = await answered_visitor(running, ADVICE, verified=False)
    assert "noch nicht mit unserem Code bestätigt" in answer.text


async def test_the_same_request_from_a_verified_visitor_gets_a_quote(slack: Slack) -> None:
    """The other side of the test above: the text does ask for a quote."""
    running = slack.running
    anna, answer = await answered_visitor(running, ADVICE)
    [ticket] = await running.tickets()
    assert ticket.status == "awaiting_consent"
    assert [c["action"] for c in choices(answer)] == ["consent_yes", "consent_no"]


async def test_an_agents_answer_in_the_triage_thread_reaches_the_chat(slack: Slack) -> None:
    running = slack.running
    anna, row, _ = await agent_answered(slack, OUTAGE, "Wir haben den Dienst neu gestartet.")
    _, answer = await items_coming(running.db, anna, 2)
    assert (answer.kind, answer.ticket_number) == ("text", row.ticket_number)
    assert answer.key is not None and answer.key.startswith("agent:")
    assert answer.text == "Wir haben den Dienst neu gestartet."
    assert answer.author == "Anna Agentin"


async def test_the_triage_thread_says_the_answer_went_to_the_chat(slack: Slack) -> None:
    _, _, thread = await agent_answered(slack, OUTAGE, "Wir haben den Dienst neu gestartet.")
    line = await confirmation(slack, thread)
    assert line.args["text"] == "Sent to the customer in the web chat."


async def test_a_message_stored_before_a_crash_is_processed_once_after_it(
        db: Database, database_url: str, tmp_path: Path, fake: FakeSlack) -> None:
    await db.dispose()
    clock = Clock()
    first = await start_service(slack_settings(tmp_path, database_url, fake), clock)
    anna = await visitor(first.db, now=clock())
    await first.service.stop()  # the socket stored it, the worker never saw it
    stored = await store(first.db, anna, OUTAGE, client_id="c1", now=clock())
    second = await start_service(slack_settings(tmp_path, database_url, fake), clock)
    try:
        row = await processed(second, stored)
        [ticket] = await second.tickets()
        assert (row.disposition, row.ticket_number) == ("ticket", ticket.number)
    finally:
        await second.service.stop()
    third = await start_service(slack_settings(tmp_path, database_url, fake), clock)
    try:
        assert len(await third.tickets()) == 1
        assert len(await out_items(third.db, anna)) == 1
    finally:
        await third.service.stop()


@pytest.fixture
async def chat(db: Database, database_url: str, tmp_path: Path) -> AsyncIterator[Chat]:
    await db.dispose()
    async for started in chat_service(tmp_path, database_url):
        yield started


async def test_a_message_on_the_socket_is_answered_on_it_with_the_ticket_number(
        chat: Chat) -> None:
    """The whole way: the socket stores and acks, the web worker opens the ticket, the push
    loop sends our answer to the open socket."""
    ws, _ = await chat.hello()
    ack = await send_message(ws, "m-1", OUTAGE)
    pushed = await receive(ws)
    [ticket] = await chat.running.tickets()
    assert ack["type"] == "ack"
    assert (pushed["type"], pushed["item"]["direction"], pushed["item"]["ticket"]) == (
        "item", "out", ticket.number)
    assert f"NT#{ticket.number}" in pushed["item"]["text"]


async def test_our_answer_is_pushed_at_once_not_at_the_next_poll(
        db: Database, database_url: str, tmp_path: Path) -> None:
    """The push loop polls every 10 s here; the commit of the answer wakes it."""
    await db.dispose()
    async for chat in chat_service(tmp_path, database_url, webchat_push_seconds=10):
        ws, _ = await chat.hello()
        await send_message(ws, "m-1", OUTAGE)
        pushed = await asyncio.wait_for(receive(ws), timeout=5)
        assert (pushed["type"], pushed["item"]["direction"]) == ("item", "out")


async def test_two_messages_sent_at_once_open_one_ticket(slack: Slack) -> None:
    """A visitor types fast: both messages are in the worker at once, the second joins."""
    running = slack.running
    anna = await visitor(running.db, now=running.clock())
    first = await store(running.db, anna, OUTAGE, client_id="c1", now=running.clock())
    second = await store(running.db, anna, "Auch der Kalender geht nicht.", client_id="c2",
                         now=running.clock())
    worker = running.service.web_worker
    assert worker is not None
    worker.submit(first)
    worker.submit(second)
    rows = [await processed(running, first), await processed(running, second)]
    assert sorted(r.disposition for r in rows) == ["follow-up", "ticket"]
    assert len(await running.tickets()) == 1
