"""Socket Mode: Slack's events and clicks over a websocket the service opens (SLACK_APP_TOKEN).

Every envelope goes through the same bolt app as POST /slack/events, so an event is stored by
SlackEndpoint's store_first (deduplicated on event_id and channel:ts) before anything answers.
The envelope is acked only when bolt's answer is 200, that is after the event is stored: a
store failure sends no ack, and Slack delivers the envelope again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from logging import Logger

import aiohttp
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.adapter.socket_mode.async_internals import run_async_bolt_app, send_async_response
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest

log = logging.getLogger(__name__)

CONNECT_SECONDS = 10.0  # how long start waits for the websocket before going on without it
FIRST_RETRY_SECONDS, MAX_RETRY_SECONDS = 1.0, 60.0  # apps.connections.open failed: ask again
DRAIN_SECONDS = 10.0  # at stop, how long envelopes being stored may take to finish and be acked


class AckAfterStore(AsyncSocketModeHandler):
    """bolt's handler with the order spelled out: dispatch (which stores), then ack on 200 only;
    it knows which envelopes are being handled, so that stop can let them finish."""

    def __init__(self, app: AsyncApp, app_token: str, logger: Logger) -> None:
        super().__init__(app, app_token, logger=logger)
        self.in_flight: set[asyncio.Task[object]] = set()

    async def handle(self, client: SocketModeClient,  # type: ignore[override]
                     req: SocketModeRequest) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.in_flight.add(task)
        try:
            await self._handle(client, req)
        finally:
            self.in_flight.discard(task)

    async def _handle(self, client: SocketModeClient, req: SocketModeRequest) -> None:
        began = time.time()
        log.debug("event=slack_envelope_received envelope=%s type=%s retry=%s",
                  req.envelope_id, req.type, req.retry_attempt or "-")
        answer = await run_async_bolt_app(self.app, req)
        if answer.status != 200:
            log.warning("event=slack_envelope_not_acked envelope=%s type=%s status=%s: "
                        "Slack delivers it again", req.envelope_id, req.type, answer.status)
            return
        await send_async_response(client, req, answer, began)


class SocketMode:
    """The Socket Mode connection of one service: opened at start, closed at stop."""

    def __init__(self, *, app: AsyncApp, app_token: str) -> None:
        self.app = app
        self.app_token = app_token
        self.handler: AckAfterStore | None = None
        self.error: str | None = None
        self.refused = False
        self._connecting: asyncio.Task[None] | None = None

    @property
    def connected(self) -> bool:
        """Whether the websocket is open now."""
        if self.handler is None:
            return False
        client = self.handler.client
        session = client.current_session
        return (not client.closed and not client.stale and session is not None
                and not session.closed)

    def state(self) -> dict[str, object]:
        """For /health and the start log: connected or not, and why not."""
        state: dict[str, object] = {"connected": self.connected}
        if self.error is not None:
            state["error"] = self.error
        return state

    async def start(self) -> None:
        """Connect, waiting at most CONNECT_SECONDS (never raises): a refused app token is
        logged and given up, an unreachable Slack is asked again in the background."""
        self.handler = AckAfterStore(self.app, self.app_token,
                                     logger=logging.getLogger("slack_sdk.socket_mode"))
        self._connecting = asyncio.create_task(self._connect(self.handler))
        await asyncio.wait({self._connecting}, timeout=CONNECT_SECONDS)
        if not self.connected and not self.refused:
            log.warning("event=slack_socket_connecting error=%s: not connected after %ss, "
                        "still trying", self.error or "-", CONNECT_SECONDS)

    async def _connect(self, handler: AckAfterStore) -> None:
        client = handler.client
        delay = FIRST_RETRY_SECONDS
        # The URL is asked here, not in the client's connect loop, which retries a refused
        # token forever and would hold up the start.
        while not await self._ask_url(client):
            if self.refused:
                log.error("event=slack_socket_refused error=%s: apps.connections.open refused "
                          "SLACK_APP_TOKEN (an xapp- token with connections:write is needed); "
                          "Slack events do not arrive over Socket Mode, mail is unaffected",
                          self.error)
                await client.close()  # type: ignore[no-untyped-call]
                return
            log.warning("event=slack_socket_retrying error=%s retry_in=%ss", self.error, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_RETRY_SECONDS)
        await handler.connect_async()  # type: ignore[no-untyped-call]
        log.info("event=slack_socket_connected")

    async def _ask_url(self, client: SocketModeClient) -> bool:
        """apps.connections.open; on failure self.error says why, self.refused if for good."""
        try:
            client.wss_uri = await client.issue_new_wss_url()
        except SlackApiError as exc:
            self.error = str(exc.response.get("error") or exc)
            self.refused = exc.response.status_code < 500
            return False
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            self.error = f"{type(exc).__name__}: {exc}"
            return False
        self.error = None
        return True

    async def stop(self) -> None:
        """Let envelopes being stored finish and be acked, then close the websocket; one that
        is not acked by then is delivered again by Slack."""
        if self._connecting is not None:
            self._connecting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._connecting
        if self.handler is not None and self.handler.in_flight:
            log.info("event=slack_socket_draining in_flight=%s", len(self.handler.in_flight))
            await asyncio.wait(set(self.handler.in_flight), timeout=DRAIN_SECONDS)
        if self.handler is not None and not self.handler.client.closed:
            await self.handler.close_async()  # type: ignore[no-untyped-call]
