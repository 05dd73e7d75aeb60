"""SMTP limits over real SMTP on 127.0.0.1: long lines, address and recipient limits,
timeouts, connection caps, EHLO and greeting, and the log line of every refusal."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiosmtplib
import pytest

from models.db import Database
from models.tables import Message
from tests.integration.conftest import Clock, Running, make_settings, start_service
from tests.integration.test_email import outage


@asynccontextmanager
async def serving(tmp_path: Path, database_url: str, **overrides: object
                  ) -> AsyncIterator[Running]:
    """The service with these settings, stopped afterwards."""
    running = await start_service(make_settings(tmp_path, database_url, **overrides), Clock())
    try:
        yield running
    finally:
        await running.service.stop()


@pytest.fixture
async def stored_in(db: Database, database_url: str) -> str:
    """A migrated, empty database of each kind (for tests that store mail), as its URL."""
    await db.dispose()
    return database_url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite file for tests about the protocol alone (nothing is stored)."""
    return f"sqlite:///{tmp_path}/protocol.db"


@dataclass
class Dialog:
    """A raw SMTP client: sends exactly the bytes given, reads replies line by line."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    @classmethod
    async def open(cls, port: int, source: str = "127.0.0.1") -> Dialog:
        reader, writer = await asyncio.open_connection("127.0.0.1", port,
                                                       local_addr=(source, 0))
        return cls(reader, writer)

    async def reply(self, timeout: float = 10) -> str:
        """One whole reply (all lines of a multi-line reply joined by newlines)."""
        lines = []
        async with asyncio.timeout(timeout):
            while True:
                line = (await self.reader.readline()).decode()
                if not line:
                    raise ConnectionError(f"closed after {lines!r}")
                lines.append(line.rstrip("\r\n"))
                if line[3:4] != "-":
                    return "\n".join(lines)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def command(self, line: str) -> str:
        await self.send(line.encode() + b"\r\n")
        return await self.reply()

    async def closed_by_server(self, timeout: float = 10) -> bool:
        """Whether the server closes the connection (EOF) within the timeout."""
        try:
            async with asyncio.timeout(timeout):
                rest = await self.reader.read()
        except TimeoutError:
            return False
        except ConnectionError:  # reset, because the client was still sending
            return True
        return rest == b""

    def close(self) -> None:
        self.writer.close()


async def inbound(running: Running) -> list[Message]:
    """The mail we received (our replies are stored as messages too)."""
    return [m for m in await running.messages() if m.direction == "in"]


def message_with_long_lines() -> bytes:
    """The two long lines of the issue's corpus: 1,187 and 28,468 bytes."""
    head = outage().split(b"\r\n\r\n")[0]
    return (head + b"\r\n\r\n" + b"A" * 1185 + b"\r\n" + b"Hallo,\r\n" + b"B" * 28466
            + b"\r\n" + b".dot at the start\r\n")


async def test_long_lines_are_accepted_and_stored_byte_for_byte(stored_in: str,
                                                                tmp_path: Path) -> None:
    raw = message_with_long_lines()
    async with serving(tmp_path, stored_in) as running:
        code, _ = await running.send(raw)
        await running.settle()
        [stored] = await inbound(running)
    assert code == 250
    assert stored.raw == raw
    assert stored.disposition == "ticket"


async def test_bare_lf_message_over_1001_bytes_is_stored_as_sent(stored_in: str,
                                                                 tmp_path: Path) -> None:
    body = (b"From: anna@logistik-nord.de\nTo: support@nettask.de\nSubject: bare LF\n"
            b"Message-ID: <lf-1@logistik-nord.de>\n\n" + b"Zeile mit LF\n" * 200 + b"Ende\r\n")
    async with serving(tmp_path, stored_in) as running:
        smtp = await Dialog.open(running.service.smtp_port)
        await smtp.reply()
        await smtp.command("EHLO client.test")
        await smtp.command("MAIL FROM:<anna@logistik-nord.de>")
        await smtp.command("RCPT TO:<support@nettask.de>")
        await smtp.command("DATA")
        await smtp.send(body + b".\r\n")
        final = await smtp.reply()
        smtp.close()
        await running.settle()
        [stored] = await inbound(running)
    assert len(body) > 1001
    assert final.startswith("250 ")
    assert stored.raw == body
    assert stored.disposition == "ticket"


async def test_a_command_line_over_512_bytes_gets_500(sqlite_url: str, tmp_path: Path) -> None:
    async with serving(tmp_path, sqlite_url) as running:
        smtp = await Dialog.open(running.service.smtp_port)
        await smtp.reply()
        await smtp.command("EHLO client.test")
        too_long = await smtp.command("NOOP " + "x" * 600)
        still_there = await smtp.command("NOOP")
        smtp.close()
    assert too_long.startswith("500 ")
    assert still_there.startswith("250")


async def test_a_sender_address_over_the_rfc_limit_gets_553_at_once(sqlite_url: str,
                                                                    tmp_path: Path) -> None:
    longest = "a" * 240 + "@example.org"  # 252 characters: allowed
    too_long = "a" * 320 + "@example.org"
    async with serving(tmp_path, sqlite_url) as running:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=running.service.smtp_port)
        await client.connect()
        accepted = await client.mail(longest)
        await client.rset()
        with pytest.raises(aiosmtplib.SMTPSenderRefused) as refused:
            await client.mail(too_long)
        client.close()
    assert accepted.code == 250
    assert refused.value.code == 553


async def test_repeated_recipients_are_accepted_once_and_stored_once(stored_in: str,
                                                                     tmp_path: Path) -> None:
    async with serving(tmp_path, stored_in) as running:
        code, _ = await running.send(outage(), to=("support@nettask.de",) * 20)
        stored = await inbound(running)
    assert code == 250
    assert len(stored) == 1
    assert stored[0].recipient == "support@nettask.de"


async def test_recipients_beyond_the_limit_get_452_and_the_mail_is_stored(
    stored_in: str, tmp_path: Path
) -> None:
    async with serving(tmp_path, stored_in, smtp_max_recipients=1) as running:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=running.service.smtp_port)
        await client.connect()
        await client.ehlo()
        await client.mail("anna@logistik-nord.de")
        first = await client.rcpt("support@nettask.de")
        with pytest.raises(aiosmtplib.SMTPRecipientRefused) as over:
            await client.rcpt("hilfe@nettask.de")
        data = await client.data(outage())
        client.close()
        stored = await inbound(running)
    assert first.code == 250
    assert over.value.code == 452
    assert data.code == 250
    assert [m.recipient for m in stored] == ["support@nettask.de"]


async def test_an_idle_client_gets_421_and_is_disconnected(sqlite_url: str,
                                                           tmp_path: Path) -> None:
    async with serving(tmp_path, sqlite_url, smtp_timeout_seconds=1) as running:
        smtp = await Dialog.open(running.service.smtp_port)
        await smtp.reply()
        await smtp.command("EHLO client.test")
        goodbye = await smtp.reply(timeout=5)
        closed = await smtp.closed_by_server(timeout=5)
        smtp.close()
    assert goodbye.startswith("421 4.4.2")
    assert closed


async def send_slowly(smtp: Dialog, *, lines: int, pause: float) -> str:
    """A DATA transfer that sends one line every `pause` seconds; the final reply."""
    await smtp.command("EHLO client.test")
    await smtp.command("MAIL FROM:<anna@logistik-nord.de>")
    await smtp.command("RCPT TO:<support@nettask.de>")
    await smtp.command("DATA")
    await smtp.send(outage())
    for n in range(lines):
        await asyncio.sleep(pause)  # the pace of a slow sender, not a wait for a condition
        await smtp.send(f"Zeile {n}\r\n".encode())
    await smtp.send(b".\r\n")
    return await smtp.reply()


async def test_a_slow_but_active_data_transfer_is_not_cut(stored_in: str,
                                                          tmp_path: Path) -> None:
    async with serving(tmp_path, stored_in, smtp_timeout_seconds=1) as running:
        smtp = await Dialog.open(running.service.smtp_port)
        await smtp.reply()
        final = await send_slowly(smtp, lines=10, pause=0.3)  # 3 s, three times the timeout
        smtp.close()
        stored = await inbound(running)
    assert final.startswith("250 ")
    assert len(stored) == 1


async def keep_sending(smtp: Dialog, *, pause: float) -> None:
    """A slow sender that never ends its message; stops when the server hangs up."""
    for n in range(100):
        await asyncio.sleep(pause)  # the pace of a slow sender, not a wait for a condition
        try:
            await smtp.send(f"Zeile {n}\r\n".encode())
        except ConnectionError:
            return


async def test_a_data_transfer_longer_than_the_maximum_gets_421(sqlite_url: str,
                                                                tmp_path: Path) -> None:
    async with serving(tmp_path, sqlite_url, smtp_timeout_seconds=1,
                       smtp_data_max_seconds=1) as running:
        smtp = await Dialog.open(running.service.smtp_port)
        await smtp.reply()
        await smtp.command("EHLO client.test")
        await smtp.command("MAIL FROM:<anna@logistik-nord.de>")
        await smtp.command("RCPT TO:<support@nettask.de>")
        await smtp.command("DATA")
        sender = asyncio.create_task(keep_sending(smtp, pause=0.3))
        cut = await smtp.reply(timeout=5)  # read while the client is still sending
        sender.cancel()
        closed = await smtp.closed_by_server(timeout=5)
        smtp.close()
        stored = await inbound(running)
    assert cut.startswith("421 ")
    assert closed
    assert stored == []


async def greeting_from(port: int, source: str) -> tuple[Dialog, str]:
    smtp = await Dialog.open(port, source)
    return smtp, await smtp.reply()


async def test_connections_beyond_the_per_client_limit_get_421(
    sqlite_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.intake.mail.smtp_server")
    async with serving(tmp_path, sqlite_url, smtp_max_connections_per_client=1) as running:
        port = running.service.smtp_port
        first, first_greeting = await greeting_from(port, "127.0.0.1")
        second, second_greeting = await greeting_from(port, "127.0.0.1")
        second_closed = await second.closed_by_server(timeout=5)
        other, other_greeting = await greeting_from(port, "127.0.0.2")
        await first.command("QUIT")
        first.close()
        # The place is free once the server has seen the first session end: poll for it.
        async with asyncio.timeout(5):
            while True:
                again, again_greeting = await greeting_from(port, "127.0.0.1")
                again.close()
                if again_greeting.startswith("220"):
                    break
                await asyncio.sleep(0.05)
        second.close()
        other.close()
    assert first_greeting.startswith("220 ")
    assert second_greeting == "421 4.7.0 Too many connections from your address, try again later"
    assert second_closed
    assert other_greeting.startswith("220 ")
    refusals = [r.getMessage() for r in caplog.records if "code=421" in r.getMessage()]
    assert refusals[0].startswith("event=smtp_refused peer=127.0.0.1:")
    assert refusals[0].endswith('reason="4.7.0 Too many connections from your address, '
                                'try again later"')


async def test_sessions_beyond_the_global_limit_get_421(sqlite_url: str, tmp_path: Path) -> None:
    async with serving(tmp_path, sqlite_url, smtp_max_sessions=2) as running:
        port = running.service.smtp_port
        first, first_greeting = await greeting_from(port, "127.0.0.1")
        second, second_greeting = await greeting_from(port, "127.0.0.2")
        third, third_greeting = await greeting_from(port, "127.0.0.3")
        for smtp in (first, second, third):
            smtp.close()
    assert first_greeting.startswith("220 ")
    assert second_greeting.startswith("220 ")
    assert third_greeting.startswith("421 4.3.2 ")


async def test_greeting_names_the_service_not_the_library(sqlite_url: str,
                                                          tmp_path: Path) -> None:
    async with serving(tmp_path, sqlite_url) as running:
        smtp = await Dialog.open(running.service.smtp_port)
        greeting = await smtp.reply()
        smtp.close()
    assert greeting == "220 intake.nettask.local ESMTP NetTask Intake"


async def test_auth_is_not_offered_without_configured_users(sqlite_url: str,
                                                            tmp_path: Path) -> None:
    async with serving(tmp_path, sqlite_url) as running:
        smtp = await Dialog.open(running.service.smtp_port)
        await smtp.reply()
        ehlo = await smtp.command("EHLO client.test")
        auth = await smtp.command("AUTH PLAIN AG14AHMzY3JldA==")
        smtp.close()
    assert "AUTH" not in ehlo
    assert auth.startswith("503 ")


async def test_auth_is_offered_with_configured_users(sqlite_url: str, tmp_path: Path) -> None:
    async with serving(tmp_path, sqlite_url, smtp_auth_users="mx:s3cret") as running:
        smtp = await Dialog.open(running.service.smtp_port)
        await smtp.reply()
        ehlo = await smtp.command("EHLO client.test")
        auth = await smtp.command("AUTH PLAIN AG14AHMzY3JldA==")  # \0mx\0s3cret
        smtp.close()
    assert "250-AUTH LOGIN PLAIN" in ehlo.splitlines()
    assert auth.startswith("235 ")


async def test_every_refusal_is_logged_with_peer_and_reason(
    sqlite_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.intake.mail.smtp_server")
    async with serving(tmp_path, sqlite_url) as running:
        code, _ = await running.send(outage(), to=("sales@nettask.de",))
    [line] = [r.getMessage() for r in caplog.records if "event=smtp_refused" in r.getMessage()]
    assert code == 550
    assert line.startswith("event=smtp_refused peer=127.0.0.1:")
    assert 'reason="5.1.1 <sales@nettask.de>: no such mailbox here"' in line
