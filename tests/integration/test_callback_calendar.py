"""A moved or cancelled callback updates the customer's calendar (RFC 5546): a move sends
METHOD:REQUEST with the same UID and a higher SEQUENCE, a cancellation METHOD:CANCEL; the
customer moves or cancels by mail and by button. Invitations are parsed back with icalendar;
on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from email.message import EmailMessage

import icalendar
from sqlmodel import col, select

from bot.cases.callbacks import callbacks_left, last_offer
from models.tables import CallbackBooking, Usage
from tests.integration.conftest import Running, Slack
from tests.integration.test_mail_callbacks import choose, first_answer
from tests.integration.test_slack_callbacks import (
    book_first_slot,
    buttons,
    click,
    opened,
    sent_call,
)
from tests.integration.test_slack_callbacks import bookings as bookings_of
from tests.integration.test_slack_chat import LOGISTIK


def invitation(mail: EmailMessage) -> icalendar.Calendar:
    """The calendar attached to one of our mails."""
    [part] = [p for p in mail.walk() if p.get_content_type() == "text/calendar"]
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return icalendar.Calendar.from_ical(payload)


def event(calendar: icalendar.Calendar) -> icalendar.Event:
    [found] = calendar.walk("VEVENT")
    assert isinstance(found, icalendar.Event)
    return found


def start(calendar: icalendar.Calendar) -> datetime:
    moment = event(calendar).decoded("DTSTART")
    assert isinstance(moment, datetime)
    return moment.astimezone(UTC)


async def bookings(running: Running) -> list[CallbackBooking]:
    async with running.db.reader() as session:
        return list((await session.exec(select(CallbackBooking)
                                         .order_by(col(CallbackBooking.id)))).all())


async def callbacks_used(running: Running) -> int:
    async with running.db.reader() as session:
        rows = (await session.exec(select(Usage).where(col(Usage.kind) == "callback"))).all()
    return sum(r.used for r in rows)


async def booked_by_mail(running: Running) -> tuple[str, list[datetime], icalendar.Calendar]:
    """Anna books the second offered slot by mail; our first answer's id, the offer, the
    invitation."""
    message_id, offered = await first_answer(running)
    await choose(running, message_id, "2", 1)
    return message_id, offered, invitation(running.replies()[-1])


async def test_the_first_invitation_is_a_request_of_sequence_0(running: Running) -> None:
    _, offered, first = await booked_by_mail(running)
    assert str(first["METHOD"]) == "REQUEST"
    assert event(first)["SEQUENCE"] == 0
    assert start(first) == offered[1]


async def test_moving_by_mail_sends_the_same_uid_with_a_higher_sequence(
        running: Running) -> None:
    message_id, offered, first = await booked_by_mail(running)
    await choose(running, message_id, "Termin verschieben", 2)
    offer = running.replies()[-1].get_content()
    assert "gern verschieben wir Ihren Rückruf" in offer
    async with running.db.reader() as session:
        again = await last_offer(session, 1)
    chosen = next(slot for slot in again if slot != offered[1])
    await choose(running, message_id, str(again.index(chosen) + 1), 3)
    moved = invitation(running.replies()[-1])
    assert str(moved["METHOD"]) == "REQUEST"
    assert event(moved)["UID"] == event(first)["UID"]
    assert event(moved)["SEQUENCE"] == 1
    assert start(moved) == chosen
    assert [b.status for b in await bookings(running)] == ["cancelled", "booked"]
    assert await callbacks_used(running) == 1


async def test_cancelling_by_mail_sends_a_cancel_for_the_same_uid(running: Running) -> None:
    message_id, offered, first = await booked_by_mail(running)
    await choose(running, message_id, "Rückruf absagen", 2)
    cancelled = invitation(running.replies()[-1])
    assert str(cancelled["METHOD"]) == "CANCEL"
    assert event(cancelled)["UID"] == event(first)["UID"]
    assert event(cancelled)["SEQUENCE"] == 1
    assert str(event(cancelled)["STATUS"]) == "CANCELLED"
    assert start(cancelled) == offered[1]
    assert [b.status for b in await bookings(running)] == ["cancelled"]
    assert await callbacks_used(running) == 0


async def test_a_forged_cancel_changes_nothing(running: Running) -> None:
    await booked_by_mail(running)
    forged = (b"From: Anna <anna@logistik-nord.de>\r\nTo: support@nettask.de\r\n"
              b"Subject: Re: [NT#1] Rueckruf\r\nMessage-ID: <forged-cancel@evil.example>\r\n"
              b"\r\nRueckruf absagen\r\n")
    await running.send(forged, sender="anna@logistik-nord.de")
    await running.settle()
    assert [b.status for b in await bookings(running)] == ["booked"]
    assert not any(p.get_content_type() == "text/calendar"
                   for p in running.replies()[-1].walk())  # no cancellation went out


async def test_moving_by_button_offers_slots_and_a_click_moves_the_booking(
        slack: Slack) -> None:
    ticket, confirmation = await book_first_slot(slack)
    assert ticket.number is not None
    [before] = await bookings_of(slack)
    move = buttons(confirmation)[1]
    assert move["text"]["text"] == "Rückruf verschieben"
    await click(slack, confirmation, move)
    offer = await sent_call(slack, "callback-offer:", ticket.number)
    assert "Gern verschieben wir Ihren Rückruf" in json.loads(offer.payload)["text"]
    assert [b.status for b in await bookings_of(slack)] == ["booked"]  # held meanwhile
    target = next(b for b in buttons(offer) if not b["value"].endswith(
        before.slot_start.astimezone(UTC).isoformat()))
    await click(slack, offer, target)
    await sent_call(slack, "callback-booked:", ticket.number, count=2)
    old, new = await bookings_of(slack)
    assert (old.status, new.status) == ("cancelled", "booked")
    assert new.slot_start.isoformat() == target["value"].partition(":")[2]
    async with slack.running.db.reader() as session:
        left = await callbacks_left(session, engine=slack.running.service.engine,
                                    ticket=ticket, now=slack.running.clock())
    assert left == 4  # Standard: 5 a month; the move used none more


async def test_an_old_offer_does_not_move_a_booking(slack: Slack) -> None:
    ticket, post = await opened(slack, LOGISTIK)
    await click(slack, post, buttons(post)[0])
    await sent_call(slack, "callback-booked:", ticket.number or 0)
    await click(slack, post, buttons(post)[1])  # the first offer, used already
    assert [b.status for b in await bookings_of(slack)] == ["booked"]
