"""Text once: Slack's entity-encoded, marked-up event text is stored as the person wrote it, and
what we send is escaped once for its medium and never cut (signed events in, the fake Web API
and the Maildir out)."""

from __future__ import annotations

import asyncio
import time

from bot.cases.customer_reply import signed
from bot.domain import Language
from bot.intake.slack.text import unescape
from models.tables import Message
from tests.fakes.slack_api import Call
from tests.fakes.slack_events import entities
from tests.integration.conftest import Slack
from tests.integration.test_slack_answers import (
    AGENT_NAME,
    calls_of,
    confirmation,
    mail_ticket,
    reply_in_thread,
    slack_ticket,
)
from tests.integration.test_slack_chat import LOGISTIK, posted_to
from tests.unit.test_slack_text import long_answer


async def first_row(slack: Slack) -> Message:
    return (await slack.processed())[0]


async def test_entities_are_stored_as_characters(slack: Slack) -> None:
    await slack.sender.event(slack.sender.message("VPN < 5 users & R&D", **LOGISTIK))
    row = await first_row(slack)
    assert row.text == "VPN < 5 users & R&D"


async def test_slack_sent_the_text_entity_encoded(slack: Slack) -> None:
    await slack.sender.event(slack.sender.message("VPN < 5 users & R&D", **LOGISTIK))
    row = await first_row(slack)
    assert row.raw is not None and b'"VPN &lt; 5 users &amp; R&amp;D"' in row.raw


async def test_the_triage_post_shows_the_text_escaped_once(slack: Slack) -> None:
    await slack.sender.event(slack.sender.message("VPN < 5 users & R&D", **LOGISTIK))
    await slack.processed()
    [triage] = await posted_to(slack.fake, "C0TRIAGE")
    assert triage.args["blocks"][1]["text"]["text"] == ">VPN &lt; 5 users &amp; R&amp;D"


MARKED_UP = ("<!channel> VPN down, see <https://status.example.com/vpn?a=1&amp;b=2|status page>"
             " and <https://portal.example.com>, ask <@U0BOSS> or <@U0GONE> in <#C0NET|netz>")


async def test_mentions_links_and_special_mentions_are_stored_readable(slack: Slack) -> None:
    slack.fake.add_user("U0BOSS", email="bernd@nettask.de", team="T0NETTASK")
    slack.fake.users["U0BOSS"]["profile"]["real_name"] = "Bernd Boss"
    await slack.sender.event(slack.sender.message(markup=MARKED_UP, **LOGISTIK))
    row = await first_row(slack)
    assert row.text == ("@channel VPN down, see status page (https://status.example.com/vpn?a=1"
                        "&b=2) and https://portal.example.com, ask @Bernd Boss or @U0GONE in "
                        "#netz")


async def test_a_mention_slack_cannot_name_now_shows_the_id(slack: Slack) -> None:
    slack.fake.add_user("U0BOSS", email="bernd@nettask.de", team="T0NETTASK")
    slack.fake.users["U0BOSS"]["profile"]["real_name"] = "Bernd Boss"
    slack.fake.fail_next(1, status=503, error="service_unavailable", method="users.info")
    await slack.sender.event(slack.sender.message(markup="VPN down, ask <@U0BOSS>", **LOGISTIK))
    row = await first_row(slack)
    assert (row.disposition, row.text) == ("ticket", "VPN down, ask @U0BOSS")


async def test_a_decoded_special_mention_pings_nobody_in_the_triage_post(slack: Slack) -> None:
    await slack.sender.event(slack.sender.message(markup="<!here> <@U0X> VPN", **LOGISTIK))
    await slack.processed()
    [triage] = await posted_to(slack.fake, "C0TRIAGE")
    assert triage.args["blocks"][1]["text"]["text"] == ">@here @U0X VPN"


async def customer_posts(slack: Slack, number: int | None) -> list[Call]:
    """The posts in the customer's channel once every call of the ticket is made."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        calls = await calls_of(slack, number)
        if calls and all(c.status == "sent" for c in calls):
            return [c for c in slack.fake.made("chat.postMessage")
                    if c.args["channel"] == LOGISTIK["channel"]]
        await asyncio.sleep(0.05)
    raise AssertionError("the ticket's Slack calls were not all made")


async def test_a_10000_character_answer_reaches_a_slack_customer_whole(slack: Slack) -> None:
    ticket, thread = await slack_ticket(slack)
    text = long_answer()
    await reply_in_thread(slack, thread, text)
    await confirmation(slack, thread)
    answer_parts = (await customer_posts(slack, ticket.number))[1:]  # after the first answer
    whole = signed(text, AGENT_NAME, Language(ticket.language))
    assert "".join(c.args["text"] for c in answer_parts) == entities(whole)


async def test_each_part_of_a_long_answer_fits_slacks_limits(slack: Slack) -> None:
    ticket, thread = await slack_ticket(slack)
    await reply_in_thread(slack, thread, long_answer())
    await confirmation(slack, thread)
    parts = (await customer_posts(slack, ticket.number))[1:]
    assert [len(c.args["text"]) <= 3000 for c in parts] == [True] * len(parts)


async def test_each_part_of_a_long_answer_shows_its_text_in_its_section(slack: Slack) -> None:
    ticket, thread = await slack_ticket(slack)
    await reply_in_thread(slack, thread, long_answer())
    await confirmation(slack, thread)
    parts = (await customer_posts(slack, ticket.number))[1:]
    assert [c.args["blocks"][0]["text"]["text"] for c in parts] == [
        c.args["text"] for c in parts]


async def test_a_long_answers_parts_go_into_the_customers_thread(slack: Slack) -> None:
    ticket, thread = await slack_ticket(slack)
    await reply_in_thread(slack, thread, long_answer())
    await confirmation(slack, thread)
    parts = (await customer_posts(slack, ticket.number))[1:]
    assert {c.args["thread_ts"] for c in parts} == {ticket.requester.partition(":")[2]}


async def test_the_triage_thread_says_sent_for_a_long_answer(slack: Slack) -> None:
    ticket, thread = await slack_ticket(slack)
    await reply_in_thread(slack, thread, long_answer())
    assert (await confirmation(slack, thread)).args["text"] == "Sent to the customer in Slack."


async def test_a_10000_character_answer_reaches_a_mail_customer_whole(slack: Slack) -> None:
    ticket, thread = await mail_ticket(slack)
    text = long_answer()
    await reply_in_thread(slack, thread, text)
    await slack.running.settle()
    answer = slack.running.replies()[-1]
    whole = signed(text, AGENT_NAME, Language(ticket.language))
    assert answer.get_content().rstrip("\n") == whole


async def test_an_agents_answer_reaches_mail_without_entities_or_markup(slack: Slack) -> None:
    slack.fake.add_user("U0AGENT1", email="agent@nettask.de", team="T0NETTASK")
    slack.fake.users["U0AGENT1"]["profile"]["real_name"] = "Agnes Agent"
    ticket, thread = await mail_ticket(slack)
    await slack.sender.event(slack.sender.message(
        markup="Restart A&amp;B, then see <https://portal.example.com|portal> (cc <@U0AGENT1>)",
        ts="1763900500.000100", thread_ts=thread, user="U0AGENT",
        user_profile={"real_name": AGENT_NAME}, channel="C0TRIAGE", team="T0NETTASK"))
    await slack.processed()
    await slack.running.settle()
    answer = slack.running.replies()[-1]
    assert answer.get_content().startswith(
        "Restart A&B, then see portal (https://portal.example.com) (cc @Agnes Agent)\n")


async def test_an_agents_answer_reaches_a_slack_customer_escaped_once(slack: Slack) -> None:
    ticket, thread = await slack_ticket(slack)
    await slack.sender.event(slack.sender.message(
        markup="Restart A&amp;B, then see <https://portal.example.com|portal>",
        ts="1763900500.000100", thread_ts=thread, user="U0AGENT",
        user_profile={"real_name": AGENT_NAME}, channel="C0TRIAGE", team="T0NETTASK"))
    await slack.processed()
    answer = (await posted_to(slack.fake, LOGISTIK["channel"], 2))[-1]
    assert answer.args["text"].startswith(
        "Restart A&amp;B, then see portal (https://portal.example.com)\n")


async def mirrors(slack: Slack, number: int | None, thread: str) -> list[str]:
    """The texts posted into the ticket's triage thread once all its calls are made."""
    await customer_posts(slack, number)
    return [c.args["text"] for c in slack.fake.made("chat.postMessage")
            if c.args["channel"] == "C0TRIAGE" and c.args.get("thread_ts") == thread]


async def test_a_long_customer_reply_is_mirrored_whole_into_the_triage_thread(
        slack: Slack) -> None:
    ticket, thread = await slack_ticket(slack)
    text = long_answer(6000)
    await slack.sender.event(slack.sender.message(text, ts="1763900100.000200",
                                                  thread_ts=ticket.requester.partition(":")[2],
                                                  **LOGISTIK))
    await slack.processed()
    posts = await mirrors(slack, ticket.number, thread)
    quoted = [line for post in posts for line in post.splitlines()[0 if post[0] == ">" else 1:]]
    assert unescape("\n".join(line.removeprefix(">") for line in quoted)) == text


async def test_each_mirror_post_fits_a_section(slack: Slack) -> None:
    ticket, thread = await slack_ticket(slack)
    await slack.sender.event(slack.sender.message(long_answer(6000), ts="1763900100.000200",
                                                  thread_ts=ticket.requester.partition(":")[2],
                                                  **LOGISTIK))
    await slack.processed()
    posts = await mirrors(slack, ticket.number, thread)
    assert [len(post) <= 3000 for post in posts] == [True] * len(posts)
