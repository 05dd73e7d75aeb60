"""The SMTP server (aiosmtpd) in the service's own event loop: store first, then say 250."""

from __future__ import annotations

import asyncio
import hmac
import logging
import ssl
from collections.abc import Callable
from datetime import datetime
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from bot.config import Settings
from bot.intake.mime import content_digest, message_id_of
from models.db import Database
from models.messages import store_inbound

log = logging.getLogger(__name__)


class SupportHandler:
    """aiosmtpd handler: support recipients only; the raw mail is committed before 250."""

    def __init__(self, *, db: Database, addresses: tuple[str, ...],
                 on_stored: Callable[[int], None], clock: Callable[[], datetime]) -> None:
        self.db = db
        self.addresses = addresses
        self.on_stored = on_stored
        self.clock = clock

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        if address.strip().lower() not in self.addresses:
            log.info("event=rcpt_refused rcpt=%s peer=%s", address, session.peer)
            return f"550 5.1.1 <{address}>: no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        external_id = message_id_of(raw)
        sender = str(envelope.mail_from or "")
        try:
            async with self.db.session() as db_session:
                stored = await store_inbound(
                    db_session, channel="email", external_id=external_id,
                    digest=content_digest(raw, envelope_sender=sender), raw=raw, sender=sender,
                    recipient=",".join(envelope.rcpt_tos), now=self.clock(),
                )
        except Exception:
            log.exception("event=mail_store_failed message_id=%s", external_id)
            return "451 4.3.0 Could not store the message; please try again later"
        if stored is None:
            log.info("event=mail_duplicate message_id=%s", external_id)
            return "250 2.0.0 OK: already have this message"
        log.info("event=mail_accepted message=%s message_id=%s from=%s bytes=%d", stored,
                 external_id, envelope.mail_from, len(raw))
        self.on_stored(stored)
        return f"250 2.0.0 OK: queued as {stored}"


class Authenticator:
    """SMTP AUTH against the configured user list (constant-time compare)."""

    def __init__(self, users: dict[str, str]) -> None:
        self.users = users

    def __call__(self, server: SMTP, session: Session, envelope: Envelope, mechanism: str,
                 auth_data: Any) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login = auth_data.login.decode("utf-8", "replace")
        expected = self.users.get(login)
        ok = expected is not None and hmac.compare_digest(
            expected.encode(), auth_data.password
        )
        log.info("event=smtp_auth login=%s ok=%s", login, ok)
        return AuthResult(success=ok, handled=False)


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    """A server TLS context for STARTTLS when a certificate and key are configured."""
    if not settings.smtp_tls_cert or not settings.smtp_tls_key:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(settings.smtp_tls_cert, settings.smtp_tls_key)
    return context


async def start_smtp(settings: Settings, handler: SupportHandler) -> asyncio.Server:
    """Listen on SMTP_HOST:SMTP_PORT in the running loop."""
    loop = asyncio.get_running_loop()
    context = tls_context(settings)
    users = settings.auth_users

    def factory() -> SMTP:
        return SMTP(
            handler,
            hostname=settings.smtp_hostname,
            data_size_limit=settings.max_message_bytes,
            enable_SMTPUTF8=True,
            decode_data=False,
            tls_context=context,
            require_starttls=settings.smtp_require_starttls and context is not None,
            authenticator=Authenticator(users) if users else None,
            auth_required=settings.smtp_auth_required and bool(users),
            auth_require_tls=context is not None,
            loop=loop,
        )

    return await loop.create_server(factory, host=settings.smtp_host, port=settings.smtp_port)
