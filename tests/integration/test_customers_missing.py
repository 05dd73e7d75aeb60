"""A customer missing from a re-import is named, and deactivated on request: its mail is then an
unknown sender's, its open tickets stay (issue 21 item 10), on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import bot
from bot.app import build
from models.db import Database
from models.tables import Ticket
from tests.integration.conftest import Clock, Running, make_settings, start_service
from tests.integration.test_concurrent_duplicates import incidents_used
from tests.integration.test_email import outage
from tests.integration.test_service import cli

DEMO = (Path(bot.__file__).parent / "demo_customers.csv").read_text(encoding="utf-8")
STADTWERKE = "leitstelle@stadtwerke-demo.de"  # D-1004, deHOSTED Professional


def without_stadtwerke(tmp_path: Path) -> Path:
    path = tmp_path / "customers.csv"
    lines = [line for line in DEMO.splitlines() if not line.startswith("D-1004,")]
    assert len(lines) == len(DEMO.splitlines()) - 1
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def stadtwerke_mail(n: int) -> bytes:
    return outage(sender=STADTWERKE, message_id=f"<sw-{n}@stadtwerke-demo.de>",
                  subject=f"Störung {n}", body=f"Leitstand {n}: alle Server sind ausgefallen.")


async def open_ticket_of_stadtwerke(database_url: str, tmp_path: Path, db: Database) -> Ticket:
    await db.dispose()
    running = await start_service(make_settings(tmp_path / "a", database_url), Clock())
    try:
        await running.send(stadtwerke_mail(1), sender=STADTWERKE)
        await running.settle()
        [ticket] = await running.tickets()
    finally:
        await running.service.stop()
    assert (ticket.status, ticket.included) == ("open", True)
    return ticket


async def test_a_reimport_names_the_customers_missing_from_the_file_and_keeps_them(
        db: Database, database_url: str, tmp_path: Path) -> None:
    await open_ticket_of_stadtwerke(database_url, tmp_path, db)
    result = cli({"DATABASE_URL": database_url}, "customers", "import",
                 str(without_stadtwerke(tmp_path)))
    assert result.returncode == 0, result.stderr
    assert "imported 8 customers (0 new, 8 updated)" in result.stdout
    assert "not in the file, kept with their plans: D-1004 (Stadtwerke Demo GmbH)" \
        in result.stdout
    listed = cli({"DATABASE_URL": database_url}, "customers", "list")
    assert "dehosted:professional" in listed.stdout


async def test_deactivated_customers_mail_is_an_unknown_senders_and_its_ticket_stays(
        db: Database, database_url: str, tmp_path: Path) -> None:
    before = await open_ticket_of_stadtwerke(database_url, tmp_path, db)
    result = cli({"DATABASE_URL": database_url}, "customers", "import",
                 str(without_stadtwerke(tmp_path)), "--deactivate-missing")
    assert result.returncode == 0, result.stderr
    assert "deactivated 1 customers not in the file: D-1004 (Stadtwerke Demo GmbH)" \
        in result.stdout
    settings = make_settings(tmp_path / "b", database_url)
    service = build(settings, clock=Clock())  # no demo import: the store as the CLI left it
    await service.start()
    running = Running(service=service, clock=Clock(), outbox=settings.outbox_dir)
    try:
        await running.send(stadtwerke_mail(2), sender=STADTWERKE)
        await running.settle()
        old, new = await running.tickets()
        assert await incidents_used(running.db) == 1  # only the first ticket's
    finally:
        await service.stop()
    assert (new.customer_id, new.plan, new.included) == (None, None, False)
    assert "unknown_sender" in new.flags
    assert (old.number, old.status, old.customer_id) == (before.number, "open",
                                                         before.customer_id)
    again = cli({"DATABASE_URL": database_url}, "customers", "import",
                str(without_stadtwerke(tmp_path)), "--deactivate-missing")
    assert "deactivated" not in again.stdout  # once deactivated, no longer missing
