"""Every query the hot paths make uses an index (PostgreSQL): a database seeded with a few
thousand tickets of history and ANALYZEd, the queries recorded while a mail and a Slack message
are processed (flood and duplicate checks included), the reminders refreshed, tickets listed,
`sla status` read and the digest built, each EXPLAINed: no sequential scan of ticket, message
or reminder."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import event, insert, text
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.cli_db import tickets_list
from bot.cli_sla import status_rows
from bot.digest_job import DailyDigest
from bot.retention import remove_expired_raw
from models import reminders
from models.db import Database
from models.tables import Message, Reminder, Ticket
from tests.conftest import postgres_url
from tests.fakes.slack_api import FakeSlack
from tests.fakes.slack_events import SlackSender
from tests.integration.conftest import (
    MONDAY_10,
    Clock,
    Running,
    Slack,
    slack_settings,
    start_service,
)
from tests.integration.test_email import outage

pytestmark = pytest.mark.postgres

HISTORY = 4000  # tickets, each with its mail, our answer and a reminder
WATCHED = {"ticket", "message", "reminder"}
CUSTOMERS = ["@logistik-nord.de", "@stadtwerke-demo.de", "@hotel-seeblick.de"]


def seed_rows(now: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]],
                                 list[dict[str, Any]]]:
    """Two years of history: nearly all closed, a few still running."""
    tickets, messages, due = [], [], []
    for n in range(1, HISTORY + 1):
        at = now - timedelta(hours=4 * (HISTORY - n) + 5)
        running = n > HISTORY - 40
        person = f"p{n % 300}{CUSTOMERS[n % 3]}"
        tickets.append(dict(
            number=n, customer_id=None, channel="email", subject=f"Anfrage {n}",
            product="dehosted", plan=None, department="trouble", severity="C", language="de",
            status="open" if running else "closed", entitled=True, included=False,
            usage_month=f"{at:%Y-%m}", billable=False, price_cents=0, created_at=at,
            due_at=at + timedelta(hours=8), paused_seconds=0.0,
            first_response_at=None if running else at + timedelta(hours=1),
            closed_at=None if running else at + timedelta(hours=3), requester=person,
            flags=""))
        messages.append(dict(
            ticket_number=n, direction="in", channel="email", external_id=f"<h-{n}@seed>",
            digest=f"{n:064d}", flags="", sender=person, text=f"Problem Nummer {n}",
            raw=b"x" * 600 if n > HISTORY - 500 else None, recipient="support@nettask.de",
            subject=f"Anfrage {n}", disposition="ticket", attempts=0, created_at=at))
        messages.append(dict(
            ticket_number=n, direction="out", channel="email", external_id=f"<nt{n}@seed>",
            digest="", flags="", sender="support@nettask.de", text="Danke", raw=None,
            recipient=person, subject=f"Re: Anfrage {n}", disposition="sent", attempts=0,
            created_at=at + timedelta(seconds=2)))
        due.append(dict(
            ticket_number=n, kind="agents_75", audience="agents", due_at=at + timedelta(hours=6),
            sent_at=None if running else at + timedelta(hours=6), attempts=0, late=False))
    return tickets, messages, due


async def seed(db: Database) -> None:
    tickets, messages, due = seed_rows(MONDAY_10)
    async with db.engine.begin() as connection:
        await connection.execute(insert(Ticket), tickets)
        await connection.execute(insert(Message), messages)
        await connection.execute(insert(Reminder), due)
        await connection.execute(text(
            "SELECT setval(pg_get_serial_sequence('ticket', 'number'), :n)"), {"n": HISTORY})
    async with db.engine.connect() as connection:
        await (await connection.execution_options(isolation_level="AUTOCOMMIT")).execute(
            text("ANALYZE"))


class Recorder:
    """The statements an engine sends, with their parameters."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, Any]] = []

    def __call__(self, conn: Any, cursor: Any, statement: str, parameters: Any,
                 context: Any, executemany: bool) -> None:
        if not executemany:
            self.seen.append((statement, parameters))

    @contextlib.contextmanager
    def attached(self, engines: list[AsyncEngine]) -> Iterator[None]:
        """Record while the block runs."""
        for engine in engines:
            event.listen(engine.sync_engine, "before_cursor_execute", self)
        try:
            yield
        finally:
            for engine in engines:
                event.remove(engine.sync_engine, "before_cursor_execute", self)


def scans(plan: dict[str, Any]) -> Iterator[str]:
    """The relations a plan reads by sequential scan."""
    if plan.get("Node Type") == "Seq Scan":
        yield str(plan.get("Relation Name"))
    for child in plan.get("Plans", []):
        yield from scans(child)


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[Slack]:
    url = postgres_url()
    db = Database(url)
    async with db.engine.begin() as connection:
        await connection.execute(text("DROP SCHEMA public CASCADE"))
        await connection.execute(text("CREATE SCHEMA public"))
    await db.dispose()
    fake = FakeSlack()
    await fake.start()
    running = await start_service(slack_settings(tmp_path, url, fake), Clock())
    try:
        yield Slack(running, fake, SlackSender(running.service.http_port))
    finally:
        await running.service.stop()
        await fake.stop()


async def hot_paths(running: Running, slack: Slack) -> None:
    """What intake, the reminder loop and the on-call commands do, once each."""
    code, _ = await running.send(outage("anna@logistik-nord.de"), sender="anna@logistik-nord.de")
    assert code == 250
    await running.settle()
    [answer] = running.replies()
    follow_up = outage("anna@logistik-nord.de", "<o-2@logistik-nord.de>",
                       subject="Re: Mailserver ausgefallen", body="Es geht immer noch nicht.",
                       extra=f"In-Reply-To: {answer['Message-ID']}\r\n")
    assert (await running.send(follow_up, sender="anna@logistik-nord.de"))[0] == 250
    await running.settle()
    await slack.sender.event(slack.sender.message(channel="C0LOGNORD", team="T0LOGNORD"))
    await slack.processed()
    db, now = running.db, running.clock()
    async with db.reader() as session:
        await reminders.next_due(session)
    async with db.session() as session:
        await reminders.claim_due(session, now=now - timedelta(days=365), owner="plans")
    await tickets_list(db, running.service.settings, False)
    await status_rows(db, ZoneInfo("Europe/Berlin"), now)
    digest = DailyDigest(db=db, engine=running.service.engine, at=now.time(), owner="plans",
                         slack_file=running.outbox.parent / "digest.jsonl")
    await digest.run(now + timedelta(days=1))
    await remove_expired_raw(db, now=now, days=90)  # daily, but it reads the largest table


async def test_no_hot_path_query_scans_a_big_table(service: Slack) -> None:
    running = service.running
    await seed(running.db)
    recorder = Recorder()
    db = running.db
    engines = [e for e in (db.engine, db._background_engine) if e is not None]
    with recorder.attached(engines):
        await hot_paths(running, service)
    statements = {(s, tuple(p) if isinstance(p, list | tuple) else p)
                  for s, p in recorder.seen
                  if any(t in s for t in WATCHED) and s.lstrip().split()[0].upper()
                  in ("SELECT", "UPDATE", "DELETE", "WITH")}
    assert len(statements) >= 10  # the hot paths were recorded
    found: dict[str, list[str]] = {}
    async with db.engine.connect() as connection:
        for statement, parameters in sorted(statements, key=lambda s: s[0]):
            result = await connection.exec_driver_sql(
                "EXPLAIN (FORMAT JSON) " + statement, parameters or ())
            raw = result.scalar_one()
            tree = (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]
            scanned = sorted(set(scans(tree)) & WATCHED)
            if scanned:
                flat = " ".join(statement.split())
                found[f"{flat[:60]} ... {flat[-240:]}"] = scanned
    assert found == {}
