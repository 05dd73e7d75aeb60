"""Codes on the WebSocket: mailed only to a customer's address (read here from the mail the
outbox delivered), the same answer for anybody's address, 5 tries, 10 minutes, one visitor;
SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest
from sqlmodel import select

from models.db import Database
from models.tables import Customer, Message, WebCode
from tests.integration.webchat_kit import WAIT, Chat, chat_service, receive, send_message

ANNA = "anna@baeckerei-krume.de"  # an address of D-1001 (the demo customers)
STRANGER = "someone@example.org"  # nobody's


@pytest.fixture
async def chat(db: Database, database_url: str, tmp_path: Path) -> AsyncIterator[Chat]:
    await db.dispose()
    async for started in chat_service(tmp_path, database_url):
        yield started


def delivered(chat: Chat, to: str) -> list[str]:
    """The texts of the mails the outbox delivered to `to`, oldest first."""
    folder = chat.running.outbox / "new"
    texts = []
    for path in sorted(folder.iterdir(), key=lambda p: p.stat().st_mtime_ns):
        mail = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if mail["To"] == to:
            texts.append(mail.get_body().get_content())  # type: ignore[union-attr]
    return texts


async def mailed_code(chat: Chat, to: str, number: int = 1) -> str:
    """The code in the `number`th mail to `to`, once the outbox delivered it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while len(texts := delivered(chat, to)) < number:
        assert loop.time() < deadline, f"no code mail {number} to {to}"
        await asyncio.sleep(0.02)
    found = re.search(r"\b(\d{6})\b", texts[number - 1])
    assert found is not None, texts[number - 1]
    return found.group(1)


def other_than(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


async def give_address(ws: aiohttp.ClientWebSocketResponse, address: str) -> dict[str, object]:
    await ws.send_json({"type": "email", "address": address})
    return await receive(ws)


async def type_code(ws: aiohttp.ClientWebSocketResponse, code: str) -> dict[str, object]:
    await ws.send_json({"type": "code", "code": code})
    return await receive(ws)


async def test_the_right_code_verifies_the_visitor(chat: Chat) -> None:
    ws, _ = await chat.hello()
    assert await give_address(ws, ANNA) == {"type": "email_ok", "address": ANNA}
    assert await type_code(ws, await mailed_code(chat, ANNA)) == {
        "type": "verified", "email": ANNA, "name": ""}
    async with chat.running.db.reader() as session:
        krume = (await session.exec(select(Customer.id).where(Customer.number == "D-1001"))).one()
    [visitor] = await chat.visitors()
    assert (visitor.verified_by, visitor.customer_id, visitor.email) == ("code", krume, ANNA)


async def test_after_the_code_messages_are_sent_by_the_address(chat: Chat) -> None:
    ws, welcome = await chat.hello()
    await give_address(ws, ANNA)
    await type_code(ws, await mailed_code(chat, ANNA))
    await send_message(ws, "m-1", "Hallo")
    [row] = await chat.web_messages()
    assert row.sender == ANNA


async def test_the_welcome_after_the_code_says_verified(chat: Chat) -> None:
    ws, welcome = await chat.hello()
    await give_address(ws, ANNA)
    await type_code(ws, await mailed_code(chat, ANNA))
    _, again = await chat.hello(visitor=welcome["visitor"])
    assert (again["verified"], again["email"], again["asks_email"]) == (True, ANNA, False)


async def test_nobodys_address_gets_the_same_answer_and_no_mail(chat: Chat) -> None:
    ws, _ = await chat.hello()
    assert await give_address(ws, STRANGER) == {"type": "email_ok", "address": STRANGER}
    async with chat.running.db.reader() as session:
        mails = (await session.exec(select(Message).where(Message.direction == "out"))).all()
    assert [m.recipient for m in mails] == []


async def test_no_code_verifies_nobodys_address(chat: Chat) -> None:
    ws, _ = await chat.hello()
    await give_address(ws, STRANGER)
    answers = [await type_code(ws, f"{n:06d}") for n in range(5)]
    assert [a["tries_left"] for a in answers] == [4, 3, 2, 1, 0]


async def test_a_wrong_code_counts_down(chat: Chat) -> None:
    ws, _ = await chat.hello()
    await give_address(ws, ANNA)
    wrong = other_than(await mailed_code(chat, ANNA))
    assert [await type_code(ws, wrong) for _ in range(2)] == [
        {"type": "code_wrong", "tries_left": 4}, {"type": "code_wrong", "tries_left": 3}]


async def test_after_five_wrong_tries_even_the_right_code_fails(chat: Chat) -> None:
    ws, _ = await chat.hello()
    await give_address(ws, ANNA)
    code = await mailed_code(chat, ANNA)
    for _ in range(5):
        await type_code(ws, other_than(code))
    assert await type_code(ws, code) == {"type": "code_wrong", "tries_left": 0}
    assert [v.verified_by for v in await chat.visitors()] == [""]


async def test_an_expired_code_fails(chat: Chat) -> None:
    ws, _ = await chat.hello()
    await give_address(ws, ANNA)
    code = await mailed_code(chat, ANNA)
    chat.running.clock.now += timedelta(minutes=10)
    assert await type_code(ws, code) == {"type": "code_expired"}
    assert [v.verified_by for v in await chat.visitors()] == [""]


async def test_a_code_just_before_it_expires_verifies(chat: Chat) -> None:
    ws, _ = await chat.hello()
    await give_address(ws, ANNA)
    code = await mailed_code(chat, ANNA)
    chat.running.clock.now += timedelta(minutes=10) - timedelta(seconds=1)
    assert (await type_code(ws, code))["type"] == "verified"


async def test_a_code_without_an_address_given_is_expired(chat: Chat) -> None:
    ws, _ = await chat.hello()
    assert await type_code(ws, "123456") == {"type": "code_expired"}


async def test_visitor_a_s_code_typed_by_visitor_b_fails(chat: Chat) -> None:
    a, _ = await chat.hello()
    b, _ = await chat.hello()
    await give_address(a, ANNA)
    code = await mailed_code(chat, ANNA)
    assert await type_code(b, code) == {"type": "code_expired"}  # b asked for none
    await give_address(b, ANNA)  # b asks for its own, and types a's
    await mailed_code(chat, ANNA, 2)
    assert await type_code(b, code) == {"type": "code_wrong", "tries_left": 4}
    assert [v.verified_by for v in await chat.visitors()] == ["", ""]


async def test_a_new_address_replaces_the_open_code(chat: Chat) -> None:
    ws, _ = await chat.hello()
    await give_address(ws, ANNA)
    first = await mailed_code(chat, ANNA)
    await give_address(ws, ANNA)
    second = await mailed_code(chat, ANNA, 2)
    if first != second:  # one in a million they are equal, and the first one would pass
        assert await type_code(ws, first) == {"type": "code_wrong", "tries_left": 4}
    assert (await type_code(ws, second))["type"] == "verified"


async def test_a_malformed_code_is_a_bad_frame(chat: Chat) -> None:
    ws, _ = await chat.hello()
    answer = await type_code(ws, "12345a")
    assert (answer["type"], answer["code"]) == ("error", "bad_frame")


async def test_a_malformed_address_is_a_bad_frame(chat: Chat) -> None:
    ws, _ = await chat.hello()
    answer = await give_address(ws, "not an address")
    assert (answer["type"], answer["code"]) == ("error", "bad_frame")


async def test_the_code_is_stored_hashed(chat: Chat) -> None:
    ws, _ = await chat.hello()
    await give_address(ws, ANNA)
    code = await mailed_code(chat, ANNA)
    async with chat.running.db.reader() as session:
        [row] = (await session.exec(select(WebCode))).all()
    assert (code in row.code_hash, len(row.code_hash)) == (False, 64)


async def test_guessing_on_several_sockets_at_once_gets_five_tries_in_all(chat: Chat) -> None:
    first, welcome = await chat.hello()
    tabs = [first] + [(await chat.hello(visitor=welcome["visitor"]))[0] for _ in range(2)]
    await give_address(first, ANNA)
    code = await mailed_code(chat, ANNA)
    guesses = [f"{n:06d}" for n in range(1_000_000) if f"{n:06d}" != code][:15]
    for n, guess in enumerate(guesses):
        await tabs[n % 3].send_json({"type": "code", "code": guess})
    answers = [await receive(tab) for tab in tabs for _ in range(5)]
    assert sorted(a["tries_left"] for a in answers) == [0] * 11 + [1, 2, 3, 4]
    assert await type_code(first, code) == {"type": "code_wrong", "tries_left": 0}
