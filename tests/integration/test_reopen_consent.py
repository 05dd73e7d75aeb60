"""A ticket closed while its quote waited for the customer's consent is not reopened into work
without that consent: it awaits the consent again, and the customer is asked again (or their
reply is the answer); on SQLite and PostgreSQL."""

from __future__ import annotations

from bot.cases import deadlines
from models.tables import Ticket
from tests.integration.conftest import Running
from tests.integration.test_email import outage
from tests.integration.test_mail_money import WEBER, answer_quote, billable_weber_ticket, weber


async def closed_quote(running: Running) -> Ticket:
    quoted = await billable_weber_ticket(running)
    assert quoted.number is not None and quoted.status == "awaiting_consent"
    async with running.db.session() as session:
        await deadlines.close(session, number=quoted.number, now=running.clock(),
                              actor="agent mia")
    return quoted


async def test_a_follow_up_to_a_quote_closed_unanswered_asks_for_consent_again(
        running: Running) -> None:
    await closed_quote(running)
    after = await answer_quote(running, "Hallo, gibt es schon Neuigkeiten?", name="news")
    assert (after.status, after.consent, after.accepted_at, after.due_at) == (
        "awaiting_consent", None, None, None)
    again = running.replies()[-1].get_content()
    assert "JA" in again  # the quote asked again


async def test_a_yes_reopening_a_quote_closed_unanswered_is_the_consent(
        running: Running) -> None:
    await closed_quote(running)
    after = await answer_quote(running, "JA", name="yes")
    assert (after.status, after.consent) == ("open", True)
    assert after.due_at is not None


async def test_a_ticket_closed_before_its_sender_was_confirmed_reopens_unverified(
        running: Running) -> None:
    await running.send(weber(1, signed=False), sender=WEBER)  # forged-looking: unverified
    await running.settle()
    [ticket] = await running.tickets()
    assert ticket.status == "unverified" and ticket.number is not None
    async with running.db.session() as session:
        await deadlines.close(session, number=ticket.number, now=running.clock(),
                              actor="agent mia")
    ours = running.replies()[0]["Message-ID"]
    follow_up = outage(sender=WEBER, message_id="<w-more@kanzlei-weber.de>", signed=True,
                       subject="Re: Ausfall", body="Es ist immer noch alles ausgefallen.",
                       extra=f"In-Reply-To: {ours}\r\n")
    await running.send(follow_up, sender=WEBER)
    await running.settle()
    [after] = await running.tickets()
    assert (after.status, after.due_at, after.included) == ("unverified", None, False)
