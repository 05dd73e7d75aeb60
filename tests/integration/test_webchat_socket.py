"""The web chat's WebSocket on a running service: store before ack, resend, history, origin,
bad frames and sizes (docs/webchat-protocol.md), on SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import text as sa_text
from sqlmodel import col, select

from bot.http import make_http_app
from bot.intake.web.socket import ChatConfig, ChatSocket
from models.db import Database
from models.tables import Message, WebItem
from tests.integration.conftest import MONDAY_10
from tests.integration.webchat_flow_kit import processed
from tests.integration.webchat_kit import ORIGIN, Chat, chat_service, receive, send_message


@pytest.fixture
async def chat(db: Database, database_url: str, tmp_path: Path) -> AsyncIterator[Chat]:
    await db.dispose()
    async for started in chat_service(tmp_path, database_url):
        yield started


@pytest.fixture
async def chat_without_worker(db: Database, database_url: str,
                              tmp_path: Path) -> AsyncIterator[Chat]:
    """The service with its web worker stopped: a stored message stays as the socket wrote it."""
    await db.dispose()
    async for started in chat_service(tmp_path, database_url, process=False):
        yield started


async def test_a_new_visitor_gets_a_token_and_an_empty_history(chat: Chat) -> None:
    _, welcome = await chat.hello()
    assert (welcome["type"], len(welcome["visitor"]) >= 43, welcome["history"],
            welcome["verified"], welcome["asks_email"]) == ("welcome", True, [], False, True)


async def test_the_ack_comes_after_the_item_is_committed(chat: Chat) -> None:
    ws, _ = await chat.hello()
    ack = await send_message(ws, "m-1", "Der Drucker druckt nicht.")
    # read at once through another connection: an ack before the commit would find nothing
    items = await chat.items("in")
    assert [(i.id, i.direction, i.kind, i.client_id, i.text) for i in items] == [
        (ack["id"], "in", "text", "m-1", "Der Drucker druckt nicht.")]


async def test_the_stored_item_has_its_pending_pipeline_message(
        chat_without_worker: Chat) -> None:
    chat = chat_without_worker  # the row as the socket leaves it for the worker
    ws, _ = await chat.hello()
    await send_message(ws, "m-1", "Hallo")
    [item] = await chat.items()
    [row] = await chat.web_messages()
    assert (item.message_id, row.direction, row.external_id, row.sender, row.recipient,
            row.text, row.disposition, json.loads(row.raw or b"")["client_id"]) == (
        row.id, "in", f"web:{item.visitor_id}:m-1", f"web:{item.visitor_id}",
        f"web:{item.visitor_id}", "Hallo", "pending", "m-1")


async def test_the_ack_names_the_client_id_and_the_item(chat: Chat) -> None:
    ws, _ = await chat.hello()
    ack = await send_message(ws, "abc_DEF-9", "Hallo")
    [item] = await chat.items("in")
    assert ack == {"type": "ack", "client_id": "abc_DEF-9", "id": item.id}


async def test_a_resend_after_reconnect_gets_the_same_ack_and_is_stored_once(chat: Chat) -> None:
    ws, welcome = await chat.hello()
    first = await send_message(ws, "m-1", "Hallo")
    await ws.close()
    again, _ = await chat.hello(visitor=welcome["visitor"])
    second = await send_message(again, "m-1", "Hallo")
    assert second == first
    assert [i.client_id for i in await chat.items("in")] == ["m-1"]
    assert len(await chat.web_messages()) == 1


async def test_a_resend_on_the_same_socket_is_stored_once(chat: Chat) -> None:
    ws, _ = await chat.hello()
    first = await send_message(ws, "m-1", "Hallo")
    assert await send_message(ws, "m-1", "Hallo") == first
    assert len(await chat.items("in")) == 1


async def test_the_same_client_id_of_two_visitors_is_two_messages(chat: Chat) -> None:
    a, _ = await chat.hello()
    b, _ = await chat.hello()
    await send_message(a, "m-1", "von A")
    await send_message(b, "m-1", "von B")
    assert [i.text for i in await chat.items("in")] == ["von A", "von B"]


async def test_history_after_reconnect_with_the_token(chat: Chat) -> None:
    ws, welcome = await chat.hello()
    await send_message(ws, "m-1", "eins")
    await send_message(ws, "m-2", "zwei")
    answer = await receive(ws, "item")  # the worker's answer, pushed before the reconnect
    await ws.close()
    _, again = await chat.hello(visitor=welcome["visitor"])
    history = again["history"]
    assert [(h["client_id"], h["text"]) for h in history if h["direction"] == "in"] == [
        ("m-1", "eins"), ("m-2", "zwei")]
    assert answer["item"] in history
    assert again["visitor"] == welcome["visitor"]


async def test_an_unknown_token_gets_a_new_visitor_without_history(chat: Chat) -> None:
    ws, welcome = await chat.hello()
    await send_message(ws, "m-1", "eins")
    _, other = await chat.hello(visitor="not-a-token-anybody-got")
    assert (other["history"], other["visitor"] != welcome["visitor"]) == ([], True)


async def test_the_history_is_the_last_200_items(chat: Chat) -> None:
    ws, welcome = await chat.hello()
    [visitor] = await chat.visitors()
    async with chat.running.db.session() as session:  # answers, as wflow's code writes them
        for n in range(205):
            session.add(WebItem(visitor_id=visitor.id or 0, direction="out", kind="note",
                                key=f"test:{n}", text=f"note {n}",
                                created_at=chat.running.clock.now))
    _, again = await chat.hello(visitor=welcome["visitor"])
    texts = [h["text"] for h in again["history"]]
    assert (len(texts), texts[0], texts[-1]) == (200, "note 5", "note 204")


async def test_a_foreign_origin_is_refused_before_the_upgrade(
        chat: Chat, caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await chat.open(origin="http://evil.test")
    assert refused.value.status == 403
    assert "event=webchat_origin_refused origin='http://evil.test'" in caplog.text


async def test_a_missing_origin_is_refused(chat: Chat) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await chat.open(origin=None)
    assert refused.value.status == 403


async def test_an_origin_that_only_starts_like_an_allowed_one_is_refused(chat: Chat) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await chat.open(origin="http://portal.test.evil.test")
    assert refused.value.status == 403


async def test_a_hello_with_half_a_surrogate_pair_closes_with_4400(chat: Chat) -> None:
    ws = await chat.open()
    await ws.send_str('{"type": "hello", "visitor": "\\udc00", "lang": "de"}')
    message = await ws.receive(timeout=10)
    assert (message.type, ws.close_code) == (aiohttp.WSMsgType.CLOSE, 4400)


async def test_a_first_frame_that_is_not_hello_closes_with_4400(chat: Chat) -> None:
    ws = await chat.open()
    await ws.send_json({"type": "message", "client_id": "m-1", "text": "hi"})
    message = await ws.receive(timeout=10)
    assert (message.type, ws.close_code) == (aiohttp.WSMsgType.CLOSE, 4400)


BAD_FRAMES = {
    "not JSON": "hallo",
    "not an object": "[1, 2]",
    "unknown type": '{"type": "dance"}',
    "no type": '{"text": "hi"}',
    "no client_id": '{"type": "message", "text": "hi"}',
    "no text": '{"type": "message", "client_id": "m-1"}',
    "text not a string": '{"type": "message", "client_id": "m-1", "text": 5}',
    "client_id with a space": '{"type": "message", "client_id": "m 1", "text": "hi"}',
    "client_id too long": json.dumps({"type": "message", "client_id": "x" * 65, "text": "hi"}),
    "client_id empty": '{"type": "message", "client_id": "", "text": "hi"}',
    "seen without upto": '{"type": "seen"}',
    "a second hello": '{"type": "hello", "visitor": null}',
    "a NUL in the text": '{"type": "message", "client_id": "m-1", "text": "a\\u0000b"}',
    "half a surrogate pair": '{"type": "message", "client_id": "m-1", "text": "a\\ud800b"}',
    "blank text": '{"type": "message", "client_id": "m-1", "text": "  \\n "}',
}


@pytest.mark.parametrize("data", BAD_FRAMES.values(), ids=BAD_FRAMES.keys())
async def test_a_bad_frame_gets_bad_frame_and_the_socket_stays_usable(chat: Chat,
                                                                      data: str) -> None:
    ws, _ = await chat.hello()
    await ws.send_str(data)
    answer = await receive(ws)
    assert (answer["type"], answer["code"]) == ("error", "bad_frame")
    assert (await send_message(ws, "m-ok", "noch da"))["type"] == "ack"
    assert [i.client_id for i in await chat.items("in")] == ["m-ok"]


async def test_a_bad_frame_is_logged(chat: Chat, caplog: pytest.LogCaptureFixture) -> None:
    ws, _ = await chat.hello()
    with caplog.at_level(logging.INFO):
        await ws.send_str("hallo")
        await receive(ws)
    assert "event=webchat_bad_frame" in caplog.text


async def test_a_frame_over_16_kib_is_too_large_and_nothing_is_stored(chat: Chat) -> None:
    ws, _ = await chat.hello()
    await ws.send_str(json.dumps({"type": "message", "client_id": "big", "text": "x" * 16_400}))
    answer = await receive(ws)
    assert (answer["type"], answer["code"]) == ("error", "too_large")
    assert await chat.items() == []
    assert (await send_message(ws, "m-ok", "noch da"))["type"] == "ack"


async def test_a_text_over_the_limit_is_too_large_and_nothing_is_stored(chat: Chat) -> None:
    ws, _ = await chat.hello()
    answer = await send_message(ws, "long", "ü" * 4001)
    assert (answer["type"], answer["code"], answer["client_id"]) == ("error", "too_large", "long")
    assert await chat.items() == []


async def test_a_text_at_the_limit_is_stored(chat: Chat) -> None:
    ws, _ = await chat.hello()
    assert (await send_message(ws, "long", "ü" * 4000))["type"] == "ack"


async def test_ping_gets_pong(chat: Chat) -> None:
    ws, _ = await chat.hello()
    await ws.send_json({"type": "ping"})
    assert await receive(ws) == {"type": "pong"}


async def test_a_choice_is_stored_like_a_message(chat: Chat) -> None:
    ws, _ = await chat.hello()
    await ws.send_json({"type": "choice", "client_id": "c-1", "action": "consent",
                        "value": "yes"})
    ack = await receive(ws, "ack")
    [item] = await chat.items("in")
    [row] = await chat.web_messages()
    assert (ack["id"], item.kind, item.action, item.value, item.message_id) == (
        item.id, "choice", "consent", "yes", row.id)


async def test_a_stored_choice_reaches_the_worker_as_a_click(chat: Chat) -> None:
    ws, _ = await chat.hello()
    await ws.send_json({"type": "choice", "client_id": "c-1", "action": "consent",
                        "value": "yes"})
    await receive(ws, "ack")
    [row] = await chat.web_messages()
    done = await processed(chat.running, row.id or 0)
    # a click on nothing we offered: refused as a click, not read as a text
    assert (done.disposition, done.reason) == ("ignored", "click refused: not_ours")


async def test_the_hello_language_is_kept_on_the_visitor(chat: Chat) -> None:
    ws, welcome = await chat.hello(lang="de")
    await ws.close()
    await chat.hello(visitor=welcome["visitor"], lang="en")
    assert [v.language for v in await chat.visitors()] == ["en"]


@contextlib.asynccontextmanager
async def bare_socket(db: Database, socket: ChatSocket) -> AsyncIterator[str]:
    """Only /chat/ws with this handler on 127.0.0.1; its URL."""
    runner = web.AppRunner(make_http_app(db, chat_socket=socket.handle))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/chat/ws"
    finally:
        await runner.cleanup()


async def test_no_hello_in_time_closes_with_4400(db: Database) -> None:
    socket = ChatSocket(db=db, config=ChatConfig(origins=frozenset({ORIGIN}), hello_seconds=0.2),
                        clock=lambda: MONDAY_10, on_stored=lambda message_id: None)
    async with bare_socket(db, socket) as url, aiohttp.ClientSession() as client, \
            client.ws_connect(url, origin=ORIGIN) as ws:
        message = await ws.receive(timeout=10)
        assert (message.type, ws.close_code) == (aiohttp.WSMsgType.CLOSE, 4400)


async def test_on_stored_gets_each_new_message_once(db: Database) -> None:
    submitted: list[int] = []  # what the web worker's submit would get
    socket = ChatSocket(db=db, config=ChatConfig(origins=frozenset({ORIGIN})),
                        clock=lambda: MONDAY_10, on_stored=submitted.append)
    async with bare_socket(db, socket) as url, aiohttp.ClientSession() as client, \
            client.ws_connect(url, origin=ORIGIN) as ws:
        await ws.send_json({"type": "hello", "visitor": None, "lang": "de"})
        await receive(ws)
        await send_message(ws, "m-1", "eins")
        await send_message(ws, "m-1", "eins")  # a resend: stored before, not submitted again
        await send_message(ws, "m-2", "zwei")
    async with db.reader() as session:
        rows = (await session.exec(select(Message.id).order_by(col(Message.id)))).all()
    assert submitted == list(rows)


REFUSE = {
    "sqlite": ["CREATE TRIGGER refuse BEFORE INSERT ON message WHEN NEW.text = 'refuse me' "
               "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"],
    "postgresql": ["CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                   "IF NEW.text = 'refuse me' THEN RAISE EXCEPTION 'refused by the test'; END IF; "
                   "RETURN NEW; END $$",
                   "CREATE TRIGGER refuse BEFORE INSERT ON message FOR EACH ROW "
                   "EXECUTE FUNCTION refuse()"],
}
ALLOW = {"sqlite": ["DROP TRIGGER refuse"],
         "postgresql": ["DROP TRIGGER refuse ON message", "DROP FUNCTION refuse()"]}


async def run_sql(chat: Chat, statements: list[str]) -> None:
    async with chat.running.db.session() as session:
        for statement in statements:
            await session.exec(sa_text(statement))  # type: ignore[call-overload]


async def test_a_failed_store_gets_no_ack_and_the_resend_is_stored_once(
        chat: Chat, caplog: pytest.LogCaptureFixture) -> None:
    backend = chat.running.db.backend
    await run_sql(chat, REFUSE[backend])
    try:
        ws, welcome = await chat.hello()
        await ws.send_json({"type": "message", "client_id": "m-1", "text": "refuse me"})
        message = await ws.receive(timeout=10)
        assert (message.type, ws.close_code) == (aiohttp.WSMsgType.CLOSE, 1011)
        assert await chat.items() == []
    finally:
        await run_sql(chat, ALLOW[backend])
    again, _ = await chat.hello(visitor=welcome["visitor"])
    assert (await send_message(again, "m-1", "refuse me"))["type"] == "ack"
    assert [i.client_id for i in await chat.items("in")] == ["m-1"]
    assert "event=webchat_store_failed visitor=1 client_id=m-1" in caplog.text
