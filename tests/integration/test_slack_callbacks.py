"""Callback slots in Slack: the first answer carries a button per free slot; a customer's
signed click books (or cancels) on evidence only; agents see every booking in the triage
thread, from Slack and from mail (signed HTTP + the fake Web API, SMTP for mail)."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import col, select

from bot.cases import callbacks
from bot.cases.replies import local_deadline, words
from bot.domain import Language
from bot.intake.slack.blocks import CHOICES_BLOCK
from models.slack import list_calls
from models.tables import CallbackBooking, SlackCall, Ticket
from tests.fakes.slack_api import Call
from tests.integration.conftest import BERLIN, Slack
from tests.integration.test_email import outage
from tests.integration.test_slack_chat import LOGISTIK, posted_to
from tests.integration.test_slack_triage import wait_for_mails

SEEBLICK = {"channel": "C0SEEBLICK", "team": "T0SEEBLICK", "user": "U0SEE"}  # m365 Standard: 5
EXAMPLE = {"channel": "C0EXCONS", "team": "T0EXCONS", "user": "U0EXC"}  # m365 Pro, English
STADTWERKE = {"channel": "C0SWDEMO", "team": "T0SWDEMO", "user": "U0SWD"}  # deHOSTED Pro
REFUSED = words("click_refusals", Language.DE)  # Logistik Nord writes German
# each demo customer's channel and its own workspace (bot/demo_customers.csv)
TEAMS = {where["channel"]: where["team"] for where in (LOGISTIK, SEEBLICK, EXAMPLE, STADTWERKE)}


async def sent_call(slack: Slack, key_start: str, number: int, count: int = 1) -> SlackCall:
    """The `count`th call of a ticket whose key starts so, once Slack answered it."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        async with slack.running.db.reader() as session:
            found = [c for c in await list_calls(session, ticket_number=number)
                     if c.key.startswith(key_start) and c.status == "sent"]
        if len(found) >= count:
            return found[count - 1]
        await asyncio.sleep(0.02)
    raise AssertionError(f"no {count} sent {key_start} calls on NT#{number}")


def buttons(call: SlackCall) -> list[dict[str, Any]]:
    blocks = json.loads(call.payload)["blocks"]
    return [e for b in blocks if b.get("block_id") == CHOICES_BLOCK for e in b["elements"]]


async def opened(slack: Slack, where: dict[str, str], ts: str = "1763900000.000100",
                 text: str = "Unser Mailserver ist seit heute früh nicht erreichbar",
                 ) -> tuple[Ticket, SlackCall]:
    """A customer's ticket in its channel, and our first answer in its thread, once sent."""
    await slack.sender.event(slack.sender.message(text, ts=ts, **where))
    await slack.processed()
    ticket = next(t for t in await slack.running.tickets()
                  if t.requester == f"{where['channel']}:{ts}")
    assert ticket.number is not None
    return ticket, await sent_call(slack, "answer:", ticket.number)


async def click(slack: Slack, post: SlackCall, button: dict[str, Any], *,
                user: str = "U0ANNA", team: str | None = None, channel: str | None = None,
                value: str | None = None) -> None:
    assert post.result_ts is not None
    posted_in = json.loads(post.payload)["channel"]
    answer = await slack.sender.choose(
        user, button["action_id"], value or button["value"],
        channel=channel or posted_in, message_ts=post.result_ts,
        user_team=team or TEAMS[posted_in])
    assert answer.status == 200


async def bookings(slack: Slack) -> list[CallbackBooking]:
    async with slack.running.db.reader() as session:
        return list((await session.exec(
            select(CallbackBooking).order_by(col(CallbackBooking.id)))).all())


async def offered(slack: Slack, number: int | None) -> list[datetime]:
    assert number is not None
    async with slack.running.db.reader() as session:
        return await callbacks.last_offer(session, number)


async def refusal(slack: Slack) -> str:
    [ephemeral] = await slack.fake.wait_for("chat.postEphemeral", 1)
    return str(ephemeral.args["text"])


async def booked(slack: Slack, count: int = 1) -> list[CallbackBooking]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = [b for b in await bookings(slack) if b.status == "booked"]
        if len(found) >= count:
            return found
        await asyncio.sleep(0.02)
    raise AssertionError(f"fewer than {count} bookings")


async def test_the_first_answer_carries_a_button_per_offered_slot(slack: Slack) -> None:
    ticket, post = await opened(slack, LOGISTIK)
    slots = await offered(slack, ticket.number)
    assert len(slots) == 3
    assert [b["text"]["text"] for b in buttons(post)] == [
        local_deadline(s, BERLIN, Language.DE) for s in slots]
    assert [b["value"] for b in buttons(post)] == [f"{ticket.number}:{s.isoformat()}"
                                                   for s in slots]
    assert "Wählen Sie unten einen freien Termin (30 Minuten)." in json.loads(post.payload)["text"]


async def test_an_english_customer_gets_english_labels(slack: Slack) -> None:
    ticket, post = await opened(slack, EXAMPLE,
                                text="Our mail server has been unreachable since this morning")
    slots = await offered(slack, ticket.number)
    assert [b["text"]["text"] for b in buttons(post)] == [
        local_deadline(s, BERLIN, Language.EN) for s in slots]
    assert buttons(post)[0]["text"]["text"].startswith("Mon 23 Nov 2026 ")


async def test_a_click_books_the_slot_confirms_it_and_removes_the_buttons(slack: Slack) -> None:
    ticket, post = await opened(slack, LOGISTIK)
    slots = await offered(slack, ticket.number)
    await click(slack, post, buttons(post)[1])
    [booking] = await booked(slack)
    assert booking.slot_start == slots[1]
    assert ticket.number is not None
    confirmation = await sent_call(slack, "callback-booked:", ticket.number)
    text = json.loads(confirmation.payload)["text"]
    assert "noch 4 übrig" in text  # Standard: 5 callbacks a month, one used
    assert "Unter welcher Telefonnummer erreichen wir Sie?" in text
    assert [b["text"]["text"] for b in buttons(confirmation)] == ["Rückruf absagen",
                                                                  "Rückruf verschieben"]
    [update] = await slack.fake.wait_for("chat.update", 1)
    assert update.args["ts"] == post.result_ts
    assert [b.get("block_id") for b in update.args["blocks"]].count(CHOICES_BLOCK) == 0
    assert update.args["blocks"][-1]["text"]["text"] == (
        "Gebucht: " + local_deadline(slots[1], BERLIN, Language.DE))


async def test_a_click_by_a_user_of_another_workspace_is_refused(slack: Slack) -> None:
    _, post = await opened(slack, LOGISTIK)
    await click(slack, post, buttons(post)[0], user="U0MALLORY", team="T0EVIL")
    assert await refusal(slack) == REFUSED["other_workspace"]
    assert await bookings(slack) == []
    assert slack.fake.made("chat.update") == []


async def test_a_click_outside_the_tickets_conversation_is_refused(slack: Slack) -> None:
    _, post = await opened(slack, LOGISTIK)
    # the same workspace, another customer's channel
    await click(slack, post, buttons(post)[0], channel="C0SWDEMO")
    assert await refusal(slack) == REFUSED["another_conversation"]
    assert await bookings(slack) == []


async def test_a_forged_slot_that_was_not_offered_is_refused(slack: Slack) -> None:
    ticket, post = await opened(slack, LOGISTIK)
    forged = (await offered(slack, ticket.number))[-1] + timedelta(minutes=30)
    await click(slack, post, buttons(post)[0], value=f"{ticket.number}:{forged.isoformat()}")
    assert await refusal(slack) == REFUSED["mismatch"]
    assert await bookings(slack) == []


async def test_a_second_click_on_a_used_offer_is_refused(slack: Slack) -> None:
    ticket, post = await opened(slack, LOGISTIK)
    assert ticket.number is not None
    await click(slack, post, buttons(post)[0])
    await sent_call(slack, "callback-used:", ticket.number)  # the buttons are gone
    await click(slack, post, buttons(post)[1])
    assert await refusal(slack) == REFUSED["mismatch"]
    assert len(await bookings(slack)) == 1


async def test_a_button_of_an_offer_replaced_by_a_newer_one_is_refused(slack: Slack) -> None:
    ticket, post = await opened(slack, LOGISTIK)
    assert ticket.number is not None
    slots = await offered(slack, ticket.number)
    async with slack.running.db.session() as session:  # e.g. offered again by an agent
        await callbacks.record_offer(session, number=ticket.number, slots=slots[1:],
                                     now=slack.running.clock(), actor="test")
    await click(slack, post, buttons(post)[0])
    assert await refusal(slack) == (f"Nothing was changed: this slot is not among those last "
                                    f"offered on NT#{ticket.number}.")
    assert await bookings(slack) == []


async def test_a_ticket_with_a_callback_books_no_second_one(slack: Slack) -> None:
    ticket, post = await opened(slack, LOGISTIK)
    assert ticket.number is not None
    slots = await offered(slack, ticket.number)
    async with slack.running.db.session() as session:  # booked by mail or by an agent
        await callbacks.book(session, engine=slack.running.service.engine, number=ticket.number,
                             slot=slots[0], now=slack.running.clock(), actor="agent mia")
    await click(slack, post, buttons(post)[1])
    text = await refusal(slack)
    assert text.startswith(f"Nothing was changed: NT#{ticket.number} already has a callback, ")
    assert len(await bookings(slack)) == 1


async def test_a_button_naming_another_ticket_is_refused(slack: Slack) -> None:
    first, post = await opened(slack, LOGISTIK)
    second, _ = await opened(slack, LOGISTIK, ts="1763900200.000100",
                             text="Der Drucker im Empfang druckt nur leere Seiten")
    slot = (await offered(slack, second.number))[0]
    await click(slack, post, buttons(post)[0], value=f"{second.number}:{slot.isoformat()}")
    assert await refusal(slack) == REFUSED["superseded"]
    assert await bookings(slack) == []


async def test_two_customers_racing_for_the_last_place_get_one_booking_and_one_offer(
        slack: Slack) -> None:
    logistik, logistik_post = await opened(slack, LOGISTIK)
    seeblick, seeblick_post = await opened(slack, SEEBLICK, ts="1763900300.000100")
    slot = (await offered(slack, logistik.number))[0]
    assert slot == (await offered(slack, seeblick.number))[0]
    other, _ = await opened(slack, STADTWERKE, ts="1763900400.000100")
    assert other.number is not None
    async with slack.running.db.session() as session:  # one of the two places is taken
        await callbacks.book(session, engine=slack.running.service.engine, number=other.number,
                             slot=slot, now=slack.running.clock(), actor="test")
    await asyncio.gather(click(slack, logistik_post, buttons(logistik_post)[0]),
                         click(slack, seeblick_post, buttons(seeblick_post)[0], user="U0SEE"))
    await slack.fake.wait_for("chat.update", 2)
    on_slot = [b for b in await bookings(slack) if b.slot_start == slot]
    assert len(on_slot) == 2
    loser = ({logistik.number, seeblick.number} - {b.ticket_number for b in on_slot}).pop()
    again = await sent_call(slack, "callback-offer:", loser)
    assert "nicht mehr frei" in json.loads(again.payload)["text"]
    assert slot.isoformat() not in [b["value"].partition(":")[2] for b in buttons(again)]


async def book_first_slot(slack: Slack) -> tuple[Ticket, SlackCall]:
    ticket, post = await opened(slack, LOGISTIK)
    assert ticket.number is not None
    await click(slack, post, buttons(post)[0])
    return ticket, await sent_call(slack, "callback-booked:", ticket.number)


async def test_cancel_gives_the_callback_back_and_offers_slots_again(slack: Slack) -> None:
    ticket, confirmation = await book_first_slot(slack)
    assert ticket.number is not None
    await click(slack, confirmation, buttons(confirmation)[0])
    again = await sent_call(slack, "callback-offer:", ticket.number)
    [booking] = await bookings(slack)
    async with slack.running.db.reader() as session:
        left = await callbacks.callbacks_left(session, engine=slack.running.service.engine,
                                              ticket=ticket, now=slack.running.clock())
    assert booking.status == "cancelled"
    assert left == 5
    assert len(buttons(again)) == 3
    assert "ist abgesagt" in json.loads(again.payload)["text"]


async def test_a_cancel_by_a_user_of_another_workspace_is_refused(slack: Slack) -> None:
    _, confirmation = await book_first_slot(slack)
    await click(slack, confirmation, buttons(confirmation)[0], user="U0MALLORY", team="T0EVIL")
    assert await refusal(slack) == REFUSED["other_workspace"]
    assert [b.status for b in await bookings(slack)] == ["booked"]


async def test_cancelling_a_callback_that_has_begun_is_refused(slack: Slack) -> None:
    _, confirmation = await book_first_slot(slack)
    [booking] = await bookings(slack)
    slack.running.clock.now = booking.slot_start
    await click(slack, confirmation, buttons(confirmation)[0])
    assert await refusal(slack) == ("Nothing was changed: the callback has already begun; it "
                                    "can no longer be cancelled.")
    assert [b.status for b in await bookings(slack)] == ["booked"]


async def triage_lines(slack: Slack, count: int) -> list[Call]:
    """The callback lines in ticket 1's triage thread, once there are `count` of them."""
    post = await sent_call(slack, "triage:NT#", 1)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        lines = [c for c in await posted_to(slack.fake, "C0TRIAGE")
                 if c.args.get("thread_ts") == post.result_ts
                 and c.args["text"].startswith("Callback")]
        if len(lines) >= count:
            return lines
        await asyncio.sleep(0.02)
    raise AssertionError(f"fewer than {count} lines in the triage thread")


async def test_a_slack_booking_and_its_cancellation_are_told_in_the_triage_thread(
        slack: Slack) -> None:
    _, confirmation = await book_first_slot(slack)
    await click(slack, confirmation, buttons(confirmation)[0])
    booked_line, cancelled_line = await triage_lines(slack, 2)
    assert booked_line.args["text"].startswith("Callback booked on NT#1 for <!date^")
    assert "slack user U0ANNA" in booked_line.args["text"]
    assert cancelled_line.args["text"].startswith("Callback on NT#1 for <!date^")
    assert "cancelled; the callback was given back" in cancelled_line.args["text"]


async def test_a_rebook_is_told_in_the_triage_thread(slack: Slack) -> None:
    await book_first_slot(slack)
    [booking] = await bookings(slack)
    assert booking.id is not None
    async with slack.running.db.session() as session:
        await callbacks.rebook(session, engine=slack.running.service.engine,
                               booking_id=booking.id, slot=booking.slot_start + timedelta(hours=2),
                               now=slack.running.clock(), actor="agent mia")
    _, moved = await triage_lines(slack, 2)
    assert moved.args["text"].startswith("Callback on NT#1 moved from <!date^")
    assert moved.args["text"].endswith("(agent mia).")


async def test_a_mail_booking_is_told_in_the_triage_thread(slack: Slack) -> None:
    code, _ = await slack.running.send(outage(), sender="anna@logistik-nord.de")
    assert code == 250
    await wait_for_mails(slack, 1)
    await sent_call(slack, "triage:NT#", 1)
    first = slack.running.replies()[0]
    choice = outage(message_id="<choice@logistik-nord.de>", subject="AW: Rückruf", body="2",
                    signed=False, extra=f"In-Reply-To: {first['Message-ID']}\r\n")
    await slack.running.send(choice, sender="anna@logistik-nord.de")
    [line] = await triage_lines(slack, 1)
    assert line.args["text"].startswith("Callback booked on NT#1 for <!date^")
    assert "sender anna@logistik-nord.de" in line.args["text"]
