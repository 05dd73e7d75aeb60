"""The web chat under test: the whole service on 127.0.0.1 and aiohttp WebSocket clients."""

from __future__ import annotations

import json
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

    async def hello(self, *, visitor: str | None = None, identity: str | None = None,
                    lang: str = "de") -> tuple[aiohttp.ClientWebSocketResponse, dict[str, Any]]:
        """A socket after its hello, and the welcome."""
        ws = await self.open()
        await ws.send_json({"type": "hello", "visitor": visitor, "identity": identity,
                            "lang": lang})
        return ws, await receive(ws)

    async def items(self) -> list[WebItem]:
        """Every item, read through a connection of its own (what others see committed)."""
        database = Database(self.database_url)
        try:
            async with database.reader() as session:
                return list((await session.exec(select(WebItem).order_by(col(WebItem.id)))).all())
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


async def receive(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    """The next frame, as JSON."""
    message = await ws.receive(timeout=WAIT)
    assert message.type is aiohttp.WSMsgType.TEXT, (message.type, message.data)
    frame: dict[str, Any] = json.loads(message.data)
    return frame


async def send_message(ws: aiohttp.ClientWebSocketResponse, client_id: str,
                       text: str) -> dict[str, Any]:
    """Send a `message` frame (UTF-8, as a browser's JSON.stringify writes it); the answer."""
    await ws.send_str(json.dumps({"type": "message", "client_id": client_id, "text": text},
                                 ensure_ascii=False))
    return await receive(ws)


async def chat_service(tmp_path: Path, database_url: str, clock: Clock | None = None,
                       **settings: Any) -> AsyncIterator[Chat]:
    """The service with the web chat allowed from ORIGIN, and a client session."""
    values: dict[str, Any] = {"webchat_origins": ORIGIN, "webchat_identity_secret": SECRET}
    values.update(settings)
    running = await start_service(make_settings(tmp_path, database_url, **values),
                                  clock or Clock())
    client = aiohttp.ClientSession()
    chat = Chat(running, client, database_url)
    try:
        yield chat
    finally:
        for ws in chat.sockets:
            await ws.close()
        await client.close()
        await running.service.stop()

