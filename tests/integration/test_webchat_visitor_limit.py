"""New visitors per client address (WEBCHAT_NEW_VISITORS_PER_HOUR): a script that says `hello`
without a token again and again gets `rate_limited` and makes no rows, while known visitors
keep coming in. Through the real WebSocket from 127.0.0.1, the service on SQLite and
PostgreSQL; the hour is the service's clock."""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.intake.web.socket import CLOSE_TOO_MANY_VISITORS
from models.db import Database
from tests.integration.webchat_kit import Chat, chat_service

LIMIT = 3  # small, so that the tests stay quick; the default's test below uses 30


@pytest.fixture
async def chat(db: Database, database_url: str, tmp_path: Path) -> AsyncIterator[Chat]:
    await db.dispose()
    async for started in chat_service(tmp_path, database_url,
                                      webchat_new_visitors_per_hour=LIMIT):
        yield started


async def newcomers(chat: Chat, count: int) -> list[dict[str, Any]]:
    """`count` hellos without a token; the first frame each got."""
    return [(await chat.greet())[1] for _ in range(count)]


async def closed(ws: aiohttp.ClientWebSocketResponse) -> int | None:
    """The close code once the service has closed the socket."""
    message = await ws.receive(timeout=10)
    assert message.type is aiohttp.WSMsgType.CLOSE, message.type
    return ws.close_code


async def test_up_to_the_limit_every_new_visitor_is_welcomed(chat: Chat) -> None:
    frames = await newcomers(chat, LIMIT)
    assert [f["type"] for f in frames] == ["welcome"] * LIMIT


async def test_the_next_new_visitor_is_rate_limited(chat: Chat) -> None:
    await newcomers(chat, LIMIT)
    _, refused = await chat.greet()
    assert (refused["type"], refused["code"]) == ("error", "rate_limited")


async def test_the_refusal_says_why_in_the_visitors_language(chat: Chat) -> None:
    await newcomers(chat, LIMIT)
    _, refused = await chat.greet(lang="en")
    assert refused["message"] == "Too many messages in a short time. Please wait a moment."


async def test_the_refused_visitor_gets_no_row(chat: Chat) -> None:
    await newcomers(chat, LIMIT)
    await chat.greet()
    assert len(await chat.visitors()) == LIMIT


async def test_the_refused_socket_is_closed_with_its_code(chat: Chat) -> None:
    await newcomers(chat, LIMIT)
    ws, _ = await chat.greet()
    assert await closed(ws) == CLOSE_TOO_MANY_VISITORS


async def test_the_refusal_is_logged(chat: Chat, caplog: pytest.LogCaptureFixture) -> None:
    await newcomers(chat, LIMIT)
    with caplog.at_level(logging.WARNING, logger="bot.intake.web.socket"):
        await chat.greet()
    assert "event=webchat_rate_limited what=new_visitor address=127.0.0.1 limit=3/hour" in [
        record.getMessage() for record in caplog.records]


async def test_a_known_visitor_is_welcomed_past_the_limit(chat: Chat) -> None:
    [first, *_] = await newcomers(chat, LIMIT)
    _, again = await chat.greet(visitor=first["visitor"])
    assert (again["type"], again["visitor"]) == ("welcome", first["visitor"])


async def test_a_made_up_token_counts_as_a_new_visitor(chat: Chat) -> None:
    """An unknown token would make a new visitor: it cannot get round the limit."""
    await newcomers(chat, LIMIT)
    _, refused = await chat.greet(visitor=secrets.token_urlsafe(32))
    assert (refused["type"], refused["code"]) == ("error", "rate_limited")
    assert len(await chat.visitors()) == LIMIT


async def test_an_hour_later_a_new_visitor_is_welcomed_again(chat: Chat) -> None:
    await newcomers(chat, LIMIT)
    chat.running.clock.now += timedelta(hours=1)
    _, welcome = await chat.greet()
    assert welcome["type"] == "welcome"


async def test_within_the_hour_the_limit_holds(chat: Chat) -> None:
    await newcomers(chat, LIMIT)
    chat.running.clock.now += timedelta(minutes=59)
    _, refused = await chat.greet()
    assert refused["type"] == "error"


async def test_by_default_the_31st_new_visitor_is_refused(db: Database, database_url: str,
                                                         tmp_path: Path) -> None:
    await db.dispose()
    async for chat in chat_service(tmp_path, database_url):
        welcomed = await newcomers(chat, 30)
        _, refused = await chat.greet()
        assert [f["type"] for f in welcomed] == ["welcome"] * 30
        assert (refused["type"], refused["code"]) == ("error", "rate_limited")
        assert len(await chat.visitors()) == 30
