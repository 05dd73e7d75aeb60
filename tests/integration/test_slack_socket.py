"""Socket Mode (SLACK_APP_TOKEN): envelopes over a websocket from the fake Slack, each stored
before its ack, deduplicated like HTTP events, processed by the same Slack worker."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import text
from sqlmodel import select

from bot.intake.slack.app import COMMAND_REFUSAL, REFUSAL
from models.db import Database
from models.slack import take_event
from models.tables import Message
from tests.fakes.slack_api import FakeSlack
from tests.fakes.slack_events import SlackSender
from tests.integration.conftest import (
    AGENT,
    Clock,
    Slack,
    make_settings,
    slack_settings,
    start_service,
)
from tests.integration.test_email import outage
from tests.integration.test_slack_chat import LOGISTIK, TS, posted_to

APP_TOKEN = "xapp-test"


async def health(slack: Slack) -> dict[str, Any]:
    url = f"http://127.0.0.1:{slack.running.service.http_port}/health"
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        body: dict[str, Any] = await response.json()
        return body


def event(slack: Slack, message: str = "Unser Mailserver ist seit heute früh nicht erreichbar",
          **extra: Any) -> dict[str, Any]:
    """An events_api payload: one customer's message in the mapped channel."""
    payload: dict[str, Any] = json.loads(slack.sender.message(message, **{**LOGISTIK, **extra}))
    return payload


@pytest.fixture
async def socket(db: Database, database_url: str, tmp_path: Path,
                 fake: FakeSlack) -> AsyncIterator[Slack]:
    await db.dispose()
    settings = slack_settings(tmp_path, database_url, fake, slack_app_token=APP_TOKEN)
    running = await start_service(settings, Clock())
    yield Slack(running, fake, SlackSender(running.service.http_port))
    await running.service.stop()


async def test_the_service_opens_the_socket_with_the_app_token(socket: Slack) -> None:
    [opened] = socket.fake.made("apps.connections.open")
    assert opened.token == APP_TOKEN
    assert len(socket.fake.sockets) == 1


async def test_health_says_socket_mode_is_connected(socket: Slack) -> None:
    body = await health(socket)
    assert body["slack"]["socket_mode"] == {"connected": True}
    assert body["status"] == "ok"


async def test_a_customers_message_becomes_one_ticket_answered_in_its_thread(
        socket: Slack) -> None:
    envelope = await socket.fake.envelope(event(socket))
    await socket.fake.wait_ack(envelope)
    [row] = await socket.processed()
    [ticket] = await socket.running.tickets()
    [answer] = await posted_to(socket.fake, "C0LOGNORD")
    assert (row.disposition, row.ticket_number) == ("ticket", ticket.number)
    assert ticket.channel == "slack"
    assert answer.args["thread_ts"] == TS
    assert f"Ticket NT#{ticket.number} erstellt" in answer.args["text"]


async def test_the_ack_goes_out_only_after_the_raw_event_is_stored(socket: Slack) -> None:
    await socket.running.service.slack_worker.stop()  # type: ignore[union-attr]
    seen_at_ack: list[list[Message]] = []

    async def rows_at_ack(envelope_id: str) -> None:
        seen_at_ack.append(await socket.rows())

    socket.fake.on_ack = rows_at_ack
    payload = event(socket)
    envelope = await socket.fake.envelope(payload)
    ack = await socket.fake.wait_ack(envelope)
    [[row]] = seen_at_ack
    assert ack == {"envelope_id": envelope}
    assert (row.direction, row.disposition) == ("in", "pending")
    assert row.external_id == f"C0LOGNORD:{TS}"
    assert row.raw is not None
    assert json.loads(row.raw) == payload


async def test_a_redelivered_event_is_acked_again_and_stored_once(socket: Slack) -> None:
    payload = event(socket, event_id="Ev0REDELIVERED")
    first = await socket.fake.envelope(payload)
    await socket.fake.wait_ack(first)
    again = await socket.fake.envelope(payload, retry_attempt=1)
    await socket.fake.wait_ack(again)
    rows = await socket.processed()
    assert first != again
    assert len(rows) == 1
    assert len(await socket.running.tickets()) == 1


async def test_the_same_message_over_http_and_socket_is_stored_once(socket: Slack) -> None:
    # One store function for both ways in: the dedupe on channel:ts holds across them.
    payload = event(socket, event_id="Ev0OVERHTTP")
    assert (await socket.sender.event(json.dumps(payload))).status == 200
    envelope = await socket.fake.envelope({**payload, "event_id": "Ev0OVERSOCKET"})
    await socket.fake.wait_ack(envelope)
    assert len(await socket.rows()) == 1


async def test_a_failed_store_is_not_acked_and_the_redelivery_is(
        socket: Slack, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    async with socket.running.db.session() as session:  # the store fails: its table is gone
        await session.exec(text("ALTER TABLE slack_event RENAME TO slack_event_away"))  # type: ignore[call-overload]
    payload = event(socket, event_id="Ev0STOREFAILS")
    failed = await socket.fake.envelope(payload)
    await wait_log(caplog, "event=slack_store_failed event_id=Ev0STOREFAILS")
    await wait_log(caplog, f"event=slack_envelope_not_acked envelope={failed}")
    async with socket.running.db.session() as session:
        await session.exec(text("ALTER TABLE slack_event_away RENAME TO slack_event"))  # type: ignore[call-overload]
    redelivered = await socket.fake.envelope(payload, retry_attempt=1)
    await socket.fake.wait_ack(redelivered)
    [row] = await socket.processed()
    assert failed not in socket.fake.acks
    assert row.disposition == "ticket"


async def wait_log(caplog: pytest.LogCaptureFixture, text: str, timeout: float = 10) -> None:
    """Until a log line contains `text` (AssertionError on timeout)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(text in r.getMessage() for r in caplog.records):
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"no log line with {text!r}")


async def test_a_click_over_the_socket_is_acked_and_a_strangers_refused(socket: Slack) -> None:
    click = {"type": "block_actions", "team": {"id": "T0NETTASK"},
             "user": {"id": "U0STRANGER"}, "channel": {"id": "C0TRIAGE"},
             "trigger_id": "trigger-socket", "api_app_id": "A0NETTASK",
             "container": {"type": "message", "message_ts": "1763900000.000001",
                           "channel_id": "C0TRIAGE"},
             "actions": [{"action_id": "confirm", "type": "button", "value": "1",
                          "block_id": "b1", "action_ts": "1763900001.0"}],
             "response_url": "http://127.0.0.1:1/unused"}
    envelope = await socket.fake.envelope(click, kind="interactive")
    ack = await socket.fake.wait_ack(envelope)
    [refusal] = await socket.fake.wait_for("chat.postEphemeral", 1)
    assert ack == {"envelope_id": envelope}
    assert (refusal.args["user"], refusal.args["text"]) == ("U0STRANGER", REFUSAL)


async def test_a_refused_app_token_is_logged_and_mail_still_works(
        db: Database, database_url: str, tmp_path: Path, fake: FakeSlack,
        caplog: pytest.LogCaptureFixture) -> None:
    await db.dispose()
    caplog.set_level(logging.INFO)
    fake.fail_next(1, error="invalid_auth", method="apps.connections.open")
    settings = slack_settings(tmp_path, database_url, fake, slack_app_token="xapp-revoked")
    running = await start_service(settings, Clock())
    slack = Slack(running, fake, SlackSender(running.service.http_port))
    try:
        body = await health(slack)
        code, _ = await running.send(outage())
        await running.settle()
    finally:
        await running.service.stop()
    lines = [r.getMessage() for r in caplog.records]
    [refused] = [line for line in lines if "event=slack_socket_refused" in line]
    [started] = [line for line in lines if "event=slack_mode" in line]
    assert refused.startswith("event=slack_socket_refused error=invalid_auth:")
    assert "SLACK_APP_TOKEN" in refused
    assert "socket_mode=not-connected:invalid_auth" in started
    assert body["slack"]["socket_mode"] == {"connected": False, "error": "invalid_auth"}
    assert fake.sockets == []
    assert code == 250
    assert [r["Subject"][:4] for r in running.replies()] == ["[NT#"]


async def test_the_start_log_says_the_socket_is_connected(
        db: Database, database_url: str, tmp_path: Path, fake: FakeSlack,
        caplog: pytest.LogCaptureFixture) -> None:
    await db.dispose()
    caplog.set_level(logging.INFO)
    settings = slack_settings(tmp_path, database_url, fake, slack_app_token=APP_TOKEN)
    running = await start_service(settings, Clock())
    await running.service.stop()
    [started] = [r.getMessage() for r in caplog.records if "event=slack_mode" in r.getMessage()]
    assert "socket_mode=connected" in started
    assert fake.sockets == []  # closed at stop


async def test_without_a_signing_secret_the_socket_works_and_http_stays_shut(
        db: Database, database_url: str, tmp_path: Path, fake: FakeSlack) -> None:
    # Socket Mode needs no signing secret; POST /slack/events must still not trust anyone.
    await db.dispose()
    settings = make_settings(tmp_path, database_url, slack_bot_token="xoxb-test",
                             slack_app_token=APP_TOKEN, slack_api_url=fake.base_url,
                             slack_outbox_file=tmp_path / "slack.jsonl")
    running = await start_service(settings, Clock())
    slack = Slack(running, fake, SlackSender(running.service.http_port, secret=""))
    try:
        over_http = await slack.sender.event(json.dumps(event(slack, event_id="Ev0HTTP")))
        envelope = await fake.envelope(event(slack, event_id="Ev0SOCKET"))
        await fake.wait_ack(envelope)
        rows = await slack.processed()
    finally:
        await running.service.stop()
    assert over_http.status == 503
    assert [r.disposition for r in rows] == ["ticket"]


async def test_after_slacks_disconnect_message_the_service_reconnects(socket: Slack) -> None:
    # Slack asks every client to reconnect now and then (a refresh); events keep coming after it.
    first = await socket.fake.wait_socket()
    await first.send_json({"type": "disconnect", "reason": "refresh_requested"})
    second = await socket.fake.wait_socket(nth=2)
    envelope = await socket.fake.envelope(event(socket))
    await socket.fake.wait_ack(envelope)
    [row] = await socket.processed()
    assert second is not first
    assert len(socket.fake.made("apps.connections.open")) == 2
    assert row.disposition == "ticket"
    assert (await health(socket))["slack"]["socket_mode"] == {"connected": True}


async def test_slack_failing_at_start_is_asked_again_until_the_socket_is_up(
        db: Database, database_url: str, tmp_path: Path, fake: FakeSlack,
        caplog: pytest.LogCaptureFixture) -> None:
    await db.dispose()
    caplog.set_level(logging.INFO)
    fake.fail_next(1, status=500, method="apps.connections.open")
    settings = slack_settings(tmp_path, database_url, fake, slack_app_token=APP_TOKEN)
    running = await start_service(settings, Clock())
    slack = Slack(running, fake, SlackSender(running.service.http_port))
    try:
        await fake.wait_socket()
        body = await health(slack)
    finally:
        await running.service.stop()
    [retrying] = [r.getMessage() for r in caplog.records
                  if "event=slack_socket_retrying" in r.getMessage()]
    assert retrying == "event=slack_socket_retrying error=internal_error retry_in=1.0s"
    assert [c.args["_ok"] for c in fake.calls if c.method == "apps.connections.open"] == [
        False, True]
    assert body["slack"]["socket_mode"] == {"connected": True}


async def test_a_slash_command_is_answered_in_its_ack(socket: Slack) -> None:
    command = {"command": "/nettask", "text": "NT#404", "user_id": AGENT,
               "team_id": "T0NETTASK", "channel_id": "C0TRIAGE", "trigger_id": "trigger-cmd",
               "response_url": "http://127.0.0.1:1/unused"}
    refused = await socket.fake.envelope({**command, "user_id": "U0CUSTOMER"},
                                         kind="slash_commands")
    answered = await socket.fake.envelope(command, kind="slash_commands")
    assert (await socket.fake.wait_ack(answered))["payload"] == {
        "text": "There is no ticket NT#404."}
    assert (await socket.fake.wait_ack(refused))["payload"] == {"text": COMMAND_REFUSAL}


async def test_an_app_token_without_a_bot_token_opens_no_socket_and_says_why(
        db: Database, database_url: str, tmp_path: Path, fake: FakeSlack,
        caplog: pytest.LogCaptureFixture) -> None:
    await db.dispose()
    caplog.set_level(logging.INFO)
    settings = make_settings(tmp_path, database_url, slack_app_token=APP_TOKEN,
                             slack_api_url=fake.base_url,
                             slack_outbox_file=tmp_path / "slack.jsonl")
    running = await start_service(settings, Clock())
    try:
        body = await health(Slack(running, fake, SlackSender(running.service.http_port)))
    finally:
        await running.service.stop()
    [started] = [r.getMessage() for r in caplog.records if "event=slack_mode" in r.getMessage()]
    assert "socket_mode=off:no-SLACK_BOT_TOKEN" in started
    assert body["slack"]["socket_mode"] == {
        "connected": False, "error": "SLACK_APP_TOKEN without SLACK_BOT_TOKEN"}
    assert fake.made("apps.connections.open") == []


class Rollback(Exception):
    """Ends the test's transaction without committing it."""


async def test_stop_lets_an_envelope_being_stored_finish_and_be_acked(
        db: Database, database_url: str, tmp_path: Path, fake: FakeSlack,
        caplog: pytest.LogCaptureFixture) -> None:
    await db.dispose()
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="bot.intake.slack.socket_mode")
    clock = Clock()
    running = await start_service(
        slack_settings(tmp_path, database_url, fake, slack_app_token=APP_TOKEN), clock)
    slack = Slack(running, fake, SlackSender(running.service.http_port))
    stopping = None
    try:
        # The test holds the event id uncommitted, so the service's store waits on it.
        with contextlib.suppress(Rollback):
            async with running.db.session() as session:
                assert await take_event(session, event_id="Ev0INFLIGHT", now=clock())
                envelope = await fake.envelope(event(slack, event_id="Ev0INFLIGHT"))
                await wait_log(caplog, f"event=slack_envelope_received envelope={envelope}")
                stopping = asyncio.create_task(running.service.stop())
                await wait_log(caplog, "event=slack_socket_draining in_flight=1")
                raise Rollback
        await stopping
    finally:
        if stopping is None:
            await running.service.stop()
    after = Database(database_url)
    try:
        async with after.reader() as session:
            rows = list((await session.exec(select(Message.external_id))).all())
    finally:
        await after.dispose()
    assert fake.acks[envelope] == {"envelope_id": envelope}
    assert rows == [f"C0LOGNORD:{TS}"]
