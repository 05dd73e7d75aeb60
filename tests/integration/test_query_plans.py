"""Every query the hot paths make uses an index (PostgreSQL): a database seeded with a few
thousand tickets of history and ANALYZEd, the queries recorded while a mail and a Slack message
are processed (flood and duplicate checks included), the reminders refreshed, tickets listed,
`sla status` read, the digest built, and what every start reads (the plan-terms check, the
first /health), each EXPLAIN ANALYZEd: no sequential scan of ticket, message or reminder, and
no index scan that reads many rows of them to keep a few. The same on SQLite, by its
`EXPLAIN QUERY PLAN`: no scan of those tables but one that stops at its LIMIT."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from sqlalchemy import event, insert, text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from bot.cases.service import keep_plan_terms
from bot.cli.db import tickets_list
from bot.cli.sla import status_rows
from bot.jobs.digest import DailyDigest
from bot.jobs.retention import remove_expired_raw
from models import reminders
from models.db import Database
from models.tables import CustomerEmail, Message, Reminder, Ticket
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

HISTORY = 4000  # tickets, each with its mail, our answer and a reminder
RAW_KEPT = 500  # of them the newest still hold their raw mail
WATCHED = {"ticket", "message", "reminder"}


def seed_rows(now: Any, customers: list[tuple[int, str]]) -> tuple[
        list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Two years of history of the demo customers' people: nearly all closed, a few running."""
    tickets, messages, due = [], [], []
    for n in range(1, HISTORY + 1):
        at = now - timedelta(hours=4 * (HISTORY - n) + 5)
        running = n > HISTORY - 40
        customer, domain = customers[n % len(customers)]
        person = f"p{n % 300}@{domain}"
        tickets.append(dict(
            number=n, customer_id=customer, channel="email", subject=f"Anfrage {n}",
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
            raw=b"x" * 600 if n > HISTORY - RAW_KEPT else None, recipient="support@nettask.de",
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
    async with db.reader() as session:
        customers = [(int(c), str(d).lstrip("@")) for c, d in (await session.exec(
            select(CustomerEmail.customer_id, CustomerEmail.value)
            .where(CustomerEmail.kind == "domain"))).all()]
    tickets, messages, due = seed_rows(MONDAY_10, customers)
    async with db.engine.begin() as connection:
        await connection.execute(insert(Ticket), tickets)
        await connection.execute(insert(Message), messages)
        await connection.execute(insert(Reminder), due)
        if db.backend == "postgresql":  # SQLite numbers on from the highest
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


WASTE = 300  # rows a scan may read and throw away (the tables hold thousands)


def wasteful(plan: dict[str, Any], leading: dict[str, str],
             waste: float = WASTE) -> Iterator[str]:
    """Scans of a watched table that read it whole, or read much to keep little: a sequential
    scan; an index searched without its leading column (PostgreSQL then reads the whole
    index); rows read and thrown away by a filter; an unconditioned index walk that returns
    many rows."""
    relation, index = plan.get("Relation Name"), str(plan.get("Index Name", ""))
    loops = plan.get("Actual Loops", 1)
    removed = (plan.get("Rows Removed by Filter", 0)
               + plan.get("Rows Removed by Index Recheck", 0)) * loops
    condition = str(plan.get("Index Cond", ""))
    if relation in WATCHED and plan.get("Node Type") == "Seq Scan":
        yield f"{relation}: sequential scan"
    elif relation in WATCHED and removed > waste:
        yield f"{relation}: {plan.get('Node Type')} on {index} threw away {removed} rows"
    if index in leading and condition and leading[index] not in condition:
        yield f"{index} searched without its leading column {leading[index]}: {condition}"
    elif index in leading and not condition and plan.get("Actual Rows", 0) * loops > waste:
        yield f"{index} walked for {plan.get('Actual Rows', 0) * loops} rows"
    for child in plan.get("Plans", []):
        yield from wasteful(child, leading, waste)


async def leading_columns(db: Database) -> dict[str, str]:
    """Each index of a watched table, and its first column."""
    async with db.engine.connect() as connection:
        rows = (await connection.execute(text(
            "SELECT i.relname, a.attname FROM pg_index x "
            "JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid "
            "JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = x.indkey[0] "
            "WHERE t.relname IN ('ticket', 'message', 'reminder')"))).all()
    return {str(index): str(column) for index, column in rows}


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[Slack]:
    url = postgres_url()
    db = Database(url)
    async with db.engine.begin() as connection:
        await connection.execute(text("DROP SCHEMA public CASCADE"))
        await connection.execute(text("CREATE SCHEMA public"))
    await db.dispose()
    async for started in service_on(url, tmp_path):
        yield started


@pytest.fixture
async def sqlite_service(tmp_path: Path) -> AsyncIterator[Slack]:
    async for started in service_on(f"sqlite:///{tmp_path / 'plans.db'}", tmp_path):
        yield started


async def service_on(url: str, tmp_path: Path) -> AsyncIterator[Slack]:
    """The service with Slack, on an empty database at `url`."""
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
    # what every start reads once the schema is checked, then its first health answer
    async with db.session() as session:
        assert await keep_plan_terms(session, running.service.engine) == ""
    async with aiohttp.ClientSession() as http, http.get(
            f"http://127.0.0.1:{running.service.http_port}/health") as response:
        assert response.status == 200


def recorded(recorder: Recorder) -> set[tuple[str, Any]]:
    """The statements on watched tables that read (SELECT, UPDATE, DELETE)."""
    return {(s, tuple(p) if isinstance(p, list | tuple) else p)
            for s, p in recorder.seen
            if any(t in s for t in WATCHED) and s.lstrip().split()[0].upper()
            in ("SELECT", "UPDATE", "DELETE", "WITH")}


async def problems(db: Database, statements: set[tuple[str, Any]],
                   waste: float) -> dict[str, list[str]]:
    """Each statement's wasteful scans, by its text."""
    found: dict[str, list[str]] = {}
    leading = await leading_columns(db)
    async with db.engine.connect() as connection:
        for statement, parameters in sorted(statements, key=lambda s: s[0]):
            # ANALYZE runs the statement: inside a transaction that is rolled back
            transaction = await connection.begin()
            result = await connection.exec_driver_sql(
                "EXPLAIN (ANALYZE, FORMAT JSON) " + statement, parameters or ())
            raw = result.scalar_one()
            await transaction.rollback()
            tree = (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]
            scans = list(wasteful(tree, leading, waste))
            if scans:
                flat = " ".join(statement.split())
                found[f"{flat[:60]} ... {flat[-240:]}"] = scans
    return found


def sqlite_scans(statement: str, plan: list[str], partial: set[str]) -> Iterator[str]:
    """The plan's scans of a watched table (`SCAN ticket`, also `SCAN ticket USING INDEX`:
    a walk of the whole index), unless the statement has no WHERE and stops at its LIMIT, or
    the index walked is a partial one (it holds only the rows its condition picks)."""
    flat = " ".join(statement.split()).upper()
    stops = " WHERE " not in flat and " LIMIT " in flat
    for line in plan:
        found = re.match(r"SCAN (\w+)(?: USING (?:COVERING )?INDEX (\w+))?", line)
        if found and found.group(1) in WATCHED and not stops and found.group(2) not in partial:
            yield line


async def sqlite_problems(db: Database,
                          statements: set[tuple[str, Any]]) -> dict[str, list[str]]:
    """Each statement's scans of a watched table, by its text (SQLite)."""
    found: dict[str, list[str]] = {}
    async with db.engine.connect() as connection:
        partial = {str(name) for (name,) in (await connection.exec_driver_sql(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND sql LIKE '% WHERE %'"))}
        for statement, parameters in sorted(statements, key=lambda s: s[0]):
            rows = (await connection.exec_driver_sql(
                "EXPLAIN QUERY PLAN " + statement, parameters or ())).all()
            scans = list(sqlite_scans(statement, [str(row[-1]) for row in rows], partial))
            if scans:
                flat = " ".join(statement.split())
                found[f"{flat[:60]} ... {flat[-240:]}"] = scans
    return found


async def test_no_hot_path_query_scans_a_big_table_on_sqlite(sqlite_service: Slack) -> None:
    running = sqlite_service.running
    await seed(running.db)
    db = running.db
    engines = [e for e in (db.engine, db._read_engine) if e is not None]
    hot, daily = Recorder(), Recorder()
    with hot.attached(engines):
        await hot_paths(running, sqlite_service)
    with daily.attached(engines):
        await remove_expired_raw(db, now=running.clock(), days=90)
    assert len(recorded(hot)) >= 10  # the hot paths were recorded
    assert len(recorded(daily)) >= 1
    assert await sqlite_problems(db, recorded(hot)) == {}
    assert await sqlite_problems(db, recorded(daily)) == {}


@pytest.mark.postgres
async def test_no_hot_path_query_scans_a_big_table(service: Slack) -> None:
    running = service.running
    await seed(running.db)
    db = running.db
    engines = [e for e in (db.engine, db._background_engine) if e is not None]
    hot, daily = Recorder(), Recorder()
    with hot.attached(engines):
        await hot_paths(running, service)
    with daily.attached(engines):
        await remove_expired_raw(db, now=running.clock(), days=90)
    assert len(recorded(hot)) >= 10  # the hot paths were recorded
    assert len(recorded(daily)) >= 1
    assert await problems(db, recorded(hot), WASTE) == {}
    # retention reads every message still holding raw bytes (the last 90 days), by design;
    # never the whole history
    assert await problems(db, recorded(daily), RAW_KEPT + WASTE) == {}
