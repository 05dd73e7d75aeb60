"""Direct messages to the app: the author is found by the email of their Slack profile
(users.info on the fake Web API) and trusted only with a confirmed email from a workspace
mapped to that customer; answers go into the DM thread (signed HTTP)."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest

from models.tables import Message
from models.tickets import ticket_history
from tests.fakes.slack_api import FakeSlack
from tests.integration.conftest import Slack
from tests.integration.test_slack_chat import LOGISTIK, posted_to
from tests.integration.test_slack_triage import used

DM = "D0ANNA"
ANNA = "U0DMANNA"
TS = "1763900000.000100"


def anna(fake: FakeSlack, *, email: str = "anna@logistik-nord.de", confirmed: bool = True,
         team: str = LOGISTIK["team"]) -> None:
    fake.add_user(ANNA, email=email, confirmed=confirmed, team=team)


async def direct(slack: Slack, text: str = "Unser Mailserver ist seit heute früh nicht "
                 "erreichbar", ts: str = TS) -> None:
    await slack.sender.event(slack.sender.message(text, channel=DM, channel_type="im",
                                                  user=ANNA, team="T0ELSEWHERE", ts=ts))


def lookups(fake: FakeSlack) -> int:
    return len([c for c in fake.calls if c.method == "users.info"])


async def test_a_confirmed_customer_user_gets_a_trusted_ticket_answered_in_the_dm(
        slack: Slack) -> None:
    anna(slack.fake)
    await direct(slack)
    [row] = await slack.processed()
    [ticket] = await slack.running.tickets()
    [answer] = await posted_to(slack.fake, DM)
    assert (row.disposition, ticket.status, ticket.included) == ("ticket", "open", True)
    assert await used(slack, ticket) == 1
    assert answer.args["thread_ts"] == TS
    assert f"Ticket NT#{ticket.number} erstellt" in answer.args["text"]
    assert "Ihr Supportplan: deHOSTED Standard." in answer.args["text"]


async def test_an_unconfirmed_email_gets_an_unverified_ticket(slack: Slack) -> None:
    anna(slack.fake, confirmed=False)
    await direct(slack)
    await slack.processed()
    [ticket] = await slack.running.tickets()
    [answer] = await posted_to(slack.fake, DM)
    assert (ticket.status, ticket.included, ticket.plan) == ("unverified", False, None)
    assert await used(slack, ticket) == 0
    assert "Standard" not in answer.args["text"]
    assert "nicht als eines Ihrer Organisation bestätigt" in answer.args["text"]


async def test_a_user_of_another_workspace_with_a_customers_email_is_not_trusted(
        slack: Slack) -> None:
    # anyone can create a workspace and confirm an address of the customer's domain there
    anna(slack.fake, team="T0ATTACKER")
    await direct(slack)
    await slack.processed()
    [ticket] = await slack.running.tickets()
    assert (ticket.status, ticket.included, ticket.plan) == ("unverified", False, None)
    assert await used(slack, ticket) == 0


async def test_an_unknown_user_is_asked_for_the_customer_number(slack: Slack) -> None:
    await direct(slack)
    await slack.processed()
    [ticket] = await slack.running.tickets()
    [answer] = await posted_to(slack.fake, DM)
    assert ticket.customer_id is None
    assert "unknown_sender" in ticket.flags
    assert "NetTask-Kundennummer" in answer.args["text"]


async def test_a_user_whose_email_no_customer_holds_is_asked_for_the_number(
        slack: Slack) -> None:
    anna(slack.fake, email="anna@gmail.example")
    await direct(slack)
    await slack.processed()
    [ticket] = await slack.running.tickets()
    assert ticket.customer_id is None


async def attempts_reach(slack: Slack, attempts: int) -> Message:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        [row] = await slack.rows()
        if row.attempts >= attempts:
            return row
        await asyncio.sleep(0.02)
    raise AssertionError(f"the message never reached {attempts} attempts")


@pytest.mark.parametrize(("status", "error"), [(500, ""), (429, "ratelimited")])
async def test_a_failed_lookup_keeps_the_message_pending_and_retries(
        slack: Slack, status: int, error: str) -> None:
    anna(slack.fake)
    slack.fake.fail_next(1, status=status, error=error, method="users.info")
    await direct(slack)
    failed = await attempts_reach(slack, 1)
    assert failed.disposition == "pending"
    assert await slack.running.tickets() == []
    slack.running.clock.now += timedelta(seconds=10)
    worker = slack.running.service.slack_worker
    assert worker is not None
    await worker.scan()
    [row] = await slack.processed()
    [ticket] = await slack.running.tickets()
    assert (row.disposition, row.ticket_number) == ("ticket", ticket.number)
    assert ticket.status == "open"
    assert lookups(slack.fake) == 2


async def test_two_messages_of_one_user_ask_slack_once(slack: Slack) -> None:
    anna(slack.fake)
    await direct(slack)
    await slack.processed()
    await direct(slack, "Der Drucker im Empfang druckt nur leere Seiten", "1763900200.000100")
    await slack.processed()
    assert len(await slack.running.tickets()) == 2
    assert lookups(slack.fake) == 1


async def test_a_burst_of_messages_of_one_user_asks_slack_once(slack: Slack) -> None:
    anna(slack.fake)
    slack.fake.latency["users.info"] = 0.5  # both messages are processed while Slack thinks
    await direct(slack)
    await direct(slack, "Der Drucker im Empfang druckt nur leere Seiten", "1763900200.000100")
    rows = await slack.processed()
    assert [r.disposition for r in rows] == ["ticket", "ticket"]
    assert lookups(slack.fake) == 1


async def test_the_profile_is_asked_again_after_the_cache_time(slack: Slack) -> None:
    anna(slack.fake)
    await direct(slack)
    await slack.processed()
    slack.running.clock.now += timedelta(seconds=600)
    await direct(slack, "Der Drucker im Empfang druckt nur leere Seiten", "1763900200.000100")
    await slack.processed()
    assert lookups(slack.fake) == 2


async def test_a_reply_in_the_dm_thread_is_a_proven_follow_up(slack: Slack) -> None:
    anna(slack.fake)
    await direct(slack)
    await slack.processed()
    await slack.sender.event(slack.sender.message(
        "Es betrifft auch den Kalender.", channel=DM, channel_type="im", user=ANNA,
        ts="1763900100.000200", thread_ts=TS))
    _, reply = await slack.processed()
    [ticket] = await slack.running.tickets()
    assert (reply.disposition, reply.ticket_number) == ("follow-up", ticket.number)
    assert ticket.number is not None
    async with slack.running.db.reader() as session:
        _, trail = await ticket_history(session, ticket.number)
    assert [e.action for e in trail][-1] == "customer_reply"
