"""slack-bolt's AsyncApp on the service's own aiohttp server: POST /slack/events.

Bolt checks the signature (401 for a forged one or a timestamp older than five minutes) and
acks events before its listeners run, so the event is stored in a middleware that runs right
after the signature check and before the 200: a crash after the ack loses nothing. Clicks
(block actions) are stored there too and applied from the store by their own worker
(bot/intake/slack/clicks.py).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltRequest
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.request.internals import parse_body
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.config import Settings
from bot.intake.slack.callback_actions import CallbackActions, is_callback_click
from bot.intake.slack.clicks import is_click, store_click
from bot.intake.slack.commands import command_answer
from bot.intake.slack.customer_actions import CustomerActions, is_customer_click
from bot.intake.slack.events import MalformedEvent
from bot.intake.slack.inbox import BotIdentity, Stored, store_event
from bot.intake.slack.shape import shape_problem
from bot.intake.slack.triage_actions import TriageActions, parse_click
from models.db import Database
from models.slack import queue_call

log = logging.getLogger(__name__)

EVERYTHING = re.compile(".*")
TIMESTAMP, SIGNATURE = "X-Slack-Request-Timestamp", "X-Slack-Signature"
REFUSAL = "Only NetTask support agents can use these controls; nothing was changed."
COMMAND_REFUSAL = "Only NetTask support agents can look up tickets."


class SlackEndpoint:
    """The bolt app and the aiohttp handler around it."""

    def __init__(self, *, settings: Settings, db: Database, clock: Callable[[], datetime],
                 on_stored: Callable[[int], None], identity: BotIdentity,
                 triage: TriageActions | None = None,
                 customers: CustomerActions | None = None,
                 callbacks: CallbackActions | None = None) -> None:
        self.settings = settings
        self.db = db
        self.clock = clock
        self.on_stored = on_stored
        self.identity = identity
        self.triage = triage
        self.customers = customers
        self.callbacks = callbacks
        self.on_click_stored: Callable[[int], None] = lambda _: None  # the click worker's
        self.token = settings.slack_bot_token.get_secret_value()
        secret = settings.slack_signing_secret.get_secret_value()
        self.secret = secret
        self.client = AsyncWebClient(token=self.token or None, base_url=settings.slack_api_url,
                                     retry_handlers=[])
        self._identified = False

        # bolt injects arguments by parameter name, so it is given plain functions, not methods.
        async def authorize(enterprise_id: str | None, team_id: str | None) -> AuthorizeResult:
            return await self._authorize(enterprise_id, team_id)

        async def store_first(req: AsyncBoltRequest, body: dict[str, Any],
                              next: Callable[[], Awaitable[BoltResponse]]) -> BoltResponse:
            return await self._store_first(req, body, next)

        async def on_event() -> None:
            """Events are acked by bolt; stored messages are processed by the Slack worker."""

        async def on_action(ack: AsyncAck, body: dict[str, Any]) -> None:
            await self._on_action(ack, body)

        async def on_command(ack: AsyncAck, body: dict[str, Any]) -> None:
            await self._on_command(ack, body)

        self.app = AsyncApp(
            # bolt's client gets its token per request from authorize (it warns if given one)
            signing_secret=secret, authorize=authorize,
            client=AsyncWebClient(base_url=settings.slack_api_url, retry_handlers=[]),
            before_authorize=store_first, ignoring_self_events_enabled=False,
        )
        self.app.event(EVERYTHING)(on_event)
        self.app.action(EVERYTHING)(on_action)
        self.app.command(EVERYTHING)(on_command)

    async def identify(self) -> None:
        """Learn our bot user id once (auth.test); without a token there is nothing to learn."""
        if self._identified or not self.token:
            return
        try:
            answer = await self.client.auth_test()
        except (SlackApiError, OSError, TimeoutError) as exc:
            log.warning("event=slack_auth_test_failed error=%s", exc)
            return
        self.identity.user_id = str(answer.get("user_id") or "") or None
        self.identity.bot_id = str(answer.get("bot_id") or "") or None
        self._identified = True
        log.info("event=slack_identified user=%s bot=%s", self.identity.user_id,
                 self.identity.bot_id)

    async def _authorize(self, enterprise_id: str | None, team_id: str | None) -> AuthorizeResult:
        # Never fails: a message must not be refused because auth.test is slow or down.
        await self.identify()
        return AuthorizeResult(enterprise_id=enterprise_id, team_id=team_id,
                               bot_token=self.token or None, bot_user_id=self.identity.user_id,
                               bot_id=self.identity.bot_id)

    async def _store_first(self, req: AsyncBoltRequest, body: dict[str, Any],
                           next: Callable[[], Awaitable[BoltResponse]]) -> BoltResponse:
        if body.get("type") == "app_rate_limited":
            # Slack stops sending this workspace's events for the minute; a non-200 here counts
            # as a failed delivery, and too many of those disable the subscriptions.
            log.warning("event=slack_app_rate_limited team=%s minute=%s", body.get("team_id"),
                        body.get("minute_rate_limited"))
            return BoltResponse(status=200, body="")
        if is_click(body):
            return await self._store_click(body, next)
        if body.get("type") != "event_callback":
            return await next()
        # Over Socket Mode bolt has the payload parsed already and no raw body: store it as JSON.
        raw = (req.raw_body or json.dumps(body, ensure_ascii=False)).encode("utf-8")
        retry = req.headers.get("x-slack-retry-num", [""])[0]
        try:
            async with self.db.session() as session:
                outcome, stored = await store_event(session, body, raw, self.clock())
        except MalformedEvent as exc:
            log.warning("event=slack_event_malformed error=%s", exc)
            return BoltResponse(status=400, body=f"malformed event: {exc}")
        except Exception:
            log.exception("event=slack_store_failed event_id=%s", body.get("event_id"))
            return BoltResponse(status=500, body="")  # Slack retries; nothing is lost
        log.info("event=slack_event event_id=%s outcome=%s message=%s retry=%s",
                 body.get("event_id"), outcome.value, stored or "-", retry or "-")
        if outcome is Stored.DUPLICATE:
            return BoltResponse(status=200, body="")
        if stored is not None:
            self.on_stored(stored)
        return await next()

    async def _store_click(self, body: dict[str, Any],
                           next: Callable[[], Awaitable[BoltResponse]]) -> BoltResponse:
        """Commit the click before bolt acks it; a failed store is no ack (the click is lost to
        Slack's error mark, never after our 200)."""
        raw = json.dumps(body, ensure_ascii=False).encode("utf-8")
        try:
            async with self.db.session() as session:
                stored = await store_click(session, body, raw, self.clock())
        except Exception:
            log.exception("event=slack_click_store_failed trigger=%s", body.get("trigger_id"))
            return BoltResponse(status=500, body="")
        log.info("event=slack_click_stored trigger=%s message=%s", body.get("trigger_id"),
                 stored or "duplicate")
        if stored is None:
            return BoltResponse(status=200, body="")
        self.on_click_stored(stored)
        return await next()

    async def _on_action(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()  # stored already (_store_click); the click worker applies it

    async def apply_click(self, session: AsyncSession, body: dict[str, Any],
                          now: datetime) -> str:
        """Apply a stored click in the caller's transaction; what became of it."""
        user = str((body.get("user") or {}).get("id") or "")
        channel = str((body.get("channel") or {}).get("id") or "")
        action_ids = [a.get("action_id") for a in body.get("actions") or []]
        handler: CustomerActions | CallbackActions | None = (
            self.customers if self.customers is not None and is_customer_click(body)
            else self.callbacks if self.callbacks is not None and is_callback_click(body)
            else None)
        if handler is not None:
            return await self._on_customer_click(session, handler, body, user, channel, now)
        if user not in self.settings.slack_agent_ids:
            log.info("event=slack_action_refused user=%s actions=%s", user, action_ids)
            if channel:
                await queue_call(
                    session, key=f"refusal:{body.get('trigger_id') or user}",
                    method="chat.postEphemeral",
                    args={"channel": channel, "user": user, "text": REFUSAL}, now=now)
            return "refused: not an agent"
        click = parse_click(body)
        if click is None or self.triage is None:
            log.info("event=slack_action_unhandled user=%s actions=%s", user, action_ids)
            return "unhandled"
        refusal = await self.triage.apply(session, click, now)
        if refusal and channel:
            await queue_call(
                session, key=f"triage-refusal:{click.trigger}", method="chat.postEphemeral",
                args={"channel": channel, "user": user, "text": refusal}, now=now)
        log.info("event=slack_action user=%s action=%s ticket=%s outcome=%s", user,
                 click.action_id, click.number, "refused" if refusal else "applied")
        return f"refused: {refusal}" if refusal else f"applied {click.action_id}"

    async def _on_customer_click(self, session: AsyncSession,
                                 handler: CustomerActions | CallbackActions,
                                 body: dict[str, Any], user: str, channel: str,
                                 now: datetime) -> str:
        """A customer's control (a quote's or a callback's buttons): evidence decides, never the
        agent list; a refusal is told to the clicker alone."""
        refusal = await handler.apply(session, body, now)
        if refusal and channel:
            await queue_call(
                session, key=f"customer-refusal:{body.get('trigger_id') or now.isoformat()}",
                method="chat.postEphemeral",
                args={"channel": channel, "user": user, "text": refusal}, now=now)
        action = (body.get("actions") or [{}])[0].get("action_id")
        log.info("event=slack_customer_click user=%s action=%s outcome=%s", user, action,
                 "refused" if refusal else "applied")
        return f"refused: {refusal}" if refusal else f"applied {action}"

    async def _on_command(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        # Ticket states are confidential: a customer in a shared channel must not read others'.
        user = str(body.get("user_id") or "")
        if user not in self.settings.slack_agent_ids:
            log.info("event=slack_command_refused user=%s", user)
            await ack(text=COMMAND_REFUSAL)
            return
        async with self.db.reader() as session:
            answer = await command_answer(session, str(body.get("text") or ""))
        await ack(text=answer)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """POST /slack/events: 401 forged or stale, 400 malformed, else what bolt answers.

        The signature is checked on the raw bytes before bolt builds a request from them:
        an unauthenticated body is never parsed, and no body reaches bolt that is not one
        JSON object (bolt's own parsing fails with a 500 on `[1,2]` or `null`)."""
        raw = await request.read()
        if not valid_signature(self.secret, raw, request.headers.get(TIMESTAMP, ""),
                               request.headers.get(SIGNATURE, ""), time.time()):
            log.info("event=slack_request_refused status=401 reason=invalid signature")
            return web.Response(status=401, text="invalid signature")
        try:
            text = raw.decode("utf-8")
            body = parse_body(text, request.headers.get("Content-Type"))
            if not isinstance(body, dict):
                raise ValueError("the body is not one JSON object")
            problem = shape_problem(body)
            if problem is not None:
                raise ValueError(problem)
            bolt_request = AsyncBoltRequest(body=text, query=request.query_string,
                                            headers=dict(request.headers))
        except (ValueError, TypeError, AttributeError, KeyError, IndexError,
                RecursionError) as exc:
            # bolt reads fields while building the request (a channel that is a number...)
            log.warning("event=slack_request_refused status=400 reason=malformed body: %s",
                        str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__)
            return web.Response(status=400, text="malformed body")
        return await to_aiohttp_response(await self.app.async_dispatch(bolt_request))


def valid_signature(secret: str, raw: bytes, timestamp: str, signature: str,
                    now: float) -> bool:
    """Slack's v0 signature over raw bytes (even non-UTF-8 ones), at most five minutes old."""
    # at most 12 digits: int() of a 400-digit timestamp overflows float arithmetic below
    if not timestamp.isdigit() or len(timestamp) > 12 or abs(now - int(timestamp)) > 5 * 60:
        return False
    base = b"v0:" + timestamp.encode() + b":" + raw
    expected = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature)


async def not_configured(request: web.Request) -> web.Response:
    """POST /slack/events without SLACK_SIGNING_SECRET: nothing can be verified, so nothing in."""
    return web.json_response({"error": "Slack is not configured: SLACK_SIGNING_SECRET is empty"},
                             status=503)
