"""The real service on 127.0.0.1 (HTTP with the chat, the fake Slack Web API, a fresh database)
and Debian's Chromium driven by Playwright, as a person would use the web chat.

Chromium is never downloaded: /usr/bin/chromium (Debian's `chromium` package) must be there.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect
from sqlmodel import col, select

import bot
from bot.app import build
from bot.cases.customers_csv import parse_customer_csv
from bot.config import Settings, load_policy
from models import migrate
from models.customers import upsert_customers
from models.db import Database
from models.tables import Message, Ticket, WebItem
from tests.fakes.slack_api import FakeSlack
from tests.fakes.slack_events import SlackSender

# `fake` (the fake Slack Web API) is the integration tests' own fixture, made ours by importing it
from tests.integration.conftest import Clock, Running, fake, slack_settings  # noqa: F401

ROOT_DIR = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
# This machine's network is closed: without these, Chromium waits on connections of its own.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
IDENTITY_SECRET = "browser-test-identity-secret"
WAIT_MS = 15_000  # how long an expectation may take before the test fails
expect.set_options(timeout=WAIT_MS)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Headless Chromium; the test FAILS (not skips) when it is not installed."""
    if not CHROMIUM.exists():
        pytest.fail(f"the browser tests need Debian's Chromium at {CHROMIUM}: install it with "
                    "`apt-get install chromium` (.ci/run does)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        yield launched
        await launched.close()


def free_port() -> int:
    """A port nobody listens on now: the page's origin must be known before the service
    starts, since WEBCHAT_ORIGINS names it exactly."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Chat:
    """The running service, its fake Slack, and what the tests ask of them."""

    running: Running
    fake: FakeSlack
    sender: SlackSender
    base: str
    settings: Settings

    @property
    def db(self) -> Database:
        return self.running.db

    async def page(self, context: BrowserContext, path: str = "/chat/demo") -> Page:
        """A page of the demo portal, its console errors and dialogs recorded on it."""
        page = await context.new_page()
        page.set_default_timeout(WAIT_MS)
        await page.goto(self.base + path)
        return page

    async def stop(self) -> None:
        """Stop the service, as a deployment or a crash-restart does."""
        await self.running.service.stop()
        self.running.service.runner = None

    async def restart(self) -> None:
        """Start the service again on the same port and database."""
        self.running = await launch(self.settings)

    async def in_items(self) -> list[WebItem]:
        async with self.db.reader() as session:
            rows = await session.exec(select(WebItem).where(WebItem.direction == "in")
                                      .order_by(col(WebItem.id)))
            return list(rows.all())

    async def tickets(self) -> list[Ticket]:
        return await self.running.tickets()

    async def web_messages(self) -> list[Message]:
        async with self.db.reader() as session:
            rows = await session.exec(select(Message).where(Message.channel == "web")
                                      .order_by(col(Message.id)))
            return list(rows.all())

    async def until(self, what: Callable[[], Awaitable[Any]], timeout: float = 15) -> Any:
        """`what()`'s first truthy answer; fails after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = await what()
            if found:
                return found
            await asyncio.sleep(0.05)
        raise AssertionError(f"still not true after {timeout} s: {what}")


async def launch(settings: Settings) -> Running:
    """As start_service (migrated, demo customers loaded, started), and stopped again when
    its HTTP port is taken."""
    clock = Clock()
    service = build(settings, clock=clock)
    await migrate.upgrade(service.db)
    demo = (Path(bot.__file__).parent / "demo_customers.csv").read_text(encoding="utf-8")
    async with service.db.session() as session:
        await upsert_customers(session, parse_customer_csv(demo, load_policy(settings.policy_file)),
                               now=clock())
    try:
        await service.start()
    except OSError:
        await service.stop()
        raise
    return Running(service=service, clock=clock, outbox=settings.outbox_dir)


StartChat = Callable[..., Awaitable[Chat]]


@pytest.fixture
async def start_chat(db: Database, database_url: str, tmp_path: Path,
                     fake: FakeSlack) -> AsyncIterator[StartChat]:  # noqa: F811
    """Start the service with the chat at a known port; `secret=True`: the demo page signs
    the demo person's identity (WEBCHAT_IDENTITY_SECRET set, demo customers loaded)."""
    await db.dispose()
    started: list[Chat] = []

    async def start(*, secret: bool = False, **more: Any) -> Chat:
        for attempt in range(5):
            port = free_port()
            settings = slack_settings(
                tmp_path, database_url, fake, http_port=port,
                webchat_origins=f"http://127.0.0.1:{port}",
                webchat_identity_secret=IDENTITY_SECRET if secret else "", **more)
            try:
                running = await launch(settings)
            except OSError:  # someone took the port meanwhile: another one
                if attempt == 4:
                    raise
                continue
            chat = Chat(running, fake, SlackSender(port), f"http://127.0.0.1:{port}", settings)
            started.append(chat)
            return chat
        raise AssertionError("unreachable")

    yield start
    for chat in started:
        if chat.running.service.runner is not None:  # not stopped by the test itself
            await chat.running.service.stop()


@pytest.fixture
async def context(browser: Browser) -> AsyncIterator[BrowserContext]:
    """A fresh browser profile (its own localStorage), German, at desktop size."""
    made = await browser.new_context(locale="de-DE", viewport={"width": 1280, "height": 800})
    yield made
    await made.close()
