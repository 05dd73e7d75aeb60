"""Kill -9 the server while several clients deliver 200 mails; after a restart every mail that
got 250 is stored exactly once and answered exactly once."""

from __future__ import annotations

import email
import email.policy
import signal
import smtplib
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path

import pytest
from sqlmodel import select

from models.db import Database
from models.tables import Message, Ticket
from tests.conftest import child_cwd, child_env
from tests.integration.test_service import free_port

# SIGKILLs its server mid-stream and restarts it on the same ports: alone, so no other test
# takes the ports meanwhile and the 60-mail kill point is not a neighbour's CPU race.
pytestmark = [pytest.mark.alone, pytest.mark.slow]

CLIENTS, PER_CLIENT = 4, 50


def mail(client: int, n: int) -> tuple[str, bytes]:
    message_id = f"<crash-{client}-{n}@logistik-nord.de>"
    raw = (f"From: user{client}x{n}@logistik-nord.de\r\nTo: support@nettask.de\r\n"
           f"Subject: Server {client}/{n} antwortet nicht\r\nMessage-ID: {message_id}\r\n\r\n"
           "Hallo, unser Server antwortet nicht mehr.\r\n").encode()
    return message_id, raw


def start(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as handle:  # the child keeps its own copy of the descriptor
        return subprocess.Popen([sys.executable, "-m", "bot", "serve"], env=env, cwd=child_cwd(),
                                stdout=handle, stderr=handle)


def wait_healthy(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("the service did not come up")


class Client(threading.Thread):
    """Sends its mails one by one, like an MTA: what got no 250 is retried later."""

    def __init__(self, number: int, port: int) -> None:
        super().__init__(daemon=True)
        self.number, self.port = number, port
        self.accepted: list[str] = []
        self.unsent = [mail(number, n) for n in range(PER_CLIENT)]

    def run(self) -> None:
        deadline = time.monotonic() + 90
        while self.unsent and time.monotonic() < deadline:
            message_id, raw = self.unsent[0]
            try:
                with smtplib.SMTP("127.0.0.1", self.port, timeout=10) as smtp:
                    smtp.sendmail("mta@logistik-nord.de", ["support@nettask.de"], raw)
                self.accepted.append(message_id)
                self.unsent.pop(0)
            except (OSError, smtplib.SMTPException):
                time.sleep(0.05)  # the server is down: try again, as a real MTA would


async def test_sigkill_during_delivery_loses_and_duplicates_nothing(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    smtp_port, http_port = free_port(), free_port()
    env = {**child_env({}), "DATABASE_URL": database_url, "SMTP_PORT": str(smtp_port),
           "HTTP_PORT": str(http_port), "OUTBOX_DIR": str(tmp_path / "outbox"),
           "CLASSIFIER": "keywords",
           # 200 different users of one customer in a minute: a crash test, not a flood test
           "FLOOD_MAX_PER_CUSTOMER": "1000"}
    subprocess.run([sys.executable, "-m", "bot", "customers", "import", "--demo"], env=env,
                   cwd=child_cwd(), check=True, capture_output=True)
    log = tmp_path / "serve.log"
    server = start(env, log)
    wait_healthy(http_port)
    clients = [Client(n, smtp_port) for n in range(CLIENTS)]
    for client in clients:
        client.start()
    while sum(len(c.accepted) for c in clients) < 60:  # kill mid-stream
        time.sleep(0.005)
    server.send_signal(signal.SIGKILL)
    server.wait()
    accepted_before_kill = sum(len(c.accepted) for c in clients)
    time.sleep(0.3)
    server = start(env, log)
    try:
        for client in clients:
            client.join(timeout=120)
        assert all(not c.unsent for c in clients), "clients could not deliver everything"
        all_ids = [i for c in clients for i in c.accepted]
        assert len(all_ids) == CLIENTS * PER_CLIENT
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            async with db.session() as session:
                rows = (await session.exec(select(Message))).all()
            busy = [m for m in rows if m.disposition in ("pending", "queued")]
            if not busy and len([m for m in rows if m.direction == "out"]) >= len(all_ids):
                break
            time.sleep(0.2)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    async with db.session() as session:
        messages = (await session.exec(select(Message))).all()
        tickets = (await session.exec(select(Ticket))).all()
    inbound = Counter(m.external_id for m in messages if m.direction == "in")
    assert accepted_before_kill >= 60
    assert set(inbound) == set(all_ids) and set(inbound.values()) == {1}  # stored once each
    assert all(m.disposition == "ticket" for m in messages if m.direction == "in")
    assert len(tickets) == len(all_ids)
    replies = Counter(
        email.message_from_bytes(p.read_bytes(), policy=email.policy.default)["In-Reply-To"]
        for p in (tmp_path / "outbox" / "new").iterdir()
    )
    assert set(replies) == set(all_ids) and set(replies.values()) == {1}  # answered once each
