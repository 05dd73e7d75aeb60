"""The durable Slack outbox: queued calls made by the Web API, or written to a JSON-lines file.

A call is committed to the database first (by whoever wants it made) and made afterwards, so an
answer survives Slack being down and the service restarting. Calls go out in order per
conversation (a channel's top level, a thread, one message's updates), paced to Slack's
documented rates (`pacing.py`); a 429 pauses that method and channel for Retry-After. 5xx,
network and disk errors pause the whole outbox with capped backoff, for as long as it takes;
a token error (revoked, invalid, ...) pauses it until the token works again (a restart with a
new one). Only an error about the call itself (channel_not_found, is_archived, ...) fails it,
at once, and `on_failed` gives it a visible fate. A post carries metadata naming its row, and a
post whose outcome is unknown (a crash or a cut connection after it went out) is looked up in
the conversation before it is made again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.intake.slack.pacing import Pacer
from bot.jobs.delivery import DeliveryLoop
from models.db import Database
from models.slack import THREAD_OF, TS_OF, call_by_key, head_calls, lock_call
from models.tables import SlackCall

log = logging.getLogger(__name__)

# Errors Slack answers with ok=false that are worth another try.
TRANSIENT_ERRORS = frozenset({"ratelimited", "internal_error", "fatal_error",
                              "service_unavailable", "request_timeout"})
# Errors about the whole token: the outbox stops, the calls stay queued.
TOKEN_ERRORS = frozenset({"invalid_auth", "token_revoked", "account_inactive", "not_authed",
                          "missing_scope", "token_expired"})
METADATA_TYPE = "nettask_outbox"  # the metadata event_type our posts carry

Kind = Literal["rate", "transient", "token", "call"]


class CallFailed(Exception):
    """A call did not succeed: `kind` says whose fault and what to do.

    rate: wait Retry-After; transient (5xx, network, disk): retry with backoff; token: stop
    the outbox; call: this call can never succeed. `unknown` means it may have gone out.
    """

    def __init__(self, reason: str, *, kind: Kind, retry_after: float | None = None,
                 unknown: bool = False) -> None:
        super().__init__(reason)
        self.kind: Kind = kind
        self.retry_after = retry_after
        self.unknown = unknown

    @property
    def permanent(self) -> bool:
        """Whether trying this call again can never help."""
        return self.kind == "call"


def failure_of(status: int, error: str, retry_after: str | None = None) -> CallFailed:
    """Slack's answer (HTTP status, `error`) as a CallFailed of the right kind."""
    if status == 429 or error == "ratelimited":
        return CallFailed(error or "ratelimited", kind="rate",
                          retry_after=float(retry_after or 1))
    if error in TOKEN_ERRORS:
        return CallFailed(error, kind="token")
    if status >= 500 or error in TRANSIENT_ERRORS:
        # a 5xx may come from a proxy after Slack made the call: it may have gone out
        return CallFailed(error, kind="transient", unknown=status >= 500)
    return CallFailed(error, kind="call")


# a call made under (or on) the message another call makes: the marker, and the argument that
# gets that message's ts once it is out
PARENTS = {THREAD_OF: "thread_ts", TS_OF: "ts"}


class SlackTransport(Protocol):
    """Where Slack calls go."""

    lookup: bool  # whether a post in doubt can be looked up (else the transport dedupes)

    async def call(self, call: SlackCall) -> dict[str, Any]:
        """Make one call; its response data, or CallFailed."""
        ...

    async def find(self, call: SlackCall) -> str | None:
        """The ts of the message this post made, if it is in its conversation; CallFailed."""
        ...


def metadata(call: SlackCall) -> dict[str, Any]:
    """What a post carries to name its outbox row."""
    return {"event_type": METADATA_TYPE, "event_payload": {"call": call.id, "key": call.key}}


class WebApiTransport:
    """The real Slack Web API (or the URL in SLACK_API_URL)."""

    lookup = True

    def __init__(self, token: str, base_url: str, timeout: int = 15) -> None:
        # No retry handlers: retries belong to the outbox, where they are durable and counted.
        self.client = AsyncWebClient(token=token, base_url=base_url, timeout=timeout,
                                     retry_handlers=[])

    async def _api(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        try:
            response = await self.client.api_call(method, json=args)
        except SlackApiError as exc:
            status = exc.response.status_code
            error = str(exc.response.get("error") or f"HTTP {status}")
            raise failure_of(status, error, exc.response.headers.get("Retry-After")) from exc
        except Exception as exc:  # network, timeouts, a dropped connection: all worth a retry
            raise CallFailed(f"{type(exc).__name__}: {exc}", kind="transient",
                             unknown=True) from exc
        return dict(response.data) if isinstance(response.data, dict) else {}

    async def call(self, call: SlackCall) -> dict[str, Any]:
        """POST the method with its JSON arguments (a post with metadata naming the row)."""
        args = json.loads(call.payload)
        if call.method == "chat.postMessage" and "metadata" not in args:
            args["metadata"] = metadata(call)
        return await self._api(call.method, args)

    async def find(self, call: SlackCall) -> str | None:
        """Search the post's channel (newest first) or thread for our metadata."""
        args = json.loads(call.payload)
        thread = args.get("thread_ts")
        # no `oldest`: our clock and Slack's ts need not agree; a post in doubt is a recent one
        query: dict[str, Any] = {"channel": args.get("channel"), "include_all_metadata": True,
                                 "limit": 200}
        method = "conversations.history"
        if thread:
            method, query["ts"] = "conversations.replies", thread
        for _ in range(10):  # the newest 2,000 messages
            data = await self._api(method, query)
            for message in data.get("messages") or []:
                payload = (message.get("metadata") or {}).get("event_payload") or {}
                if (message.get("metadata") or {}).get("event_type") == METADATA_TYPE and \
                        payload.get("call") == call.id:
                    return str(message.get("ts"))
            cursor = (data.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return None
            query["cursor"] = cursor
        return None


class JsonLinesTransport:
    """Without a bot token: each call becomes one JSON line, once per call id."""

    lookup = False  # written once per call id anyway

    def __init__(self, path: Path) -> None:
        self.path = path
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._written: set[int] | None = None

    def _ids(self) -> set[int]:
        if self._written is None:
            self._written = set()
            if self.path.exists():
                for line in self.path.read_text(encoding="utf-8").splitlines():
                    with contextlib.suppress(ValueError, KeyError, TypeError):
                        self._written.add(int(json.loads(line)["id"]))
        return self._written

    async def call(self, call: SlackCall) -> dict[str, Any]:
        """Append the call to the file (fsynced) unless a previous run wrote it."""
        assert call.id is not None
        ts = f"{call.created_at.timestamp():.6f}"
        if call.id not in self._ids():
            line = json.dumps({"id": call.id, "method": call.method,
                               "args": json.loads(call.payload), "key": call.key,
                               "ticket": call.ticket_number}, ensure_ascii=False)
            await asyncio.to_thread(self._append, line)
            self._ids().add(call.id)
        return {"ok": True, "ts": ts}

    async def find(self, call: SlackCall) -> str | None:
        """Nothing to look up: `call` writes each call id once."""
        return None

    def _append(self, line: str) -> None:
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")
            handle.flush()
            os.fsync(handle.fileno())


FailedHook = Callable[[AsyncSession, SlackCall, datetime], Awaitable[None]]
TokenHook = Callable[[str, datetime], Awaitable[None]]


class SlackDeliverer(DeliveryLoop):
    """Makes queued Slack calls: at once when woken, paced, retried, resumed after a restart."""

    loop_error_event = "slack_delivery_loop_error"
    outbox = "slack"

    def __init__(self, *, db: Database, transport: SlackTransport,
                 clock: Callable[[], datetime], backoff_seconds: float = 5.0,
                 backoff_max_seconds: float = 60.0, token_retry_seconds: float = 300.0,
                 post_interval: float = 1.0, pace_clock: Callable[[], float] = time.monotonic,
                 on_failed: FailedHook | None = None,
                 on_token_error: TokenHook | None = None) -> None:
        self.db = db
        self.transport = transport
        self.clock = clock
        self.backoff = backoff_seconds
        self.backoff_max = backoff_max_seconds
        self.token_retry = token_retry_seconds
        self.pacer = Pacer(post_interval)
        self.pace_clock = pace_clock  # rates and pauses are real seconds, not business time
        self.on_failed = on_failed
        self.on_token_error = on_token_error
        self.token_error: str | None = None
        self._hold_until = 0.0  # on pace_clock: the outbox is paused until then
        self._failures = 0  # transient failures in a row, for the backoff
        self._idle = 1.0
        super().__init__()

    def idle_seconds(self) -> float:
        """Until the next call may go: at once after a round that made calls."""
        return self._idle

    def state(self) -> dict[str, object]:
        """For /health: whether the outbox is paused, why and since when."""
        state: dict[str, object] = {"paused": self.paused is not None}
        if self.paused is not None:
            state["reason"] = self.paused
            state["paused_since"] = self.paused_since.isoformat() if self.paused_since else None
        if self.token_error is not None:
            state["token_error"] = self.token_error
        return state

    async def run_once(self) -> int:
        """Make the head call of each conversation that Slack's rates let go now; how many
        succeeded."""
        self._idle = 1.0
        hold = self._hold_until - self.pace_clock()
        if hold > 0:
            self._idle = min(hold, 1.0)
            return 0
        now = self.clock()
        async with self.db.reader() as session:
            heads = await head_calls(session)
        made = 0
        for call in heads:
            if call.next_attempt_at is not None and call.next_attempt_at > now:
                continue
            channel = str(json.loads(call.payload).get("channel") or "")
            wait = self.pacer.wait(call.method, channel, self.pace_clock())
            if wait > 0:
                self._idle = min(self._idle, wait)
                continue
            outcome = await self._deliver(call, channel)
            if outcome == "sent":
                made += 1
            elif outcome in ("transient", "token"):
                break  # the whole outbox waits
        if made:
            self._idle = 0.0
        return made

    async def _threaded(self, call: SlackCall) -> SlackCall | None:
        """The call with its thread filled in from the post it goes under; None while that post
        is still to be made (it is tried again when the post is)."""
        args = json.loads(call.payload)
        field, parent_key = next(((f, args.pop(m)) for m, f in PARENTS.items() if m in args),
                                 ("", None))
        if parent_key is None:
            return call
        async with self.db.reader() as session:
            parent = await call_by_key(session, parent_key)
        if parent is not None and parent.status == "queued":
            return None
        if parent is not None and parent.result_ts:
            args[field] = parent.result_ts
        return call.model_copy(update={"payload": json.dumps(args, ensure_ascii=False)})

    async def _mark_sending(self, call_id: int, now: datetime) -> None:
        async with self.db.session() as session:
            row = await lock_call(session, call_id)
            if row is not None:
                row.sending_at = now
                session.add(row)

    async def _deliver(self, queued: SlackCall, channel: str) -> str:
        """Make one call and record its outcome: sent, waiting, rate, transient, token, call."""
        assert queued.id is not None
        call = await self._threaded(queued)
        if call is None:
            return "waiting"
        in_doubt = self.transport.lookup and call.method == "chat.postMessage"
        failure: CallFailed | None = None
        data: dict[str, Any] = {}
        try:
            found = await self.transport.find(call) if in_doubt and call.sending_at else None
            if found is not None:
                data = {"ts": found}
                log.info("event=slack_call_found call=%s ticket=%s ts=%s: made before a crash, "
                         "not made again", call.id, call.ticket_number or "-", found)
            else:
                if in_doubt:
                    await self._mark_sending(queued.id, self.clock())
                data = await self.transport.call(call)
        except CallFailed as exc:
            failure = exc
        except Exception as exc:  # e.g. the outbox file's disk is full: retry, never lose it
            failure = CallFailed(f"{type(exc).__name__}: {exc}", kind="transient")
        pace_now = self.pace_clock()
        if failure is None or failure.kind in ("call", "rate"):
            self.pacer.spend(call.method, channel, pace_now)
        if failure is not None and failure.kind == "rate":
            self.pacer.pause(call.method, channel, failure.retry_after or 1.0, pace_now)
        await self._record(queued.id, call, data, failure)
        return "sent" if failure is None else failure.kind

    async def _record(self, call_id: int, call: SlackCall, data: dict[str, Any],
                      failure: CallFailed | None) -> None:
        now = self.clock()
        async with self.db.session() as session:
            row = await lock_call(session, call_id)
            if row is None or row.status != "queued":
                return
            if failure is None or failure.kind != "rate":
                row.attempts += 1
            row.sending_at = row.sending_at if failure is not None and failure.unknown else None
            if failure is None:
                row.status, row.done_at, row.reason = "sent", now, None
                row.result_ts = str(data.get("ts") or "")[:32] or None
            else:
                row.reason = str(failure)
                if failure.kind == "call":
                    row.status, row.done_at = "failed", now
                    if self.on_failed is not None:
                        await self.on_failed(session, row, now)
            session.add(row)
            status, attempts = row.status, row.attempts
        await self._after(call, failure, now, status, attempts)

    async def _after(self, call: SlackCall, failure: CallFailed | None, now: datetime,
                     status: str, attempts: int) -> None:
        """Pause or resume the outbox; one log line per call outcome, none per paced wait."""
        if failure is None:
            self._failures = 0
            self.token_error = None
            self.resume(now)
        elif failure.kind == "transient":
            self._failures += 1
            delay = min(self.backoff * 2 ** (self._failures - 1), self.backoff_max)
            self._hold_until = self.pace_clock() + delay
            self.pause(str(failure), now)
        elif failure.kind == "token":
            self._hold_until = self.pace_clock() + self.token_retry
            first = self.token_error is None
            self.token_error = str(failure)
            self.pause(f"token: {failure}", now)
            if first and self.on_token_error is not None:
                await self.on_token_error(str(failure), now)
        if failure is None or failure.kind == "call":
            level = logging.INFO if failure is None else logging.WARNING
            log.log(level, "event=slack_call call=%s method=%s ticket=%s status=%s attempts=%s "
                    "reason=%s", call.id, call.method, call.ticket_number or "-", status,
                    attempts, failure or "-")
