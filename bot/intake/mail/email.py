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
from bot.intake.mail.mime import content_digest, message_id_of
from bot.intake.mail.smtp_server import IntakeSMTP, SessionLimits
from models.db import Database
from models.group import GroupCommit
from models.messages import store_inbound

log = logging.getLogger(__name__)

# RFC 5321 4.5.3.1.3: a path is at most 256 octets including the angle brackets. The 64-octet
# local-part limit is not enforced: real VERP and SRS senders exceed it, and Postfix accepts them.
MAX_ADDRESS_CHARS = 254
# models.tables.Message.recipient holds the de-duplicated recipients, comma-joined.
RECIPIENT_FIELD_CHARS = 320


class SupportHandler:
    """aiosmtpd handler: support recipients only; the raw mail is committed before 250."""

    def __init__(self, *, db: Database, addresses: tuple[str, ...],
                 on_stored: Callable[[int], None], clock: Callable[[], datetime],
                 max_recipients: int = 50) -> None:
        self.db = db
        self.stores = GroupCommit(db)  # a burst of mail shares commits
        self.addresses = addresses
        self.on_stored = on_stored
        self.clock = clock
        self.max_recipients = max_recipients

    async def handle_MAIL(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, mail_options: list[str]) -> str:
        """A sender address longer than RFC 5321 allows can never be stored: 553 at once."""
        if len(address) > MAX_ADDRESS_CHARS:
            return (f"553 5.1.7 Sender address too long ({len(address)} characters, "
                    f"at most {MAX_ADDRESS_CHARS})")
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        """Support mailboxes only, each once; 452 beyond the recipient limit (RFC 5321)."""
        if len(address) > MAX_ADDRESS_CHARS:
            return f"553 5.1.3 Recipient address too long (at most {MAX_ADDRESS_CHARS})"
        mailbox = address.strip().lower()
        if mailbox not in self.addresses:
            return f"550 5.1.1 <{address}>: no such mailbox here"
        if mailbox in (known.lower() for known in envelope.rcpt_tos):
            return "250 2.1.5 OK (duplicate recipient, delivered once)"
        joined = ",".join([*envelope.rcpt_tos, address])
        if len(envelope.rcpt_tos) >= self.max_recipients or len(joined) > RECIPIENT_FIELD_CHARS:
            return "452 4.5.3 Too many recipients"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        external_id = message_id_of(raw)
        sender = str(envelope.mail_from or "")
        try:
            digest, recipient, now = (content_digest(raw, envelope_sender=sender),
                                      ",".join(envelope.rcpt_tos), self.clock())
            stored = await self.stores.run(lambda db_session: store_inbound(
                db_session, channel="email", external_id=external_id, digest=digest, raw=raw,
                sender=sender, recipient=recipient, now=now))
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
    limits = SessionLimits(per_address=settings.smtp_max_connections_per_client,
                           total=settings.smtp_max_sessions)

    def factory() -> SMTP:
        return IntakeSMTP(
            handler,
            limits=limits,
            data_max_seconds=settings.smtp_data_max_seconds,
            offer_auth=bool(users),
            timeout=settings.smtp_timeout_seconds,
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
