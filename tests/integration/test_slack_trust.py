"""Who is the customer in a mapped channel: only an author of the team mapped for the channel.
Anyone else there (a NetTask employee, a third party in a Slack Connect channel, an event that
names no team) gets an unverified ticket: no allowance, no plan, no consent (signed HTTP)."""

from __future__ import annotations

from typing import Any

from sqlmodel import select

from bot.intake.slack.triage import DEPARTMENT
from models.tables import Customer, CustomerSlack, Ticket
from models.tickets import ticket_history
from tests.integration.conftest import AGENT, Slack
from tests.integration.test_slack_chat import LOGISTIK, TS, posted_to
from tests.integration.test_slack_triage import SEEBLICK, fresh, slack_ticket, used

OTHER_TEAM = "T0NETTASK"  # e.g. a NetTask employee who is not an agent, in the shared channel


async def ticket_of(slack: Slack, **event: Any) -> tuple[Ticket, str]:
    """Send one message in Logistik Nord's channel; its ticket and the answer's text."""
    await slack.sender.event(slack.sender.message(**{**LOGISTIK, **event}))
    await slack.processed()
    [ticket] = await slack.running.tickets()
    [answer] = await posted_to(slack.fake, LOGISTIK["channel"])
    return ticket, answer.args["text"]


async def test_the_customers_user_gets_a_ticket_on_the_allowance(slack: Slack) -> None:
    ticket, answer = await ticket_of(slack)
    assert (ticket.status, ticket.included) == ("open", True)
    assert await used(slack, ticket) == 1
    assert "Ihr Supportplan: deHOSTED Standard." in answer


async def test_a_user_of_another_team_in_the_channel_is_not_the_customer(slack: Slack) -> None:
    ticket, answer = await ticket_of(slack, team=OTHER_TEAM)
    assert (ticket.status, ticket.included, ticket.plan) == ("unverified", False, None)
    assert "sender_unverified" in ticket.flags
    assert await used(slack, ticket) == 0
    assert "Standard" not in answer
    assert "nicht als eines Ihrer Organisation bestätigt" in answer


async def test_an_agent_confirms_the_sender_and_the_answer_goes_to_the_thread(
        slack: Slack) -> None:
    # It went out as a mail to "C0LOGNORD:<ts>" before, and the customer saw nothing.
    ticket, _ = await ticket_of(slack, team=OTHER_TEAM)
    assert ticket.number is not None
    confirmed = await slack.running.service.intake.confirm_sender(
        ticket.number, agent="mia", now=slack.running.clock())
    _, answer = await posted_to(slack.fake, LOGISTIK["channel"], 2)
    assert (confirmed.status, confirmed.included) == ("open", True)
    assert await used(slack, confirmed) == 1
    assert answer.args["thread_ts"] == TS
    assert "Ihr Supportplan: deHOSTED Standard." in answer.args["text"]
    assert [m.channel for m in await slack.running.messages() if m.direction == "out"] == []


async def test_slack_connect_user_team_names_the_author_not_team(slack: Slack) -> None:
    ticket, _ = await ticket_of(slack, team=LOGISTIK["team"], user_team=OTHER_TEAM)
    assert ticket.status == "unverified"
    assert await used(slack, ticket) == 0


async def test_slack_connect_customer_author_by_user_team(slack: Slack) -> None:
    ticket, _ = await ticket_of(slack, team=OTHER_TEAM, user_team=LOGISTIK["team"])
    assert (ticket.status, ticket.included) == ("open", True)


async def test_an_event_without_a_team_is_not_the_customer(slack: Slack) -> None:
    # a file_share event as Slack sends it (bolt-python's fixture): user, files, no team
    files = [{"id": "F1", "name": "error.png", "permalink": "https://x.slack.com/files/F1"}]
    await slack.sender.event(slack.sender.message(
        channel=LOGISTIK["channel"], team="", subtype="file_share", files=files))
    await slack.processed()
    [ticket] = await slack.running.tickets()
    assert ticket.status == "unverified"
    assert await used(slack, ticket) == 0


async def test_a_user_of_another_customers_workspace_is_not_this_customer(slack: Slack) -> None:
    ticket, _ = await ticket_of(slack, team=SEEBLICK["team"])
    assert ticket.status == "unverified"


async def test_a_team_stored_for_two_customers_is_trusted_for_neither(slack: Slack) -> None:
    # a mapping stored before imports refused shared teams: the team proves no customer
    async with slack.running.db.session() as session:
        other = (await session.exec(select(Customer).where(Customer.number == "M-2004"))).one()
        assert other.id is not None
        session.add(CustomerSlack(customer_id=other.id, team_id=LOGISTIK["team"],
                                  channel_id="C0SEEBLICK2"))
    ticket, _ = await ticket_of(slack)
    assert ticket.status == "unverified"
    assert await used(slack, ticket) == 0


async def quoted(slack: Slack) -> Ticket:
    """Logistik Nord's ticket, moved by an agent to a department its plan lacks: a quote."""
    before = await slack_ticket(slack)
    await slack.sender.choose(AGENT, DEPARTMENT, f"{before.number}:consulting", select=True)
    await posted_to(slack.fake, LOGISTIK["channel"], 2)
    after = await fresh(slack, before.number)
    assert after.status == "awaiting_consent"
    return after


async def test_an_outsider_cannot_consent_to_a_quote_in_the_thread(slack: Slack) -> None:
    ticket = await quoted(slack)
    await slack.sender.event(slack.sender.message(
        "JA", ts="1763900100.000200", thread_ts=TS, **{**LOGISTIK, "team": OTHER_TEAM}))
    *_, reply = await slack.processed()
    assert reply.reason == "sender not verified: kept on the ticket, changes nothing"
    assert (await fresh(slack, ticket.number)).status == "awaiting_consent"
    assert ticket.number is not None
    async with slack.running.db.reader() as session:
        _, trail = await ticket_history(session, ticket.number)
    assert [e.action for e in trail][-1] == "unverified_reply"


async def test_the_customers_user_consents_in_the_thread(slack: Slack) -> None:
    ticket = await quoted(slack)
    await slack.sender.event(slack.sender.message(
        "JA", ts="1763900100.000200", thread_ts=TS, **LOGISTIK))
    await posted_to(slack.fake, LOGISTIK["channel"], 3)
    assert (await fresh(slack, ticket.number)).status == "open"
