"""Rate limits on the WebSocket, counted in the store (they hold across reconnects): the
n+1st message a minute, `email` frame an hour per visitor or per address, is refused with
`rate_limited` and nothing is stored; SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest
from sqlmodel import select

from models.db import Database
from models.tables import Message, WebCode
from tests.integration.webchat_kit import Chat, chat_service, receive, send_message

ANNA = "anna@baeckerei-krume.de"


@pytest.fixture
async def chat(db: Database, database_url: str, tmp_path: Path) -> AsyncIterator[Chat]:
    await db.dispose()
    async for started in chat_service(tmp_path, database_url):
        yield started


async def give_address(ws: aiohttp.ClientWebSocketResponse, address: str) -> dict[str, object]:
    await ws.send_json({"type": "email", "address": address})
    return await receive(ws)


async def codes_and_mails(chat: Chat) -> tuple[int, int]:
    async with chat.running.db.reader() as session:
        codes = len((await session.exec(select(WebCode))).all())
        mails = len((await session.exec(select(Message).where(Message.direction == "out"))).all())
    return codes, mails


async def test_the_21st_message_a_minute_is_refused_and_not_stored(chat: Chat) -> None:
    ws, _ = await chat.hello()
    for n in range(20):
        await send_message(ws, f"m-{n}", "hallo")
    refused = await send_message(ws, "m-20", "eins zu viel")
    assert (refused["type"], refused["code"], refused["client_id"]) == (
        "error", "rate_limited", "m-20")
    assert len(await chat.items("in")) == 20
    assert len(await chat.web_messages()) == 20


async def test_the_message_limit_holds_across_a_reconnect(chat: Chat) -> None:
    ws, welcome = await chat.hello()
    for n in range(20):
        await send_message(ws, f"m-{n}", "hallo")
    await ws.close()
    again, _ = await chat.hello(visitor=welcome["visitor"])
    assert (await send_message(again, "m-20", "eins zu viel"))["code"] == "rate_limited"


async def test_a_minute_later_messages_are_taken_again(chat: Chat) -> None:
    ws, _ = await chat.hello()
    for n in range(20):
        await send_message(ws, f"m-{n}", "hallo")
    chat.running.clock.now += timedelta(minutes=1, seconds=1)
    assert (await send_message(ws, "m-20", "wieder"))["type"] == "ack"


async def test_a_resend_of_a_stored_message_is_acked_at_the_limit(chat: Chat) -> None:
    ws, _ = await chat.hello()
    acks = [await send_message(ws, f"m-{n}", "hallo") for n in range(20)]
    assert await send_message(ws, "m-0", "hallo") == acks[0]


async def test_another_visitor_is_not_limited_by_the_first(chat: Chat) -> None:
    a, _ = await chat.hello()
    b, _ = await chat.hello()
    for n in range(20):
        await send_message(a, f"m-{n}", "hallo")
    assert (await send_message(b, "m-0", "hallo"))["type"] == "ack"


async def test_the_refusal_is_logged(chat: Chat, caplog: pytest.LogCaptureFixture) -> None:
    ws, _ = await chat.hello()
    for n in range(21):
        await send_message(ws, f"m-{n}", "hallo")
    assert "event=webchat_rate_limited visitor=1 client_id=m-20 limit=20/minute" in caplog.text


async def test_the_6th_email_frame_of_a_visitor_an_hour_is_refused(chat: Chat) -> None:
    ws, welcome = await chat.hello()
    for n in range(5):
        assert (await give_address(ws, f"person{n}@example.org"))["type"] == "email_ok"
    await ws.close()
    again, _ = await chat.hello(visitor=welcome["visitor"])  # a reconnect does not reset it
    refused = await give_address(again, ANNA)
    assert (refused["type"], refused["code"]) == ("error", "rate_limited")
    assert await codes_and_mails(chat) == (5, 0)
    assert [v.email for v in await chat.visitors()] == ["person4@example.org"]


async def test_the_6th_email_frame_for_an_address_an_hour_is_refused(chat: Chat) -> None:
    for _ in range(5):
        ws, _ = await chat.hello()
        assert (await give_address(ws, ANNA))["type"] == "email_ok"
    other, _ = await chat.hello()
    refused = await give_address(other, ANNA)
    assert (refused["type"], refused["code"]) == ("error", "rate_limited")
    assert await codes_and_mails(chat) == (5, 5)


async def test_nobodys_address_is_limited_the_same_way(chat: Chat) -> None:
    for _ in range(5):
        ws, _ = await chat.hello()
        await give_address(ws, "someone@example.org")
    other, _ = await chat.hello()
    assert (await give_address(other, "someone@example.org"))["code"] == "rate_limited"


async def test_an_hour_later_an_address_may_ask_again(chat: Chat) -> None:
    ws, _ = await chat.hello()
    for n in range(5):
        await give_address(ws, f"person{n}@example.org")
    chat.running.clock.now += timedelta(hours=1, seconds=1)
    assert (await give_address(ws, ANNA))["type"] == "email_ok"
