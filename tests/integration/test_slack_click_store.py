"""A Slack click is stored before it is acked and applied from the store: a crash between the
200 and the change loses nothing, the next start applies it (issue 21 item 13), on SQLite and
PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlencode

from sqlmodel import col, select

from bot.intake.slack.clicks import CLICKS
from bot.intake.slack.triage import SEVERITY
from models.db import Database
from models.tables import Message, Ticket
from tests.fakes.slack_api import FakeSlack
from tests.fakes.slack_events import SlackSender
from tests.integration.conftest import AGENT, Clock, Slack, slack_settings, start_service
from tests.integration.reminder_kit import poll
from tests.integration.test_slack_triage import slack_ticket


async def stored_clicks(db: Database) -> list[Message]:
    async with db.reader() as session:
        return list((await session.exec(select(Message).where(
            col(Message.channel) == CLICKS).order_by(col(Message.id)))).all())


async def severity_of(db: Database, number: int | None) -> str:
    async with db.reader() as session:
        ticket = await session.get(Ticket, number)
    assert ticket is not None
    return ticket.severity


async def test_a_click_acked_before_a_crash_is_applied_after_the_restart(
        db: Database, database_url: str, tmp_path: Path, fake: FakeSlack) -> None:
    await db.dispose()
    clock = Clock()
    running = await start_service(slack_settings(tmp_path, database_url, fake), clock)
    try:
        slack = Slack(running, fake, SlackSender(running.service.http_port))
        ticket = await slack_ticket(slack)
        assert ticket.severity == "A"
        worker = running.service.click_worker
        assert worker is not None
        await worker.stop()  # the process "dies" right after the ack: nothing applies the click
        answer = await slack.sender.choose(AGENT, SEVERITY, f"{ticket.number}:C", select=True)
        assert answer.status == 200
        [click] = await stored_clicks(running.db)
        assert (click.disposition, click.sender) == ("pending", AGENT)
        assert await severity_of(running.db, ticket.number) == "A"
    finally:
        await running.service.stop()
    again = await start_service(slack_settings(tmp_path, database_url, fake), clock)
    try:
        async def applied() -> bool:
            return await severity_of(again.db, ticket.number) == "C"

        await poll(applied, 15, "the stored click applied after the restart")
        [click] = await stored_clicks(again.db)
        assert click.disposition == "applied"
    finally:
        await again.service.stop()


def severity_click(number: int | None, severity: str, trigger: str) -> str:
    """A signed-request body: the agent picks a severity on the triage post."""
    payload = {"type": "block_actions", "team": {"id": "T0NETTASK"}, "user": {"id": AGENT},
               "channel": {"id": "C0TRIAGE"}, "trigger_id": trigger, "api_app_id": "A0NETTASK",
               "container": {"type": "message", "message_ts": "1763900000.000001",
                             "channel_id": "C0TRIAGE"},
               "actions": [{"action_id": SEVERITY, "block_id": "b1", "type": "static_select",
                            "action_ts": "1763900001.0",
                            "selected_option": {"value": f"{number}:{severity}",
                                                "text": {"type": "plain_text",
                                                         "text": severity}}}],
               "response_url": "http://127.0.0.1:1/unused"}
    return urlencode({"payload": json.dumps(payload)})


async def test_a_click_delivered_twice_is_stored_and_applied_once(slack: Slack) -> None:
    ticket = await slack_ticket(slack)
    for _ in range(2):  # one interaction (one trigger_id) delivered twice
        answer = await slack.sender.post(severity_click(ticket.number, "C", "trigger-once"),
                                         content_type="application/x-www-form-urlencoded")
        assert answer.status == 200

    async def done() -> bool:
        clicks = await stored_clicks(slack.running.db)
        return bool(clicks) and all(c.disposition != "pending" for c in clicks)

    await poll(done, 10, "the click applied")
    [click] = await stored_clicks(slack.running.db)
    assert (click.external_id, click.disposition) == ("click:trigger-once", "applied")
    assert await severity_of(slack.running.db, ticket.number) == "C"
