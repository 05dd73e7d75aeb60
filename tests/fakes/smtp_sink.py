"""A local SMTP server standing in for the mail relay: records what it is given."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from aiosmtpd.smtp import SMTP, Envelope, Session


@dataclass
class Received:
    sender: str
    recipients: list[str]
    data: bytes


@dataclass
class SmtpSink:
    """Accepts mail, or answers `refuse_with` for the next `refusals` messages."""

    received: list[Received] = field(default_factory=list)
    refusals: int = 0
    refuse_with: str = "451 4.3.0 try again later"
    server: asyncio.Server | None = None

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.refusals > 0:
            self.refusals -= 1
            return self.refuse_with
        data = envelope.original_content or b""
        assert isinstance(data, bytes)
        self.received.append(Received(str(envelope.mail_from), list(envelope.rcpt_tos), data))
        return "250 2.0.0 OK"

    async def start(self) -> int:
        """Listen on a free loopback port; returns it."""
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(
            lambda: SMTP(self, hostname="sink.test", loop=loop), host="127.0.0.1", port=0
        )
        return int(self.server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
