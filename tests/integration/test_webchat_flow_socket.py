"""The conversation through the real WebSocket: a visitor with a portal identity gets the quote
with Yes / No pushed, and their Yes records the consent; with a forged identity the same Yes is
answered that consent needs a verified identity, and nothing is recorded (SQLite, PostgreSQL)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.intake.web.identity import sign
from models.db import Database
from models.tables import Ticket
from tests.integration.conftest import MONDAY_10
from tests.integration.webchat_kit import SECRET, Chat, chat_service, receive

ADVICE = "Wir brauchen eine Beratung zur Architektur unserer Server-Umgebung"


@pytest.fixture
async def chat(db: Database, database_url: str, tmp_path: Path) -> AsyncIterator[Chat]:
    await db.dispose()
    async for started in chat_service(tmp_path, database_url):
        yield started


def identity(secret: str = SECRET) -> str:
    """Anna of Logistik Nord (D-1003), logged in to the portal."""
    return sign({"customer": "D-1003", "email": "anna@logistik-nord.de", "name": "Anna Adler",
                 "exp": int(MONDAY_10.timestamp()) + 3600, "jti": "login-1"}, secret.encode())


async def next_item(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    """The next pushed item (acks and other frames before it are passed over)."""
    while (frame := await receive(ws))["type"] != "item":
        pass
    item: dict[str, Any] = frame["item"]
    return item


async def click(ws: aiohttp.ClientWebSocketResponse, client_id: str,
                choice: dict[str, str]) -> None:
    await ws.send_str(json.dumps({"type": "choice", "client_id": client_id,
                                  "action": choice["action"], "value": choice["value"]}))


async def quote(chat: Chat, who: str) -> tuple[aiohttp.ClientWebSocketResponse, Ticket,
                                                dict[str, str]]:
    """The visitor asks for consulting, which Logistik Nord's plan does not cover."""
    ws, _ = await chat.hello(identity=who)
    await ws.send_str(json.dumps({"type": "message", "client_id": "m-1", "text": ADVICE}))
    item = await next_item(ws)
    [ticket] = await chat.running.tickets()
    [yes] = [c for c in item["choices"] if c["action"] == "consent_yes"]
    return ws, ticket, yes


async def test_a_portal_users_yes_on_the_socket_records_the_consent(chat: Chat) -> None:
    ws, ticket, yes = await quote(chat, identity())
    await click(ws, "m-2", yes)
    confirmed = await next_item(ws)
    [after] = await chat.running.tickets()
    assert (ticket.status, after.status) == ("awaiting_consent", "open")
    assert (confirmed["kind"], confirmed["ticket"]) == ("text", ticket.number)


async def test_a_forged_identitys_yes_on_the_socket_records_nothing(chat: Chat) -> None:
    ws, ticket, yes = await quote(chat, identity(secret="guessed"))
    await click(ws, "m-2", yes)
    note = await next_item(ws)
    [after] = await chat.running.tickets()
    assert after.status == "awaiting_consent"
    assert note["kind"] == "note"
    assert "bestätigte Identität" in note["text"]


async def test_a_clicked_choice_comes_back_in_the_history_with_its_label(chat: Chat) -> None:
    """Another device (a new socket with the same visitor token) shows what was clicked."""
    ws, first = await chat.hello(identity=identity())
    await ws.send_str(json.dumps({"type": "message", "client_id": "m-1", "text": ADVICE}))
    [yes] = [c for c in (await next_item(ws))["choices"] if c["action"] == "consent_yes"]
    await click(ws, "m-2", yes)
    await next_item(ws)  # the confirmation: the click is processed
    _, welcome = await chat.hello(visitor=first["visitor"])
    [clicked] = [i for i in welcome["history"] if i["kind"] == "choice"]
    assert (clicked["text"], clicked["action"], clicked["value"]) == (
        "Ja, einverstanden", yes["action"], yes["value"])


async def test_a_choice_we_never_showed_is_stored_without_words_of_its_own(chat: Chat) -> None:
    """A frame's own label is not taken: a forged `text` never reaches the history."""
    ws, _ = await chat.hello(identity=identity())
    await ws.send_str(json.dumps({"type": "choice", "client_id": "m-1",
                                  "action": "consent_yes", "value": "1:15900",
                                  "text": "Ich stimme allem zu"}))
    while (await receive(ws))["type"] != "ack":
        pass
    [item] = [i for i in await chat.items() if i.direction == "in"]
    assert item.text == ""
