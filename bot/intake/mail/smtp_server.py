"""aiosmtpd's SMTP protocol with Postfix-like limits: long lines, timeouts, connection caps."""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, AnyStr

from aiosmtpd.smtp import MISSING, SMTP, syntax

log = logging.getLogger(__name__)

GREETING = "ESMTP NetTask Intake"
# RFC 5321 4.5.3.1.4: a command line is at most 512 octets; SIZE (RFC 1870) adds 26 and
# SMTPUTF8 (RFC 6531) 10 to MAIL. Longer command lines get "500 Command line too long".
COMMAND_LINE_LIMIT = 512
MAIL_LINE_LIMIT = COMMAND_LINE_LIMIT + 26 + 10


def quoted(text: str) -> str:
    """A log value in double quotes, so a key=value line stays one parseable line."""
    return json.dumps(text, ensure_ascii=False)


def peer_text(peer: Any) -> str:
    """host:port of a socket peer, or "unknown"."""
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return "unknown"


@dataclass
class SessionLimits:
    """Concurrent SMTP sessions, in all and per client address (Postfix's connection limits)."""

    per_address: int
    total: int
    by_address: Counter[str] = field(default_factory=Counter)

    @property
    def active(self) -> int:
        """Sessions open now."""
        return sum(self.by_address.values())

    def admit(self, address: str) -> str | None:
        """Count a new session, or return the 421 reply that refuses it."""
        if self.by_address[address] >= self.per_address:
            return "421 4.7.0 Too many connections from your address, try again later"
        if self.active >= self.total:
            return "421 4.3.2 Too many connections, try again later"
        self.by_address[address] += 1
        return None

    def release(self, address: str) -> None:
        """A session admitted for this address has ended."""
        self.by_address[address] -= 1
        if self.by_address[address] <= 0:
            del self.by_address[address]


class IntakeSMTP(SMTP):
    """The SMTP session: the message size is the only limit on DATA lines; every timer resets
    on activity; sessions are capped per client address and in all; refusals are logged."""

    def __init__(self, handler: Any, *, limits: SessionLimits, data_max_seconds: float,
                 offer_auth: bool, **kwargs: Any) -> None:
        super().__init__(handler, ident=GREETING, **kwargs)
        self.limits = limits
        self.data_max_seconds = data_max_seconds
        self.offer_auth = offer_auth
        # The library keeps these on the class and grows MAIL's limit on every EHLO: fix them.
        self.command_size_limits = defaultdict(lambda: COMMAND_LINE_LIMIT,
                                               {"MAIL": MAIL_LINE_LIMIT})
        self._client_address: str | None = None
        self._last_read = 0.0  # loop time of the last read during DATA
        self._refused = False

    # -- connection limits ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Admit the session within the limits, or answer 421 and close (no session starts)."""
        if self.transport is None and not self._refused:  # not the STARTTLS re-entry
            peer = transport.get_extra_info("peername")
            address = str(peer[0]) if isinstance(peer, tuple) else "unknown"
            refusal = self.limits.admit(address)
            if refusal is not None:
                self._refused = True
                log.info("event=smtp_refused peer=%s code=421 reason=%s", peer_text(peer),
                         quoted(refusal[4:]))
                assert isinstance(transport, asyncio.WriteTransport)
                transport.write(refusal.encode() + b"\r\n")
                transport.close()
                return
            self._client_address = address
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        """Release the session's place; a refused connection never had a session."""
        if self._refused:
            return
        if self._client_address is not None:
            self.limits.release(self._client_address)
            self._client_address = None
        super().connection_lost(error)

    def eof_received(self) -> bool | None:
        """A refused connection has no session to cancel."""
        if self._refused:
            return False
        return super().eof_received()

    # -- timeouts ---------------------------------------------------------------------------

    def _timeout_cb(self) -> None:
        """Idle too long: say 421 (Postfix's words) before closing, so the client knows why.

        During DATA each read only notes the time (cheaper than re-arming a timer per line);
        the timer then re-arms itself for the rest of the idle period."""
        assert self.session is not None
        idle = self.loop.time() - self._last_read
        if idle < self._timeout_duration:
            self._reset_timeout(self._timeout_duration - idle)
            return
        log.info("event=smtp_refused peer=%s code=421 reason=%s", peer_text(self.session.peer),
                 quoted("idle timeout"))
        transport = self.transport
        if isinstance(transport, asyncio.WriteTransport) and not transport.is_closing():
            transport.write(f"421 4.4.2 {self.hostname} Error: timeout exceeded\r\n".encode())
        if transport is not None:
            transport.close()  # connection_lost() then ends the session, as the library does

    # -- replies ----------------------------------------------------------------------------

    async def push(self, status: AnyStr) -> None:
        """Send a reply; every 4xx/5xx reply is logged as one event=smtp_refused line."""
        text = status.decode("utf-8", "replace") if isinstance(status, bytes) else status
        if text[:1] in ("4", "5"):
            assert self.session is not None
            log.info("event=smtp_refused peer=%s code=%s reason=%s",
                     peer_text(self.session.peer), text[:3], quoted(text[4:]))
        await super().push(status)

    @syntax("EHLO hostname")
    async def smtp_EHLO(self, hostname: str) -> None:
        """The EHLO reply; AUTH only when logins are configured (and TLS is up if required)."""
        if not hostname:
            await self.push("501 Syntax: EHLO hostname")
            return
        self.envelope = self._create_envelope()
        assert self.session is not None
        self.session.extended_smtp = True
        self.session.host_name = hostname
        lines = [self.hostname]
        if self.data_size_limit:
            lines.append(f"SIZE {self.data_size_limit}")
        lines.append("8BITMIME")
        if self.enable_SMTPUTF8:
            lines.append("SMTPUTF8")
        if self.tls_context and not self._tls_protocol:
            lines.append("STARTTLS")
        if self.offer_auth and (not self._auth_require_tls or self._tls_protocol):
            lines.append("AUTH " + " ".join(sorted(self._auth_methods)))
        lines.append("HELP")
        for line in lines[:-1]:
            await self.push(f"250-{line}")
        await self.push(f"250 {lines[-1]}")

    async def smtp_AUTH(self, arg: str) -> None:
        """AUTH without configured logins is not a feature of this server (Postfix's reply)."""
        if not self.offer_auth:
            await self.push("503 5.5.1 Error: authentication not enabled")
            return
        await super().smtp_AUTH(arg)

    # -- DATA -------------------------------------------------------------------------------

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        """Read the message with no line-length limit (only the size limit); store; reply."""
        if await self.check_helo_needed():
            return
        if await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 5.5.1 Error: need RCPT command")
            return
        if arg:
            await self.push("501 5.5.4 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        content = await self.read_data()
        if content is None:
            return
        self.envelope.content = content
        self.envelope.original_content = content
        self._reset_timeout()  # storing gets a full timeout of its own
        status = await self._call_handler_hook("DATA")
        self.envelope = self._create_envelope()
        await self.push("250 OK" if status is MISSING else status)

    async def read_data(self) -> bytes | None:
        """The message as received (dot-stuffing undone), or None after a refusal was sent.

        Lines of any length and bare LF are kept byte for byte. The end is CRLF.CRLF only:
        taking LF.LF as the end too is what SMTP smuggling exploits.
        """
        limit = self.data_size_limit
        started = self.loop.time()
        body = bytearray()
        size = 0
        too_big = False
        line_start = True
        while True:
            try:
                chunk = await self._reader.readuntil(b"\r\n")
            except asyncio.LimitOverrunError as overrun:
                # A line longer than the reader's buffer limit: take it piece by piece.
                chunk = await self._reader.read(overrun.consumed)
            self._last_read = self.loop.time()  # activity: the idle period starts again
            if line_start and chunk == b".\r\n":
                break
            if self._last_read - started > self.data_max_seconds:
                await self.push("421 4.4.2 Error: DATA transfer took too long")
                self.envelope = self._create_envelope()
                assert self.transport is not None
                self.transport.close()
                return None
            size += len(chunk)
            if limit and size > limit:
                too_big = True
                body.clear()  # keep reading to the end, hold nothing
            if not too_big:
                body += chunk[1:] if line_start and chunk.startswith(b".") else chunk
            line_start = chunk.endswith(b"\r\n")
        if too_big:
            await self.push("552 5.3.4 Error: message size exceeds fixed maximum message size")
            self.envelope = self._create_envelope()
            return None
        return bytes(body)
