"""CPU time and SQL statements per mail in the pipeline's own steps, without the model.

Stores N bench mails (as the SMTP handler does), processes them one after another (as the
worker does, with the keyword classifier so that the model's time is left out), and delivers
the replies to a Maildir (as the deliverer does). For each step it prints the CPU time per mail
(time.process_time of this process, all threads) and the SQL statements per mail.

Run (SQLite in a temporary folder, or --database-url postgresql://...):
    PYTHONPATH=. .venv/bin/python bench/pipeline_cpu.py [--messages 200] [--database-url URL]
Not part of the tests.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from sqlalchemy import event

from bench.email_intake import mail, texts
from bot.app import build
from bot.classify.keywords import KeywordClassifier
from bot.config import Settings
from bot.intake.mail.mime import content_digest, message_id_of
from bot.intake.mail.outbound import Deliverer, MaildirOutbox
from models.messages import store_inbound


class Counter:
    """SQL statements executed on an engine."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, *_: Any) -> None:
        self.count += 1


async def step(name: str, count: int, counter: Counter,
               run: Callable[[int], Awaitable[object]], *, rounds: int | None = None) -> None:
    """Run `run` for each of `count` mails (or `rounds` times, for a step that takes them all)."""
    before_cpu, before_wall, before_sql = time.process_time(), time.perf_counter(), counter.count
    for n in range(count if rounds is None else rounds):
        await run(n)
    cpu = (time.process_time() - before_cpu) / count * 1000
    wall = (time.perf_counter() - before_wall) / count * 1000
    print(f"{name:10} {cpu:6.2f} ms CPU/mail  {wall:6.2f} ms wall/mail  "
          f"{(counter.count - before_sql) / count:5.1f} statements/mail", flush=True)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-cpu-"))
    url = args.database_url or f"sqlite:///{work}/bench.db"
    env = {**os.environ, "DATABASE_URL": url}
    for command in (["db", "upgrade"], ["customers", "import", "--demo", "--if-empty"]):
        subprocess.run([sys.executable, "-m", "bot", *command], env=env, check=True,
                       capture_output=True)
    settings = Settings(_env_file=None, database_url=url, classifier="keywords",  # type: ignore[call-arg]
                        outbox_dir=work / "outbox", flood_max_per_customer=1_000_000,
                        flood_max_per_sender=1_000_000, duplicate_window_minutes=0)
    service = build(settings, classifier=KeywordClassifier())
    counter = Counter()
    event.listen(service.db.engine.sync_engine, "before_cursor_execute", counter)
    deliverer = Deliverer(db=service.db, transport=MaildirOutbox(work / "outbox"),
                          clock=service.clock)
    run = f"{os.getpid()}-{int(time.time())}"
    raws = [mail(run, n, subject, body) for n, (subject, body) in
            enumerate(texts(args.messages))]
    ids: list[int] = []

    async def store(n: int) -> None:
        raw = raws[n]
        sender = f"user{n}@logistik-nord.de"
        async with service.db.session() as session:
            stored = await store_inbound(
                session, channel="email", external_id=message_id_of(raw),
                digest=content_digest(raw, envelope_sender=sender), raw=raw, sender=sender,
                recipient="support@nettask.de", now=service.clock())
        assert stored is not None
        ids.append(stored)

    async def process(n: int) -> None:
        disposition = await service.intake.process(ids[n], service.clock())
        assert disposition == "ticket", disposition

    async def deliver(_: int) -> None:
        while await deliverer.run_once():  # at most 100 a round
            pass

    gc.freeze()
    print(f"{args.messages} mails on {service.db.backend}", flush=True)
    await step("store", args.messages, counter, store)
    await step("process", args.messages, counter, process)
    await step("deliver", args.messages, counter, deliver, rounds=1)
    delivered = len(list((work / "outbox" / "new").iterdir()))
    print(f"delivered  {delivered} replies", flush=True)
    await service.db.dispose()


if __name__ == "__main__":
    asyncio.run(main())
