"""Shared by the reminder tests: a policy of seconds, tickets opened through the service layer,
and polling for conditions with a timeout."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from pathlib import Path

import bot
from bot.app import Service, build, utc_now
from bot.cases.customers_csv import parse_customer_csv
from bot.cases.service import NewTicket, open_ticket
from bot.domain import Channel, Department, Language, Severity
from bot.sla.engine import Engine
from models.customers import find_by_email, upsert_customers
from models.db import Database
from models.tables import Reminder, Ticket
from tests.integration.conftest import make_settings

DEMO_POLICY = Path(bot.__file__).with_name("policy-demo.toml")
# severity A: 0.002 h = 7.2 s; B: 14.4 s; C: 21.6 s (every day open, plans at 0.002 h)
SECONDS_POLICY = {"A": "0.002", "B": "0.004", "C": "0.006"}


def seconds_policy(tmp_path: Path) -> Path:
    """The demo policy with windows of a few seconds, written to tmp_path."""
    text = DEMO_POLICY.read_text(encoding="utf-8")
    for severity, hours in SECONDS_POLICY.items():
        text = re.sub(rf"(\[severities\.{severity}\]\ntarget_hours = )[0-9.]+",
                      rf"\g<1>{hours}", text)
    text = re.sub(r"response_hours = [0-9.]+", "response_hours = 0.002", text)
    path = tmp_path / "policy-seconds.toml"
    path.write_text(text, encoding="utf-8")
    return path


@contextlib.asynccontextmanager
async def seconds_service(tmp_path: Path, database_url: str) -> AsyncIterator[Service]:
    """The service on the seconds policy (real time), its demo customers loaded, started."""
    settings = make_settings(tmp_path, database_url, policy_file=seconds_policy(tmp_path),
                             slack_outbox_file=tmp_path / "slack.jsonl",
                             managers_email="leitung@nettask.de", reminder_refresh_seconds=30)
    running = build(settings, clock=utc_now)
    await load_demo_customers(running.db, running.engine, utc_now())
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


async def load_demo_customers(db: Database, engine: Engine, now: datetime) -> None:
    demo = (Path(bot.__file__).parent / "demo_customers.csv").read_text(encoding="utf-8")
    async with db.session() as session:
        await upsert_customers(session, parse_customer_csv(demo, engine.policy), now=now)


async def open_ticket_now(db: Database, engine: Engine, now: datetime,
                          severity: Severity = Severity.A, subject: str = "Server down") -> Ticket:
    """A Professional customer's German ticket (severity A runs around the clock)."""
    async with db.session() as session:
        customer = await find_by_email(session, "it@stadtwerke-demo.de")
        ticket, _ = await open_ticket(
            session, engine=engine, customer=customer, now=now,
            new=NewTicket(channel=Channel.EMAIL, subject=subject, product="dehosted",
                          department=Department.TROUBLE, severity=severity,
                          language=Language.DE, requester="it@stadtwerke-demo.de"))
    return ticket


async def poll(condition: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    """Wait until `condition` holds, checking every 50 ms; fail after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if await condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for: {what}")


def posted(path: Path) -> list[dict[str, object]]:
    """The JSON lines the Slack file notifier wrote."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def times_posted(path: Path) -> Counter[int]:
    """How often each reminder id was posted."""
    return Counter(int(str(line["reminder"])) for line in posted(path))


def is_pending(reminder: Reminder) -> bool:
    return reminder.sent_at is None and reminder.cancelled_at is None
