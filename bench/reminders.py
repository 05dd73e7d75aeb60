"""Benchmark the reminder loop: 10,000 pending reminders due over a few minutes.

Prints how late each reminder fired (p50/p99/max, from its due time to the moment the Slack
file notifier wrote it), how many fired twice (must be 0) and how many never fired (must be
0), with one or more replicas: each replica is its own process running the reminder loop
behind the PostgreSQL advisory lock, as `serve` does; exactly one of them sends.

Run: `.venv/bin/python bench/reminders.py --database-url postgresql://... [--replicas 2]
[--reminders 10000] [--spread 120] [--kill-leader-after 60]`.
THE DATABASE IS WIPED (schema dropped and migrated afresh): give it a scratch database.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, insert, text
from sqlmodel import col, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.config import DEFAULT_POLICY_FILE, load_policy  # noqa: E402
from bot.sla.engine import Engine  # noqa: E402
from models import migrate  # noqa: E402
from models.db import Database  # noqa: E402
from models.tables import Reminder, Ticket  # noqa: E402

PER_TICKET = 10


async def prepare(url: str, count: int, spread: float, lead: float) -> datetime:
    """Wipe the database, then store `count` reminders due evenly over `spread` seconds."""
    db = Database(url)
    try:
        async with db.engine.begin() as connection:
            await connection.execute(text("DROP SCHEMA public CASCADE"))
            await connection.execute(text("CREATE SCHEMA public"))
        await migrate.upgrade(db)
        now = datetime.now(UTC)
        tickets = [dict(number=n, channel="email", subject=f"bench {n}", product="dehosted",
                        department="trouble", severity="B", language="de", status="open",
                        entitled=True, included=False, usage_month="2026-11", billable=False,
                        price_cents=0, created_at=now, requester="", flags="",
                        paused_seconds=0.0)
                   for n in range(1, count // PER_TICKET + 2)]
        start = now + timedelta(seconds=lead)
        step = spread / count
        reminders = [dict(ticket_number=1 + i // PER_TICKET, kind="agents_50", audience="agents",
                          due_at=start + timedelta(seconds=i * step), attempts=0, late=False)
                     for i in range(count)]
        async with db.session() as session:
            await session.exec(insert(Ticket), params=tickets)  # type: ignore[call-overload]
            for i in range(0, len(reminders), 2000):
                await session.exec(insert(Reminder),  # type: ignore[call-overload]
                                   params=reminders[i:i + 2000])
        return start
    finally:
        await db.dispose()


async def pending(url: str) -> int:
    db = Database(url)
    try:
        async with db.reader() as session:
            return int((await session.exec(select(func.count()).select_from(Reminder).where(
                col(Reminder.sent_at).is_(None), col(Reminder.cancelled_at).is_(None)))).one())
    finally:
        await db.dispose()


async def leader_name(url: str) -> str:
    """The replica that sent the latest reminder: the leader."""
    db = Database(url)
    try:
        async with db.reader() as session:
            name = (await session.exec(select(Reminder.claimed_by).where(
                col(Reminder.sent_at).is_not(None)).order_by(col(Reminder.sent_at).desc())
                .limit(1))).first()
            return name or ""
    finally:
        await db.dispose()


async def worker(url: str, path: Path, name: str) -> None:
    """One replica: the reminder loop only, until SIGTERM."""
    from bot.jobs.notify import SlackFile
    from bot.jobs.scheduler import ReminderLoop
    from models.leader import AdvisoryLock, Leadership, SoleInstance

    db = Database(url)
    leadership: Leadership = AdvisoryLock(url) if db.backend == "postgresql" else SoleInstance()
    loop = ReminderLoop(db=db, notifier=SlackFile(path, Engine(load_policy(DEFAULT_POLICY_FILE))),
                        leadership=leadership, clock=lambda: datetime.now(UTC), owner=name,
                        refresh_seconds=1.0, leader_retry_seconds=1.0)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await loop.start()
    await stop.wait()
    await loop.stop()
    await db.dispose()


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", ""))
    parser.add_argument("--replicas", type=int, default=1)
    parser.add_argument("--reminders", type=int, default=10_000)
    parser.add_argument("--spread", type=float, default=120.0, help="seconds the due times span")
    parser.add_argument("--lead", type=float, default=10.0, help="seconds until the first is due")
    parser.add_argument("--kill-leader-after", type=float, default=0.0,
                        help="SIGKILL the leading replica this many seconds into the run "
                             "(the one that sent the latest reminder)")
    parser.add_argument("--worker", nargs=2, metavar=("FILE", "NAME"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not args.database_url:
        parser.error("--database-url (or BENCH_DATABASE_URL) names the scratch database")
    if args.worker:
        asyncio.run(worker(args.database_url, Path(args.worker[0]), args.worker[1]))
        return
    start = asyncio.run(prepare(args.database_url, args.reminders, args.spread, args.lead))
    out = Path(tempfile.mkdtemp(prefix="bench-reminders-")) / "posted.jsonl"
    procs = []
    for n in range(args.replicas):
        procs.append(subprocess.Popen(
            [sys.executable, __file__, "--database-url", args.database_url,
             "--worker", str(out), f"replica-{n}"], stderr=subprocess.DEVNULL))
        time.sleep(0.5)
    killed = ""
    began = time.monotonic()
    deadline = began + args.lead + args.spread + 120
    try:
        while time.monotonic() < deadline:
            if args.kill_leader_after and not killed and \
                    time.monotonic() - began > args.kill_leader_after:
                killed = asyncio.run(leader_name(args.database_url))
                procs[int(killed.rpartition("-")[2])].send_signal(signal.SIGKILL)
            if time.monotonic() - began > args.lead and asyncio.run(
                    pending(args.database_url)) == 0:
                break
            time.sleep(1)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(timeout=60)
    lines = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
    counts = Counter(line["reminder"] for line in lines)
    firsts: dict[int, float] = {}
    for line in lines:
        late = (datetime.fromisoformat(line["posted_at"])
                - datetime.fromisoformat(line["due_at"])).total_seconds()
        firsts.setdefault(line["reminder"], late)
    lateness = sorted(firsts.values())
    print(f"reminders {args.reminders} due over {args.spread:.0f} s from "
          f"{start:%H:%M:%S} UTC; replicas {args.replicas}"
          + (f"; the leader {killed} SIGKILLed after {args.kill_leader_after:.0f} s"
             if killed else ""))
    print(f"fired      {len(firsts)}")
    print(f"never      {args.reminders - len(firsts)}")
    print(f"twice      {sum(1 for c in counts.values() if c > 1)}")
    if lateness:
        print(f"late p50   {statistics.median(lateness) * 1000:.1f} ms")
        print(f"late p99   {percentile(lateness, 99) * 1000:.1f} ms")
        print(f"late max   {max(lateness) * 1000:.1f} ms")
        print(f"early      {sum(1 for v in lateness if v < 0)}")


if __name__ == "__main__":
    main()
