"""HTTP server limits over a raw socket on 127.0.0.1: slow headers are dropped, requests capped."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from bot.app import Service, build
from bot.config import Settings
from bot.http import http_runner
from models import migrate
from models.db import Database


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[Service]:
    """The service with a 1-second header timeout and a 1 KiB request cap (SQLite)."""
    settings = Settings(_env_file=None, database_url=f"sqlite:///{tmp_path}/http.db",  # type: ignore[call-arg,arg-type]
                        http_port=0, smtp_port=0, outbox_dir=tmp_path / "outbox",
                        classifier="keywords", http_header_timeout_seconds=1,
                        http_max_request_bytes=1024)
    running = build(settings)
    await migrate.upgrade(running.db)
    await running.start()
    yield running
    await running.stop()


async def dribble(writer: asyncio.StreamWriter, data: bytes, pause: float) -> None:
    """Send one byte at a time, as a slowloris client does; stop when the server hangs up."""
    for byte in data:
        await asyncio.sleep(pause)  # the client's pace, not a wait for a condition
        try:
            writer.write(bytes([byte]))
            await writer.drain()
        except ConnectionError:
            return


async def test_a_client_sending_headers_slowly_is_dropped(service: Service) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", service.http_port)
    headers = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"x" * 200 + b"\r\n\r\n"
    sender = asyncio.create_task(dribble(writer, headers, pause=0.1))  # 20+ s in all
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        async with asyncio.timeout(8):
            answer = await reader.read()
    except ConnectionError:
        answer = b""
    elapsed = loop.time() - started
    sender.cancel()
    writer.close()
    assert answer == b""  # closed without a response: no request was ever complete
    assert elapsed < 4  # the 1-second header timeout, with room for a busy machine


async def test_a_complete_request_within_the_timeout_is_answered(service: Service) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", service.http_port)
    writer.write(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    await writer.drain()
    async with asyncio.timeout(8):
        answer = await reader.read()
    writer.close()
    assert answer.startswith(b"HTTP/1.1 200 ")


async def test_a_request_body_over_the_cap_gets_413(tmp_path: Path) -> None:
    async def echo_length(request: web.Request) -> web.Response:
        return web.Response(text=str(len(await request.read())))

    settings = Settings(_env_file=None, http_max_request_bytes=1024)  # type: ignore[call-arg]
    db = Database(f"sqlite:///{tmp_path}/http.db")
    runner = http_runner(settings, db)
    # /health takes no body; a body-reading route (as the Slack endpoint will be) shows the cap.
    runner.app.router.add_post("/echo", echo_length)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = int(runner.addresses[0][1])
    try:
        async with aiohttp.ClientSession() as http:
            async with http.post(f"http://127.0.0.1:{port}/echo", data=b"x" * 1024) as small:
                small_status, small_text = small.status, await small.text()
            async with http.post(f"http://127.0.0.1:{port}/echo", data=b"x" * 1025) as big:
                big_status = big.status
    finally:
        await runner.cleanup()
        await db.dispose()
    assert small_status == 200
    assert small_text == "1024"
    assert big_status == 413
