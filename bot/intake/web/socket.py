"""The web chat's WebSocket, `GET /chat/ws`: origin check, hello/welcome, store before ack.

Thin: frames are parsed in bot/intake/web/frames.py, rows written by models/webchat.py. Every
refusal is one `event=webchat_...` log line and a defined answer (HTTP 403, an `error` frame,
or a close code).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from aiohttp import WSMsgType, web
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.config import Settings
from bot.intake.web.codes import Asked, CodeConfig, ask_code, try_code
from bot.intake.web.frames import MAX_FRAME_BYTES, BadFrame, Frame, error, item_body, parse
from bot.intake.web.hub import Conn, Hub
from bot.intake.web.identity import IdentityInvalid, check
from bot.intake.web.newcomers import NewcomerLimit
from bot.intake.web.verify import accept_identity
from models.db import Database
from models.group import GroupCommit
from models.tables import WebItem, WebVisitor
from models.webchat import (
    create_visitor,
    history,
    ins_since,
    item_by_client_id,
    mark_seen,
    store_in_item,
    token_hash,
    touch_visitor,
    visitor_by_token,
)
from models.webchat_out import label_shown

log = logging.getLogger(__name__)

HELLO_SECONDS = 10.0
CLOSE_NO_HELLO = 4400
CLOSE_STORE_FAILED = 1011  # the widget reconnects and resends what was not acked
CLOSE_TOO_MANY_VISITORS = 4429  # this address made WEBCHAT_NEW_VISITORS_PER_HOUR already
# Frames above the protocol's 16 KiB get a `too_large` answer; only past this hard cap does
# aiohttp drop the connection (1009) instead of reading the frame into memory.
HARD_MAX_FRAME_BYTES = 256 * 1024


@dataclass(frozen=True)
class ChatConfig:
    """The web chat's limits and trust settings (the WEBCHAT_* settings)."""

    origins: frozenset[str]
    max_chars: int = 4000
    visitor_per_minute: int = 20
    address_per_hour: int = 5
    code_minutes: int = 10
    new_visitors_per_hour: int = 30
    identity_secret: bytes = b""
    identity_max_seconds: int = 86_400
    hello_seconds: float = HELLO_SECONDS
    from_address: str = "support@nettask.de"  # the code mails' sender
    from_name: str = "NetTask Support"

    @property
    def codes(self) -> CodeConfig:
        """How codes are made and mailed."""
        return CodeConfig(from_address=self.from_address, from_name=self.from_name,
                          minutes=self.code_minutes, per_hour=self.address_per_hour,
                          secret=self.identity_secret)

    @classmethod
    def from_settings(cls, settings: Settings) -> ChatConfig:
        """The chat's part of the settings."""
        return cls(origins=settings.webchat_origin_set, max_chars=settings.webchat_max_chars,
                   visitor_per_minute=settings.webchat_visitor_per_minute,
                   address_per_hour=settings.webchat_address_per_hour,
                   code_minutes=settings.webchat_code_minutes,
                   new_visitors_per_hour=settings.webchat_new_visitors_per_hour,
                   identity_secret=settings.webchat_identity_secret.get_secret_value()
                   .encode("utf-8"),
                   identity_max_seconds=settings.webchat_identity_max_seconds,
                   from_address=settings.support_mailboxes[0],
                   from_name=settings.mail_from_name)


def _visitor_view(visitor: WebVisitor) -> dict[str, Any]:
    verified = bool(visitor.verified_by)
    return {"verified": verified, "name": visitor.name, "email": visitor.email,
            "asks_email": not verified and not visitor.email}


class ChatSocket:
    """The `/chat/ws` handler: one instance per service, one `handle` call per connection."""

    def __init__(self, *, db: Database, config: ChatConfig, clock: Callable[[], datetime],
                 on_stored: Callable[[int], None], hub: Hub | None = None,
                 on_mail_queued: Callable[[], None] = lambda: None) -> None:
        self.db = db
        self.config = config
        self.clock = clock
        self.on_stored = on_stored
        self.on_mail_queued = on_mail_queued  # the mail outbox's wake-up
        self.stores = GroupCommit(db)
        self.hub = hub or Hub(db)
        self.newcomers = NewcomerLimit(config.new_visitors_per_hour)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Refuse a foreign or missing Origin with 403, else speak the protocol until closed."""
        origin = request.headers.get("Origin", "")
        if origin.rstrip("/").lower() not in self.config.origins:
            log.warning("event=webchat_origin_refused origin=%r peer=%s", origin[:200],
                        request.remote)
            return web.Response(status=403, text="origin not allowed\n")
        ws = web.WebSocketResponse(max_msg_size=HARD_MAX_FRAME_BYTES, heartbeat=30)
        await ws.prepare(request)
        conn = await self._hello(ws, request.remote or "")
        if conn is None:
            return ws
        try:
            async for message in ws:
                if message.type is WSMsgType.TEXT:
                    await self._frame(conn, message.data)
                elif message.type is WSMsgType.BINARY:
                    log.info("event=webchat_bad_frame visitor=%s error=binary", conn.visitor_id)
                    await conn.send(error("bad_frame", conn.language))
        except StoreFailed:
            await ws.close(code=CLOSE_STORE_FAILED, message=b"store failed")
        except ConnectionError:  # the visitor went away while we answered: nothing to do
            log.info("event=webchat_gone visitor=%s", conn.visitor_id)
        finally:
            self.hub.leave(conn)
        return ws

    async def _hello(self, ws: web.WebSocketResponse, address: str) -> Conn | None:
        """The first frame must be a `hello` within 10 seconds: the visitor, and `welcome`."""
        try:
            first = await ws.receive(timeout=self.config.hello_seconds)
        except TimeoutError:
            first = None
        frame: Frame | None = None
        if first is not None and first.type is WSMsgType.TEXT \
                and len(first.data) <= MAX_FRAME_BYTES:
            try:
                frame = parse(first.data)
            except BadFrame:
                frame = None
        if frame is None or frame.type != "hello":
            log.info("event=webchat_hello_missing got=%s",
                     "nothing" if first is None else first.type.name)
            await ws.close(code=CLOSE_NO_HELLO, message=b"hello expected")
            return None
        now = self.clock()
        token = frame.fields["visitor"]
        language = frame.fields["lang"]
        if not await self._known(token) and not self.newcomers.allow(address, now):
            log.warning("event=webchat_rate_limited what=new_visitor address=%s limit=%s/hour",
                        address, self.config.new_visitors_per_hour)
            await ws.send_json(error("rate_limited", language))
            await ws.close(code=CLOSE_TOO_MANY_VISITORS, message=b"too many new visitors")
            return None
        async with self.db.session() as session:
            visitor = await visitor_by_token(session, token_hash(token)) if token else None
            if visitor is None:
                token = secrets.token_urlsafe(32)
                visitor = await create_visitor(session, token_sha=token_hash(token),
                                               language=language, now=now)
            else:
                await touch_visitor(session, visitor_id=visitor.id or 0, language=language,
                                    now=now)
            assert visitor.id is not None
            refused = await self.prove(session, visitor, frame.fields["identity"], now)
            # joined before the history is read: an answer committed in between is pushed
            # once the welcome is out, and never shown twice
            conn = Conn(ws=ws, visitor_id=visitor.id, language=language)
            self.hub.join(conn)
            items = await history(session, visitor_id=visitor.id)
            view = _visitor_view(visitor)
        conn.shown.update(item.id for item in items if item.id is not None)
        await conn.send({"type": "welcome", "visitor": token, **view,
                         "history": [item_body(item) for item in items]})
        if refused:
            await conn.send(error("identity_invalid", language))
        await conn.open()
        log.info("event=webchat_hello visitor=%s verified=%s history=%s", visitor.id,
                 view["verified"], len(items))
        return conn

    async def _known(self, token: str | None) -> bool:
        """Whether a `hello`'s token names a visitor: anything else makes a new one (a made-up
        token too, so it counts against the address's new visitors)."""
        if not token:
            return False
        async with self.db.reader() as session:
            return await visitor_by_token(session, token_hash(token)) is not None

    async def prove(self, session: AsyncSession, visitor: WebVisitor, identity: str | None,
                    now: datetime) -> bool:
        """Check a `hello`'s identity; True when one was given and refused (the visitor stays
        as it was: a forged identity proves nothing, it also takes nothing away)."""
        if identity is None:
            return False
        try:
            claims = check(identity, secret=self.config.identity_secret, now=now,
                           max_seconds=self.config.identity_max_seconds)
            reason = await accept_identity(session, visitor=visitor, claims=claims, now=now)
        except IdentityInvalid as exc:
            reason = str(exc)
        if reason is None:
            log.info("event=webchat_identity_verified visitor=%s customer=%s", visitor.id,
                     visitor.customer_id)
            return False
        log.warning("event=webchat_identity_refused visitor=%s reason=%r", visitor.id, reason)
        return True

    async def _frame(self, conn: Conn, data: str) -> None:
        """One frame after the hello: a defined answer for each, the socket stays usable."""
        if len(data.encode("utf-8")) > MAX_FRAME_BYTES:
            log.info("event=webchat_too_large visitor=%s bytes=%s", conn.visitor_id,
                     len(data.encode("utf-8")))
            await conn.send(error("too_large", conn.language))
            return
        try:
            frame = parse(data)
        except BadFrame as exc:
            log.info("event=webchat_bad_frame visitor=%s error=%r", conn.visitor_id, str(exc))
            await conn.send(error("bad_frame", conn.language))
            return
        if frame.type in ("message", "choice"):
            await self._store(conn, frame, data.encode("utf-8"))
        elif frame.type == "seen":
            async with self.db.session() as session:
                await mark_seen(session, visitor_id=conn.visitor_id, upto=frame.fields["upto"],
                                now=self.clock())
        elif frame.type == "ping":
            await conn.send({"type": "pong"})
        elif frame.type in ("email", "code"):
            await self.verify_frame(conn, frame)
        else:  # a second hello
            log.info("event=webchat_bad_frame visitor=%s error='hello again'", conn.visitor_id)
            await conn.send(error("bad_frame", conn.language))

    async def verify_frame(self, conn: Conn, frame: Frame) -> None:
        """An `email` frame (`email_ok` whoever's address it is) or a `code` frame."""
        now = self.clock()
        async with self.db.session() as session:
            visitor = await session.get(WebVisitor, conn.visitor_id)
            assert visitor is not None
            if frame.type == "email":
                asked = await ask_code(session, visitor=visitor, address=frame.text("address"),
                                       now=now, config=self.config.codes)
            else:
                tried = await try_code(session, visitor=visitor, code=frame.text("code"),
                                       now=now, config=self.config.codes)
            name, email = visitor.name, visitor.email
        if frame.type == "email":
            # the log may say whether a code went out; the visitor's answer may not
            log.info("event=webchat_email visitor=%s outcome=%s", conn.visitor_id, asked.value)
            if asked is Asked.LIMITED:
                log.warning("event=webchat_rate_limited visitor=%s what=email limit=%s/hour",
                            conn.visitor_id, self.config.address_per_hour)
                await conn.send(error("rate_limited", conn.language))
                return
            if asked is Asked.MAILED:
                self.on_mail_queued()
            await conn.send({"type": "email_ok", "address": frame.text("address")})
        elif tried.outcome == "verified":
            log.info("event=webchat_code_verified visitor=%s", conn.visitor_id)
            await conn.send({"type": "verified", "email": email, "name": name})
        elif tried.outcome == "wrong":
            log.warning("event=webchat_code_wrong visitor=%s tries_left=%s", conn.visitor_id,
                        tried.tries_left)
            await conn.send({"type": "code_wrong", "tries_left": tried.tries_left})
        else:
            log.info("event=webchat_code_expired visitor=%s", conn.visitor_id)
            await conn.send({"type": "code_expired"})

    async def _store(self, conn: Conn, frame: Frame, raw: bytes) -> None:
        """Store a message or choice, commit, then ack; a resent client id gets the same ack."""
        client_id = frame.text("client_id")
        text = frame.fields.get("text", "")
        if len(text) > self.config.max_chars:
            log.info("event=webchat_too_large visitor=%s client_id=%s chars=%s",
                     conn.visitor_id, client_id, len(text))
            await conn.send(error("too_large", conn.language, client_id))
            return
        now = self.clock()

        async def store(session: AsyncSession) -> tuple[WebItem | None, bool]:
            item = await item_by_client_id(session, visitor_id=conn.visitor_id,
                                           client_id=client_id)
            if item is not None:
                return item, False
            since = now - timedelta(minutes=1)
            if await ins_since(session, visitor_id=conn.visitor_id,
                               since=since) >= self.config.visitor_per_minute:
                return None, False
            visitor = await session.get(WebVisitor, conn.visitor_id)
            assert visitor is not None
            shown = text
            if frame.type == "choice":  # the history shows what was clicked, on any device
                shown = await label_shown(session, visitor_id=conn.visitor_id,
                                          action=frame.text("action"), value=frame.text("value"))
            return await store_in_item(
                session, visitor=visitor, client_id=client_id,
                kind="choice" if frame.type == "choice" else "text", text=shown,
                action=frame.fields.get("action", ""), value=frame.fields.get("value", ""),
                raw=raw, now=now)

        try:
            # a burst of messages shares one commit; each ack waits for the commit it was in
            item, new = await self.stores.run(store)
        except Exception as exc:
            log.exception("event=webchat_store_failed visitor=%s client_id=%s",
                          conn.visitor_id, client_id)
            raise StoreFailed from exc
        if item is None:
            log.warning("event=webchat_rate_limited visitor=%s client_id=%s limit=%s/minute",
                        conn.visitor_id, client_id, self.config.visitor_per_minute)
            await conn.send(error("rate_limited", conn.language, client_id))
            return
        log.info("event=webchat_stored visitor=%s client_id=%s item=%s message=%s new=%s",
                 conn.visitor_id, client_id, item.id, item.message_id, new)
        try:
            await conn.send({"type": "ack", "client_id": client_id, "id": item.id})
        finally:  # a visitor gone before its ack still has its message processed now
            if new and item.message_id is not None:
                self.on_stored(item.message_id)


class StoreFailed(RuntimeError):
    """The store refused a message: no ack; the socket is closed so the widget resends."""

