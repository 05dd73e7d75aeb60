"""The web chat reads like a chat: our answers carry no mail-style closing and name their author
(an agent's name, or NetTask Support) in the `item` frame instead; the facts (ticket number,
deadline, price) stay in the text; an unverified visitor reads in chat terms why and how to
verify; nothing a web ticket receives speaks of a mail's subject or a Slack thread. On both
databases, the service running, the triage thread on the fake Slack Web API."""

from __future__ import annotations

from bot.cases.replies import local_deadline
from bot.domain import Language
from bot.intake.slack.triage import DEPARTMENT
from bot.intake.web.frames import item_body
from tests.integration.conftest import AGENT, BERLIN, Slack
from tests.integration.test_slack_answers import post_ts
from tests.integration.webchat_flow_kit import (
    agent_answered,
    answered_visitor,
    book_first_slot,
    choices,
    choose,
    items_coming,
    out_items,
    send,
    visitor,
)

OUTAGE = "Unser Mailserver ist seit heute früh nicht erreichbar"
ADVICE = "Wir brauchen eine Beratung zur Architektur unserer Server-Umgebung"
AGENT_TEXT = "Wir haben den Dienst neu gestartet."
# what a mail or a Slack thread says and a chat must not
CLOSING = "Mit freundlichen Grüßen"
OUR_SIGNATURE = "Ihr NetTask Support"
MAIL_OR_SLACK_ONLY = ("Betreff", "im Thread", "Absender", "Angebots-Mail", "diese Mail")


def flat(text: str) -> str:
    """The text with its line breaks as spaces: the templates wrap lines anywhere."""
    return " ".join(text.split())


def mail_or_slack_words(text: str) -> list[str]:
    """The mail- or Slack-only phrases in a chat text."""
    return [phrase for phrase in MAIL_OR_SLACK_ONLY if phrase in flat(text)]


async def test_our_answer_has_no_closing(slack: Slack) -> None:
    running = slack.running
    anna, answer = await answered_visitor(running, OUTAGE)
    assert CLOSING not in answer.text
    assert OUR_SIGNATURE not in answer.text


async def test_our_answer_ends_with_the_chats_own_request(slack: Slack) -> None:
    running = slack.running
    anna, answer = await answered_visitor(running, OUTAGE)
    assert answer.text.endswith("Bitte antworten Sie hier im Chat.")


async def test_our_answer_keeps_the_ticket_and_the_deadline(slack: Slack) -> None:
    running = slack.running
    anna, answer = await answered_visitor(running, OUTAGE)
    [ticket] = await running.tickets()
    assert ticket.due_at is not None
    assert f"NT#{ticket.number}" in answer.text
    assert local_deadline(ticket.due_at, BERLIN, Language.DE) in answer.text


async def test_our_answer_is_authored_by_netTask_support(slack: Slack) -> None:
    running = slack.running
    anna, answer = await answered_visitor(running, OUTAGE)
    assert item_body(answer)["author"] == "NetTask Support"


async def test_a_quote_keeps_its_price_without_a_closing(slack: Slack) -> None:
    running = slack.running
    anna, quote = await answered_visitor(running, ADVICE)
    [ticket] = await running.tickets()
    assert f"{ticket.price_cents // 100},{ticket.price_cents % 100:02d} EUR" in quote.text
    assert CLOSING not in quote.text


async def test_the_consent_confirmation_has_no_closing(slack: Slack) -> None:
    running = slack.running
    anna, quote = await answered_visitor(running, ADVICE)
    [yes] = [c for c in choices(quote) if c["action"] == "consent_yes"]
    await choose(running, anna, yes, client_id="c2")
    _, confirmed = await out_items(running.db, anna)
    assert "Zustimmung" in confirmed.text
    assert CLOSING not in confirmed.text


async def test_an_agents_answer_is_the_agents_text_alone(slack: Slack) -> None:
    running = slack.running
    anna, _, _ = await agent_answered(slack, OUTAGE, AGENT_TEXT)
    _, answer = await items_coming(running.db, anna, 2)
    assert answer.text == AGENT_TEXT


async def test_an_agents_answer_names_the_agent_as_its_author(slack: Slack) -> None:
    running = slack.running
    anna, _, _ = await agent_answered(slack, OUTAGE, AGENT_TEXT)
    _, answer = await items_coming(running.db, anna, 2)
    assert item_body(answer)["author"] == "Anna Agentin"


async def test_an_unverified_visitor_reads_how_to_verify_in_the_chat(slack: Slack) -> None:
    running = slack.running
    stranger, answer = await answered_visitor(running, ADVICE, verified=False)
    assert "Nennen Sie uns hier im Chat die E-Mail-Adresse" in flat(answer.text)
    assert "tippen Sie den sechsstelligen Code aus unserer Mail ein" in flat(answer.text)


async def test_an_unverified_visitors_answer_has_no_mail_words(slack: Slack) -> None:
    running = slack.running
    stranger, answer = await answered_visitor(running, ADVICE, verified=False)
    assert mail_or_slack_words(answer.text) == []
    assert CLOSING not in answer.text


async def test_an_unknown_visitor_reads_how_to_verify_in_the_chat(slack: Slack) -> None:
    running = slack.running
    nobody, answer = await answered_visitor(running, ADVICE, email="", customer=None,
                                            verified=False)
    assert "Nennen Sie uns hier im Chat die E-Mail-Adresse" in flat(answer.text)
    assert mail_or_slack_words(answer.text) == []


async def test_the_booking_confirmation_speaks_of_the_chat(slack: Slack) -> None:
    running = slack.running
    anna, answer = await answered_visitor(running, OUTAGE)
    _, booked = await book_first_slot(running, anna, answer)
    assert mail_or_slack_words(booked.text) == []
    assert "hier im Chat" in flat(booked.text)


async def test_an_english_answer_has_no_closing(slack: Slack) -> None:
    running = slack.running
    ben = await visitor(running.db, now=running.clock(), language="en")
    await send(running, ben, "Our mail server has been unreachable since this morning, "
               "nobody in the office can send or receive mail.", client_id="c1")
    [ticket] = await running.tickets()
    [answer] = await out_items(running.db, ben)
    assert ticket.language == "en"
    assert "Kind regards" not in answer.text
    assert answer.text.endswith("Please reply here in the chat.")


async def test_an_agents_retriage_note_speaks_of_the_chat(slack: Slack) -> None:
    """An agent moves the ticket to a department the plan does not cover: the note with the
    new price reaches the chat, worded for it, with the quote's buttons."""
    running = slack.running
    anna = await visitor(running.db, now=running.clock())
    row = await send(running, anna, OUTAGE, client_id="c1")
    await post_ts(slack, row.ticket_number)
    await slack.sender.choose(AGENT, DEPARTMENT, f"{row.ticket_number}:consulting", select=True)
    _, note = await items_coming(running.db, anna, 2)
    assert flat(note.text).endswith("Bitte antworten Sie hier im Chat.")
    assert mail_or_slack_words(note.text) == []
    assert CLOSING not in note.text
    assert [c["action"] for c in choices(note)] == ["consent_yes", "consent_no"]
