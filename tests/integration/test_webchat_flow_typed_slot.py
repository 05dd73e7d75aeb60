"""A web visitor who types a slot's number ("2", "Slot 2") instead of clicking its button: the
same booking as the button, under the same evidence rule (a verified visitor of the ticket's
customer), and never a mail to a web ticket's requester (`web:<id>` is no mail address)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import col, select

from bot.cases import callbacks
from models import callbacks as repo
from models.tables import CallbackBooking, Message, WebVisitor
from tests.integration.conftest import Running, Slack
from tests.integration.webchat_flow_kit import choices, out_items, send, visitor

OUTAGE = "Unser Mailserver ist seit heute früh nicht erreichbar"


async def offered(running: Running, who: WebVisitor) -> tuple[int, list[dict[str, str]]]:
    """The visitor reports an outage: the ticket and the callback slots shown as buttons."""
    row = await send(running, who, OUTAGE, client_id="c1")
    assert row.ticket_number is not None
    [answer] = await out_items(running.db, who)
    return row.ticket_number, choices(answer)


async def booking(running: Running, number: int) -> CallbackBooking | None:
    async with running.db.reader() as session:
        return await repo.active_booking(session, number)


async def mails(running: Running) -> list[Message]:
    """Every mail we queued or sent."""
    async with running.db.reader() as session:
        rows = await session.exec(select(Message).where(
            Message.direction == "out", Message.channel == "email").order_by(col(Message.id)))
        return list(rows.all())


async def test_a_typed_2_books_the_second_slot(slack: Slack) -> None:
    running = slack.running
    anna = await visitor(running.db, now=running.clock())
    number, shown = await offered(running, anna)
    await send(running, anna, "2", client_id="c2")
    booked = await booking(running, number)
    assert booked is not None
    assert f"{number}:{booked.slot_start.isoformat()}" == shown[1]["value"]


async def test_a_typed_slot_2_books_the_second_slot(slack: Slack) -> None:
    running = slack.running
    anna = await visitor(running.db, now=running.clock())
    number, shown = await offered(running, anna)
    await send(running, anna, "Slot 2", client_id="c2")
    booked = await booking(running, number)
    assert booked is not None
    assert f"{number}:{booked.slot_start.isoformat()}" == shown[1]["value"]


async def test_a_typed_choice_is_recorded_as_the_buttons_booking(slack: Slack) -> None:
    running = slack.running
    anna = await visitor(running.db, now=running.clock())
    await offered(running, anna)
    row = await send(running, anna, "2", client_id="c2")
    assert (row.disposition, row.reason) == ("follow-up", "callback booked with the chat's choice")


async def test_a_typed_choice_is_confirmed_with_cancel_and_move(slack: Slack) -> None:
    running = slack.running
    anna = await visitor(running.db, now=running.clock())
    _, shown = await offered(running, anna)
    await send(running, anna, "2", client_id="c2")
    _, confirmed = await out_items(running.db, anna)
    assert [c["action"] for c in choices(confirmed)] == ["callback_cancel", "callback_move"]
    assert shown[1]["label"] in confirmed.text


async def test_a_typed_choice_queues_no_mail(slack: Slack) -> None:
    running = slack.running
    anna = await visitor(running.db, now=running.clock())
    await offered(running, anna)
    await send(running, anna, "2", client_id="c2")
    assert [m.recipient for m in await mails(running)] == []


async def test_a_number_beyond_the_offer_books_nothing(slack: Slack) -> None:
    running = slack.running
    anna = await visitor(running.db, now=running.clock())
    number, shown = await offered(running, anna)
    await send(running, anna, str(len(shown) + 1), client_id="c2")
    assert await booking(running, number) is None


async def test_a_spoken_time_books_nothing(slack: Slack) -> None:
    """"Rückruf um 14 Uhr" names no slot of the offer: kept on the ticket, nothing booked."""
    running = slack.running
    anna = await visitor(running.db, now=running.clock())
    number, _ = await offered(running, anna)
    row = await send(running, anna, "Rückruf um 14 Uhr", client_id="c2")
    assert row.ticket_number == number
    assert await booking(running, number) is None


async def test_an_unverified_visitors_typed_2_books_nothing(slack: Slack) -> None:
    """A visitor who typed an address and no code: no slots are offered and a typed number is
    no booking; their address is not shown to be theirs."""
    running = slack.running
    unproven = await visitor(running.db, now=running.clock(), verified=False)
    row = await send(running, unproven, OUTAGE, client_id="c1")
    assert row.ticket_number is not None
    await send(running, unproven, "2", client_id="c2")
    assert await booking(running, row.ticket_number) is None


async def test_an_unverified_visitor_cannot_book_by_typing_on_anothers_offer(
        slack: Slack) -> None:
    """The unverified visitor types the number of a slot offered to the verified one."""
    running = slack.running
    anna = await visitor(running.db, now=running.clock())
    stranger = await visitor(running.db, now=running.clock(), verified=False)
    number, _ = await offered(running, anna)
    await send(running, stranger, "2", client_id="c1")
    assert await booking(running, number) is None


async def test_a_booking_with_the_mail_sender_mails_no_web_requester(slack: Slack) -> None:
    """The invitation goes to the ticket's requester only when that is a mail address: a web
    ticket's `web:<id>` gets none (the chat confirms the booking)."""
    running = slack.running
    anna = await visitor(running.db, now=running.clock())
    number, shown = await offered(running, anna)
    slot = shown[0]["value"].partition(":")[2]
    async with running.db.session() as session:
        await callbacks.book(session, engine=running.service.engine, number=number,
                             slot=datetime.fromisoformat(slot), now=running.clock(),
                             actor="test", sender=("support@nettask.de", "NetTask Support"))
    assert [m.recipient for m in await mails(running)] == []


async def test_a_typed_number_after_the_booking_books_no_second_slot(slack: Slack) -> None:
    """The newest buttons are the booking's Cancel / Move: a "1" then answers no slot offer."""
    running = slack.running
    anna = await visitor(running.db, now=running.clock())
    number, shown = await offered(running, anna)
    await send(running, anna, "2", client_id="c2")
    await send(running, anna, "1", client_id="c3")
    booked = await booking(running, number)
    assert booked is not None
    assert f"{number}:{booked.slot_start.isoformat()}" == shown[1]["value"]
