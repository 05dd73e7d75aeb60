"""POST /slack/events on the running service: signed HTTP in, stored before the 200, once."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import aiohttp
import pytest
from sqlmodel import select

from bot.intake.slack.app import COMMAND_REFUSAL, REFUSAL
from models.db import Database
from models.tables import SlackEvent
from tests.fakes.slack_api import FakeSlack
from tests.fakes.slack_events import CUSTOMER_CHANNEL, SlackSender
from tests.integration.conftest import (
    AGENT,
    Clock,
    Slack,
    make_settings,
    slack_settings,
    start_service,
)
from tests.integration.test_email import outage


async def test_a_forged_signature_gets_401_and_nothing_is_stored(slack: Slack) -> None:
    answer = await slack.sender.post(slack.sender.message(), secret="not-the-secret")
    assert answer.status == 401
    assert await slack.rows() == []


async def test_a_timestamp_older_than_five_minutes_gets_401(slack: Slack) -> None:
    answer = await slack.sender.post(slack.sender.message(),
                                     timestamp=int(time.time()) - 5 * 60 - 10)
    assert answer.status == 401
    assert await slack.rows() == []


async def test_a_malformed_body_gets_400_when_signed_and_401_when_not(slack: Slack) -> None:
    signed = await slack.sender.post("{not json")
    forged = await slack.sender.post("{not json", secret="wrong")
    assert signed.status == 400
    assert forged.status == 401


async def test_an_event_callback_without_event_id_gets_400(slack: Slack) -> None:
    body = json.loads(slack.sender.message())
    del body["event_id"]
    answer = await slack.sender.post(json.dumps(body))
    assert answer.status == 400
    assert await slack.rows() == []


async def test_a_message_is_stored_before_the_200_within_3_seconds(slack: Slack) -> None:
    await slack.running.service.slack_worker.stop()  # type: ignore[union-attr]
    answer = await slack.sender.event(slack.sender.message())
    assert answer.status == 200
    assert answer.seconds < 3
    [row] = await slack.rows()
    assert (row.direction, row.disposition) == ("in", "pending")
    assert row.external_id == f"{CUSTOMER_CHANNEL}:1763900000.000100"
    assert row.raw is not None and "nicht erreichbar" in json.loads(row.raw)["event"]["text"]


async def test_the_slack_worker_not_the_mail_worker_takes_it(slack: Slack) -> None:
    await slack.sender.event(slack.sender.message())
    [row] = await slack.processed()
    assert row.disposition == "ticket"
    assert row.text == "Unser Mailserver ist seit heute früh nicht erreichbar"
    assert row.thread_id == f"{CUSTOMER_CHANNEL}:1763900000.000100"
    assert [t.channel for t in await slack.running.tickets()] == ["slack"]


async def test_mail_still_works_next_to_slack(slack: Slack) -> None:
    await slack.sender.event(slack.sender.message())
    code, _ = await slack.running.send(outage())
    assert code == 250
    await slack.running.settle()
    [ticket] = [t for t in await slack.running.tickets() if t.channel == "email"]
    [reply] = slack.running.replies()
    assert reply["Subject"] == f"[NT#{ticket.number}] Re: Mailserver ausgefallen"


async def test_slacks_retries_store_the_message_once(slack: Slack) -> None:
    body = slack.sender.message(event_id="Ev0RETRIED")
    answers = [await slack.sender.event(body, retry=n) for n in range(4)]
    assert [a.status for a in answers] == [200, 200, 200, 200]
    assert len(await slack.rows()) == 1


async def test_the_same_message_under_two_event_ids_is_stored_once(slack: Slack) -> None:
    as_message = slack.sender.message(event_id="Ev0MESSAGE")
    as_mention = slack.sender.message("<@U0NTBOT> " + "hilfe", event_id="Ev0MENTION",
                                      event_type="app_mention")
    assert (await slack.sender.event(as_message)).status == 200
    assert (await slack.sender.event(as_mention)).status == 200
    assert len(await slack.rows()) == 1
    async with slack.running.db.reader() as session:
        taken = list((await session.exec(select(SlackEvent.event_id))).all())
    assert sorted(taken) == ["Ev0MENTION", "Ev0MESSAGE"]


async def test_concurrent_deliveries_of_one_event_store_it_once(slack: Slack) -> None:
    body = slack.sender.message(event_id="Ev0BURST")
    answers = await asyncio.gather(*(slack.sender.event(body, retry=n % 2) for n in range(8)))
    assert {a.status for a in answers} == {200}
    assert len(await slack.rows()) == 1


async def test_our_own_message_is_stored_but_opens_nothing(slack: Slack) -> None:
    own = slack.sender.message("NT#1 opened", user="U0NTBOT", bot_id="B0NTBOT")
    assert (await slack.sender.event(own)).status == 200
    [row] = await slack.processed()
    assert (row.disposition, row.reason) == ("ignored", "own message")


async def test_an_edit_opens_nothing(slack: Slack) -> None:
    edit = slack.sender.message(subtype="message_changed", ts="1763900099.000100",
                                message={"user": "U0ANNA", "text": "edited"})
    await slack.sender.event(edit)
    [row] = await slack.processed()
    assert (row.disposition, row.reason) == ("ignored", "edit")


async def test_other_events_are_acknowledged_without_a_message(slack: Slack) -> None:
    body = json.loads(slack.sender.message())
    body["event"] = {"type": "reaction_added", "user": "U0ANNA", "reaction": "eyes"}
    answer = await slack.sender.event(json.dumps(body))
    assert answer.status == 200
    assert await slack.rows() == []


async def test_url_verification_echoes_the_challenge(slack: Slack) -> None:
    answer = await slack.sender.post(json.dumps({"type": "url_verification",
                                                 "challenge": "c-123", "token": "t"}))
    assert answer.status == 200
    assert answer.json() == {"challenge": "c-123"}


async def test_a_non_agents_click_is_refused_in_private(slack: Slack) -> None:
    answer = await slack.sender.click("U0STRANGER")
    assert answer.status == 200
    [refusal] = await slack.fake.wait_for("chat.postEphemeral", 1)
    assert refusal.args["user"] == "U0STRANGER"
    assert refusal.args["channel"] == "C0TRIAGE"
    assert refusal.args["text"] == REFUSAL


async def test_an_agents_click_is_not_refused(slack: Slack) -> None:
    assert (await slack.sender.click(AGENT)).status == 200
    assert (await slack.sender.click("U0STRANGER")).status == 200
    calls = await slack.fake.wait_for("chat.postEphemeral", 1)
    assert [c.args["user"] for c in calls] == ["U0STRANGER"]


async def test_the_slash_command_shows_a_ticket(slack: Slack) -> None:
    await slack.running.send(outage())
    await slack.running.settle()
    [ticket] = await slack.running.tickets()
    answer = await slack.sender.command(f"NT#{ticket.number}", user=AGENT)
    assert answer.status == 200
    assert answer.text == (f"NT#{ticket.number}: open, trouble, severity A, "
                                     "deadline 2026-11-23 13:00 UTC.")


async def test_the_slash_command_explains_itself(slack: Slack) -> None:
    unknown = await slack.sender.command("NT#404", user=AGENT)
    usage = await slack.sender.command("help", user=AGENT)
    assert unknown.text == "There is no ticket NT#404."
    assert usage.text.startswith("Usage: /nettask NT#<number>")


async def test_the_slash_command_shows_nothing_to_a_non_agent(slack: Slack) -> None:
    await slack.running.send(outage())
    await slack.running.settle()
    answer = await slack.sender.command("NT#1", user="U0CUSTOMER")
    assert answer.status == 200
    assert answer.text == COMMAND_REFUSAL


async def test_auth_test_told_us_who_we_are(slack: Slack) -> None:
    assert [c.token for c in slack.fake.calls if c.method == "auth.test"] == ["xoxb-test"]


async def test_a_restart_processes_what_was_stored_before_the_200(
        db: Database, database_url: str, tmp_path: Path, fake: FakeSlack) -> None:
    await db.dispose()
    settings = slack_settings(tmp_path, database_url, fake)
    first = await start_service(settings, Clock())
    await first.service.slack_worker.stop()  # type: ignore[union-attr]  # "crashes" after the 200
    sender = SlackSender(first.service.http_port)
    assert (await sender.event(sender.message())).status == 200
    await first.service.stop()
    second = await start_service(settings, Clock())
    try:
        rows = await Slack(second, fake, sender).processed()
    finally:
        await second.service.stop()
    assert [r.disposition for r in rows] == ["ticket"]


async def test_without_token_and_secret_health_says_so_and_events_get_503(
        db: Database, database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    await db.dispose()
    caplog.set_level("INFO")
    settings = make_settings(tmp_path, database_url, _env_file=None,
                             slack_outbox_file=tmp_path / "calls.jsonl")
    running = await start_service(settings, Clock())
    try:
        sender = SlackSender(running.service.http_port)
        refused = await sender.event(sender.message())
        async with aiohttp.ClientSession() as http:
            url = f"http://127.0.0.1:{running.service.http_port}/health"
            async with http.get(url) as response:
                health = await response.json()
    finally:
        await running.service.stop()
    assert refused.status == 503
    assert "SLACK_SIGNING_SECRET" in refused.json()["error"]
    assert health["slack"]["mode"] == "outbox-file"
    assert health["slack"]["outbox_file"] == str(tmp_path / "calls.jsonl")
    assert health["slack"]["events"] == "off (no SLACK_SIGNING_SECRET)"
    [started] = [r.getMessage() for r in caplog.records if "event=slack_mode" in r.getMessage()]
    assert "mode=outbox-file" in started
    assert "Slack calls are written to the file" in started


async def test_a_message_event_without_ts_gets_400(slack: Slack) -> None:
    body = json.loads(slack.sender.message())
    del body["event"]["ts"]
    answer = await slack.sender.post(json.dumps(body))
    assert answer.status == 400
    assert await slack.rows() == []


async def test_a_body_that_is_not_utf8_gets_400(slack: Slack) -> None:
    signed = await slack.sender.post(b'{"text": "caf\xe9"}')
    forged = await slack.sender.post(b'{"text": "caf\xe9"}', secret="wrong")
    assert signed.status == 400
    assert forged.status == 401
