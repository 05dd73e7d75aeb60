"""Delivery that survives real Slack, through the whole service against the Slack stand-in: a
refused token pauses the outbox (and /health says so), calls that cannot be made get a visible
fate, the outbox commands, /health per outbox."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr
from sqlmodel import col, select

from bot.cases.customers_csv import parse_customer_csv
from bot.cli.db import CommandError
from bot.cli.main import parser
from bot.cli.outbox import outbox_list, outbox_retry
from bot.config import load_policy
from models.customers import upsert_customers
from models.db import Database
from models.slack import list_calls, queue_call
from models.tables import AuditEvent, Message, SlackCall, Ticket
from tests.fakes.slack_api import FakeSlack
from tests.fakes.slack_events import SlackSender
from tests.integration.conftest import Clock, Running, Slack, slack_settings, start_service
from tests.integration.test_slack_chat import LOGISTIK

MANAGERS = "leitung@nettask.de"


async def until(condition: Callable[[], Any], what: str, timeout: float = 15) -> Any:
    """Wait for an async condition to be truthy; AssertionError naming `what` on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await condition()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def start(tmp_path: Path, database_url: str, fake: FakeSlack,
                token: str | None = None) -> Running:
    settings = slack_settings(tmp_path, database_url, fake, managers_email=MANAGERS,
                              slack_backoff_seconds=0.2, slack_backoff_max_seconds=0.5)
    if token is not None:
        settings = settings.model_copy(update={"slack_bot_token": SecretStr(token)})
    return await start_service(settings, Clock())


@pytest.fixture
async def service(db: Database, database_url: str, tmp_path: Path,
                  fake: FakeSlack) -> AsyncIterator[Slack]:
    await db.dispose()
    running = await start(tmp_path, database_url, fake)
    yield Slack(running, fake, SlackSender(running.service.http_port))
    await running.service.stop()


async def health(running: Running) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{running.service.http_port}/health") as answer:
            return answer.status, await answer.json()


async def calls(running: Running) -> list[SlackCall]:
    async with running.db.reader() as session:
        return await list_calls(session)


async def mails_to(running: Running, address: str) -> list[Message]:
    async with running.db.reader() as session:
        rows = await session.exec(select(Message).where(
            Message.direction == "out", Message.recipient == address).order_by(col(Message.id)))
        return list(rows.all())


async def queue_posts(running: Running, count: int, channel: str = "C0TRIAGE") -> None:
    async with running.db.session() as session:
        for n in range(count):
            await queue_call(session, key=f"post{n}", method="chat.postMessage",
                             args={"channel": channel, "text": f"post {n}"},
                             now=running.clock())
    assert running.service.slack_deliverer is not None
    running.service.slack_deliverer.wake.set()


# ---- a refused token stops the sender, not the calls --------------------------------------------

async def test_a_revoked_token_keeps_every_call_queued_and_tells_the_managers_once(
        service: Slack) -> None:
    running, fake = service.running, service.fake
    fake.revoke("xoxb-test")
    await queue_posts(running, 3)
    await until(lambda: asyncio.sleep(0, [c for c in fake.calls if not c.args["_ok"]]),
                "the refused call")
    await until(lambda: mails_to(running, MANAGERS), "the managers' mail")
    await asyncio.sleep(0.5)  # rounds that would fail the other calls, were they tried
    rows = await calls(running)
    assert [r.status for r in rows] == ["queued", "queued", "queued"]
    # the outbox stopped at the first refusal
    assert len([c for c in fake.calls if c.method == "chat.postMessage"]) == 1
    [mail] = await mails_to(running, MANAGERS)
    assert "token_revoked" in mail.subject


async def test_health_is_503_with_the_reason_while_the_token_is_refused(service: Slack) -> None:
    running, fake = service.running, service.fake
    fake.revoke("xoxb-test")
    await queue_posts(running, 1)
    await until(lambda: asyncio.sleep(0, fake.calls[1:]), "the refused call")
    status, body = await until(
        lambda: _health_when(running, lambda b: "problem" in b["outboxes"]["slack"]),
        "/health to report the token")
    assert status == 503
    assert body["outboxes"]["slack"]["token_error"] == "token_revoked"
    assert body["outboxes"]["slack"]["waiting"] == 1


async def _health_when(running: Running,
                       check: Callable[[dict[str, Any]], bool]) -> tuple[int, Any] | None:
    status, body = await health(running)
    return (status, body) if check(body) else None


async def test_a_restart_with_a_new_token_delivers_the_backlog_in_order(
        db: Database, database_url: str, tmp_path: Path, fake: FakeSlack) -> None:
    await db.dispose()
    fake.post_rate = None  # about order, not rate
    fake.revoke("xoxb-test")
    running = await start(tmp_path, database_url, fake)
    try:
        await queue_posts(running, 4)
        await until(lambda: asyncio.sleep(0, fake.calls[1:]), "the refused call")
    finally:
        await running.service.stop()
    running = await start(tmp_path, database_url, fake, token="xoxb-new")
    try:
        made = await fake.wait_for("chat.postMessage", 4)
        status, body = await until(
            lambda: _health_when(running, lambda b: b["outboxes"]["slack"]["waiting"] == 0),
            "the backlog to drain")
    finally:
        await running.service.stop()
    assert [c.args["text"] for c in made] == ["post 0", "post 1", "post 2", "post 3"]
    assert {c.token for c in made} == {"xoxb-new"}
    assert status == 200


# ---- health per outbox ---------------------------------------------------------------------------

async def test_health_turns_503_on_an_old_backlog_and_200_when_it_drains(service: Slack) -> None:
    running, fake = service.running, service.fake
    await fake.stop()  # Slack down
    await queue_posts(running, 2)
    status, body = await health(running)
    assert (status, body["outboxes"]["slack"]["waiting"]) == (200, 2)
    running.clock.now += timedelta(minutes=11)  # older than OUTBOX_MAX_AGE_SECONDS (600)
    status, body = await health(running)
    assert status == 503
    assert body["outboxes"]["slack"]["oldest_age_seconds"] == 660.0
    assert body["outboxes"]["slack"]["problem"] == "oldest undelivered is 660 s old (limit 600 s)"
    assert body["outboxes"]["mail"]["waiting"] == 0
    await fake.start()
    status, body = await until(
        lambda: _health_when(running, lambda b: b["outboxes"]["slack"]["waiting"] == 0),
        "the backlog to drain")
    assert status == 200
    assert body["outboxes"]["slack"]["paused"] is False


# ---- what cannot be delivered has a visible fate -------------------------------------------------

async def test_an_answer_to_an_archived_channel_flags_the_ticket_and_tells_the_agents(
        service: Slack) -> None:
    running, fake = service.running, service.fake
    fake.post_rate = None
    fake.archive("C0LOGNORD")
    await service.sender.event(service.sender.message(**LOGISTIK))

    async def told() -> list[Any]:
        return [c for c in fake.made("chat.postMessage") if c.args["channel"] == "C0TRIAGE"
                and "Could not deliver" in str(c.args.get("text"))]

    [note] = await until(told, "the line in the triage thread")
    async with running.db.reader() as session:
        ticket = (await session.exec(select(Ticket))).one()
        events = (await session.exec(select(AuditEvent).where(
            AuditEvent.action == "slack_undelivered"))).all()
        failed = (await session.exec(select(SlackCall).where(
            SlackCall.status == "failed"))).all()
    assert "slack_undeliverable" in ticket.flags.split(",")
    assert [c.reason for c in failed] == ["is_archived"]
    assert len(events) == 1
    async with running.db.reader() as session:
        post = (await session.exec(select(SlackCall).where(
            SlackCall.key == f"triage:NT#{ticket.number}"))).one()
    assert "is_archived" in note.args["text"]
    assert note.args["thread_ts"] == post.result_ts


async def test_a_failed_answer_goes_to_the_customers_verified_address_by_mail(
        service: Slack) -> None:
    running, fake = service.running, service.fake
    fake.post_rate = None
    csv = ("number,name,emails,slack,contact_24_7,dehosted,m365\n"
           "D-1003,Logistik Nord AG,it@logistik-nord.de,T0LOGNORD/C0LOGNORD,,standard,\n")
    policy = load_policy(running.service.settings.policy_file)
    async with running.db.session() as session:
        await upsert_customers(session, parse_customer_csv(csv, policy), now=running.clock())
    fake.archive("C0LOGNORD")
    await service.sender.event(service.sender.message(**LOGISTIK))
    [mail] = await until(lambda: mails_to(running, "it@logistik-nord.de"), "the customer's mail")
    assert mail.subject.startswith("[NT#")
    assert mail.text.strip() != ""


async def test_a_failed_triage_post_is_mailed_to_the_managers(service: Slack) -> None:
    running, fake = service.running, service.fake
    fake.archive("C0TRIAGE")
    await service.sender.event(service.sender.message(**LOGISTIK))
    [mail] = await until(lambda: mails_to(running, MANAGERS), "the managers' mail")
    assert "is_archived" in mail.subject
    assert "outbox retry slack:" in mail.text


# ---- the outbox commands ------------------------------------------------------------------------

async def test_outbox_list_shows_waiting_and_failed_of_both_outboxes_and_retry_requeues(
        service: Slack) -> None:
    running, fake = service.running, service.fake
    settings = running.service.settings
    fake.archive("C0GONE")
    await queue_posts(running, 1, channel="C0GONE")
    await until(lambda: asyncio.sleep(0, fake.calls[1:]), "the refused call")
    await until(lambda: mails_to(running, MANAGERS), "the managers' mail")
    async with running.db.session() as session:  # a mail the relay refused for good
        mail = (await session.exec(select(Message).where(Message.recipient == MANAGERS))).one()
    await until(lambda: _sent(running, mail.id), "the managers' mail to go out")
    async with running.db.session() as session:
        row = await session.get(Message, mail.id)
        assert row is not None
        row.disposition, row.reason = "failed", "550 5.1.1 mailbox unknown"
        session.add(row)
    listed = [json.loads(line) for line in
              (await outbox_list(running.db, settings, True, False)).splitlines()]
    [call] = await calls(running)
    assert [(i["id"], i["status"], i["reason"]) for i in listed] == [
        (f"slack:{call.id}", "failed", "is_archived"),
        (f"mail:{mail.id}", "failed", "550 5.1.1 mailbox unknown")]
    fake.archived.clear()
    answer = await outbox_retry(running.db, settings, [f"slack:{call.id}"], False)
    assert answer == f"queued again: slack:{call.id}"
    await fake.wait_for("chat.postMessage", 1)
    answer = await outbox_retry(running.db, settings, [], True)
    assert answer == f"queued again: mail:{mail.id}"
    await until(lambda: _sent(running, mail.id), "the mail to go out again")


async def _sent(running: Running, message_id: int | None) -> bool:
    async with running.db.reader() as session:
        row = await session.get(Message, message_id)
        return row is not None and row.disposition == "sent"


async def test_outbox_retry_refuses_what_is_not_a_failed_id(service: Slack) -> None:
    running = service.running
    with pytest.raises(CommandError, match="'12' is not an outbox id"):
        await outbox_retry(running.db, running.service.settings, ["12"], False)
    with pytest.raises(CommandError, match="not a failed call or mail: slack:999"):
        await outbox_retry(running.db, running.service.settings, ["slack:999"], False)
    with pytest.raises(CommandError, match="or --failed"):
        await outbox_retry(running.db, running.service.settings, [], False)


def test_the_outbox_commands_parse() -> None:
    args = parser().parse_args(["outbox", "retry", "slack:1", "mail:2"])
    assert (args.ids, args.failed) == (["slack:1", "mail:2"], False)
    args = parser().parse_args(["outbox", "list", "--json"])
    assert (args.json, args.all) == (True, False)
