"""The push loop: every committed `out` item reaches each open socket of its visitor.

Whoever commits an out item (this process's conversation, another replica, a job) only writes
the row; the loop reads `direction = 'out' AND id > floor` every WEBCHAT_PUSH_SECONDS, sooner
when `wake()` is called. Ids come from a sequence and are taken at insert, not at commit: a row
can become visible after a higher id was already read. So the floor trails the highest id seen
by SETTLE_SECONDS, the rows above it are read again, and the ids already pushed are skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from bot.intake.web.frames import item_body
from models.db import Database
from models.tables import WebItem
from models.webchat import items_after, last_item_id

log = logging.getLogger(__name__)

SETTLE_SECONDS = 5.0  # longer than any transaction that inserts an out item
PAGE = 500


@dataclass(eq=False)
class Conn:
    """One open socket of a visitor; items reach it after its `welcome`, each id once."""

    ws: web.WebSocketResponse
    visitor_id: int
    language: str = "de"
    shown: set[int] = field(default_factory=set)
    ready: bool = False
    backlog: list[WebItem] = field(default_factory=list)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def send(self, frame: dict[str, Any]) -> None:
        """Send one frame (frames from the handler and the hub never interleave)."""
        async with self.lock:
            await self.ws.send_str(json.dumps(frame, ensure_ascii=False))

    async def deliver(self, item: WebItem) -> None:
        """Push an item, unless the welcome's history or an earlier push showed it."""
        if not self.ready:
            self.backlog.append(item)
            return
        if item.id is None or item.id in self.shown:
            return
        self.shown.add(item.id)
        await self.send({"type": "item", "item": item_body(item)})

    async def open(self) -> None:
        """The welcome is out: push what arrived meanwhile."""
        self.ready = True
        waiting, self.backlog = self.backlog, []
        for item in waiting:
            await self.deliver(item)


class Hub:
    """The open sockets by visitor, and the loop that pushes new out items to them."""

    def __init__(self, db: Database, *, poll_seconds: float = 0.5) -> None:
        self.db = db
        self.poll_seconds = poll_seconds
        self.conns: dict[int, set[Conn]] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._floor = 0
        self._pushed: set[int] = set()
        self._seen: deque[tuple[float, int]] = deque()  # (monotonic time, highest id then)

    def join(self, conn: Conn) -> None:
        """Push the visitor's items to this socket from now on."""
        self.conns.setdefault(conn.visitor_id, set()).add(conn)

    def leave(self, conn: Conn) -> None:
        """The socket closed."""
        group = self.conns.get(conn.visitor_id)
        if group is not None:
            group.discard(conn)
            if not group:
                del self.conns[conn.visitor_id]

    def wake(self) -> None:
        """Look for new items now (an out item was just committed in this process)."""
        self._wake.set()

    async def start(self) -> None:
        """Start the loop; items committed before now are history, not pushes."""
        async with self.db.reader() as session:
            self._floor = await last_item_id(session)
        self._task = asyncio.create_task(self.run())

    async def stop(self) -> None:
        """Stop the loop and close every socket (1001: the widget reconnects elsewhere)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for group in list(self.conns.values()):
            for conn in list(group):
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await conn.ws.close(code=1001, message=b"service stopping")

    async def run(self) -> None:
        """Push, wait for a wake-up or the poll interval, again; a failed round is logged."""
        while True:
            try:
                await self.push_once()
            except Exception:  # the database away for a moment: the next round catches up
                log.exception("event=webchat_push_failed")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_seconds):
                    await self._wake.wait()
            self._wake.clear()

    async def push_once(self) -> int:
        """One round: the out items above the floor for connected visitors; how many pushed."""
        now = time.monotonic()
        rows: list[WebItem] = []
        async with self.db.reader() as session:
            highest = await last_item_id(session)
            while self.conns:  # page by page: the floor may pass rows a full page left out
                after = (rows[-1].id or 0) if rows else self._floor
                page = await items_after(session, after_id=after,
                                         visitor_ids=sorted(self.conns), limit=PAGE)
                rows += page
                if len(page) < PAGE:
                    break
        pushed = 0
        for item in rows:
            assert item.id is not None
            if item.id in self._pushed:
                continue
            self._pushed.add(item.id)
            for conn in list(self.conns.get(item.visitor_id, ())):
                try:
                    await conn.deliver(item)
                    pushed += 1
                except (ConnectionError, RuntimeError):  # closing: it reads history next time
                    log.info("event=webchat_push_dropped visitor=%s item=%s",
                             item.visitor_id, item.id)
        self._seen.append((now, highest))
        while self._seen and self._seen[0][0] <= now - SETTLE_SECONDS:
            self._floor = max(self._floor, self._seen.popleft()[1])
        self._pushed = {i for i in self._pushed if i > self._floor}
        return pushed
