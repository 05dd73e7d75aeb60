"""The push loop: an out item committed by another session (as the conversation writes them)
reaches every open socket of its visitor without a reload, and no other visitor; `seen` frames
set seen_at; SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from models.db import Database
from models.tables import WebItem
from tests.integration.webchat_kit import Chat, chat_service, receive


@pytest.fixture
async def chat(db: Database, database_url: str, tmp_path: Path) -> AsyncIterator[Chat]:
    await db.dispose()
    async for started in chat_service(tmp_path, database_url):
        yield started


async def answer(chat: Chat, visitor_id: int, text: str, **more: object) -> int:
    """An out item committed by a connection of its own (another process, as far as the
    service can tell); its id."""
    database = Database(chat.database_url)
    try:
        async with database.session() as session:
            item = WebItem(visitor_id=visitor_id, direction="out", kind="text", key=f"t:{text}",
                           text=text, created_at=chat.running.clock.now, **more)
            session.add(item)
            await session.flush()
            assert item.id is not None
            return item.id
    finally:
        await database.dispose()


async def visitor_ids(chat: Chat) -> list[int]:
    return [v.id or 0 for v in await chat.visitors()]


async def test_an_answer_reaches_the_open_socket_without_a_reload(chat: Chat) -> None:
    ws, _ = await chat.hello()
    [visitor] = await visitor_ids(chat)
    choices = json.dumps([{"action": "consent", "value": "yes", "label": "Ja"}])
    item_id = await answer(chat, visitor, "Ihr Ticket: NT#1", choices=choices)
    assert await receive(ws) == {"type": "item", "item": {
        "id": item_id, "direction": "out", "kind": "text", "text": "Ihr Ticket: NT#1",
        "choices": [{"action": "consent", "value": "yes", "label": "Ja"}], "ticket": None,
        "at": "2026-11-23T09:00:00Z", "author": "NetTask Support"}}


async def test_two_sockets_of_one_visitor_both_get_it(chat: Chat) -> None:
    first, welcome = await chat.hello()
    second, _ = await chat.hello(visitor=welcome["visitor"])
    [visitor] = await visitor_ids(chat)
    item_id = await answer(chat, visitor, "für beide Tabs")
    assert [(await receive(ws))["item"]["id"] for ws in (first, second)] == [item_id, item_id]


async def test_a_visitor_does_not_get_another_visitors_items(chat: Chat) -> None:
    a, _ = await chat.hello()
    b, _ = await chat.hello()
    visitor_a, visitor_b = await visitor_ids(chat)
    await answer(chat, visitor_a, "nur für A")
    for_b = await answer(chat, visitor_b, "nur für B")
    # pushed by id: had A's item gone to B, it would come first
    assert (await receive(b))["item"]["id"] == for_b
    assert (await receive(a))["item"]["text"] == "nur für A"


async def test_each_item_is_pushed_once(chat: Chat) -> None:
    ws, _ = await chat.hello()
    [visitor] = await visitor_ids(chat)
    await answer(chat, visitor, "eins")
    await receive(ws)
    await answer(chat, visitor, "zwei")
    assert (await receive(ws))["item"]["text"] == "zwei"


async def test_an_item_in_the_welcome_history_is_not_pushed_again(chat: Chat) -> None:
    ws, welcome = await chat.hello()
    [visitor] = await visitor_ids(chat)
    await answer(chat, visitor, "eins")
    await receive(ws)
    again, rejoined = await chat.hello(visitor=welcome["visitor"])
    await answer(chat, visitor, "zwei")
    assert ([h["text"] for h in rejoined["history"]], (await receive(again))["item"]["text"]) \
        == (["eins"], "zwei")


async def test_seen_sets_seen_at_up_to_the_id(chat: Chat) -> None:
    ws, _ = await chat.hello()
    [visitor] = await visitor_ids(chat)
    first = await answer(chat, visitor, "eins")
    await answer(chat, visitor, "zwei")
    await ws.send_json({"type": "seen", "upto": first})
    await ws.send_json({"type": "ping"})
    while (await receive(ws))["type"] != "pong":  # the two items, then the pong
        pass
    items = await chat.items()
    assert [(i.text, i.seen_at) for i in items] == [
        ("eins", chat.running.clock.now), ("zwei", None)]


async def test_seen_cannot_mark_another_visitors_items(chat: Chat) -> None:
    a, _ = await chat.hello()
    await chat.hello()
    _, visitor_b = await visitor_ids(chat)
    theirs = await answer(chat, visitor_b, "für B")
    await a.send_json({"type": "seen", "upto": theirs})
    await a.send_json({"type": "ping"})
    assert await receive(a) == {"type": "pong"}
    assert [i.seen_at for i in await chat.items()] == [None]


# PostgreSQL only: SQLite has one writer, so its ids become visible in their order
@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_an_item_committed_after_a_higher_id_is_still_pushed(chat: Chat) -> None:
    ws, _ = await chat.hello()
    [visitor] = await visitor_ids(chat)
    slow = Database(chat.database_url)
    try:
        async with slow.session() as session:  # takes the lower id, commits last
            late = WebItem(visitor_id=visitor, direction="out", kind="text", key="t:late",
                           text="spät", created_at=chat.running.clock.now)
            session.add(late)
            await session.flush()
            early = await answer(chat, visitor, "früh")
            assert (await receive(ws))["item"]["id"] == early
    finally:
        await slow.dispose()
    assert (await receive(ws))["item"]["id"] == late.id
    assert (late.id or 0) < early


async def test_more_items_at_once_than_a_page_all_arrive(chat: Chat) -> None:
    ws, _ = await chat.hello()
    [visitor] = await visitor_ids(chat)
    database = Database(chat.database_url)
    try:
        async with database.session() as session:
            session.add_all([WebItem(visitor_id=visitor, direction="out", kind="note",
                                     key=f"t:{n}", text=f"note {n}",
                                     created_at=chat.running.clock.now) for n in range(1200)])
    finally:
        await database.dispose()
    texts = [(await receive(ws))["item"]["text"] for _ in range(1200)]
    assert texts == [f"note {n}" for n in range(1200)]
