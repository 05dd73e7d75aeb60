"""Clicked choices in the web chat (stored by the socket as `in` items of kind "choice"): Yes / No
on a quote counts only for a verified visitor of the ticket's customer, and only on a choice we
showed that visitor; a callback slot books the callback (the service on both databases, the
triage post on the fake Slack Web API)."""

from __future__ import annotations

from sqlmodel import select

from models import callbacks as repo
from models.tables import AuditEvent, Ticket, WebVisitor
from tests.integration.conftest import Running, Slack
from tests.integration.webchat_flow_kit import (
    answered_visitor,
    book_first_slot,
    choices,
    choose,
    out_items,
    send,
    visitor,
)

ADVICE = "Wir brauchen eine Beratung zur Architektur unserer Server-Umgebung"
OUTAGE = "Unser Mailserver ist seit heute früh nicht erreichbar"


async def quoted(running: Running, who: WebVisitor) -> tuple[Ticket, dict[str, str]]:
    """The visitor asks for what costs money: the ticket and the quote's Yes choice."""
    row = await send(running, who, ADVICE, client_id="c1")
    [ticket] = [t for t in await running.tickets() if t.number == row.ticket_number]
    [quote] = await out_items(running.db, who)
    [yes] = [c for c in choices(quote) if c["action"] == "consent_yes"]
    return ticket, yes


async def fresh(running: Running, number: int | None) -> Ticket:
    [ticket] = [t for t in await running.tickets() if t.number == number]
    return ticket


async def actions(running: Running, number: int | None) -> list[str]:
    async with running.db.reader() as session:
        rows = await session.exec(select(AuditEvent.action)
                                  .where(AuditEvent.ticket_number == number))
        return list(rows.all())


async def test_a_verified_visitors_yes_records_the_consent(slack: Slack) -> None:
    running = slack.running
    anna = await visitor(running.db, now=running.clock())
    ticket, yes = await quoted(running, anna)
    row = await choose(running, anna, yes, client_id="c2")
    after = await fresh(running, ticket.number)
    assert (row.disposition, row.ticket_number) == ("follow-up", ticket.number)
    assert (after.status, after.accepted_at) == ("open", running.clock())
    assert "consent" in await actions(running, ticket.number)


async def test_the_visitor_reads_that_the_consent_was_recorded(slack: Slack) -> None:
    running = slack.running
    anna = await visitor(running.db, now=running.clock())
    ticket, yes = await quoted(running, anna)
    await choose(running, anna, yes, client_id="c2")
    _, confirmed = await out_items(running.db, anna)
    assert confirmed.ticket_number == ticket.number
    assert confirmed.key == f"consent:web:{anna.id}:c2"
    assert f"NT#{ticket.number}" in confirmed.text


async def test_a_verified_visitors_no_declines_the_quote(slack: Slack) -> None:
    running = slack.running
    anna = await visitor(running.db, now=running.clock())
    ticket, yes = await quoted(running, anna)
    await send(running, anna, client_id="c2", kind="choice", action="consent_no",
               value=yes["value"])
    assert (await fresh(running, ticket.number)).status == "declined"


async def test_an_unverified_visitors_yes_is_no_consent(slack: Slack) -> None:
    """A visitor who gave no address is an unknown sender: the single incident is quoted, and
    their Yes is refused: nothing shows who they are."""
    running = slack.running
    nobody = await visitor(running.db, now=running.clock(), email="", customer=None,
                           verified=False)
    ticket, yes = await quoted(running, nobody)
    row = await choose(running, nobody, yes, client_id="c2")
    after = await fresh(running, ticket.number)
    assert (row.disposition, row.reason) == ("ignored", "click refused: not_verified")
    assert (after.status, after.accepted_at) == ("awaiting_consent", None)
    assert "consent" not in await actions(running, ticket.number)
    assert "consent_click_refused" in await actions(running, ticket.number)


async def test_an_unverified_visitor_is_told_consent_needs_a_verified_identity(
        slack: Slack) -> None:
    running = slack.running
    nobody = await visitor(running.db, now=running.clock(), email="", customer=None,
                           verified=False)
    _, yes = await quoted(running, nobody)
    await choose(running, nobody, yes, client_id="c2")
    _, note = await out_items(running.db, nobody)
    assert note.kind == "note"
    assert "bestätigte Identität" in note.text


async def test_a_yes_for_another_visitors_ticket_changes_nothing(slack: Slack) -> None:
    running = slack.running
    anna = await visitor(running.db, now=running.clock())
    ben = await visitor(running.db, now=running.clock(), email="ben@logistik-nord.de")
    ticket, yes = await quoted(running, anna)
    row = await choose(running, ben, yes, client_id="c1")
    after = await fresh(running, ticket.number)
    assert (row.disposition, row.reason) == ("ignored", "click refused: not_ours")
    assert after.status == "awaiting_consent"
    assert "consent" not in await actions(running, ticket.number)


async def test_a_yes_with_another_price_changes_nothing(slack: Slack) -> None:
    running = slack.running
    anna = await visitor(running.db, now=running.clock())
    ticket, yes = await quoted(running, anna)
    row = await send(running, anna, client_id="c2", kind="choice", action=yes["action"],
                     value=f"{ticket.number}:1")
    assert (row.disposition, row.reason) == ("ignored", "click refused: not_ours")
    assert (await fresh(running, ticket.number)).status == "awaiting_consent"


async def test_a_callback_slot_choice_books_it(slack: Slack) -> None:
    running = slack.running
    anna = await visitor(running.db, now=running.clock())
    row = await send(running, anna, OUTAGE, client_id="c1")
    [answer] = await out_items(running.db, anna)
    first = choices(answer)[0]
    assert first["action"] == "callback_book"
    clicked = await choose(running, anna, first, client_id="c2")
    assert row.ticket_number is not None
    async with running.db.reader() as session:
        booking = await repo.active_booking(session, row.ticket_number)
    assert (clicked.disposition, clicked.reason) == (
        "follow-up", "callback booked with the chat's choice")
    assert booking is not None
    assert f"{row.ticket_number}:{booking.slot_start.isoformat()}" == first["value"]


async def test_the_booked_callback_is_confirmed_with_cancel_and_move(slack: Slack) -> None:
    running = slack.running
    anna, answer = await answered_visitor(running, OUTAGE)
    first, booked = await book_first_slot(running, anna, answer)
    assert [c["action"] for c in choices(booked)] == ["callback_cancel", "callback_move"]
    assert first["label"] in booked.text


async def test_an_unverified_visitor_cannot_book_a_callback(slack: Slack) -> None:
    """Offered slots stay with the verified visitor: another visitor's click books nothing."""
    running = slack.running
    anna = await visitor(running.db, now=running.clock())
    stranger = await visitor(running.db, now=running.clock(), verified=False)
    row = await send(running, anna, OUTAGE, client_id="c1")
    [answer] = await out_items(running.db, anna)
    first = choices(answer)[0]
    await choose(running, stranger, first, client_id="c1")
    assert row.ticket_number is not None
    async with running.db.reader() as session:
        assert await repo.active_booking(session, row.ticket_number) is None


async def test_a_verified_visitors_typed_ja_answers_the_quote(slack: Slack) -> None:
    running = slack.running
    anna = await visitor(running.db, now=running.clock())
    ticket, _ = await quoted(running, anna)
    await send(running, anna, "Ja", client_id="c2")
    assert (await fresh(running, ticket.number)).status == "open"


async def test_an_unverified_visitors_typed_ja_is_no_consent(slack: Slack) -> None:
    running = slack.running
    nobody = await visitor(running.db, now=running.clock(), email="", customer=None,
                           verified=False)
    ticket, _ = await quoted(running, nobody)
    await send(running, nobody, "Ja", client_id="c2")
    assert (await fresh(running, ticket.number)).status == "awaiting_consent"
    assert "consent" not in await actions(running, ticket.number)
