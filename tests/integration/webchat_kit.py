"""The web chat under test: the whole service on 127.0.0.1 and aiohttp WebSocket clients."""

from __future__ import annotations

import asyncio
import json
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from sqlmodel import col, select

from models.db import Database
from models.tables import Message, WebItem, WebVisitor
from tests.integration.conftest import Clock, Running, make_settings, start_service

ORIGIN = "http://portal.test"
SECRET = "portal-secret-for-tests"
WAIT = 10.0  # seconds a frame may take; only a failure waits this long


@dataclass
class Chat:
    """The running service and a client session for its WebSocket."""

    running: Running
    client: aiohttp.ClientSession
    database_url: str
    sockets: list[aiohttp.ClientWebSocketResponse] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.running.service.http_port}/chat/ws"

    async def open(self, *, origin: str | None = ORIGIN) -> aiohttp.ClientWebSocketResponse:
        """A WebSocket to /chat/ws with this Origin (None: no Origin header)."""
        ws = await self.client.ws_connect(self.url, origin=origin)  # type: ignore[arg-type]
        self.sockets.append(ws)
        return ws

    async def greet(self, *, visitor: str | None = None, identity: str | None = None,
                    lang: str = "de") -> tuple[aiohttp.ClientWebSocketResponse, dict[str, Any]]:
        """A socket after its hello, and the first frame it got (a welcome, or a refusal)."""
        ws = await self.open()
        await ws.send_json({"type": "hello", "visitor": visitor, "identity": identity,
                            "lang": lang})
        return ws, await receive(ws)  # the first frame, whatever it is: nothing comes before it

    async def hello(self, *, visitor: str | None = None, identity: str | None = None,
                    lang: str = "de") -> tuple[aiohttp.ClientWebSocketResponse, dict[str, Any]]:
        """A socket after its hello, and the welcome."""
        ws, welcome = await self.greet(visitor=visitor, identity=identity, lang=lang)
        assert welcome["type"] == "welcome", welcome
        return ws, welcome

    async def items(self, direction: str | None = None) -> list[WebItem]:
        """Every item, or those of one direction (`in`: the visitors' messages and choices,
        `out`: our answers), read through a connection of its own (what others see
        committed)."""
        query = select(WebItem).order_by(col(WebItem.id))
        if direction is not None:
            query = query.where(WebItem.direction == direction)
        database = Database(self.database_url)
        try:
            async with database.reader() as session:
                return list((await session.exec(query)).all())
        finally:
            await database.dispose()

    async def web_messages(self) -> list[Message]:
        """Every pipeline row of the web channel."""
        async with self.running.db.reader() as session:
            return list((await session.exec(select(Message).where(Message.channel == "web")
                                            .order_by(col(Message.id)))).all())

    async def visitors(self) -> list[WebVisitor]:
        async with self.running.db.reader() as session:
            return list((await session.exec(select(WebVisitor)
                                            .order_by(col(WebVisitor.id)))).all())


# Per socket, the `item` frames a receive for another type passed over, oldest first.
_held: weakref.WeakKeyDictionary[aiohttp.ClientWebSocketResponse, list[dict[str, Any]]] = (
    weakref.WeakKeyDictionary())


def held(ws: aiohttp.ClientWebSocketResponse) -> list[dict[str, Any]]:
    """The `item` frames passed over on this socket and not received since, oldest first."""
    return _held.setdefault(ws, [])


async def receive(ws: aiohttp.ClientWebSocketResponse, *types: str) -> dict[str, Any]:
    """The next frame, as JSON; with `types`, the next frame of one of those types.

    The web worker answers every stored message, so our `item` frames may arrive between a
    frame and its answer at any time: they are held for a later receive (and `held`), not lost.
    Any other frame on the way fails the test: nothing else comes unasked.
    """
    waiting = held(ws)
    if waiting and (not types or "item" in types):
        return waiting.pop(0)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while True:
        message = await ws.receive(timeout=max(deadline - loop.time(), 0.001))
        assert message.type is aiohttp.WSMsgType.TEXT, (message.type, message.data)
        frame: dict[str, Any] = json.loads(message.data)
        if not types or frame["type"] in types:
            return frame
        assert frame["type"] == "item", f"waited for {types}, got {frame}"
        waiting.append(frame)


async def send_message(ws: aiohttp.ClientWebSocketResponse, client_id: str,
                       text: str) -> dict[str, Any]:
    """Send a `message` frame (UTF-8, as a browser's JSON.stringify writes it); its `ack` or
    `error`."""
    await ws.send_str(json.dumps({"type": "message", "client_id": client_id, "text": text},
                                 ensure_ascii=False))
    return await receive(ws, "ack", "error")


async def chat_service(tmp_path: Path, database_url: str, clock: Clock | None = None, *,
                       process: bool = True, **settings: Any) -> AsyncIterator[Chat]:
    """The service with the web chat allowed from ORIGIN, and a client session; with
    `process=False` the web worker is stopped before any socket opens, so every stored
    message stays as the socket wrote it (pending), as when the worker is down."""
    values: dict[str, Any] = {"webchat_origins": ORIGIN, "webchat_identity_secret": SECRET}
    values.update(settings)
    running = await start_service(make_settings(tmp_path, database_url, **values),
                                  clock or Clock())
    if not process:
        assert running.service.web_worker is not None
        await running.service.web_worker.stop()
    client = aiohttp.ClientSession()
    chat = Chat(running, client, database_url)
    try:
        yield chat
    finally:
        for ws in chat.sockets:
            await ws.close()
        await client.close()
        await running.service.stop()

