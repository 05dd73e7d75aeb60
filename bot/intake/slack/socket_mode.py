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

import aiohttp
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.adapter.socket_mode.async_internals import run_async_bolt_app, send_async_response
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest

log = logging.getLogger(__name__)

CONNECT_SECONDS = 10.0  # how long start waits for the websocket before going on without it


class AckAfterStore(AsyncSocketModeHandler):
    """bolt's handler with the order spelled out: dispatch (which stores), then ack on 200 only."""

    async def handle(self, client: SocketModeClient,  # type: ignore[override]
                     req: SocketModeRequest) -> None:
        began = time.time()
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
        """Ask Slack for a websocket URL with the app token, then connect (never raises)."""
        self.handler = AckAfterStore(self.app, self.app_token,
                                     logger=logging.getLogger("slack_sdk.socket_mode"))
        client = self.handler.client
        try:
            # Asked here, not in the client's connect loop, which retries a refused token forever.
            client.wss_uri = await client.issue_new_wss_url()
        except SlackApiError as exc:
            self.error = str(exc.response.get("error") or exc)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            self.error = f"{type(exc).__name__}: {exc}"
        if self.error is not None:
            log.error("event=slack_socket_refused error=%s: apps.connections.open failed with "
                      "SLACK_APP_TOKEN (an xapp- token with connections:write is needed); "
                      "Slack events do not arrive over Socket Mode, mail is unaffected",
                      self.error)
            await client.close()  # type: ignore[no-untyped-call]
            return
        self._connecting = asyncio.create_task(self._connect())
        await asyncio.wait({self._connecting}, timeout=CONNECT_SECONDS)
        if not self.connected:
            log.warning("event=slack_socket_connecting: not connected after %ss, still trying",
                        CONNECT_SECONDS)

    async def _connect(self) -> None:
        assert self.handler is not None
        await self.handler.connect_async()  # type: ignore[no-untyped-call]
        log.info("event=slack_socket_connected")

    async def stop(self) -> None:
        """Close the websocket; an envelope not acked yet is delivered again by Slack."""
        if self._connecting is not None:
            self._connecting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._connecting
        if self.handler is not None and not self.handler.client.closed:
            await self.handler.close_async()  # type: ignore[no-untyped-call]
