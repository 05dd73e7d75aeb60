"""Issue 11: accepting never waits on thinking. The model loads in the background while SMTP
accepts, stores yield to nothing, and several workers claim each stored mail exactly once."""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import AsyncIterator
from concurrent.futures import Future
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import text
from sqlmodel import col, select

from bot.app import customer_replies, mail_config, make_classifier
from bot.classify import Classifier
from bot.classify.keywords import KeywordClassifier
from bot.classify.language import LanguageDetector
from bot.classify.lazy import LazyClassifier
from bot.config import Settings
from bot.domain import Triage
from bot.intake.mail.inbound import MailIntake
from bot.intake.mail.mime import content_digest
from bot.jobs.workers import MailWorker
from bot.sla.engine import Engine
from models import migrate
from models.db import Database
from models.messages import store_inbound
from models.tables import Message, Ticket
from tests.conftest import child_cwd, child_env, postgres_url
from tests.integration.conftest import MONDAY_10, Clock, Running, make_settings, start_service
from tests.integration.test_email import outage


class GatedClassifier:
    """Keyword rules behind a gate: classifying waits until the test opens it."""

    def __init__(self, gate: threading.Event) -> None:
        self.gate = gate
        self.inner = KeywordClassifier()

    def classify(self, subject: str, text: str) -> Triage:
        if not self.gate.wait(timeout=30):
            raise TimeoutError("the test never opened the gate")
        return self.inner.classify(subject, text)


async def health(running: Running) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http:
        url = f"http://127.0.0.1:{running.service.http_port}/health"
        async with http.get(url) as response:
            body: dict[str, Any] = await response.json()
            body["http_status"] = response.status
            return body


async def poll(condition: Any, timeout: float = 15) -> None:
    """Wait until `await condition()` is true (checked every 20 ms)."""
    async with asyncio.timeout(timeout):
        while not await condition():
            await asyncio.sleep(0.02)


async def test_smtp_accepts_and_stores_before_the_model_is_loaded(
        db: Database, database_url: str, tmp_path: Path) -> None:
    await db.dispose()
    release = threading.Event()

    def load() -> Classifier:  # stands for the encoder's seconds of loading
        if not release.wait(timeout=30):
            raise TimeoutError("the test never released the model")
        return KeywordClassifier()

    running = await start_service(make_settings(tmp_path, database_url), Clock(),
                                  classifier=LazyClassifier(load))
    try:
        before = await health(running)
        code, text = await running.send(outage())
        [stored] = await running.messages()
        release.set()
        await running.settle()
        after = await health(running)
        [ticket] = await running.tickets()
        [reply] = running.replies()
    finally:
        release.set()
        await running.service.stop()
    assert code == 250
    assert "queued as" in text
    assert stored.disposition == "pending"
    assert stored.raw is not None and b"Mailserver ist komplett ausgefallen" in stored.raw
    assert before["model"] == {"loaded": False}
    assert before["http_status"] == 200
    assert after["model"] == {"loaded": True}
    assert ticket.department == "trouble"
    assert f"[NT#{ticket.number}]" in str(reply["Subject"])


async def test_a_model_that_cannot_load_is_reported_and_the_mail_kept(
        db: Database, database_url: str, tmp_path: Path) -> None:
    await db.dispose()

    def load() -> Classifier:
        raise OSError("weights unreadable")

    running = await start_service(make_settings(tmp_path, database_url), Clock(),
                                  classifier=LazyClassifier(load))
    try:
        code, _ = await running.send(outage())

        async def reported() -> bool:
            return "error" in (await health(running))["model"]

        await poll(reported)
        state = await health(running)
        [stored] = await running.messages()
    finally:
        await running.service.stop()
    assert code == 250
    assert state["http_status"] == 503
    assert state["model"] == {"loaded": False, "error": "OSError: weights unreadable"}
    assert stored.raw is not None
    assert stored.disposition == "pending"  # retried with backoff, never dropped


def test_what_start_up_loaded_is_left_out_of_garbage_collection(tmp_path: Path) -> None:
    # A full collection scanned the loaded model's ~470,000 objects (230-290 ms without any
    # thread running Python, the SMTP 250s waiting); once it is loaded they are frozen.
    settings = Settings(_env_file=None, classifier="keywords",
                        database_url=f"sqlite:///{tmp_path}/x.db")
    gc.unfreeze()
    before = gc.get_freeze_count()
    classifier = make_classifier(settings)
    classifier.start()
    try:
        classifier.wait(timeout=30)
        after = gc.get_freeze_count()
    finally:
        gc.unfreeze()
    assert before == 0
    assert after > 0


async def test_a_store_goes_before_queued_processing_writes(database_url: str) -> None:
    # PostgreSQL: background work has its own pool (1 + 4 overflow here); hold all of it.
    db = Database(database_url, background_pool=1)
    holders = 1 if db.backend == "sqlite" else 5
    order: list[str] = []
    held, release = asyncio.Semaphore(0), asyncio.Event()

    async def background(name: str, hold: bool = False) -> None:
        async with db.session(background=True) as session:
            await session.exec(text("SELECT 1"))  # type: ignore[call-overload]
            if hold:
                held.release()
                await release.wait()
            order.append(name)

    async def front() -> None:
        async with db.session() as session:
            await session.exec(text("SELECT 1"))  # type: ignore[call-overload]
            order.append("store")

    tasks = []
    try:
        tasks = [asyncio.create_task(background(f"holder-{n}", hold=True))
                 for n in range(holders)]
        for _ in range(holders):
            await held.acquire()
        tasks += [asyncio.create_task(background(f"queued-{n}")) for n in range(3)]
        await asyncio.sleep(0)  # one turn: the queued writers take their place in the queue
        stored = asyncio.create_task(front())
        if db.backend == "postgresql":  # the store commits while background work holds it all
            await asyncio.wait_for(asyncio.shield(stored), timeout=10)
        release.set()
        await asyncio.gather(*tasks, stored)
    finally:
        release.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        await db.dispose()
    assert order.index("store") == (1 if db.backend == "sqlite" else 0)
    assert len(order) == holders + 4


class CountingClassifier:
    """Keyword rules that note each subject they classify, and answer only once the other
    worker's classifier has started too, so the two workers are busy at the same time. Like the
    model it answers from its own thread (`submit`), holding no worker thread while it waits."""

    def __init__(self, mine: threading.Event, other: threading.Event) -> None:
        self.mine, self.other = mine, other
        self.seen: list[str] = []
        self.inner = KeywordClassifier()

    def classify(self, subject: str, text: str) -> Triage:
        self.mine.set()
        if not self.other.wait(timeout=30):
            raise TimeoutError("the other worker never started")
        self.seen.append(subject)
        return self.inner.classify(subject, text)

    def submit(self, subject: str, text: str) -> Future[Triage]:
        future: Future[Triage] = Future()

        def run() -> None:
            try:
                future.set_result(self.classify(subject, text))
            except Exception as exc:
                future.set_exception(exc)

        threading.Thread(target=run, daemon=True).start()
        return future


@pytest.fixture
async def postgres_db() -> AsyncIterator[Database]:
    """An empty, migrated PostgreSQL database (`intake-bot work` runs on PostgreSQL only)."""
    url = postgres_url()
    database = Database(url)
    async with database.engine.begin() as connection:
        await connection.execute(text("DROP SCHEMA public CASCADE"))
        await connection.execute(text("CREATE SCHEMA public"))
    await migrate.upgrade(database)
    yield database
    await database.dispose()


@pytest.mark.postgres
async def test_two_workers_process_each_mail_exactly_once(postgres_db: Database,
                                                          engine: Engine) -> None:
    db, database_url = postgres_db, postgres_url()
    count = 40
    settings = Settings(_env_file=None, database_url=database_url,  # type: ignore[call-arg]
                        classifier="keywords")
    async with db.session() as session:
        for n in range(count):
            raw = outage(sender=f"user{n}@example.org", message_id=f"<w-{n}@example.org>",
                         subject=f"Ausfall {n}")
            await store_inbound(session, channel="email", external_id=f"<w-{n}@example.org>",
                                raw=raw, digest=content_digest(raw),
                                sender=f"user{n}@example.org", recipient="support@nettask.de",
                                now=MONDAY_10)
    started = threading.Event(), threading.Event()
    classifiers = [CountingClassifier(started[0], started[1]),
                   CountingClassifier(started[1], started[0])]
    workers: list[MailWorker] = []
    databases = [Database(database_url, background_pool=8) for _ in classifiers]

    def clock() -> datetime:
        return MONDAY_10

    try:
        for database, classifier in zip(databases, classifiers, strict=True):
            config = mail_config(settings)
            intake = MailIntake(db=database, engine=engine, config=config,
                                classifier=classifier, detector=LanguageDetector(),
                                replies=customer_replies(config))
            workers.append(MailWorker(intake, clock=clock, on_processed=lambda: None,
                                      concurrency=8))
        await asyncio.gather(*(worker.start() for worker in workers))

        async def all_done() -> bool:
            async with db.reader() as session:
                left = (await session.exec(select(Message).where(
                    Message.direction == "in", Message.disposition == "pending"))).first()
            return left is None

        await poll(all_done, timeout=60)
    finally:
        for worker in workers:
            await worker.stop()
        for database in databases:
            await database.dispose()
    async with db.reader() as session:
        tickets = list((await session.exec(select(Ticket))).all())
        replies = list((await session.exec(select(Message).where(
            Message.direction == "out"))).all())
        inbound = list((await session.exec(select(Message).where(
            Message.direction == "in").order_by(col(Message.id)))).all())
    classified = Counter(classifiers[0].seen + classifiers[1].seen)
    assert sorted(classified) == sorted(f"Ausfall {n}" for n in range(count))
    assert set(classified.values()) == {1}
    assert len(classifiers[0].seen) > 0
    assert len(classifiers[1].seen) > 0
    assert len(tickets) == count
    assert len(replies) == count
    assert {m.disposition for m in inbound} == {"ticket"}


@pytest.mark.slow  # `intake-bot work` as a child process
def test_work_command_needs_postgresql(tmp_path: Path) -> None:
    env = child_env({"DATABASE_URL": f"sqlite:///{tmp_path}/x.db", "CLASSIFIER": "keywords"})
    done = subprocess.run([sys.executable, "-m", "bot", "work"], env=env, cwd=child_cwd(),
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert "needs PostgreSQL" in done.stderr
