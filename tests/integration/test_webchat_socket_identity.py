"""The portal identity on the WebSocket: a good one verifies the visitor, every forgery leaves
it unverified with `identity_invalid` and a log line; SQLite and PostgreSQL."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from bot.intake.web.identity import sign
from models.db import Database
from models.tables import Customer
from tests.integration.conftest import MONDAY_10
from tests.integration.webchat_kit import SECRET, Chat, chat_service, receive, send_message

ANNA = "anna@baeckerei-krume.de"  # an address of D-1001 (the demo customers)


@pytest.fixture
async def chat(db: Database, database_url: str, tmp_path: Path) -> AsyncIterator[Chat]:
    await db.dispose()
    async for started in chat_service(tmp_path, database_url):
        yield started


def identity(secret: str = SECRET, **changes: Any) -> str:
    values: dict[str, Any] = {"customer": "D-1001", "email": ANNA, "name": "Anna Krume",
                              "exp": int(MONDAY_10.timestamp()) + 3600, "jti": "login-1"}
    values.update(changes)
    return sign(values, secret.encode())


async def customer_id(chat: Chat, number: str) -> int | None:
    async with chat.running.db.reader() as session:
        return (await session.exec(select(Customer.id).where(Customer.number == number))).one()


async def test_a_good_identity_verifies_the_visitor(chat: Chat) -> None:
    _, welcome = await chat.hello(identity=identity())
    assert (welcome["verified"], welcome["email"], welcome["name"], welcome["asks_email"]) == (
        True, ANNA, "Anna Krume", False)
    [visitor] = await chat.visitors()
    assert (visitor.verified_by, visitor.customer_id, visitor.email) == (
        "identity", await customer_id(chat, "D-1001"), ANNA)


async def test_a_verified_visitors_message_is_sent_by_its_address(chat: Chat) -> None:
    ws, _ = await chat.hello(identity=identity())
    await send_message(ws, "m-1", "Hallo")
    [row] = await chat.web_messages()
    assert row.sender == ANNA


async def test_the_same_identity_again_on_the_same_visitor_is_no_replay(chat: Chat) -> None:
    ws, welcome = await chat.hello(identity=identity())
    await ws.close()
    _, again = await chat.hello(visitor=welcome["visitor"], identity=identity())
    assert again["verified"] is True


FORGED = {
    "wrong secret": lambda: identity(secret="guessed"),
    "changed payload": lambda: identity().split(".")[0][:-2] + "xy." + identity().split(".")[1],
    "expired": lambda: identity(exp=int(MONDAY_10.timestamp()) - 60),
    "too far ahead": lambda: identity(exp=int(MONDAY_10.timestamp()) + 86_400 + 60),
    "another customer's address": lambda: identity(email="chef@kanzlei-weber.de"),
    "nobody's address": lambda: identity(email="someone@example.org"),
    "unknown customer": lambda: identity(customer="X-9999"),
    "not base64": lambda: "%%%.%%%",
    "no dot": lambda: "abcdef",
}


@pytest.mark.parametrize("make", FORGED.values(), ids=FORGED.keys())
async def test_a_forged_identity_leaves_the_visitor_unverified(chat: Chat, make: Any) -> None:
    ws, welcome = await chat.hello(identity=make())
    refused = await receive(ws)
    assert (welcome["verified"], refused["type"], refused["code"]) == (
        False, "error", "identity_invalid")
    [visitor] = await chat.visitors()
    assert (visitor.verified_by, visitor.customer_id, visitor.email) == ("", None, "")


async def test_a_forged_identity_is_logged_with_its_reason(
        chat: Chat, caplog: pytest.LogCaptureFixture) -> None:
    await chat.hello(identity=identity(customer="X-9999"))
    assert "event=webchat_identity_refused visitor=1 reason='unknown customer'" in caplog.text


async def test_a_jti_shown_by_another_visitor_is_a_replay(chat: Chat) -> None:
    await chat.hello(identity=identity())
    ws, welcome = await chat.hello(identity=identity())
    refused = await receive(ws)
    assert (welcome["verified"], refused["code"]) == (False, "identity_invalid")
    assert [v.verified_by for v in await chat.visitors()] == ["identity", ""]


async def test_a_forged_identity_takes_nothing_from_a_verified_visitor(chat: Chat) -> None:
    ws, welcome = await chat.hello(identity=identity())
    await ws.close()
    _, again = await chat.hello(visitor=welcome["visitor"], identity=identity(secret="x"))
    assert again["verified"] is True


async def test_without_a_secret_every_identity_is_refused_and_logged(
        db: Database, database_url: str, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    await db.dispose()
    async for chat in chat_service(tmp_path, database_url, webchat_identity_secret=""):
        with caplog.at_level(logging.INFO):
            ws, welcome = await chat.hello(identity=identity())
            refused = await receive(ws)
        assert (welcome["verified"], refused["code"]) == (False, "identity_invalid")
        assert "reason='no WEBCHAT_IDENTITY_SECRET configured'" in caplog.text
