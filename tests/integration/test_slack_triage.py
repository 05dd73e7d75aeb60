"""Agents triage in Slack: clicks on the triage post (signed HTTP) run the policy again, update
the post in place (chat.update on the fake Web API) and tell the customer when the price moves."""

from __future__ import annotations

import asyncio
import json
import time

from bot.cases.deadlines import close
from bot.intake.slack.triage import ASSIGN, CONFIRM, DEPARTMENT, PREMIER, SEVERITY, WAIT
from models.tables import Ticket
from models.tickets import allowance_used, ticket_history
from tests.fakes.slack_api import Call, FakeSlack
from tests.integration.conftest import AGENT, Slack
from tests.integration.test_email import outage
from tests.integration.test_slack_chat import LOGISTIK, TS, posted_to

POST_TS = "1763900000.000001"


async def slack_ticket(slack: Slack) -> Ticket:
    """Logistik Nord (dehosted standard, incidents included) opens a ticket in its channel."""
    await slack.sender.event(slack.sender.message(**LOGISTIK))
    await slack.processed()
    await posted_to(slack.fake, "C0TRIAGE")
    [ticket] = await slack.running.tickets()
    return ticket


async def updates(fake: FakeSlack, count: int = 1) -> list[Call]:
    return await fake.wait_for("chat.update", count)


async def used(slack: Slack, ticket: Ticket, kind: str = "incident") -> int:
    assert ticket.customer_id is not None
    async with slack.running.db.reader() as session:
        return await allowance_used(session, customer_id=ticket.customer_id,
                                    product=ticket.product, month=ticket.usage_month,
                                    kind=kind)


async def fresh(slack: Slack, number: int | None) -> Ticket:
    [ticket] = [t for t in await slack.running.tickets() if t.number == number]
    return ticket


async def test_the_triage_post_carries_the_agents_controls(slack: Slack) -> None:
    ticket = await slack_ticket(slack)
    [post] = await posted_to(slack.fake, "C0TRIAGE")
    [*_, actions] = post.args["blocks"]
    kinds = [(e["type"], e["action_id"]) for e in actions["elements"]]
    assert kinds == [("button", CONFIRM), ("static_select", DEPARTMENT),
                     ("static_select", SEVERITY), ("button", ASSIGN), ("button", WAIT)]
    severity = actions["elements"][2]
    assert [o["value"] for o in severity["options"]] == [f"{ticket.number}:{s}" for s in "ABC"]
    assert severity["initial_option"]["value"] == f"{ticket.number}:{ticket.severity}"


async def test_a_non_agents_click_is_refused_and_changes_nothing(slack: Slack) -> None:
    before = await slack_ticket(slack)
    answer = await slack.sender.choose("U0STRANGER", SEVERITY, f"{before.number}:C",
                                       select=True)
    assert answer.status == 200
    [refusal] = await slack.fake.wait_for("chat.postEphemeral", 1)
    after = await fresh(slack, before.number)
    assert refusal.args["user"] == "U0STRANGER"
    assert (after.severity, after.due_at, after.confirmed_by) == (before.severity,
                                                                  before.due_at, None)
    assert slack.fake.made("chat.update") == []


async def test_an_agents_severity_change_recomputes_the_deadline_and_updates_the_post(
        slack: Slack) -> None:
    before = await slack_ticket(slack)
    assert before.severity == "A" and before.due_at is not None  # an outage: A
    await slack.sender.choose(AGENT, SEVERITY, f"{before.number}:C", select=True)
    [update] = await updates(slack.fake)
    after = await fresh(slack, before.number)
    assert after.severity == "C"
    assert after.due_at is not None and after.due_at > before.due_at
    assert after.target_hours is not None and before.target_hours is not None
    assert after.target_hours > before.target_hours
    assert (after.confirmed_by, after.confirmed_at) == (AGENT, slack.running.clock.now)
    assert (update.args["channel"], update.args["ts"]) == ("C0TRIAGE", POST_TS)
    assert f"severity: C (set by <@{AGENT}>)" in json.dumps(update.args["blocks"])
    assert after.included is True
    assert await used(slack, after) == 1  # released and claimed again: still one


async def test_the_audit_trail_names_the_agent(slack: Slack) -> None:
    ticket = await slack_ticket(slack)
    assert ticket.number is not None
    await slack.sender.choose(AGENT, SEVERITY, f"{ticket.number}:C", select=True)
    await updates(slack.fake)
    async with slack.running.db.reader() as session:
        _, trail = await ticket_history(session, ticket.number)
    [event] = [e for e in trail if e.action == "retriaged"]
    assert event.actor == f"agent {AGENT}"
    assert json.loads(event.detail)["severity"] == [ticket.severity, "C"]


async def test_a_department_change_releases_the_incident_and_asks_for_consent(
        slack: Slack) -> None:
    before = await slack_ticket(slack)
    assert await used(slack, before) == 1
    await slack.sender.choose(AGENT, DEPARTMENT, f"{before.number}:consulting", select=True)
    await updates(slack.fake)
    after = await fresh(slack, before.number)
    assert (after.department, after.included, after.billable) == ("consulting", False, True)
    assert await used(slack, after) == 0
    assert (after.status, after.due_at) == ("awaiting_consent", None)
    told = await posted_to(slack.fake, "C0LOGNORD", 2)
    assert told[-1].args["thread_ts"] == TS
    assert f"EUR {after.price_cents / 100:.2f}".replace(".", ",") in told[-1].args["text"]
    assert "JA" in told[-1].args["text"]


async def test_a_department_change_back_claims_the_incident_again(slack: Slack) -> None:
    before = await slack_ticket(slack)
    await slack.sender.choose(AGENT, DEPARTMENT, f"{before.number}:consulting", select=True)
    await updates(slack.fake)
    await slack.sender.choose(AGENT, DEPARTMENT, f"{before.number}:trouble", select=True)
    await updates(slack.fake, 2)
    after = await fresh(slack, before.number)
    assert (after.included, after.billable, after.status) == (True, False, "open")
    assert await used(slack, after) == 1
    assert after.due_at is not None


async def test_confirm_keeps_the_labels_and_tells_the_customer_nothing(slack: Slack) -> None:
    before = await slack_ticket(slack)
    await slack.sender.choose(AGENT, CONFIRM, str(before.number))
    await updates(slack.fake)
    after = await fresh(slack, before.number)
    assert (after.department, after.severity, after.due_at) == (before.department,
                                                               before.severity, before.due_at)
    assert after.confirmed_by == AGENT
    assert len(await posted_to(slack.fake, "C0LOGNORD")) == 1  # only the first answer


async def test_assign_to_me_stores_the_assignee_and_shows_it_on_the_post(slack: Slack) -> None:
    ticket = await slack_ticket(slack)
    assert ticket.assignee is None
    await slack.sender.choose(AGENT, ASSIGN, str(ticket.number))
    [update] = await updates(slack.fake)
    assert (await fresh(slack, ticket.number)).assignee == AGENT
    assert f"Assigned to <@{AGENT}>" in update.args["blocks"][0]["text"]["text"]


async def test_the_post_shows_the_stored_assignee_after_another_change(slack: Slack) -> None:
    ticket = await slack_ticket(slack)
    await slack.sender.choose("U0AGENT2", ASSIGN, str(ticket.number))
    await updates(slack.fake)
    await slack.sender.choose(AGENT, SEVERITY, f"{ticket.number}:C", select=True)
    _, update = await updates(slack.fake, 2)
    assert (await fresh(slack, ticket.number)).assignee == "U0AGENT2"
    assert "Assigned to <@U0AGENT2>" in update.args["blocks"][0]["text"]["text"]


async def test_a_non_agent_cannot_assign_themself(slack: Slack) -> None:
    ticket = await slack_ticket(slack)
    await slack.sender.choose("U0STRANGER", ASSIGN, str(ticket.number))
    [refusal] = await slack.fake.wait_for("chat.postEphemeral", 1)
    assert refusal.args["user"] == "U0STRANGER"
    assert (await fresh(slack, ticket.number)).assignee is None


async def wait_for_mails(slack: Slack, count: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await slack.running.settle()
        if len(slack.running.replies()) >= count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"fewer than {count} mails left the outbox")


async def test_a_price_change_on_a_mail_ticket_is_told_by_mail_in_its_thread(
        slack: Slack) -> None:
    # Bäckerei Krume: dehosted basic, every incident billed
    code, _ = await slack.running.send(outage(sender="it@baeckerei-krume.de",
                                              message_id="<k-1@baeckerei-krume.de>"))
    assert code == 250
    await wait_for_mails(slack, 1)
    [before] = await slack.running.tickets()
    assert before.billable is True
    severity = "A" if before.severity != "A" else "C"
    await slack.sender.choose(AGENT, SEVERITY, f"{before.number}:{severity}", select=True)
    await updates(slack.fake)
    await wait_for_mails(slack, 2)
    after = await fresh(slack, before.number)
    mail = slack.running.replies()[-1]
    assert after.price_cents != before.price_cents
    assert mail["In-Reply-To"] == "<k-1@baeckerei-krume.de>"
    assert f"[NT#{before.number}]" in str(mail["Subject"])
    assert f"{after.price_cents / 100:.2f}".replace(".", ",") in mail.get_content()
    assert after.status == "awaiting_consent"


SEEBLICK = {"channel": "C0SEEBLICK", "team": "T0SEEBLICK"}  # M-2004: m365 standard, 1 Premier


async def seeblick_ticket_of_severity_c(
        slack: Slack, ts: str,
        text: str = "Unser Mailserver ist seit heute früh nicht erreichbar") -> Ticket:
    """Hotel Seeblick opens a ticket; an agent sets it to severity C (Premier needs B or C)."""
    await slack.sender.event(slack.sender.message(text, ts=ts, **SEEBLICK))
    await slack.processed()
    ticket = next(t for t in await slack.running.tickets() if t.requester == f"C0SEEBLICK:{ts}")
    await slack.sender.choose(AGENT, SEVERITY, f"{ticket.number}:C", select=True)
    deadline = time.monotonic() + 10
    while (await fresh(slack, ticket.number)).severity != "C":
        assert time.monotonic() < deadline, "the severity change was not applied"
        await asyncio.sleep(0.02)
    return await fresh(slack, ticket.number)


def premier_button(update: Call) -> list[str]:
    [*_, actions] = update.args["blocks"]
    return [e["text"]["text"] for e in actions["elements"] if e["action_id"] == PREMIER]


async def test_premier_escalation_is_claimed_shown_and_told(slack: Slack) -> None:
    ticket = await seeblick_ticket_of_severity_c(slack, "1763900000.000100")
    [update] = await updates(slack.fake)
    assert premier_button(update) == ["Escalate to Microsoft Premier (1 left this month)"]
    await slack.sender.choose(AGENT, PREMIER, str(ticket.number))
    _, escalated = await updates(slack.fake, 2)
    after = await fresh(slack, ticket.number)
    assert "premier" in after.flags.split(",")
    assert "*Escalated to Microsoft Premier*" in escalated.args["blocks"][0]["text"]["text"]
    assert premier_button(escalated) == []
    told = await posted_to(slack.fake, "C0SEEBLICK", 2)
    assert "Microsoft Premier" in told[-1].args["text"]
    assert told[-1].args["thread_ts"] == "1763900000.000100"


async def test_premier_escalation_is_refused_with_the_reason_when_used_up(slack: Slack) -> None:
    first = await seeblick_ticket_of_severity_c(slack, "1763900000.000100")
    second = await seeblick_ticket_of_severity_c(
        slack, "1763900200.000100", "Der Drucker im Empfang druckt nur leere Seiten")
    await slack.sender.choose(AGENT, PREMIER, str(first.number))
    await updates(slack.fake, 3)
    await slack.sender.choose(AGENT, PREMIER, str(second.number))
    [refusal] = await slack.fake.wait_for("chat.postEphemeral", 1)
    assert refusal.args["text"] == ("Not escalated: this month's Premier escalations are used "
                                    "up (1 of 1).")
    assert "premier" not in (await fresh(slack, second.number)).flags.split(",")
    assert second.number is not None
    async with slack.running.db.reader() as session:
        _, trail = await ticket_history(session, second.number)
    assert [e.actor for e in trail if e.action == "premier_refused"] == [f"agent {AGENT}"]


async def test_a_severity_a_ticket_cannot_be_escalated(slack: Slack) -> None:
    await slack.sender.event(slack.sender.message(**SEEBLICK))
    await slack.processed()
    [ticket] = await slack.running.tickets()
    [post] = await posted_to(slack.fake, "C0TRIAGE")
    assert ticket.severity == "A"
    assert premier_button(post) == []


async def test_a_closed_ticket_cannot_be_escalated(slack: Slack) -> None:
    ticket = await seeblick_ticket_of_severity_c(slack, "1763900000.000100")
    assert ticket.number is not None
    async with slack.running.db.session() as session:
        await close(session, number=ticket.number, now=slack.running.clock.now, actor="test")
    await slack.sender.choose(AGENT, PREMIER, str(ticket.number))
    [refusal] = await slack.fake.wait_for("chat.postEphemeral", 1)
    assert refusal.args["text"] == (f"Not escalated: NT#{ticket.number} is closed, not being "
                                    "worked on.")
    assert "premier" not in (await fresh(slack, ticket.number)).flags.split(",")


async def test_a_closed_ticket_spends_no_premier_escalation(slack: Slack) -> None:
    ticket = await seeblick_ticket_of_severity_c(slack, "1763900000.000100")
    assert ticket.number is not None
    async with slack.running.db.session() as session:
        await close(session, number=ticket.number, now=slack.running.clock.now, actor="test")
    await slack.sender.choose(AGENT, PREMIER, str(ticket.number))
    await slack.fake.wait_for("chat.postEphemeral", 1)
    assert await used(slack, ticket, "premier") == 0
