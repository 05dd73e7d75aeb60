"""The reminder loop in a running service, on real time with windows of seconds: each reminder
fires once at its time, an answer cancels the rest, a severity change reschedules, and the
status note and the managers' alert reach the mail outbox."""

from __future__ import annotations

import email
import email.policy
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import col, select

from bot.app import Service, utc_now
from bot.cases import deadlines
from bot.domain import Severity
from models.db import Database
from models.tables import Message, Reminder, Ticket
from tests.integration.reminder_kit import (
    is_pending,
    open_ticket_now,
    poll,
    seconds_service,
    times_posted,
)

ON_TIME = timedelta(seconds=1)  # the aim: within a second of its time

pytestmark = pytest.mark.slow  # waits out reminder windows of seconds


@pytest.fixture
async def service(db: Database, database_url: str, tmp_path: Path) -> AsyncIterator[Service]:
    await db.dispose()
    async with seconds_service(tmp_path, database_url) as running:
        yield running


async def reminders_of(service: Service, number: int | None) -> list[Reminder]:
    async with service.db.reader() as session:
        rows = await session.exec(select(Reminder).where(col(Reminder.ticket_number) == number)
                                  .order_by(col(Reminder.due_at), col(Reminder.id)))
        return list(rows.all())


async def all_done(service: Service, number: int | None) -> bool:
    return not any(is_pending(r) for r in await reminders_of(service, number))


@pytest.mark.alone  # a second of punctuality, measured on the wall clock
async def test_each_reminder_fires_once_within_a_second_of_its_time(
    service: Service, tmp_path: Path
) -> None:
    ticket = await open_ticket_now(service.db, service.engine, utc_now())
    await poll(lambda: all_done(service, ticket.number), 20, "every reminder sent")
    rows = await reminders_of(service, ticket.number)
    assert sorted((r.kind, r.audience) for r in rows) == [
        ("agents_50", "agents"), ("agents_75", "agents"), ("agents_90", "agents"),
        ("breach", "agents"), ("breach", "managers"), ("managers_75", "managers"),
        ("status_note", "customer")]
    delays = [r.sent_at - r.due_at for r in rows if r.sent_at is not None]
    assert len(delays) == len(rows)
    assert min(delays) >= timedelta(0)  # never early
    assert max(delays) < ON_TIME
    assert [r.late for r in rows] == [False] * len(rows)


async def test_slack_bound_reminders_are_posted_once_each(service: Service,
                                                          tmp_path: Path) -> None:
    ticket = await open_ticket_now(service.db, service.engine, utc_now())
    await poll(lambda: all_done(service, ticket.number), 20, "every reminder sent")
    slack_bound = {r.id for r in await reminders_of(service, ticket.number)
                   if r.audience != "customer"}
    assert times_posted(tmp_path / "slack.jsonl") == {i: 1 for i in slack_bound}


async def test_the_customer_and_the_managers_get_mail(service: Service) -> None:
    ticket = await open_ticket_now(service.db, service.engine, utc_now())
    await poll(lambda: all_done(service, ticket.number), 20, "every reminder sent")
    async with service.db.reader() as session:
        out = list((await session.exec(select(Message).where(
            col(Message.ticket_number) == ticket.number, col(Message.direction) == "out")
            .order_by(col(Message.id)))).all())
    assert sorted(m.recipient for m in out) == [
        "it@stadtwerke-demo.de", "leitung@nettask.de", "leitung@nettask.de"]
    note = next(m for m in out if m.recipient == "it@stadtwerke-demo.de")
    parsed = email.message_from_bytes(note.raw or b"", policy=email.policy.default)
    assert parsed["Subject"] == f"[NT#{ticket.number}] Re: Server down"
    assert "noch nicht in der zugesagten Zeit" in note.text  # the customer's language


async def test_an_agents_answer_cancels_the_rest(service: Service, tmp_path: Path) -> None:
    ticket = await open_ticket_now(service.db, service.engine, utc_now())
    assert ticket.number is not None

    async def first_sent() -> bool:
        return any(r.sent_at for r in await reminders_of(service, ticket.number))

    await poll(first_sent, 10, "the 50 % reminder")
    async with service.db.session() as session:
        await deadlines.record_first_answer(session, number=ticket.number, now=utc_now(),
                                            actor="agent anna")
    # a witness ticket opened now breaches after the first one would have: wait for it
    witness = await open_ticket_now(service.db, service.engine, utc_now(), subject="witness")
    await poll(lambda: all_done(service, witness.number), 20, "the witness's reminders")
    rows = await reminders_of(service, ticket.number)
    assert [r.kind for r in rows if r.sent_at is not None] == ["agents_50"]
    assert {r.reason for r in rows if r.sent_at is None} == {"answered"}


@pytest.mark.alone  # a second of punctuality, measured on the wall clock
async def test_a_severity_change_reschedules_the_running_loop(service: Service) -> None:
    opened = utc_now()
    ticket = await open_ticket_now(service.db, service.engine, opened, severity=Severity.C)
    async with service.db.session() as session:
        row = await session.get(Ticket, ticket.number)
        assert row is not None
        row.severity = Severity.A.value  # 7.2 s instead of 21.6 s
        await deadlines.reschedule(session, engine=service.engine, ticket=row, now=utc_now())
    await poll(lambda: all_done(service, ticket.number), 20, "every reminder sent")
    rows = await reminders_of(service, ticket.number)
    breach = next(r for r in rows if r.kind == "breach" and r.sent_at is not None)
    assert breach.sent_at is not None
    assert breach.sent_at - opened < timedelta(seconds=7.2) + ON_TIME
