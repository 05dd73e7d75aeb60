"""Attacks on the customer controls that an attacker's review found working (signed HTTP clicks
to /slack/events against the fake Web API, SMTP for mail). Each docstring says what the attacker
gained before the fix; each test failed then. The races (two clicks at once) show on
PostgreSQL; on SQLite, whose one writer takes them in turn, the same outcome is asserted."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from sqlmodel import select

from bot.cases.service import record_first_response
from bot.intake.slack.consent_blocks import DECLINE
from bot.intake.slack.triage import DEPARTMENT, PREMIER, SEVERITY
from models.tables import CallbackBooking, Ticket
from models.tickets import ticket_history
from tests.integration.conftest import AGENT, Running, Slack
from tests.integration.test_email import outage
from tests.integration.test_mail_callbacks import choose, first_answer
from tests.integration.test_mail_money import WEBER, billable_weber_ticket
from tests.integration.test_slack_callbacks import bookings, buttons, click, opened
from tests.integration.test_slack_chat import LOGISTIK, posted_to
from tests.integration.test_slack_customer_buttons import fresh, quotes

EXAMPLE = {"channel": "C0EXCONS", "team": "T0EXCONS"}  # M-2005: m365 Professional, 2 Premier


async def until(slack: Slack, number: int | None, done: Any) -> Ticket:
    """The ticket once `done(ticket)` holds (AssertionError after 10 s)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        ticket = await fresh(slack, number)
        if done(ticket):
            return ticket
        await asyncio.sleep(0.02)
    raise AssertionError(f"NT#{number} never reached the expected state")


async def booked_or_refused(slack: Slack, refusals_before: int) -> list[CallbackBooking]:
    """The bookings once the click was handled: booked, or refused to the clicker."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = await bookings(slack)
        if found or len(slack.fake.made("chat.postEphemeral")) > refusals_before:
            return found
        await asyncio.sleep(0.02)
    raise AssertionError("the click was neither booked nor refused")


async def test_a_verified_outsider_replying_in_the_thread_books_no_callback(
        running: Running) -> None:
    """A verified sender of ANOTHER domain (here a Stadtwerke employee whom Anna had copied on
    her outage report) answers "2" with In-Reply-To naming Anna's own Message-ID. The thread
    lookup takes any stored id, and `_follow_up` counts "trusted" (DKIM of *some* domain) as
    proof without asking whether the sender is the ticket's customer: the outsider books a
    callback on Logistik Nord's ticket and spends one of its monthly callbacks (the same gap
    lets them reopen a closed ticket or restart a paused clock)."""
    await first_answer(running)  # Anna's <o-1@logistik-nord.de> opened NT#1 with 3 slots
    forged = outage(sender="it@stadtwerke-demo.de", message_id="<x-1@stadtwerke-demo.de>",
                    subject="AW: Mailserver ausgefallen", body="2",
                    extra="In-Reply-To: <o-1@logistik-nord.de>\r\n")
    await running.send(forged, sender="it@stadtwerke-demo.de")
    await running.settle()
    async with running.db.session() as session:
        assert (await session.exec(select(CallbackBooking))).all() == []


async def test_answering_twice_by_mail_books_one_callback(running: Running) -> None:
    """In Slack a ticket holds one callback ("cancel it first"), but `callbacks.book` itself
    does not say so and the mail path (`Conversation._book_callback`) never asks: a customer
    whose second answer picks another slot of the same offer (or a mail client that sends the
    answer again under a new id) gets a second booking on the same ticket and loses a second
    callback of the month."""
    message_id, _ = await first_answer(running)
    await choose(running, message_id, "2", 1)
    await choose(running, message_id, "3", 2)
    async with running.db.session() as session:
        made = (await session.exec(select(CallbackBooking))).all()
    assert [b.status for b in made] == ["booked"]


async def test_a_reused_message_id_does_not_take_over_the_customers_thread(
        running: Running) -> None:
    """Anyone who knows a customer's Message-ID (a copy, a forwarded mail) sends an unsigned
    mail of their own under that same id: it is stored (flagged message_id_reused) and opens a
    ticket. `ticket_of_ids` then takes the NEWEST stored row among all the ids a reply names,
    so the customer's "JA", In-Reply-To our own unguessable quote id and References naming
    their original mail as every mail client does, lands on the attacker's ticket: the
    customer's consent to their own quote is lost (and every later reply in that thread goes
    to the attacker's ticket instead of theirs)."""
    ticket = await billable_weber_ticket(running)  # NT#3 waits for the customer's yes
    quote = running.replies()[2]
    hijack = outage(sender="mallory@evil.example", message_id="<w-2@kanzlei-weber.de>",
                    subject="Bitte um Rueckruf", body="Unser Drucker ist kaputt.", signed=False)
    await running.send(hijack, sender="mallory@evil.example")
    await running.settle()
    yes = outage(sender=WEBER, message_id="<w-yes@kanzlei-weber.de>", subject="Re: Angebot",
                 body="JA", signed=True,
                 extra=(f"In-Reply-To: {quote['Message-ID']}\r\n"
                        f"References: <w-2@kanzlei-weber.de> {quote['Message-ID']}\r\n"))
    await running.send(yes, sender=WEBER)
    await running.settle()
    [after] = [t for t in await running.tickets() if t.number == ticket.number]
    assert after.consent is True


async def test_a_slot_button_books_nothing_on_a_declined_ticket(
        slack: Slack) -> None:
    """The slot buttons of the first answer stay valid whatever becomes of the ticket:
    CallbackActions passes `Expected(closed=None)`, so after the agent re-priced the ticket and
    the customer declined the quote (the ticket is closed as declined), a click on an old slot
    still books a callback, takes an agent's slot and uses one of the month's callbacks on a
    ticket nobody will work on."""
    ticket, post = await opened(slack, LOGISTIK)
    await slack.sender.choose(AGENT, DEPARTMENT, f"{ticket.number}:consulting", select=True)
    [quote] = await quotes(slack, ticket.number)
    priced = await fresh(slack, ticket.number)
    await slack.sender.press(DECLINE, f"{ticket.number}:{priced.price_cents}",
                             channel=LOGISTIK["channel"], message_ts=str(quote.result_ts),
                             user_team=LOGISTIK["team"])
    await until(slack, ticket.number, lambda t: t.status == "declined")
    refusals = len(slack.fake.made("chat.postEphemeral"))
    await click(slack, post, buttons(post)[0], team=LOGISTIK["team"])
    assert await booked_or_refused(slack, refusals) == []


async def test_retriage_of_an_answered_ticket_asks_for_consent(
        slack: Slack) -> None:
    """An included (free) ticket that an agent already answered is moved to a department the
    plan does not cover: `retriage` makes it billable at the single-incident price but asks for
    consent only in `open`/`awaiting_consent`, so the customer is charged for a billable
    incident they never agreed to (the policy: a billable incident needs explicit consent)."""
    ticket, _ = await opened(slack, LOGISTIK)
    async with slack.running.db.session() as session:
        await record_first_response(session, ticket, slack.running.clock())
    await slack.sender.choose(AGENT, DEPARTMENT, f"{ticket.number}:consulting", select=True)
    after = await until(slack, ticket.number, lambda t: t.department == "consulting")
    assert after.billable is True
    assert after.status == "awaiting_consent"


async def test_a_premier_double_click_spends_one_escalation(slack: Slack) -> None:
    """Two clicks on "Escalate to Microsoft Premier" handled at once (a double click, two agents
    on one post): `escalate_premier` reads the ticket without a lock, so both see it not yet
    escalated and both claim the allowance; Example Consulting loses both of its two monthly
    Premier escalations on one ticket. (PostgreSQL: SQLite's one writer serialises the clicks.)"""
    ts = "1763900000.000100"
    await slack.sender.event(slack.sender.message(
        "Our mail server has been unreachable since this morning", ts=ts, **EXAMPLE))
    await slack.processed()
    [ticket] = await slack.running.tickets()
    await posted_to(slack.fake, "C0TRIAGE")
    await slack.sender.choose(AGENT, SEVERITY, f"{ticket.number}:C", select=True)
    await until(slack, ticket.number, lambda t: t.severity == "C")
    await asyncio.gather(slack.sender.choose(AGENT, PREMIER, str(ticket.number)),
                         slack.sender.choose("U0AGENT2", PREMIER, str(ticket.number)))
    assert ticket.number is not None
    deadline = time.monotonic() + 10
    while True:
        async with slack.running.db.reader() as session:
            _, trail = await ticket_history(session, ticket.number)
        outcomes = [e.action for e in trail if e.action.startswith("premier_")]
        if len(outcomes) == 2 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.02)
    assert sorted(outcomes) == ["premier_escalated", "premier_refused"]


async def test_two_slot_buttons_clicked_at_once_book_one_callback(
        slack: Slack) -> None:
    """Two colleagues (or one double click) press two different slot buttons of the same offer
    at the same moment: CallbackActions._book checks "one callback per ticket"
    (`active_booking`) without locking the ticket, so on PostgreSQL both clicks see no booking
    and both book: the ticket holds two callbacks and the customer loses two of the month's.
    (SQLite's one writer serialises the clicks.)"""
    _, post = await opened(slack, LOGISTIK)
    first, second = buttons(post)[:2]
    await asyncio.gather(click(slack, post, first, team=LOGISTIK["team"]),
                         click(slack, post, second, user="U0BERND", team=LOGISTIK["team"]))
    deadline = time.monotonic() + 10
    while True:  # both clicks handled: a booking each, or a booking and a refusal
        made = await bookings(slack)
        if len(made) + len(slack.fake.made("chat.postEphemeral")) >= 2:
            break
        assert time.monotonic() < deadline, "the clicks were not handled"
        await asyncio.sleep(0.02)
    assert [b.status for b in made] == ["booked"]
