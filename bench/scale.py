"""Skeleton of issue 24's scale benchmark: does a query's cost stay flat as the history grows?

Fills the database step by step with a synthetic history (tickets every few hours back in
time, each with its mail (raw bytes for the last 90 days), our answer and a reminder; a few
dozen still running) and, at each size in `--sizes`, times the store side of the hot paths:
the flood check, threading by Message-ID, the auto-answer cap, the reminder refresh,
`tickets list`, `sla status`, the digest's read and one retention batch; then the database
size. Prints one table: median wall and CPU milliseconds per operation and size.

Not yet here (the rest of issue 24 section 1): a whole mail and a whole Slack message
processed by the running service (classifier excluded), start-up time, customers, callbacks
and audit rows in the history, realistic raw sizes. Do not run it at 1,000,000 tickets on
a shared machine.

Run: `.venv/bin/python bench/scale.py --database-url sqlite:///var/scale.db --sizes 10000,100000`
THE DATABASE IS WIPED (SQLite: the file is replaced; PostgreSQL: the schema is dropped).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert, text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.cli.sla import status_rows  # noqa: E402
from models import digest, messages, migrate, reminders, senders, tickets  # noqa: E402
from models.db import Database  # noqa: E402
from models.retention import clear_raw_batch  # noqa: E402
from models.tables import Message, Reminder, Ticket  # noqa: E402

NOW = datetime(2026, 11, 23, 9, tzinfo=UTC)
CHUNK = 5_000
REPEAT = 20


def history(first: int, last: int) -> tuple[list[dict[str, Any]], ...]:
    """Tickets first..last (higher numbers are older), their two messages and a reminder."""
    rows: tuple[list[dict[str, Any]], ...] = ([], [], [])
    for n in range(first, last + 1):
        at = NOW - timedelta(hours=3 * n)
        running = n <= 40
        person = f"p{n % 5000}@customer{n % 1000}.example"
        rows[0].append(dict(
            number=n, channel="email", subject=f"Anfrage {n}", product="dehosted",
            department="trouble", severity="C", language="de",
            status="open" if running else "closed", entitled=True, included=False,
            usage_month=f"{at:%Y-%m}", billable=False, price_cents=0, created_at=at,
            due_at=at + timedelta(hours=8), paused_seconds=0.0,
            first_response_at=None if running else at + timedelta(hours=1),
            closed_at=None if running else at + timedelta(hours=3), requester=person, flags=""))
        rows[1].append(dict(
            ticket_number=n, direction="in", channel="email", external_id=f"<s-{n}@bench>",
            digest=f"{n:064d}", flags="", sender=person, text=f"Problem {n}",
            raw=b"x" * 4000 if at > NOW - timedelta(days=90) else None,
            recipient="support@nettask.de", subject=f"Anfrage {n}", disposition="ticket",
            attempts=0, created_at=at))
        rows[1].append(dict(
            ticket_number=n, direction="out", channel="email", external_id=f"<nt{n}@bench>",
            digest="", flags="", sender="support@nettask.de", text="Danke", raw=None,
            recipient=person, subject=f"Re: Anfrage {n}", disposition="sent", attempts=0,
            created_at=at + timedelta(seconds=2)))
        rows[2].append(dict(
            ticket_number=n, kind="agents_75", audience="agents", due_at=at + timedelta(hours=6),
            sent_at=None if running else at + timedelta(hours=6), attempts=0, late=False))
    return rows


async def grow(db: Database, have: int, want: int) -> None:
    """Add tickets have+1..want, in chunks, then refresh the planner's statistics."""
    for first in range(have + 1, want + 1, CHUNK):
        ticket_rows, message_rows, reminder_rows = history(first, min(first + CHUNK - 1, want))
        async with db.engine.begin() as connection:
            await connection.execute(insert(Ticket), ticket_rows)
            await connection.execute(insert(Message), message_rows)
            await connection.execute(insert(Reminder), reminder_rows)
    async with db.engine.connect() as connection:
        await (await connection.execution_options(isolation_level="AUTOCOMMIT")).execute(
            text("ANALYZE"))


def operations(db: Database) -> dict[str, Callable[[], Awaitable[object]]]:
    """The store side of each hot path, as it is called."""
    since = NOW - timedelta(hours=1)

    async def read(step: Callable[[Any], Awaitable[object]]) -> object:
        async with db.reader() as session:
            return await step(session)

    async def write(step: Callable[[Any], Awaitable[object]]) -> object:
        async with db.session() as session:
            result = await step(session)
            await session.rollback()  # measure the work, keep the history as it is
            return result

    return {
        "flood check": lambda: read(lambda s: senders.tickets_opened_by(
            s, sender="p7@customer7.example", channel="email", since=since, customer_id=None)),
        "threading": lambda: read(lambda s: messages.ticket_of_ids(
            s, ["<nt5@bench>"], "p5@customer5.example")),
        "auto-answer cap": lambda: read(lambda s: messages.outbound_since(
            s, recipient="p9@customer9.example", since=NOW - timedelta(days=1))),
        "reminder refresh": lambda: read(reminders.next_due),
        "tickets list": lambda: read(tickets.list_tickets),
        "sla status": lambda: status_rows(db, ZoneInfo("Europe/Berlin"), NOW),
        "digest read": lambda: read(lambda s: digest.ticket_facts(s, NOW - timedelta(days=2))),
        "retention batch": lambda: write(lambda s: clear_raw_batch(
            s, cutoff=NOW - timedelta(days=90), limit=500)),
    }


async def measure(step: Callable[[], Awaitable[object]]) -> tuple[float, float]:
    """Median wall and CPU milliseconds of REPEAT runs (after one warm-up)."""
    await step()
    walls, cpus = [], []
    for _ in range(REPEAT):
        wall, cpu = time.perf_counter(), time.process_time()
        await step()
        walls.append((time.perf_counter() - wall) * 1000)
        cpus.append((time.process_time() - cpu) * 1000)
    return statistics.median(walls), statistics.median(cpus)


async def size_of(db: Database) -> int:
    """The database's size in bytes (SQLite: its pages, whether checkpointed or in the WAL)."""
    query = ("SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()"
             if db.backend == "sqlite" else "SELECT pg_database_size(current_database())")
    async with db.engine.connect() as connection:
        return int((await connection.execute(text(query))).scalar_one())


async def main(url: str, sizes: list[int]) -> None:
    if make_url(url).get_backend_name() == "sqlite":
        path = Path(make_url(url).database or "")
        for old in path.parent.glob(path.name + "*"):
            old.unlink()
    db = Database(url)
    try:
        if db.backend == "postgresql":
            async with db.engine.begin() as connection:
                await connection.execute(text("DROP SCHEMA public CASCADE"))
                await connection.execute(text("CREATE SCHEMA public"))
        await migrate.upgrade(db)
        table: dict[str, dict[int, tuple[float, float]]] = {}
        disk: dict[int, int] = {}
        have = 0
        for size in sizes:
            await grow(db, have, size)
            have = size
            for name, step in operations(db).items():
                table.setdefault(name, {})[size] = await measure(step)
            disk[size] = await size_of(db)
    finally:
        await db.dispose()
    print(f"{db.backend}: median wall / CPU ms per operation ({REPEAT} runs)")
    print(f"{'operation':<18}" + "".join(f"{n:>22,}" for n in sizes))
    for name, by_size in table.items():
        print(f"{name:<18}" + "".join(f"{w:>13.2f} / {c:>6.2f}" for w, c in by_size.values()))
    print(f"{'size on disk MB':<18}" + "".join(f"{disk[n] / 1e6:>22.1f}" for n in sizes))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True, help="a scratch database: WIPED")
    parser.add_argument("--sizes", default="10000,100000",
                        help="comma-separated ticket counts to measure at, ascending")
    args = parser.parse_args()
    asyncio.run(main(args.database_url, [int(s) for s in args.sizes.split(",")]))
