"""`intake-bot db backup` while mail is being received over SMTP, and `db restore` into a fresh
database: every ticket stored before the backup began is there; on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import text
from sqlmodel import col, select

from models import migrate
from models.db import Database
from models.tables import Message, Ticket
from tests.integration.conftest import Clock, Running, make_settings, start_service
from tests.integration.test_email import PROBLEMS
from tests.integration.test_service import cli


def request(n: int) -> bytes:
    sender = f"kunde{n}@example.org"
    return (f"From: Kunde {n} <{sender}>\r\nTo: support@nettask.de\r\nSubject: Anfrage {n}\r\n"
            f"Message-ID: <b-{n}@example.org>\r\n\r\nHallo,\r\n{PROBLEMS[n % len(PROBLEMS)]}\r\n"
            f"Vorgang {n}.\r\n").encode()


async def numbers(db: Database) -> set[int]:
    async with db.reader() as session:
        return {int(n) for n in (await session.exec(select(Ticket.number))).all()
                if n is not None}


class Feeder:
    """Sends one new request after another over SMTP until stopped."""

    def __init__(self, running: Running) -> None:
        self.running = running
        self.sent = 0
        self.stop = asyncio.Event()

    async def run(self) -> None:
        while not self.stop.is_set():
            code, _ = await self.running.send(request(self.sent),
                                              sender=f"kunde{self.sent}@example.org")
            assert code == 250
            self.sent += 1


async def wipe(database_url: str) -> None:
    db = Database(database_url)
    async with db.engine.begin() as connection:
        await connection.execute(text("DROP SCHEMA public CASCADE"))
        await connection.execute(text("CREATE SCHEMA public"))
    await db.dispose()


async def test_backup_under_load_restores_every_ticket(db: Database, database_url: str,
                                                       tmp_path: Path) -> None:
    await db.dispose()
    settings = make_settings(tmp_path, database_url, flood_max_per_customer=10_000)
    running = await start_service(settings, Clock())
    feeder = Feeder(running)
    feeding = asyncio.create_task(feeder.run())
    backup = tmp_path / "intake.backup"
    try:
        async with asyncio.timeout(30):
            while len(await numbers(running.db)) < 10:
                await asyncio.sleep(0.02)
        before = await numbers(running.db)
        sent_before = feeder.sent
        done = await asyncio.to_thread(cli, {"DATABASE_URL": database_url}, "db", "backup",
                                       str(backup))
        sent_during = feeder.sent - sent_before
        async with asyncio.timeout(30):
            while feeder.sent < sent_before + sent_during + 5:  # still taking mail afterwards
                await asyncio.sleep(0.02)
        feeder.stop.set()
        await feeding
        await running.settle()
        at_end = await numbers(running.db)
    finally:
        feeder.stop.set()
        await running.service.stop()
    assert done.returncode == 0, done.stderr
    assert "backed up" in done.stdout
    assert sent_during >= 1  # mail went on arriving while the backup ran

    if running.db.backend == "sqlite":
        target = f"sqlite:///{tmp_path}/restored/intake.db"
    else:
        target = database_url
        await wipe(database_url)  # the fresh database: the same one, emptied
    restored = await asyncio.to_thread(cli, {"DATABASE_URL": target}, "db", "restore",
                                       str(backup))
    assert restored.returncode == 0, restored.stderr
    fresh = Database(target)
    try:
        found = await numbers(fresh)
        async with fresh.reader() as session:
            opened_by = set((await session.exec(select(Message.ticket_number).where(
                Message.direction == "in", col(Message.ticket_number).is_not(None)))).all())
        revision = await migrate.current_revision(fresh)
    finally:
        await fresh.dispose()
    assert before - found == set()  # every ticket stored before the backup began is there
    assert found - at_end == set()  # and nothing that never was
    assert found - opened_by == set()  # each with the mail that opened it
    assert revision == migrate.head_revision()
    again = await asyncio.to_thread(cli, {"DATABASE_URL": target}, "db", "restore", str(backup))
    assert again.returncode == 1
    assert "is not empty: restore only into a fresh database" in again.stderr


async def test_backup_refuses_an_existing_file(db: Database, database_url: str,
                                               tmp_path: Path) -> None:
    await db.dispose()
    existing = tmp_path / "taken.backup"
    existing.write_bytes(b"keep me")
    done = await asyncio.to_thread(cli, {"DATABASE_URL": database_url}, "db", "backup",
                                   str(existing))
    assert done.returncode == 1
    assert "exists: name a new file" in done.stderr
    assert existing.read_bytes() == b"keep me"
