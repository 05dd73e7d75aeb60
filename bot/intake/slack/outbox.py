"""The durable Slack outbox: queued calls made by the Web API, or written to a JSON-lines file.

A call is committed to the database first (by whoever wants it made) and made afterwards, so an
answer survives Slack being down and the service restarting. 429 waits as long as Retry-After
says; 5xx and network errors back off; a permanent error (channel_not_found, ...) fails at once
with the reason. Delivery is at least once: a crash between Slack's ok and our commit repeats it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.delivery import DeliveryLoop
from models.db import Database
from models.slack import THREAD_OF, TS_OF, call_by_key, due_calls, lock_call
from models.tables import SlackCall

log = logging.getLogger(__name__)

# Errors Slack answers with ok=false that are worth another try; every other error is permanent.
TRANSIENT_ERRORS = frozenset({"ratelimited", "internal_error", "fatal_error",
                              "service_unavailable", "request_timeout"})


class CallFailed(Exception):
    """A call did not succeed; `permanent` says whether trying again can help."""

    def __init__(self, reason: str, *, permanent: bool, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.permanent = permanent
        self.retry_after = retry_after


# a call made under (or on) the message another call makes: the marker, and the argument that
# gets that message's ts once it is out
PARENTS = {THREAD_OF: "thread_ts", TS_OF: "ts"}


class SlackTransport(Protocol):
    """Where Slack calls go."""

    async def call(self, call: SlackCall) -> dict[str, Any]:
        """Make one call; its response data, or CallFailed."""
        ...


class WebApiTransport:
    """The real Slack Web API (or the URL in SLACK_API_URL)."""

    def __init__(self, token: str, base_url: str, timeout: int = 15) -> None:
        # No retry handlers: retries belong to the outbox, where they are durable and counted.
        self.client = AsyncWebClient(token=token, base_url=base_url, timeout=timeout,
                                     retry_handlers=[])

    async def call(self, call: SlackCall) -> dict[str, Any]:
        """POST the method with its JSON arguments; map Slack's answer to CallFailed."""
        try:
            response = await self.client.api_call(call.method, json=json.loads(call.payload))
        except SlackApiError as exc:
            status = exc.response.status_code
            error = str(exc.response.get("error") or f"HTTP {status}")
            if status == 429:
                after = exc.response.headers.get("Retry-After") or "1"
                raise CallFailed(error, permanent=False, retry_after=float(after)) from exc
            permanent = status < 500 and error not in TRANSIENT_ERRORS
            raise CallFailed(error, permanent=permanent) from exc
        except Exception as exc:  # network, timeouts, a dropped connection: all worth a retry
            raise CallFailed(f"{type(exc).__name__}: {exc}", permanent=False) from exc
        return dict(response.data) if isinstance(response.data, dict) else {}


class JsonLinesTransport:
    """Without a bot token: each call becomes one JSON line, once per call id."""

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

    def _append(self, line: str) -> None:
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")
            handle.flush()
            os.fsync(handle.fileno())


class SlackDeliverer(DeliveryLoop):
    """Makes queued Slack calls: at once when woken, retries when due, resumed after a restart."""

    loop_error_event = "slack_delivery_loop_error"

    def __init__(self, *, db: Database, transport: SlackTransport,
                 clock: Callable[[], datetime], max_attempts: int = 8,
                 backoff_seconds: float = 5.0) -> None:
        self.db = db
        self.transport = transport
        self.clock = clock
        self.max_attempts = max_attempts
        self.backoff = backoff_seconds
        super().__init__()

    async def run_once(self) -> int:
        """Try every due call once, recording each outcome at once; returns how many succeeded."""
        async with self.db.reader() as session:
            due = await due_calls(session, now=self.clock())
        made = 0
        for call in due:
            made += await self._deliver(call)
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
            async with self.db.session() as session:
                row = await lock_call(session, call.id or 0)
                if row is not None and row.status == "queued":
                    row.next_attempt_at = max(parent.next_attempt_at or self.clock(),
                                              self.clock())
                    session.add(row)
            return None
        if parent is not None and parent.result_ts:
            args[field] = parent.result_ts
        return call.model_copy(update={"payload": json.dumps(args, ensure_ascii=False)})

    async def _deliver(self, queued: SlackCall) -> int:
        assert queued.id is not None
        call = await self._threaded(queued)
        if call is None:
            return 0
        failure: CallFailed | None = None
        data: dict[str, Any] = {}
        try:
            data = await self.transport.call(call)
        except CallFailed as exc:
            failure = exc
        except Exception as exc:  # e.g. the outbox file's disk is full: retry, never lose it
            failure = CallFailed(f"{type(exc).__name__}: {exc}", permanent=False)
        now = self.clock()
        async with self.db.session() as session:
            row = await lock_call(session, queued.id)
            if row is None or row.status != "queued":
                return 0
            row.attempts += 1
            if failure is None:
                row.status, row.done_at, row.reason = "sent", now, None
                row.result_ts = str(data.get("ts") or "")[:32] or None
            elif failure.permanent or row.attempts >= self.max_attempts:
                row.status, row.done_at, row.reason = "failed", now, str(failure)
            else:
                delay = failure.retry_after
                if delay is None:
                    delay = min(self.backoff * 2 ** (row.attempts - 1), 3600)
                row.next_attempt_at = now + timedelta(seconds=delay)
                row.reason = str(failure)
            session.add(row)
            status, reason, attempts = row.status, row.reason, row.attempts
        level = logging.WARNING if failure else logging.INFO
        log.log(level, "event=slack_call call=%s method=%s ticket=%s status=%s attempts=%s "
                "reason=%s", call.id, call.method, call.ticket_number or "-", status, attempts,
                reason or "-")
        return 1 if failure is None else 0
