"""`intake-bot people export/erase`: what is stored about one person, and its erasure, on
SQLite and PostgreSQL; the erased person is searched for in the whole database afterwards."""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import timedelta
from pathlib import Path

from sqlalchemy import text
from sqlmodel import col, select

from bot.cli.sample_mail import sign_demo
from models.db import Database
from models.tables import AuditEvent, CallbackBooking, Customer, CustomerEmail, Message, Ticket
from tests.integration.conftest import (
    MONDAY_10,
    Clock,
    Running,
    Slack,
    make_settings,
    start_service,
)
from tests.integration.test_service import cli

ANNA = "anna.kowalski@logistik-nord.de"
BERND = "bernd.ulrich@logistik-nord.de"
PHONE = "+49 40 7771 2345"
# what only Anna's own data holds: her address, her name, her words, her phone number
ANNA_TRACES = [ANNA.encode(), b"Anna Kowalski", b"Lagerhalle Ost", PHONE.encode()]


def mail(sender: str, name: str, n: int, body: str, subject: str, extra: str = "") -> bytes:
    raw = (f"From: {name} <{sender}>\r\nTo: support@nettask.de\r\n{extra}Subject: {subject}\r\n"
           f"Message-ID: <p-{n}@logistik-nord.de>\r\nDate: Mon, 23 Nov 2026 10:00:00 +0100\r\n"
           "Content-Type: text/plain; charset=utf-8\r\n\r\n"
           f"Hallo,\r\n{body}\r\n\r\nViele Gruesse\r\n{name}\r\n").encode()
    return sign_demo(raw)


async def two_people(running: Running) -> tuple[int, int]:
    """Anna's ticket (with a callback and her address on the customer), and her colleague
    Bernd's, whose mail copies her."""
    anna = mail(ANNA, "Anna Kowalski", 1, "der Scanner in der Lagerhalle Ost ist ausgefallen, "
                "niemand kann mehr Pakete buchen.", "Scanner Lagerhalle Ost ausgefallen")
    bernd = mail(BERND, "Bernd Ulrich", 2, "seit heute Morgen ist der Fileserver weg, niemand "
                 "kommt an seine Dateien.", "Fileserver nicht erreichbar", f"Cc: {ANNA}\r\n")
    assert (await running.send(anna, sender=ANNA))[0] == 250
    assert (await running.send(bernd, sender=BERND))[0] == 250
    await running.settle()
    by_person = {t.requester: t for t in await running.tickets()}
    first, second = by_person[ANNA], by_person[BERND]
    assert first.number is not None and second.number is not None
    async with running.db.session() as session:
        customer = (await session.exec(select(Customer).where(Customer.number == "D-1003"))).one()
        assert customer.id is not None
        session.add(CustomerEmail(customer_id=customer.id, kind="address", value=ANNA))
        session.add(CallbackBooking(
            ticket_number=first.number, customer_id=customer.id, product="dehosted",
            usage_month="2026-11", slot_start=MONDAY_10 + timedelta(days=1),
            slot_end=MONDAY_10 + timedelta(days=1, minutes=30), phone=PHONE,
            created_at=MONDAY_10))
    return first.number, second.number


def env(database_url: str) -> dict[str, str]:
    return {"DATABASE_URL": database_url}


async def test_export_holds_everything_about_the_person_and_nothing_of_others(
        running: Running, database_url: str) -> None:
    anna, bernd = await two_people(running)
    done = await asyncio.to_thread(cli, env(database_url), "people", "export", ANNA.upper())
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["person"] == ANNA
    assert [t["number"] for t in data["tickets"]] == [anna]
    assert data["customer_addresses"] == [{"customer": "D-1003", "address": ANNA}]
    assert [c["phone"] for c in data["callbacks"]] == [PHONE]
    mine = [m for m in data["messages"] if m["direction"] == "in"]
    assert [m["from"] for m in mine] == [ANNA]
    assert "Lagerhalle Ost" in mine[0]["text"]
    assert b"Anna Kowalski" in base64.b64decode(mine[0]["raw_base64"])
    assert [m["to"] for m in data["messages"] if m["direction"] == "out"] == [ANNA]
    assert {e["ticket"] for e in data["audit"]} == {anna}
    assert {"created"} <= {e["action"] for e in data["audit"]}
    assert [n["ticket"] for n in data["named_in"]] == [bernd]  # the Cc, not Bernd's words
    assert "Fileserver" not in done.stdout


async def test_export_of_something_that_is_no_address_exits_1(running: Running,
                                                               database_url: str) -> None:
    done = await asyncio.to_thread(cli, env(database_url), "people", "export", "not-a-person")
    assert done.returncode == 1
    assert "neither an e-mail address nor a Slack user id" in done.stderr


async def snapshot(db: Database, number: int) -> tuple[Ticket, list[Message]]:
    async with db.reader() as session:
        ticket = await session.get(Ticket, number)
        assert ticket is not None
        rows = await session.exec(select(Message).where(Message.ticket_number == number)
                                  .order_by(col(Message.id)))
        return ticket, list(rows.all())


async def found_in_postgres(db: Database, needle: str) -> list[str]:
    """Every text, varchar and bytea column of every table that holds `needle` (any case)."""
    hits = []
    async with db.engine.connect() as connection:
        columns = (await connection.execute(text(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'public' AND data_type IN "
            "('text', 'character varying', 'bytea')"))).all()
        for table, column, kind in columns:
            value = (f'encode("{column}", \'escape\')' if kind == "bytea"
                     else f'"{column}"::text')
            count = (await connection.execute(text(
                f'SELECT count(*) FROM "{table}" WHERE lower({value}) LIKE :like'),
                {"like": f"%{needle.lower()}%"})).scalar_one()
            if count:
                hits.append(f"{table}.{column}")
    assert columns  # the search looked somewhere
    return hits


def found_in_sqlite(path: Path) -> list[bytes]:
    """Which of Anna's traces are in the database file or its WAL, in any letter case."""
    data = b"".join(p.read_bytes().lower() for p in path.parent.glob(path.name + "*"))
    return [trace for trace in ANNA_TRACES if trace.lower() in data]


async def found(db: Database, database_url: str) -> list[str]:
    if db.backend == "sqlite":
        return [t.decode() for t in found_in_sqlite(Path(database_url.split("///", 1)[1]))]
    hits = []
    for trace in ANNA_TRACES:
        hits += [f"{trace.decode()} in {where}"
                 for where in await found_in_postgres(db, trace.decode())]
    return hits


async def test_erase_leaves_no_trace_keeps_billing_and_the_colleague(
        db: Database, database_url: str, tmp_path: Path) -> None:
    await db.dispose()
    running = await start_service(make_settings(tmp_path, database_url), Clock())
    try:
        anna, bernd = await two_people(running)
        anna_before, _ = await snapshot(running.db, anna)
        bernd_before, bernd_messages = await snapshot(running.db, bernd)
    finally:
        await running.service.stop()
    assert await found(db, database_url) != []  # the search finds her before the erasure

    refused = cli(env(database_url), "people", "erase", ANNA, "--agent", "dpo")
    assert refused.returncode == 1
    assert f"has tickets still open (NT#{anna})" in refused.stderr
    assert (await snapshot(db, anna))[0].requester == ANNA  # nothing was erased

    done = cli(env(database_url), "people", "erase", ANNA, "--agent", "dpo", "--close-open")
    assert done.returncode == 0, done.stderr
    assert f"closed first: NT#{anna}" in done.stdout
    tombstone = done.stdout.split("erased as ", 1)[1].split(":", 1)[0]
    assert tombstone.startswith("erased-")

    assert await found(db, database_url) == []
    anna_after, anna_messages = await snapshot(db, anna)
    kept = ("number", "customer_id", "product", "plan", "price_cents", "billable", "included",
            "consent", "consent_at", "created_at", "usage_month")
    assert {k: getattr(anna_after, k) for k in kept} == {k: getattr(anna_before, k) for k in kept}
    assert anna_after.requester == tombstone
    assert anna_after.status == "closed"
    assert all(m.raw is None and m.text == "[erased]" for m in anna_messages)
    assert [m.sender for m in anna_messages if m.direction == "in"] == [tombstone]
    bernd_after, bernd_after_messages = await snapshot(db, bernd)
    assert bernd_after == bernd_before
    assert [(m.sender, m.text, m.subject) for m in bernd_after_messages] == \
        [(m.sender, m.text, m.subject) for m in bernd_messages]
    inbound_before = next(m for m in bernd_messages if m.direction == "in")
    inbound_after = next(m for m in bernd_after_messages if m.direction == "in")
    assert inbound_before.raw is not None
    assert inbound_after.raw == inbound_before.raw.replace(ANNA.encode(), tombstone.encode())
    async with db.reader() as session:
        erasure = (await session.exec(select(AuditEvent).where(
            AuditEvent.action == "person_erased"))).one()
        marks = (await session.exec(select(AuditEvent.ticket_number).where(
            AuditEvent.action == "personal_data_erased"))).all()
    assert erasure.actor == "agent dpo"
    assert json.loads(erasure.detail)["person"] == tombstone
    assert json.loads(erasure.detail)["tickets"] == [anna]
    assert list(marks) == [anna]
    again = cli(env(database_url), "people", "export", ANNA)
    assert json.loads(again.stdout)["tickets"] == []


# ---- a Slack user ---------------------------------------------------------------------------

LOGISTIK = {"channel": "C0LOGNORD", "team": "T0LOGNORD"}  # D-1003 in bot/demo_customers.csv


async def test_a_slack_user_is_exported_and_erased_and_a_colleague_kept(
        slack: Slack, database_url: str) -> None:
    sender = slack.sender
    await sender.event(sender.message("Der Scanner in der Lagerhalle Ost ist ausgefallen.",
                                      **LOGISTIK))
    await sender.event(sender.message("Der Fileserver ist weg, <@U0ANNA> weiss Bescheid.",
                                      ts="1763900500.000100", user="U0BERND", **LOGISTIK))
    await slack.processed()
    by_root = {t.requester: t.number for t in await slack.running.tickets()}
    anna, bernd = by_root["C0LOGNORD:1763900000.000100"], by_root["C0LOGNORD:1763900500.000100"]
    assert anna is not None and bernd is not None
    db = slack.running.db
    bernd_before, _ = await snapshot(db, bernd)

    exported = await asyncio.to_thread(cli, env(database_url), "people", "export", "U0ANNA")
    assert exported.returncode == 0, exported.stderr
    data = json.loads(exported.stdout)
    assert [t["number"] for t in data["tickets"]] == [anna]
    assert [m["text"] for m in data["messages"] if m["direction"] == "in"] == \
        ["Der Scanner in der Lagerhalle Ost ist ausgefallen."]
    assert [n["ticket"] for n in data["named_in"]] == [bernd]

    done = await asyncio.to_thread(cli, env(database_url), "people", "erase", "U0ANNA",
                                   "--agent", "dpo", "--close-open")
    assert done.returncode == 0, done.stderr
    tombstone = done.stdout.split("erased as ", 1)[1].split(":", 1)[0]
    _, anna_rows = await snapshot(db, anna)
    assert [(m.sender, m.text, m.raw) for m in anna_rows if m.direction == "in"] == \
        [(tombstone, "[erased]", None)]
    bernd_after, bernd_rows = await snapshot(db, bernd)
    assert bernd_after.subject == bernd_before.subject.replace("U0ANNA", tombstone)
    assert bernd_after.model_dump(exclude={"subject"}) == \
        bernd_before.model_dump(exclude={"subject"})
    [bernd_in] = [m for m in bernd_rows if m.direction == "in"]
    assert bernd_in.sender == "U0BERND"
    assert bernd_in.text == f"Der Fileserver ist weg, <@{tombstone}> weiss Bescheid."
    if db.backend == "postgresql":
        assert await found_in_postgres(db, "U0ANNA") == []
        assert await found_in_postgres(db, "Lagerhalle Ost") == []
