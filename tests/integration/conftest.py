"""A running service (SMTP, HTTP, workers) on 127.0.0.1 with a fresh database and outbox."""

from __future__ import annotations

import asyncio
import email
import email.policy
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiosmtplib
import pytest
from sqlmodel import col, select

import bot
from bot.app import DEMO_DKIM_KEYS, Service, build
from bot.cases.customers_csv import parse_customer_csv
from bot.classify import Classifier
from bot.config import Settings, load_policy
from models import migrate
from models.customers import upsert_customers
from models.db import Database
from models.tables import Message, Ticket
from tests.fakes.slack_api import FakeSlack
from tests.fakes.slack_events import SECRET, SlackSender

BERLIN = ZoneInfo("Europe/Berlin")
MONDAY_10 = datetime(2026, 11, 23, 10, tzinfo=BERLIN)


@dataclass
class Clock:
    """A settable clock for the service under test."""

    now: datetime = MONDAY_10

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Running:
    """The service under test and what the tests need to talk to it."""

    service: Service
    clock: Clock
    outbox: Path

    @property
    def db(self) -> Database:
        return self.service.db

    async def send(self, raw: bytes, *, sender: str = "kunde@example.org",
                   to: tuple[str, ...] = ("support@nettask.de",)) -> tuple[int, str]:
        """Deliver over SMTP; the final reply code and text."""
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=self.service.smtp_port, timeout=30)
        await client.connect()
        try:
            errors, message = await client.sendmail(sender, list(to), raw)
            assert not errors, errors
            return 250, message
        except aiosmtplib.SMTPRecipientsRefused as exc:
            first = exc.recipients[0]
            return first.code, first.message
        except aiosmtplib.SMTPResponseException as exc:
            return exc.code, exc.message
        finally:
            client.close()

    async def settle(self, timeout: float = 15) -> None:
        """Wait until every stored mail is processed and every reply left the outbox queue."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            async with self.db.session() as session:
                busy = (await session.exec(select(Message).where(
                    col(Message.disposition).in_(["pending", "queued"])))).first()
            if busy is None:
                return
            await asyncio.sleep(0.05)
        raise AssertionError("mail was still pending after the timeout")

    def replies(self) -> list[EmailMessage]:
        """Every reply in the Maildir outbox, oldest first."""
        files = sorted((self.outbox / "new").iterdir(), key=lambda p: p.stat().st_mtime_ns)
        return [email.message_from_bytes(p.read_bytes(), policy=email.policy.default)  # type: ignore[misc]
                for p in files]

    async def messages(self) -> list[Message]:
        async with self.db.session() as session:
            return list((await session.exec(select(Message).order_by(col(Message.id)))).all())

    async def tickets(self) -> list[Ticket]:
        async with self.db.session() as session:
            return list((await session.exec(select(Ticket).order_by(col(Ticket.number)))).all())


def make_settings(tmp_path: Path, database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = dict(
        dkim_keys_file=DEMO_DKIM_KEYS, dkim_dns=False,
        database_url=database_url, http_port=0, smtp_port=0, outbox_dir=tmp_path / "outbox",
        slack_outbox_file=tmp_path / "slack-outbox.jsonl",  # reminders never write to ./var
        support_addresses="support@nettask.de,hilfe@nettask.de", max_message_bytes=2_000_000,
        classifier="keywords",  # mail tests are about mail; test_classify_model loads the model
    )
    values.update(overrides)
    values["_env_file"] = None  # hermetic: never a developer's .env
    return Settings(**values)


async def start_service(settings: Settings, clock: Clock,
                        classifier: Classifier | None = None) -> Running:
    """Migrate, load the demo customers, start everything."""
    service = build(settings, classifier=classifier, clock=clock)
    await migrate.upgrade(service.db)
    demo = (Path(bot.__file__).parent / "demo_customers.csv").read_text(encoding="utf-8")
    records = parse_customer_csv(demo, load_policy(settings.policy_file))
    async with service.db.session() as session:
        await upsert_customers(session, records, now=clock())
    await service.start()
    return Running(service=service, clock=clock, outbox=settings.outbox_dir)


@pytest.fixture
async def running(db: Database, database_url: str, tmp_path: Path) -> AsyncIterator[Running]:
    await db.dispose()
    started = await start_service(make_settings(tmp_path, database_url), Clock())
    yield started
    await started.service.stop()


# ---- Slack: the service with a fake Slack Web API, and signed requests to it -------------------

AGENT = "U0AGENT"


def slack_settings(tmp_path: Path, database_url: str, fake: FakeSlack, **more: Any) -> Any:
    return make_settings(tmp_path, database_url, _env_file=None, slack_signing_secret=SECRET,
                         slack_bot_token="xoxb-test", slack_api_url=fake.base_url,
                         slack_agents=f"{AGENT},U0AGENT2", slack_triage_channel="C0TRIAGE",
                         slack_outbox_file=tmp_path / "slack.jsonl", **more)


@dataclass
class Slack:
    running: Running
    fake: FakeSlack
    sender: SlackSender

    async def rows(self) -> list[Message]:
        async with self.running.db.reader() as session:
            query = select(Message).where(Message.channel == "slack").order_by(col(Message.id))
            return list((await session.exec(query)).all())

    async def processed(self, timeout: float = 10) -> list[Message]:
        """The Slack rows once none is pending any more."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rows = await self.rows()
            if rows and all(r.disposition != "pending" for r in rows):
                return rows
            await asyncio.sleep(0.02)
        raise AssertionError("a Slack message was still pending after the timeout")


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    server = FakeSlack()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def slack(db: Database, database_url: str, tmp_path: Path,
                fake: FakeSlack) -> AsyncIterator[Slack]:
    await db.dispose()
    running = await start_service(slack_settings(tmp_path, database_url, fake), Clock())
    yield Slack(running, fake, SlackSender(running.service.http_port))
    await running.service.stop()
