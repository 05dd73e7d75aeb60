"""Reminder rows on SQLite and PostgreSQL: written with the ticket, cancelled or re-planned with
it, paused while waiting on the customer, and claimed exactly once by concurrent claimers."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import col, select

from bot.cases import deadlines
from bot.cases.service import NewTicket, open_ticket, record_consent
from bot.domain import Channel, Department, Language, Severity, TicketStatus
from bot.sla.engine import Engine
from models import reminders as repo
from models.db import Database
from models.tables import Reminder, Ticket
from tests.integration.test_store import add_customer

BERLIN = ZoneInfo("Europe/Berlin")
MONDAY_10 = datetime(2026, 11, 23, 10, tzinfo=BERLIN)


def trouble(severity: Severity = Severity.C) -> NewTicket:
    # English: a business-hours clock whatever the plan
    return NewTicket(channel=Channel.EMAIL, subject="Mail server down", product="dehosted",
                     department=Department.TROUBLE, severity=severity, language=Language.EN,
                     requester="boss@k-1.example")


async def open_one(db: Database, engine: Engine, plan: str = "standard",
                   severity: Severity = Severity.C, now: datetime = MONDAY_10) -> int:
    customer = await add_customer(db, "K-1", {"dehosted": plan})
    async with db.session() as session:
        ticket, _ = await open_ticket(session, engine=engine, customer=customer,
                                      new=trouble(severity), now=now)
    assert ticket.number is not None
    return ticket.number


async def rows(db: Database) -> list[Reminder]:
    async with db.session() as session:
        found = await session.exec(select(Reminder).order_by(col(Reminder.due_at),
                                                             col(Reminder.id)))
        return list(found.all())


def pending(reminders: list[Reminder]) -> list[tuple[str, str, str]]:
    return [(r.kind, r.audience, r.due_at.astimezone(BERLIN).strftime("%a %H:%M"))
            for r in reminders if r.sent_at is None and r.cancelled_at is None]


async def test_opening_a_ticket_stores_its_reminders(db: Database, engine: Engine) -> None:
    await open_one(db, engine)  # Monday 10:00, severity C, 8 h of open time: due 18:00
    assert pending(await rows(db)) == [
        ("agents_50", "agents", "Mon 14:00"), ("agents_75", "agents", "Mon 16:00"),
        ("agents_90", "agents", "Mon 17:12"), ("breach", "agents", "Mon 18:00"),
        ("breach", "managers", "Mon 18:00"), ("status_note", "customer", "Mon 18:00")]


async def test_a_failed_transaction_leaves_no_reminders(db: Database, engine: Engine) -> None:
    customer = await add_customer(db, "K-1", {"dehosted": "standard"})
    with pytest.raises(RuntimeError):
        async with db.session() as session:
            await open_ticket(session, engine=engine, customer=customer, new=trouble(),
                              now=MONDAY_10)
            raise RuntimeError("crash before commit")
    assert await rows(db) == []


async def test_a_billable_ticket_gets_reminders_from_the_consent_on(
    db: Database, engine: Engine
) -> None:
    number = await open_one(db, engine, plan="basic")  # Basic: every incident is billed
    assert await rows(db) == []
    async with db.session() as session:
        await record_consent(session, engine=engine, number=number, consent=True,
                             now=MONDAY_10 + timedelta(hours=1), actor="customer")
    assert pending(await rows(db))[0] == ("agents_50", "agents", "Mon 15:00")


async def test_the_first_answer_cancels_every_pending_reminder(
    db: Database, engine: Engine
) -> None:
    number = await open_one(db, engine)
    async with db.session() as session:
        ticket = await deadlines.record_first_answer(session, number=number,
                                                     now=MONDAY_10 + timedelta(hours=1),
                                                     actor="agent anna")
    assert ticket.status == TicketStatus.ANSWERED
    assert {r.reason for r in await rows(db)} == {"answered"}
    assert pending(await rows(db)) == []


async def test_closing_cancels_every_pending_reminder(db: Database, engine: Engine) -> None:
    number = await open_one(db, engine)
    async with db.session() as session:
        await deadlines.close(session, number=number, now=MONDAY_10, actor="agent anna")
    assert {r.reason for r in await rows(db)} == {"closed"}


async def test_a_severity_change_reschedules(db: Database, engine: Engine) -> None:
    number = await open_one(db, engine, plan="standard", severity=Severity.C)
    async with db.session() as session:
        ticket = await session.get(Ticket, number)
        assert ticket is not None
        ticket.severity = Severity.B.value  # 4 h of open time from Monday 10:00
        await deadlines.reschedule(session, engine=engine, ticket=ticket,
                                   now=MONDAY_10 + timedelta(minutes=30))
    reminders = await rows(db)
    assert pending(reminders) == [
        ("agents_50", "agents", "Mon 12:00"), ("agents_75", "agents", "Mon 13:00"),
        ("agents_90", "agents", "Mon 13:36"), ("breach", "agents", "Mon 14:00"),
        ("breach", "managers", "Mon 14:00"), ("status_note", "customer", "Mon 14:00")]
    assert {r.reason for r in reminders if r.cancelled_at is not None} == {"rescheduled"}


async def test_a_severity_change_updates_the_deadline(db: Database, engine: Engine) -> None:
    number = await open_one(db, engine, plan="standard", severity=Severity.C)
    async with db.session() as session:
        ticket = await session.get(Ticket, number)
        assert ticket is not None
        ticket.severity = Severity.B.value
        await deadlines.reschedule(session, engine=engine, ticket=ticket, now=MONDAY_10)
    async with db.session() as session:
        stored = await session.get(Ticket, number)
    assert stored is not None and stored.due_at == datetime(2026, 11, 23, 13, tzinfo=UTC)


async def test_waiting_on_the_customer_pauses_the_clock(db: Database, engine: Engine) -> None:
    number = await open_one(db, engine)
    async with db.session() as session:
        await deadlines.wait_for_customer(session, number=number,
                                          now=MONDAY_10 + timedelta(hours=1), actor="agent")
    assert pending(await rows(db)) == []
    async with db.session() as session:  # 90 minutes of open time waited
        ticket = await deadlines.resume(session, engine=engine, number=number,
                                        now=MONDAY_10 + timedelta(hours=2, minutes=30),
                                        actor="customer")
    assert ticket.due_at == datetime(2026, 11, 24, 8, 30, tzinfo=UTC)  # Tue 09:30 Berlin
    assert pending(await rows(db))[0] == ("agents_50", "agents", "Mon 15:30")


async def test_claimed_rows_are_not_claimed_again(db: Database, engine: Engine) -> None:
    await open_one(db, engine)
    later = MONDAY_10 + timedelta(hours=7)  # 17:00: the 50 % and 75 % points are due
    async with db.session() as session:
        first = await repo.claim_due(session, now=later, owner="a")
    async with db.session() as session:
        second = await repo.claim_due(session, now=later, owner="b")
    assert sorted(r.kind for r in first) == ["agents_50", "agents_75"]
    assert second == []


async def test_a_late_claim_is_marked_late(db: Database, engine: Engine) -> None:
    await open_one(db, engine)
    async with db.session() as session:
        claimed = await repo.claim_due(session, now=MONDAY_10 + timedelta(hours=4, seconds=2),
                                       owner="a", late_after=timedelta(seconds=5))
    assert [r.late for r in claimed] == [False]
    async with db.session() as session:
        claimed = await repo.claim_due(session, now=MONDAY_10 + timedelta(hours=7),
                                       owner="a", late_after=timedelta(seconds=5))
    assert [r.late for r in claimed] == [True]


async def test_a_cancelled_claim_is_not_marked_sent(db: Database, engine: Engine) -> None:
    number = await open_one(db, engine)
    later = MONDAY_10 + timedelta(hours=5)
    async with db.session() as session:
        (claimed,) = await repo.claim_due(session, now=later, owner="a")
    async with db.session() as session:
        await deadlines.record_first_answer(session, number=number, now=later, actor="agent")
    async with db.session() as session:
        assert claimed.id is not None
        assert await repo.mark_sent(session, claimed.id, owner="a", now=later) is None


async def test_a_new_leader_releases_claims_of_the_dead_one(db: Database,
                                                           engine: Engine) -> None:
    await open_one(db, engine)
    later = MONDAY_10 + timedelta(hours=5)
    async with db.session() as session:
        await repo.claim_due(session, now=later, owner="dead")
    async with db.session() as session:
        assert await repo.release_claims(session) == 1
    async with db.session() as session:
        assert [r.kind for r in await repo.claim_due(session, now=later, owner="new")] == [
            "agents_50"]


async def test_next_due_is_the_earliest_unclaimed(db: Database, engine: Engine) -> None:
    await open_one(db, engine)
    async with db.session() as session:
        await repo.claim_due(session, now=MONDAY_10 + timedelta(hours=4), owner="a")
    async with db.session() as session:
        assert await repo.next_due(session) == datetime(2026, 11, 23, 15, tzinfo=UTC)


async def test_concurrent_claimers_claim_each_row_once(db: Database, engine: Engine) -> None:
    customer = await add_customer(db, "K-1", {"dehosted": "professional"})
    for _ in range(30):
        async with db.session() as session:
            await open_ticket(session, engine=engine, customer=customer, new=trouble(),
                              now=MONDAY_10)
    later = MONDAY_10 + timedelta(days=2)  # every reminder of every ticket is due
    total = len(await rows(db))
    others = Database(str(db.engine.url.render_as_string(hide_password=False))
                      .replace("+asyncpg", "").replace("+aiosqlite", ""))
    try:
        async def claimer(database: Database, owner: str) -> list[int]:
            got: list[int] = []
            while True:
                async with database.session() as session:
                    batch = await repo.claim_due(session, now=later, owner=owner, limit=7)
                if not batch:
                    return got
                got += [r.id for r in batch if r.id is not None]

        first, second = await asyncio.gather(claimer(db, "a"), claimer(others, "b"))
    finally:
        await others.dispose()
    assert len(first) + len(second) == total
    assert set(first) | set(second) == {r.id for r in await rows(db)}
    assert set(first) & set(second) == set()
