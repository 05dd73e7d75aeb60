"""Outbound through an SMTP relay with retries; STARTTLS and AUTH; sender trust."""

from __future__ import annotations

import asyncio
import logging
import ssl
import subprocess
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import aiosmtplib
import pytest
from sqlmodel import select

from models.db import Database
from models.tables import Message
from tests.fakes.smtp_sink import SmtpSink
from tests.integration.conftest import Clock, Running, make_settings, start_service
from tests.integration.test_email import outage


@pytest.fixture
async def sink() -> SmtpSink:
    return SmtpSink()


async def start_with(tmp_path: Path, database_url: str, db: Database, **overrides: object
                     ) -> Running:
    await db.dispose()
    return await start_service(make_settings(tmp_path, database_url, **overrides), Clock())


async def wait_for_outbound(running: Running, done: Callable[[Message], bool]) -> Message:
    for _ in range(300):
        async with running.db.session() as session:
            row = (await session.exec(select(Message).where(Message.direction == "out"))).first()
        if row is not None and done(row):
            return row
        await asyncio.sleep(0.02)
    raise AssertionError("the outbound message never reached the expected state")


async def outbound(running: Running) -> Message:
    async with running.db.session() as session:
        rows = (await session.exec(select(Message).where(Message.direction == "out"))).all()
    assert len(rows) == 1
    return rows[0]


async def test_replies_go_through_the_relay(
    tmp_path: Path, database_url: str, db: Database, sink: SmtpSink
) -> None:
    port = await sink.start()
    running = await start_with(tmp_path, database_url, db,
                               mail_relay_url=f"smtp://127.0.0.1:{port}")
    try:
        await running.send(outage())
        await running.settle()
    finally:
        await running.service.stop()
        await sink.stop()
    [delivered] = sink.received
    assert delivered.sender == "support@nettask.de"
    assert delivered.recipients == ["anna@logistik-nord.de"]
    assert b"Auto-Submitted: auto-replied" in delivered.data
    assert not (tmp_path / "outbox" / "new").exists() or not any(
        (tmp_path / "outbox" / "new").iterdir())


async def test_a_relay_that_defers_is_retried_with_backoff(
    tmp_path: Path, database_url: str, db: Database, sink: SmtpSink
) -> None:
    sink.refusals = 1
    port = await sink.start()
    running = await start_with(tmp_path, database_url, db, relay_backoff_seconds=60,
                               mail_relay_url=f"smtp://127.0.0.1:{port}")
    try:
        await running.send(outage())
        row = await wait_for_outbound(running, lambda m: m.attempts >= 1)
        assert row.disposition == "queued" and row.attempts == 1 and "451" in (row.reason or "")
        assert row.next_attempt_at == running.clock.now + timedelta(seconds=60)
        # a delivery round now, at the same clock: nothing is sent early
        await running.service.deliverer.run_once()  # type: ignore[union-attr]
        assert (await outbound(running)).attempts == 1 and sink.received == []
        running.clock.now += timedelta(seconds=61)
        row = await wait_for_outbound(running, lambda m: m.disposition != "queued")
        assert row.disposition == "sent" and row.attempts == 2
    finally:
        await running.service.stop()
        await sink.stop()
    assert len(sink.received) == 1


async def test_a_permanent_refusal_fails_at_once(
    tmp_path: Path, database_url: str, db: Database, sink: SmtpSink
) -> None:
    sink.refusals, sink.refuse_with = 1, "550 5.1.1 mailbox unknown"
    port = await sink.start()
    running = await start_with(tmp_path, database_url, db,
                               mail_relay_url=f"smtp://127.0.0.1:{port}")
    try:
        await running.send(outage())
        await running.settle()
        row = await outbound(running)
    finally:
        await running.service.stop()
        await sink.stop()
    assert row.disposition == "failed" and row.attempts == 1 and "550" in (row.reason or "")


def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    return cert, key


async def test_starttls_and_auth_when_configured(
    tmp_path: Path, database_url: str, db: Database
) -> None:
    cert, key = self_signed(tmp_path)
    running = await start_with(tmp_path, database_url, db, smtp_tls_cert=cert, smtp_tls_key=key,
                               smtp_require_starttls=True, smtp_auth_required=True,
                               smtp_auth_users="mx:s3cret")
    port = running.service.smtp_port
    client_tls = ssl.create_default_context()
    client_tls.check_hostname, client_tls.verify_mode = False, ssl.CERT_NONE
    try:
        plain = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False)
        await plain.connect()
        with pytest.raises(aiosmtplib.SMTPResponseException) as refused:
            await plain.mail("mx@nettask.de")
        assert refused.value.code == 530  # STARTTLS first
        plain.close()

        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False,
                                 tls_context=client_tls)
        await client.connect()
        await client.starttls()
        with pytest.raises(aiosmtplib.SMTPAuthenticationError):
            await client.login("mx", "wrong")
        await client.login("mx", "s3cret")
        errors, _ = await client.sendmail("mx@nettask.de", ["support@nettask.de"], outage())
        assert errors == {}
        client.close()
        await running.settle()
        assert len(await running.tickets()) == 1
    finally:
        await running.service.stop()


async def test_unverified_senders_lose_their_plan(
    tmp_path: Path, database_url: str, db: Database
) -> None:
    running = await start_with(tmp_path, database_url, db, trusted_authserv_id="mx.nettask.de")
    passed = "Authentication-Results: mx.nettask.de; dmarc=pass header.from=logistik-nord.de\r\n"
    forged = "Authentication-Results: mx.nettask.de; dmarc=fail header.from=logistik-nord.de\r\n"
    try:
        # our MTA prepends its results at the top of the header
        await running.send(passed.encode() + outage(message_id="<t-1@logistik-nord.de>",
                                                    signed=False))
        await running.settle()  # one after the other, so that ticket numbers follow
        await running.send(forged.encode() + outage(message_id="<t-2@logistik-nord.de>",
                                                    signed=False,
                                                    body="Der Drucker druckt nicht mehr."))
        await running.settle()
        good, bad = await running.tickets()
    finally:
        await running.service.stop()
    assert good.plan == "standard"
    assert good.included is True
    assert bad.status == "unverified"
    assert bad.plan is None
    assert bad.included is False
    assert bad.billable is False
    assert "sender_unverified" in bad.flags.split(",")


async def test_the_relay_is_retried_for_as_long_as_it_defers_never_given_up(
    db: Database, sink: SmtpSink, caplog: pytest.LogCaptureFixture
) -> None:
    from bot.intake.mail.outbound import Deliverer, SmtpRelay

    caplog.set_level(logging.INFO)
    clock = Clock()
    sink.refusals = 20  # deferred for hours
    port = await sink.start()
    async with db.session() as session:
        session.add(Message(direction="out", channel="email", external_id="<r1@nettask.de>",
                            sender="support@nettask.de", recipient="anna@logistik-nord.de",
                            subject="Re", text="hi", raw=b"Subject: Re\r\n\r\nhi\r\n",
                            disposition="queued", created_at=clock.now,
                            next_attempt_at=clock.now))
    out = Deliverer(db=db, transport=SmtpRelay(f"smtp://127.0.0.1:{port}",
                                               sender="support@nettask.de"),
                    clock=clock, backoff_seconds=30, backoff_max_seconds=600)
    delays = []
    try:
        for _ in range(20):
            assert await out.run_once() == 0
            row = await outbound_in(db)
            assert row.next_attempt_at is not None
            delays.append((row.next_attempt_at - clock.now).total_seconds())
            clock.now = row.next_attempt_at
        assert await out.run_once() == 1
    finally:
        await sink.stop()
    row = await outbound_in(db)
    assert (row.disposition, row.attempts) == ("sent", 21)
    assert delays[:6] == [30, 60, 120, 240, 480, 600]
    assert max(delays) == 600
    events = [r.getMessage().split()[0] for r in caplog.records
              if r.getMessage().startswith("event=outbox_") or
              (r.levelno >= logging.WARNING and "mail_delivery" in r.getMessage())]
    assert events == ["event=mail_delivery", "event=outbox_paused", "event=outbox_resumed"]


async def outbound_in(db: Database) -> Message:
    async with db.session() as session:
        [row] = (await session.exec(select(Message).where(Message.direction == "out"))).all()
    return row


async def test_a_maildir_that_cannot_be_written_is_retried_never_failed(
    db: Database, tmp_path: Path
) -> None:
    from bot.intake.mail.outbound import Deliverer, MaildirOutbox

    clock = Clock()
    maildir = MaildirOutbox(tmp_path / "outbox")
    (tmp_path / "outbox" / "tmp").rmdir()
    (tmp_path / "outbox" / "tmp").write_text("")  # writing fails, as on a full/read-only disk
    async with db.session() as session:
        session.add(Message(direction="out", channel="email", external_id="<m1@nettask.de>",
                            sender="support@nettask.de", recipient="anna@logistik-nord.de",
                            subject="Re", text="hi", raw=b"Subject: Re\r\n\r\nhi\r\n",
                            disposition="queued", created_at=clock.now,
                            next_attempt_at=clock.now))
    out = Deliverer(db=db, transport=maildir, clock=clock, backoff_seconds=30)
    for _ in range(12):
        assert await out.run_once() == 0
        clock.now += timedelta(hours=1)
    row = await outbound_in(db)
    assert (row.disposition, row.attempts) == ("queued", 12)
    (tmp_path / "outbox" / "tmp").unlink()
    (tmp_path / "outbox" / "tmp").mkdir()
    assert await out.run_once() == 1
    assert len(list((tmp_path / "outbox" / "new").iterdir())) == 1
