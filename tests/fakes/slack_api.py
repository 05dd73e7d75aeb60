"""A local Slack Web API that behaves as Slack documents it: records every call, answers the
methods we use, keeps the messages posted (conversations.history / .replies return them, with
their metadata), allows one chat.postMessage a second per channel (then 429 with Retry-After),
knows revoked tokens and archived channels, can be down (stopped, then started on the same
port) and fails on request; and Slack's Socket Mode side: apps.connections.open points at a
websocket on the same server, through which a test sends envelopes and receives their acks."""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

BOT_USER = "U0NTBOT"
BOT_ID = "B0NTBOT"
TEAM = "T0NETTASK"


@dataclass
class Call:
    """One request the fake received."""

    method: str
    args: dict[str, Any]
    token: str


@dataclass
class Failure:
    """How to answer the next matching calls instead of succeeding."""

    count: int
    status: int = 200
    error: str = ""
    retry_after: int | None = None
    method: str | None = None  # None: any method


@dataclass
class FakeSlack:
    """Start with `await fake.start()`; `base_url` then points a client at it."""

    calls: list[Call] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    latency: dict[str, float] = field(default_factory=dict)  # method -> seconds before answering
    runner: web.AppRunner | None = None
    port: int = 0
    sockets: list[web.WebSocketResponse] = field(default_factory=list)  # open ones, oldest first
    opened: int = 0  # Socket Mode connections ever opened
    acks: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Awaited with an envelope id when its ack arrives, before it is recorded in `acks`.
    on_ack: Callable[[str], Awaitable[None]] | None = None
    # Slack's rate: chat.postMessage calls a second per channel (None: no limit, for tests
    # about something else that post many messages at once)
    post_rate: float | None = 1.0
    revoked: set[str] = field(default_factory=set)  # tokens answered token_revoked
    archived: set[str] = field(default_factory=set)  # channels answered is_archived
    messages: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # channel -> posted
    _ts: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _envelopes: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _last_post: dict[str, float] = field(default_factory=dict)  # channel -> monotonic time

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    def fail_next(self, count: int, *, status: int = 200, error: str = "",
                  retry_after: int | None = None, method: str | None = None) -> None:
        """Answer the next `count` calls (of `method`) with this status / error."""
        self.failures.append(Failure(count, status, error, retry_after, method))

    def revoke(self, token: str) -> None:
        """From now on calls with `token` get token_revoked (as after a reinstall)."""
        self.revoked.add(token)

    def archive(self, channel: str) -> None:
        """The channel is archived: posts and updates to it get is_archived."""
        self.archived.add(channel)

    def posted(self) -> list[dict[str, Any]]:
        """Every message posted (all channels), in the order Slack took them."""
        return sorted((m for ms in self.messages.values() for m in ms), key=lambda m: m["ts"])

    def add_user(self, user_id: str, *, email: str, team: str, confirmed: bool = True) -> None:
        """A user users.info knows: profile email, whether it is confirmed, home workspace."""
        self.users[user_id] = {"id": user_id, "team_id": team, "is_email_confirmed": confirmed,
                               "profile": {"email": email, "real_name": user_id}}

    def made(self, method: str) -> list[Call]:
        """The calls of one method that were answered ok, in order."""
        return [c for c in self.calls if c.method == method and c.args.get("_ok", True)]

    async def wait_for(self, method: str, count: int, timeout: float = 10) -> list[Call]:
        """The ok calls of `method` once there are `count` of them (AssertionError on timeout)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.made(method)) >= count:
                return self.made(method)
            await asyncio.sleep(0.02)
        raise AssertionError(f"{len(self.made(method))} {method} calls, expected {count}")

    async def wait_socket(self, nth: int = 1, timeout: float = 10) -> web.WebSocketResponse:
        """The newest open Socket Mode connection, once the service opened `nth` of them."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.opened >= nth and self.sockets:
                return self.sockets[-1]
            await asyncio.sleep(0.02)
        raise AssertionError(f"{self.opened} Socket Mode connections, expected {nth}")

    async def envelope(self, payload: dict[str, Any], *, kind: str = "events_api",
                       retry_attempt: int = 0) -> str:
        """Send one Socket Mode envelope (a new envelope id each time); its envelope id."""
        socket = await self.wait_socket()
        envelope_id = f"env-{next(self._envelopes):04d}"
        envelope: dict[str, Any] = {"type": kind, "envelope_id": envelope_id,
                                    "payload": payload, "accepts_response_payload": False}
        if kind == "events_api":
            envelope.update(retry_attempt=retry_attempt,
                            retry_reason="timeout" if retry_attempt else "")
        await socket.send_json(envelope)
        return envelope_id

    async def wait_ack(self, envelope_id: str, timeout: float = 10) -> dict[str, Any]:
        """The ack of one envelope once it arrived (AssertionError on timeout)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if envelope_id in self.acks:
                return self.acks[envelope_id]
            await asyncio.sleep(0.02)
        raise AssertionError(f"no ack for {envelope_id}; acks: {sorted(self.acks)}")

    async def start(self) -> None:
        """Listen on a free port, or, after `stop` (an outage), on the same port again."""
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._handle)
        app.router.add_get("/link", self._socket)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", self.port)
        await site.start()
        self.port = int(self.runner.addresses[0][1])

    async def stop(self) -> None:
        """Close everything: nothing listens on the port until `start` again."""
        for socket in list(self.sockets):
            await socket.close()
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    async def _args(self, request: web.Request) -> dict[str, Any]:
        args: dict[str, Any] = dict(request.query)
        if request.content_type == "application/json":
            args.update(await request.json())
        elif request.can_read_body:
            args.update(dict(await request.post()))
        return args

    def _failure(self, method: str) -> Failure | None:
        for failure in self.failures:
            if failure.count > 0 and failure.method in (None, method):
                failure.count -= 1
                return failure
        return None

    def _refusal(self, method: str, args: dict[str, Any], token: str) -> Failure | None:
        """What Slack itself would refuse: a revoked token, an archived channel, a post sooner
        than the channel's rate allows."""
        if token in self.revoked:
            return Failure(1, error="token_revoked")
        channel = str(args.get("channel") or "")
        if method in ("chat.postMessage", "chat.update") and channel in self.archived:
            return Failure(1, error="is_archived")
        if method == "chat.postMessage" and self.post_rate:
            now = time.monotonic()
            last = self._last_post.get(channel)
            if last is not None and now - last < 1 / self.post_rate:
                wait = math.ceil(1 / self.post_rate - (now - last))
                return Failure(1, status=429, retry_after=max(wait, 1))
            self._last_post[channel] = now
        return None

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args = await self._args(request)
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        await asyncio.sleep(self.latency.get(method, 0))
        failure = self._failure(method) or self._refusal(method, args, token)
        self.calls.append(Call(method, {**args, "_ok": failure is None}, token))
        if failure is not None:
            headers = {"Retry-After": str(failure.retry_after)} if failure.retry_after else {}
            body = {"ok": False, "error": failure.error or
                    ("ratelimited" if failure.status == 429 else "internal_error")}
            return web.json_response(body, status=failure.status, headers=headers)
        return web.json_response(self._answer(method, args))

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        self.sockets.append(socket)
        self.opened += 1
        await socket.send_json({"type": "hello", "num_connections": 1,
                                "connection_info": {"app_id": "A0NETTASK"}})
        try:
            async for frame in socket:
                if frame.type != WSMsgType.TEXT:
                    continue
                ack = json.loads(frame.data)
                envelope_id = str(ack.get("envelope_id"))
                if self.on_ack is not None:
                    await self.on_ack(envelope_id)
                self.acks[envelope_id] = ack
        finally:
            self.sockets.remove(socket)
        return socket

    def _answer(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        if method == "apps.connections.open":
            return {"ok": True, "url": f"ws://127.0.0.1:{self.port}/link"}
        if method == "auth.test":
            return {"ok": True, "user_id": BOT_USER, "bot_id": BOT_ID, "team_id": TEAM,
                    "user": "nettask", "team": "NetTask", "url": "https://nettask.slack.com/"}
        if method in ("chat.postMessage", "chat.update"):
            ts = args.get("ts") or f"1763900000.{next(self._ts):06d}"
            if method == "chat.postMessage":
                self._keep(ts, args)
            return {"ok": True, "channel": args.get("channel"), "ts": ts,
                    "message": {"text": args.get("text", ""), "ts": ts, "bot_id": BOT_ID}}
        if method in ("conversations.history", "conversations.replies"):
            return self._history(method, args)
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": f"1763900000.{next(self._ts):06d}"}
        if method == "users.info":
            user = self.users.get(str(args.get("user")))
            if user is None:
                return {"ok": False, "error": "user_not_found"}
            return {"ok": True, "user": user}
        if method == "conversations.info":
            channel = str(args.get("channel"))
            return {"ok": True, "channel": {"id": channel, "name": channel.lower(),
                                            "is_ext_shared": False, "is_im": channel[:1] == "D"}}
        return {"ok": False, "error": "unknown_method"}


    def _keep(self, ts: str, args: dict[str, Any]) -> None:
        metadata = args.get("metadata")
        if isinstance(metadata, str):
            metadata = json.loads(metadata)
        message = {"ts": ts, "channel": str(args.get("channel")), "text": args.get("text", ""),
                   "thread_ts": args.get("thread_ts"), "bot_id": BOT_ID, "metadata": metadata}
        self.messages.setdefault(message["channel"], []).append(message)

    def _history(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        """A channel's top-level messages newest first, or a thread's parent and replies oldest
        first; metadata only with include_all_metadata; paged by `limit` and `cursor`."""
        channel = str(args.get("channel"))
        oldest = float(args.get("oldest") or 0)
        kept = self.messages.get(channel, [])
        if method == "conversations.replies":
            thread = str(args.get("ts"))
            found = [m for m in kept if m["ts"] == thread or m["thread_ts"] == thread]
        else:
            found = [m for m in reversed(kept) if not m["thread_ts"]]
        found = [m for m in found if float(m["ts"]) >= oldest]
        start = int(args.get("cursor") or 0)
        limit = int(args.get("limit") or 100)
        page = found[start:start + limit]
        with_metadata = str(args.get("include_all_metadata")).lower() in ("true", "1")
        messages = [{k: v for k, v in m.items() if k != "metadata" or with_metadata}
                    for m in page]
        cursor = str(start + limit) if start + limit < len(found) else ""
        return {"ok": True, "messages": messages, "has_more": bool(cursor),
                "response_metadata": {"next_cursor": cursor}}


def decode(call: Call, name: str) -> Any:
    """An argument the client sent JSON-encoded in a form (blocks), or as JSON."""
    value = call.args.get(name)
    return json.loads(value) if isinstance(value, str) and value[:1] in "[{" else value
