"""A customer confirms or declines a quote with the buttons in their Slack thread (signed HTTP
clicks against our /slack/events, the fake Web API): a click counts only on evidence, and one
that does not changes nothing but the audit trail, and tells the clicker why."""

from __future__ import annotations

import asyncio
import json
import time

from bot.intake.slack.consent_blocks import CONFIRM, DECLINE
from bot.intake.slack.triage import SEVERITY
from models.slack import list_calls
from models.tables import AuditEvent, SlackCall, Ticket
from models.tickets import ticket_history
from tests.fakes.slack_api import Call
from tests.integration.conftest import AGENT, Slack
from tests.integration.test_slack_chat import LOGISTIK, TS, posted_to

ADVICE = "Wir brauchen eine Beratung zur Architektur unserer Server-Umgebung"
CHANNEL, TEAM = LOGISTIK["channel"], LOGISTIK["team"]
CUSTOMER = "U0ANNA"


async def quotes(slack: Slack, number: int | None, count: int = 1) -> list[SlackCall]:
    """The ticket's quote posts, once `count` of them were made (they have a ts)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        async with slack.running.db.reader() as session:
            calls = await list_calls(session, ticket_number=number)
        made = [c for c in calls if c.key.startswith("quote:") and c.result_ts]
        if len(made) >= count:
            return made
        await asyncio.sleep(0.02)
    raise AssertionError(f"fewer than {count} quotes were posted")


async def quoted_ticket(slack: Slack) -> tuple[Ticket, str]:
    """Logistik Nord asks for consulting, which its plan does not cover: a quote with buttons."""
    await slack.sender.event(slack.sender.message(ADVICE, **LOGISTIK))
    await slack.processed()
    [ticket] = await slack.running.tickets()
    assert (ticket.status, ticket.billable) == ("awaiting_consent", True)
    [quote] = await quotes(slack, ticket.number)
    assert quote.result_ts is not None
    return ticket, quote.result_ts


def value(ticket: Ticket, cents: int | None = None) -> str:
    return f"{ticket.number}:{ticket.price_cents if cents is None else cents}"


async def fresh(slack: Slack, number: int | None) -> Ticket:
    [ticket] = [t for t in await slack.running.tickets() if t.number == number]
    return ticket


async def trail(slack: Slack, number: int | None) -> list[AuditEvent]:
    assert number is not None
    async with slack.running.db.reader() as session:
        _, events = await ticket_history(session, number)
    return events


def made_quote_updates(slack: Slack) -> list[Call]:
    """The chat.update calls in customers' conversations (not those of the triage post)."""
    return [c for c in slack.fake.made("chat.update") if c.args["channel"] != "C0TRIAGE"]


async def quote_updates(slack: Slack, count: int) -> list[Call]:
    deadline = time.monotonic() + 10
    while len(found := made_quote_updates(slack)) < count:
        assert time.monotonic() < deadline, f"fewer than {count} quote updates"
        await asyncio.sleep(0.02)
    return found


async def refused(slack: Slack, count: int = 1) -> Call:
    """The newest ephemeral refusal, once `count` were made."""
    return (await slack.fake.wait_for("chat.postEphemeral", count))[-1]


async def assert_unchanged(slack: Slack, before: Ticket) -> None:
    after = await fresh(slack, before.number)
    assert (after.status, after.consent, after.consent_at, after.due_at) == (
        "awaiting_consent", None, None, None)
    assert made_quote_updates(slack) == []
    assert "consent" not in [e.action for e in await trail(slack, before.number)]


async def test_the_quote_carries_confirm_and_decline_in_the_customers_language(
        slack: Slack) -> None:
    ticket, _ = await quoted_ticket(slack)
    [quote] = await posted_to(slack.fake, CHANNEL)
    [_, buttons] = quote.args["blocks"]
    assert [(b["action_id"], b["value"]) for b in buttons["elements"]] == [
        (CONFIRM, value(ticket)), (DECLINE, value(ticket))]
    assert [b["text"]["text"] for b in buttons["elements"]] == ["Bestätigen", "Ablehnen"]
    assert quote.args["thread_ts"] == TS
    assert "mit JA, um zuzustimmen, oder mit NEIN, um abzulehnen (oder nutzen Sie\ndie " \
           "Schaltflächen unten)" in quote.args["text"]


async def test_confirm_records_the_clickers_consent_and_starts_the_clock(slack: Slack) -> None:
    before, ts = await quoted_ticket(slack)
    answer = await slack.sender.press(CONFIRM, value(before), channel=CHANNEL, message_ts=ts,
                                      user_team=TEAM)
    assert answer.status == 200
    assert answer.seconds < 3
    [update] = await quote_updates(slack, 1)
    after = await fresh(slack, before.number)
    now = slack.running.clock.now
    assert (after.status, after.consent, after.consent_at, after.accepted_at) == (
        "open", True, now, now)
    assert after.due_at is not None
    [consent] = [e for e in await trail(slack, before.number) if e.action == "consent"]
    assert consent.actor == f"slack user {CUSTOMER}"
    assert (update.args["channel"], update.args["ts"]) == (CHANNEL, ts)
    blocks = update.args["blocks"]
    assert [b["type"] for b in blocks] == ["section", "context"]
    assert blocks[1]["elements"][0]["text"] == f"Bestätigt von <@{CUSTOMER}> um 10:00 Uhr (CET)"


async def test_a_quote_after_an_agent_confirmed_the_sender_takes_the_customers_click(
        slack: Slack) -> None:
    # Someone outside the customer's team asks: unverified, no quote. An agent vouches for the
    # sender; the quote then goes into the thread with its buttons, and the customer's click
    # on it is the consent.
    await slack.sender.event(slack.sender.message(ADVICE, **{**LOGISTIK, "team": "T0NETTASK"}))
    await slack.processed()
    [unverified] = await slack.running.tickets()
    assert unverified.status == "unverified"
    assert unverified.number is not None
    confirmed = await slack.running.service.intake.confirm_sender(
        unverified.number, agent="mia", now=slack.running.clock())
    [quote] = await quotes(slack, confirmed.number)
    assert quote.result_ts is not None
    _, posted = await posted_to(slack.fake, CHANNEL, 2)
    [_, buttons] = posted.args["blocks"]
    assert [(b["action_id"], b["value"]) for b in buttons["elements"]] == [
        (CONFIRM, value(confirmed)), (DECLINE, value(confirmed))]
    assert posted.args["thread_ts"] == TS
    answer = await slack.sender.press(CONFIRM, value(confirmed), channel=CHANNEL,
                                      message_ts=quote.result_ts, user_team=TEAM)
    assert answer.status == 200
    await quote_updates(slack, 1)
    after = await fresh(slack, confirmed.number)
    assert (confirmed.status, confirmed.billable) == ("awaiting_consent", True)
    assert (after.status, after.consent) == ("open", True)


async def test_confirm_tells_the_customer_in_the_thread_and_the_agents_in_triage(
        slack: Slack) -> None:
    before, ts = await quoted_ticket(slack)
    await slack.sender.press(CONFIRM, value(before), channel=CHANNEL, message_ts=ts,
                             user_team=TEAM)
    told = await posted_to(slack.fake, CHANNEL, 2)
    assert "Zustimmung" in told[-1].args["text"]
    assert told[-1].args["thread_ts"] == TS
    mirrored = [c for c in await posted_to(slack.fake, "C0TRIAGE", 2)
                if "with the button" in c.args["text"]]
    assert [c.args["text"] for c in mirrored] == [
        f"*Customer <@{CUSTOMER}> confirmed the quote on NT#{before.number} "
        f"(EUR {before.price_cents / 100:.2f}) with the button.*"]


async def test_decline_records_the_no_like_a_nein(slack: Slack) -> None:
    before, ts = await quoted_ticket(slack)
    await slack.sender.press(DECLINE, value(before), channel=CHANNEL, message_ts=ts,
                             user_team=TEAM)
    [update] = await quote_updates(slack, 1)
    after = await fresh(slack, before.number)
    assert (after.status, after.consent, after.due_at) == ("declined", False, None)
    assert after.closed_at == slack.running.clock.now
    text = update.args["blocks"][1]["elements"][0]["text"]
    assert text == f"Abgelehnt von <@{CUSTOMER}> um 10:00 Uhr (CET)"


async def test_a_user_of_another_workspace_is_refused(slack: Slack) -> None:
    before, ts = await quoted_ticket(slack)
    await slack.sender.press(CONFIRM, value(before), channel=CHANNEL, message_ts=ts,
                             user="U0GUEST", user_team="T0OTHER")
    refusal = await refused(slack)
    assert (refusal.args["channel"], refusal.args["user"]) == (CHANNEL, "U0GUEST")
    assert "nur Slack-Nutzer Ihrer eigenen Organisation" in refusal.args["text"]
    await assert_unchanged(slack, before)
    [event] = [e for e in await trail(slack, before.number)
               if e.action == "consent_click_refused"]
    assert event.actor == "slack user U0GUEST"
    assert (json.loads(event.detail)["team"], json.loads(event.detail)["reason"]) == (
        "T0OTHER", "other_workspace")


async def test_without_the_users_team_the_payloads_team_decides(slack: Slack) -> None:
    before, ts = await quoted_ticket(slack)
    await slack.sender.press(CONFIRM, value(before), channel=CHANNEL, message_ts=ts,
                             user_team=None, team="T0NETTASK")
    assert "nur Slack-Nutzer Ihrer eigenen Organisation" in (await refused(slack)).args["text"]
    await assert_unchanged(slack, before)


async def test_an_agent_cannot_consent_for_the_customer(slack: Slack) -> None:
    before, ts = await quoted_ticket(slack)
    await slack.sender.press(CONFIRM, value(before), channel=CHANNEL, message_ts=ts,
                             user=AGENT, user_team="T0NETTASK")
    assert (await refused(slack)).args["user"] == AGENT
    await assert_unchanged(slack, before)


async def test_a_forged_lower_price_is_refused(slack: Slack) -> None:
    before, ts = await quoted_ticket(slack)
    await slack.sender.press(CONFIRM, value(before, 100), channel=CHANNEL, message_ts=ts,
                             user_team=TEAM)
    assert "passen nicht zum aktuellen Stand" in (await refused(slack)).args["text"]
    await assert_unchanged(slack, before)


async def test_a_quote_superseded_by_an_agents_severity_change_is_refused(slack: Slack) -> None:
    before, old_ts = await quoted_ticket(slack)
    new_severity = "A" if before.severity != "A" else "C"
    await slack.sender.choose(AGENT, SEVERITY, f"{before.number}:{new_severity}", select=True)
    _, new = await quotes(slack, before.number, 2)
    changed = await fresh(slack, before.number)
    assert changed.price_cents != before.price_cents
    for offered in (value(before), value(changed)):  # the old price, or the new one forged in
        await slack.sender.press(CONFIRM, offered, channel=CHANNEL, message_ts=old_ts,
                                 user_team=TEAM)
    assert "nicht unser neuestes Angebot" in (await refused(slack, 2)).args["text"]
    assert old_ts not in [c.args["ts"] for c in made_quote_updates(slack)]
    after = await fresh(slack, before.number)
    assert (after.status, after.consent) == ("awaiting_consent", None)
    await slack.sender.press(CONFIRM, value(changed), channel=CHANNEL,
                             message_ts=str(new.result_ts), user_team=TEAM)
    await quote_updates(slack, 1)
    assert (await fresh(slack, before.number)).consent is True


async def test_the_buttons_clicked_in_another_customers_channel_are_refused(
        slack: Slack) -> None:
    before, ts = await quoted_ticket(slack)
    # Stadtwerke Demo shares the workspace T0DEMO: the team alone proves nothing
    await slack.sender.press(CONFIRM, value(before), channel="C0SWDEMO", message_ts=ts,
                             user="U0STADT", user_team=TEAM)
    refusal = await refused(slack)
    assert (refusal.args["channel"], refusal.args["user"]) == ("C0SWDEMO", "U0STADT")
    assert "anderen Unterhaltung" in refusal.args["text"]
    await assert_unchanged(slack, before)


async def test_a_click_from_another_channel_on_the_quotes_ts_is_refused(slack: Slack) -> None:
    before, ts = await quoted_ticket(slack)
    await slack.sender.press(CONFIRM, value(before), channel="C0ELSEWHERE", message_ts=ts,
                             user_team=TEAM)
    assert "anderen Unterhaltung" in (await refused(slack)).args["text"]
    await assert_unchanged(slack, before)


async def test_a_double_click_is_one_consent(slack: Slack) -> None:
    before, ts = await quoted_ticket(slack)
    await asyncio.gather(*(slack.sender.press(CONFIRM, value(before), channel=CHANNEL,
                                              message_ts=ts, user_team=TEAM)
                           for _ in range(2)))
    assert "bereits beantwortet" in (await refused(slack)).args["text"]
    events = await trail(slack, before.number)
    assert [e.action for e in events].count("consent") == 1
    assert len(await quote_updates(slack, 1)) == 1


async def test_a_text_yes_still_consents_and_then_the_buttons_change_nothing(
        slack: Slack) -> None:
    before, ts = await quoted_ticket(slack)
    await slack.sender.event(slack.sender.message("JA", ts="1763900200.000100", thread_ts=TS,
                                                  **LOGISTIK))
    await slack.processed()
    after = await fresh(slack, before.number)
    assert (after.status, after.consent) == ("open", True)
    await slack.sender.press(DECLINE, value(before), channel=CHANNEL, message_ts=ts,
                             user_team=TEAM)
    assert "bereits beantwortet" in (await refused(slack)).args["text"]
    assert (await fresh(slack, before.number)).status == "open"


async def direct_ticket(slack: Slack) -> tuple[Ticket, str]:
    """Anna writes to the app directly: no customer, billed per incident, asked by buttons."""
    await slack.sender.event(slack.sender.message(ADVICE, channel="D0ANNA", channel_type="im",
                                                  team=TEAM))
    await slack.processed()
    [ticket] = await slack.running.tickets()
    assert (ticket.customer_id, ticket.status) == (None, "awaiting_consent")
    [quote] = await quotes(slack, ticket.number)
    return ticket, str(quote.result_ts)


async def test_in_a_direct_message_the_user_who_opened_the_ticket_consents(
        slack: Slack) -> None:
    before, ts = await direct_ticket(slack)
    await slack.sender.press(CONFIRM, value(before), channel="D0ANNA", message_ts=ts,
                             user_team=TEAM)
    await quote_updates(slack, 1)
    assert (await fresh(slack, before.number)).consent is True


async def test_in_a_direct_message_another_user_is_refused(slack: Slack) -> None:
    before, ts = await direct_ticket(slack)
    await slack.sender.press(CONFIRM, value(before), channel="D0ANNA", message_ts=ts,
                             user="U0MALLORY", user_team=TEAM)
    assert "die das Ticket eröffnet hat" in (await refused(slack)).args["text"]
    await assert_unchanged(slack, before)


async def test_in_an_unmapped_channel_nobody_consents_by_button(slack: Slack) -> None:
    await slack.sender.event(slack.sender.message(ADVICE, channel="C0UNMAPPED", team=TEAM))
    await slack.processed()
    [before] = await slack.running.tickets()
    [quote] = await quotes(slack, before.number)
    await slack.sender.press(CONFIRM, value(before), channel="C0UNMAPPED",
                             message_ts=str(quote.result_ts), user_team=TEAM)
    assert "keinem Kundenkonto zugeordnet" in (await refused(slack)).args["text"]
    await assert_unchanged(slack, before)


async def test_a_button_naming_no_ticket_of_ours_is_refused(slack: Slack) -> None:
    before, ts = await quoted_ticket(slack)
    await slack.sender.press(CONFIRM, f"{(before.number or 0) + 1}:100", channel=CHANNEL,
                             message_ts=ts, user_team=TEAM)
    assert (await refused(slack)).args["text"] == (
        "This button is not one of ours. Nothing was changed.")
    await assert_unchanged(slack, before)
