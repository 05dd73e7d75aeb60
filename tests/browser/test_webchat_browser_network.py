"""The web chat in a real browser when the connection fails: offline, a service restart, a refused
message; nothing is lost and nothing arrives twice (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest
from playwright.async_api import BrowserContext, expect

from tests.browser.conftest import StartChat
from tests.browser.kit import (
    open_chat,
    stored,
    write,
)

pytestmark = pytest.mark.browser


async def test_messages_typed_while_offline_arrive_once_when_the_network_returns(
        start_chat: StartChat, context: BrowserContext) -> None:
    chat = await start_chat()
    page = await chat.page(context)
    await open_chat(page)
    await write(page, "vor dem Schnitt")
    await stored(page, "vor dem Schnitt")
    await context.set_offline(True)
    await expect(page.locator(".ntw-status")).to_contain_text("Keine Verbindung")
    await write(page, "im Tunnel 1")
    await write(page, "im Tunnel 2")
    await expect(page.locator(".ntw-pending")).to_have_count(2)
    await context.set_offline(False)
    await expect(page.locator(".ntw-status")).to_have_text("Verbunden", timeout=40_000)
    await stored(page, "im Tunnel 1")
    await stored(page, "im Tunnel 2")
    texts = [item.text for item in await chat.in_items()]
    assert texts == ["vor dem Schnitt", "im Tunnel 1", "im Tunnel 2"]


async def test_a_message_queued_offline_survives_a_reload_and_arrives_once(
        start_chat: StartChat, context: BrowserContext) -> None:
    chat = await start_chat()
    page = await chat.page(context)
    await open_chat(page)
    await context.set_offline(True)
    await expect(page.locator(".ntw-status")).to_contain_text("Keine Verbindung")
    await write(page, "offline geschrieben, dann neu geladen")
    await expect(page.locator(".ntw-pending")).to_have_count(1)
    await context.set_offline(False)
    await page.reload()  # the queue is in localStorage: the reloaded page sends it
    await open_chat(page)
    await stored(page, "offline geschrieben, dann neu geladen")
    texts = [item.text for item in await chat.in_items()]
    assert texts == ["offline geschrieben, dann neu geladen"]


async def test_messages_written_while_the_service_restarts_arrive_once(
        start_chat: StartChat, context: BrowserContext) -> None:
    chat = await start_chat()
    page = await chat.page(context)
    await open_chat(page)
    await write(page, "vor dem Neustart")
    await stored(page, "vor dem Neustart")
    await chat.stop()  # the server closes the socket; the widget retries with its backoff
    await expect(page.locator(".ntw-status")).to_contain_text("Keine Verbindung")
    await write(page, "während des Neustarts")
    await expect(page.locator(".ntw-pending")).to_have_count(1)
    await chat.restart()
    await stored(page, "während des Neustarts")
    texts = [item.text for item in await chat.in_items()]
    assert texts == ["vor dem Neustart", "während des Neustarts"]


async def test_a_message_the_service_refuses_is_marked_not_sent_and_not_resent(
        start_chat: StartChat, context: BrowserContext) -> None:
    chat = await start_chat(webchat_max_chars=20)
    page = await chat.page(context)
    await open_chat(page)
    await write(page, "Diese Nachricht ist länger als zwanzig Zeichen.")
    failed = page.locator(".ntw-failed")
    await expect(failed.locator(".ntw-meta")).to_have_text(
        "nicht gesendet · Die Nachricht ist zu lang.")
    await page.reload()  # the refused message left the queue: nothing to send again
    await open_chat(page)
    await expect(page.locator(".ntw-in")).to_have_count(0)
    assert await chat.in_items() == []
