"""Issue 24 section 1: does the cost of each operation stay flat as the history grows?

Fills a scratch database with the history of bench/scale_history.py (1,000 customers; a desk
taking 1,000,000 tickets in five years, so a bigger size is a longer history at the same rate;
mail of realistic sizes, our answers, reminders, callbacks, audit rows; raw bytes kept for the
last 90 days only, as retention leaves them) and, at each size in `--sizes`, measures the
median wall and CPU milliseconds of:
- one new mail end to end through the real MailIntake (stored as the SMTP handler stores it,
  then processed: sender check, flood and duplicate checks, ticket, answer queued), with the
  keyword classifier (the model excluded);
- one Slack message through SlackIntake (stored as the events endpoint stores it, processed);
- the store side of the flood and duplicate checks on their own, the auto-answer cap, the
  reminder refresh (next due, and a claim that is rolled back), `tickets list`, `sla status`,
  the daily digest (a different day each run), one retention batch (rolled back);
- start-up: `intake-bot serve`'s own start (schema check, plan terms, workers, SMTP, HTTP,
  reminder loop) until /health answers;
and the database's size on disk. Prints how long each fill took and one table per run:
operations by sizes, and the ratio of the largest size to the first.

Run (the database is WIPED: SQLite's file is replaced, PostgreSQL's public schema dropped):
    nice -n 19 .venv/bin/python bench/scale.py --database-url sqlite:///var/scale.db \
        --sizes 10000,100000
`--again` measures the history a previous run left (after a migration, say), without refilling.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
from sqlalchemy import delete, text, update
from sqlalchemy.engine import make_url
from sqlmodel import col

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.scale_history import (  # noqa: E402
    CUSTOMERS,
    NOW,
    PLANS,
    TOP,
    Texts,
    Writer,
    chunks,
    customers,
    domain,
    raw_mail,
    slack_of,
    tickets,
)
from bot.app import Service, build  # noqa: E402
from bot.cases.service import snapshot  # noqa: E402
from bot.classify.lazy import LazyClassifier  # noqa: E402
from bot.cli.db import tickets_list  # noqa: E402
from bot.cli.sla import status_rows  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.intake.mail.mime import content_digest, message_id_of  # noqa: E402
from bot.intake.slack.inbox import BotIdentity, SlackIntake, store_event  # noqa: E402
from bot.intake.slack.triage_thread import TriageThread  # noqa: E402
from bot.jobs.digest import DailyDigest  # noqa: E402
from models import messages, migrate, reminders, senders  # noqa: E402
from models.db import Database  # noqa: E402
from models.retention import clear_raw_batch  # noqa: E402
from models.tables import DigestSent, Reminder, Ticket  # noqa: E402

CHUNK = 10_000
REPEAT = 20
STARTS = 5  # start-ups are slower: fewer runs
BERLIN = ZoneInfo("Europe/Berlin")


def settings(url: str, folder: Path) -> Settings:
    """The service's settings for the bench: hermetic, keyword classifier, senders trusted
    (the history's domains sign nothing), Slack events on, calls written to a file."""
    return Settings(
        database_url=url, http_port=0, smtp_port=0, outbox_dir=folder / "outbox",
        slack_outbox_file=folder / "slack.jsonl", support_addresses="support@nettask.de",
        classifier="keywords", trust_all_senders=True, dkim_dns=False,
        slack_signing_secret="bench-secret", slack_triage_channel="C0TRIAGE",
        _env_file=None,
    )


class Bench:
    """The service's parts, built as `serve` builds them, and the operations on them."""

    def __init__(self, url: str, folder: Path) -> None:
        self.url, self.folder = url, folder
        self.settings = settings(url, folder)
        self.service: Service = build(self.settings)
        self.db = self.service.db
        intake = self.service.intake
        self.slack = SlackIntake(
            db=self.db, identity=BotIdentity(), directory=None,
            conversation=intake.conversation, classifier=intake.classifier,
            detector=intake.detector, agents=self.settings.slack_agent_ids,
            max_attempts=self.settings.processing_max_attempts,
            thread=TriageThread(channel=self.settings.slack_triage_channel,
                                agents=self.settings.slack_agent_ids,
                                note_prefix=self.settings.slack_note_prefix,
                                replies=intake.replies))
        self.runs = 0
        self.tag = random.randrange(100_000, 1_000_000)  # this process's: --again runs differ
        self.texts = Texts()

    def fresh(self) -> int:
        """A number no other run of this process used."""
        self.runs += 1
        return self.runs

    async def mail(self) -> None:
        """A new customer's mail: stored as before the 250, then processed."""
        n = self.fresh()
        customer = 1 + (n * 37) % CUSTOMERS
        sender = f"neu{n}.{self.tag}@{domain(customer)}"
        raw = raw_mail(random.Random(n), self.texts, sender=sender,
                       subject=f"Mailserver ausgefallen {n}",
                       message_id=f"<bench-{n}.{self.tag}@{domain(customer)}>", at=NOW)
        async with self.db.session() as session:
            stored = await messages.store_inbound(
                session, channel="email", external_id=message_id_of(raw),
                digest=content_digest(raw, envelope_sender=sender), raw=raw, sender=sender,
                recipient="support@nettask.de", now=NOW)
        assert stored is not None
        outcome = await self.service.intake.process(stored, NOW)
        assert outcome == "ticket", outcome

    async def slack_message(self) -> None:
        """A Slack customer's message in its channel: stored as the endpoint stores it, then
        processed."""
        n = self.fresh()
        customer = 5 * (1 + (n * 37) % (CUSTOMERS // 5))
        team, channel = slack_of(customer) or ("", "")
        event = {"type": "message", "channel": channel, "user": f"UN{n:05d}{self.tag}",
                 "team": team,
                 "text": f"Unser Mailserver ist seit heute früh nicht erreichbar ({n})",
                 "ts": f"{NOW.timestamp() + n:.0f}.{self.tag}", "channel_type": "channel"}
        envelope = {"type": "event_callback", "team_id": team,
                    "event_id": f"EvBench{n}.{self.tag}", "event": event}
        async with self.db.session() as session:
            _, stored = await store_event(session, envelope, json.dumps(envelope).encode(),
                                          NOW)
        assert stored is not None
        outcome = await self.slack.process(stored, NOW)
        assert outcome == "ticket", outcome

    async def tidy(self) -> None:
        """Close the tickets the bench opened and cancel their reminders (not timed): else
        `sla status`, the digest and the reminder refresh would count them, more at each size,
        where a real desk's running tickets stay about as many."""
        async with self.db.session() as session:
            await session.exec(update(Ticket).where(col(Ticket.number) > TOP).values(
                status="closed", closed_at=NOW, first_response_at=NOW))
            await session.exec(update(Reminder).where(
                col(Reminder.ticket_number) > TOP, col(Reminder.sent_at).is_(None),
                col(Reminder.cancelled_at).is_(None)).values(cancelled_at=NOW))

    async def read(self, step: Callable[[Any], Awaitable[object]]) -> object:
        """A read, as the service makes it."""
        async with self.db.reader() as session:
            return await step(session)

    async def undone(self, step: Callable[[Any], Awaitable[object]]) -> object:
        """A write, rolled back: measure the work, keep the history as it is."""
        async with self.db.session() as session:
            result = await step(session)
            await session.rollback()
            return result

    async def digest(self) -> None:
        """Yesterday's digest, its claim of the day first removed so that it is built again."""
        async with self.db.session() as session:
            await session.exec(delete(DigestSent))
        job = DailyDigest(db=self.db, engine=self.service.engine, at=NOW.time(), owner="bench",
                          slack_file=self.folder / f"digest-{self.fresh()}.jsonl")
        assert await job.run(NOW)

    async def start(self) -> None:
        """`serve`'s start on this database, until /health answers; then stopped (not timed)."""
        service = build(self.settings, clock=lambda: NOW)  # 10:00: the daily jobs are due
        await migrate.upgrade(service.db)
        await service.start()
        async with aiohttp.ClientSession() as client, client.get(
                f"http://127.0.0.1:{service.http_port}/health") as response:
            await response.read()
        self.stopping = service

    def operations(self) -> dict[str, Callable[[], Awaitable[object]]]:
        """Each measured operation, by the name the table prints."""
        since = NOW - timedelta(hours=1)
        who = f"person03.nachname@{domain(7)}"
        return {
            "mail end to end": self.mail,
            "slack end to end": self.slack_message,
            "flood check": lambda: self.read(lambda s: senders.tickets_opened_by(
                s, sender=who, channel="email", since=since, customer_id=7)),
            "customer flood": lambda: self.read(lambda s: senders.tickets_of_customer_since(
                s, customer_id=7, since=since)),
            "duplicate check": lambda: self.read(lambda s: messages.ticket_of_ids(
                s, ["<nt1999990.1@nettask.de>"], who)),
            "auto-answer cap": lambda: self.read(lambda s: messages.outbound_since(
                s, recipient=who, since=NOW - timedelta(days=1))),
            "reminder refresh": lambda: self.read(reminders.next_due),
            "reminder claim": lambda: self.undone(lambda s: reminders.claim_due(
                s, now=NOW, owner="bench")),
            "tickets list": lambda: tickets_list(self.db, self.settings, False),
            "sla status": lambda: status_rows(self.db, BERLIN, NOW),
            "digest": self.digest,
            "retention batch": lambda: self.undone(lambda s: clear_raw_batch(
                s, cutoff=NOW - timedelta(days=90), limit=500)),
        }

    async def measure_start(self) -> tuple[float, float]:
        """Median wall and CPU ms of STARTS start-ups (after one warm-up)."""
        walls, cpus = [], []
        for _ in range(STARTS + 1):
            wall, cpu = time.perf_counter(), time.process_time()
            await self.start()
            walls.append((time.perf_counter() - wall) * 1000)
            cpus.append((time.process_time() - cpu) * 1000)
            await self.stopping.stop()
        return statistics.median(walls[1:]), statistics.median(cpus[1:])


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


async def wipe(url: str) -> None:
    """An empty database at the schema's head (the old one dropped), with the customers."""
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
        writer = Writer(db, url)
        await writer.write(customers())
        await writer.after_fill(customers_written=True)
    finally:
        await db.dispose()


async def grow(bench: Bench, have: int, want: int) -> tuple[int, float]:
    """Add tickets have+1..want; the rows written and the seconds it took."""
    writer = Writer(bench.db, bench.url)
    plans = bench.service.engine.policy.products["dehosted"].plans
    terms = {plan: snapshot(plans[plan]) for plan in PLANS}
    began, written = time.perf_counter(), 0
    for first, last in chunks(have, want, CHUNK):
        written += await writer.write(tickets(first, last, bench.texts, terms))
    await writer.after_fill(customers_written=False)
    return written, time.perf_counter() - began


def table(backend: str, sizes: list[int], figures: dict[str, dict[int, tuple[float, float]]],
          disk: dict[int, int]) -> str:
    """The printed table: operations by sizes, and the last size's ratio to the first."""
    first, last = sizes[0], sizes[-1]
    lines = [f"{backend}: median wall / CPU ms ({REPEAT} runs; start-up {STARTS})",
             f"{'operation':<18}" + "".join(f"{n:>18,}" for n in sizes)
             + f"{f'{last // 1000:,}k/{first // 1000:,}k':>12}"]
    for name, by_size in figures.items():
        lines.append(f"{name:<18}" + "".join(f"{w:>9.1f} /{c:>7.1f}" for w, c in
                                             by_size.values())
                     + f"{by_size[last][0] / by_size[first][0]:>11.2f}x")
    lines.append(f"{'size on disk MB':<18}" + "".join(f"{disk[n] / 1e6:>18.0f}" for n in sizes)
                 + f"{disk[last] / disk[first]:>11.2f}x")
    return "\n".join(lines)


async def history_size(db: Database) -> int:
    """How many tickets of the history the database holds (the bench's own runs aside)."""
    async with db.engine.connect() as connection:
        return int((await connection.execute(
            text("SELECT count(*) FROM ticket WHERE number < :top"), {"top": TOP})).scalar_one())


async def main(url: str, sizes: list[int], again: bool) -> None:
    # the service's lines (and its warning about trusted senders) would drown the table
    logging.basicConfig(level=logging.ERROR)
    if not again:
        await wipe(url)
    figures: dict[str, dict[int, tuple[float, float]]] = {}
    disk: dict[int, int] = {}
    with tempfile.TemporaryDirectory() as folder:
        bench = Bench(url, Path(folder))
        classifier = bench.service.intake.classifier
        assert isinstance(classifier, LazyClassifier)
        try:
            classifier.start()
            await asyncio.to_thread(classifier.wait)
            if again:  # the history as it is, at the schema's head (a new index built)
                await migrate.upgrade(bench.db)
                await Writer(bench.db, url).after_fill(customers_written=False)
                sizes = [await history_size(bench.db)]
            have = 0
            for size in sizes:
                if not again:
                    rows, seconds = await grow(bench, have, size)
                    print(f"filled {have:,} -> {size:,} tickets: {rows:,} rows in "
                          f"{seconds:.0f} s ({(size - have) / seconds:,.0f} tickets/s)",
                          flush=True)
                have = size
                for name, step in bench.operations().items():
                    figures.setdefault(name, {})[size] = await measure(step)
                    if name == "slack end to end":
                        await bench.tidy()
                figures.setdefault("start-up", {})[size] = await bench.measure_start()
                disk[size] = await size_of(bench.db)
                print(table(bench.db.backend, sizes[:sizes.index(size) + 1], figures, disk),
                      flush=True)
        finally:
            classifier.close()
            await bench.db.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True, help="a scratch database: WIPED")
    parser.add_argument("--again", action="store_true",
                        help="measure the history the database holds (migrated to the head "
                             "first): no wipe, no fill")
    parser.add_argument("--sizes", default="10000,100000",
                        help="comma-separated ticket counts to measure at, ascending")
    args = parser.parse_args()
    asyncio.run(main(args.database_url, [int(s) for s in args.sizes.split(",")], args.again))
