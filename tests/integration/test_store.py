"""The ticket store on SQLite and PostgreSQL: migrations, customers, tickets, allowances."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel, col, select

from bot.cases.customers_csv import CustomerRecord
from bot.cases.service import NewTicket, open_ticket, record_consent
from bot.domain import Channel, Department, Language, Severity, TicketStatus
from bot.sla.engine import Engine
from models import customers, migrate, senders, tickets
from models.db import Database
from models.tables import AuditEvent, Message, Ticket, Usage
from models.tables import Ticket as TicketRow

BERLIN = ZoneInfo("Europe/Berlin")
MONDAY_10 = datetime(2026, 11, 23, 10, tzinfo=BERLIN)


async def opened(db: Database, engine: Engine, customer: customers.CustomerView | None,
                 new: NewTicket, now: datetime) -> TicketRow:
    async with db.session() as session:
        ticket, _ = await open_ticket(session, engine=engine, customer=customer, new=new, now=now)
    return ticket


async def consent(db: Database, engine: Engine, number: int, yes: bool,
                  now: datetime) -> TicketRow:
    async with db.session() as session:
        return await record_consent(session, engine=engine, number=number, consent=yes, now=now,
                                    actor="customer")


async def add_customer(db: Database, number: str, plans: dict[str, str],
                       domain: str = "acme.de") -> customers.CustomerView:
    async with db.session() as session:
        await customers.upsert_customers(
            session,
            [CustomerRecord(number=number, name=f"Customer {number}", domains=(domain,),
                            addresses=(f"boss@{number.lower()}.example",), plans=plans)],
            now=MONDAY_10,
        )
        view = await customers.find_by_email(session, f"someone@{domain}")
    assert view is not None
    return view


def trouble(severity: Severity = Severity.B, language: Language = Language.DE) -> NewTicket:
    return NewTicket(channel=Channel.EMAIL, subject="Mail server down", product="dehosted",
                     department=Department.TROUBLE, severity=severity, language=language)


async def test_migrations_match_the_models_and_go_down_again(db: Database) -> None:
    def diff(connection: Connection) -> list[object]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, SQLModel.metadata))

    async with db.engine.connect() as connection:
        assert await connection.run_sync(diff) == []
    assert await migrate.current_revision(db) == migrate.head_revision()
    await migrate.downgrade(db, "base")
    assert await migrate.current_revision(db) is None
    await migrate.upgrade(db)
    assert await migrate.current_revision(db) == migrate.head_revision()


async def test_sender_matching_exact_address_before_domain(db: Database) -> None:
    await add_customer(db, "K-1", {"dehosted": "standard"}, domain="acme.de")
    # K-2 owns one address inside acme.de: the exact address wins over K-1's domain
    async with db.session() as session:
        await customers.upsert_customers(
            session,
            [CustomerRecord(number="K-2", name="Freelancer", addresses=("it@acme.de",),
                            plans={"m365": "basic"})],
            now=MONDAY_10,
        )
    async with db.session() as session:
        by_domain = await customers.find_by_email(session, "Anna@ACME.de")
        by_address = await customers.find_by_email(session, "IT@acme.de")
        unknown = await customers.find_by_email(session, "x@elsewhere.de")
    assert by_domain is not None and by_domain.number == "K-1"
    assert by_address is not None and by_address.number == "K-2"
    assert by_address.plans == {"m365": "basic"}
    assert unknown is None


async def test_reimport_replaces_plans_and_addresses(db: Database) -> None:
    await add_customer(db, "K-1", {"dehosted": "standard"})
    async with db.session() as session:
        created, updated = await customers.upsert_customers(
            session, [CustomerRecord(number="K-1", name="Renamed", domains=("new.de",),
                                     plans={"m365": "professional"})], now=MONDAY_10)
    assert (created, updated) == (0, 1)
    async with db.session() as session:
        assert await customers.find_by_email(session, "a@acme.de") is None
        view = await customers.find_by_email(session, "a@new.de")
    assert view is not None and view.name == "Renamed" and view.plans == {"m365": "professional"}


async def test_instants_come_back_aware_utc(db: Database, engine: Engine) -> None:
    customer = await add_customer(db, "K-1", {"dehosted": "professional"})
    ticket = await opened(db, engine, customer, trouble(), MONDAY_10)
    async with db.session() as session:
        stored = await tickets.get_ticket(session, ticket.number or 0)
    assert stored is not None and stored.due_at is not None
    assert stored.created_at == MONDAY_10 and stored.created_at.tzinfo == UTC
    assert stored.due_at == MONDAY_10 + timedelta(hours=4)  # max(2 h plan, 4 h severity B)
    assert stored.status == TicketStatus.OPEN and stored.included and not stored.billable


async def test_twenty_concurrent_tickets_get_exactly_two_free(
    db: Database, engine: Engine
) -> None:
    # Basic Plus: 2 included incidents a month (spec "Product lines and plans")
    customer = await add_customer(db, "K-1", {"dehosted": "basic-plus"})
    batch = await asyncio.gather(*[
        opened(db, engine, customer, trouble(), MONDAY_10) for _ in range(20)
    ])
    assert sum(t.included for t in batch) == 2
    assert sum(t.billable for t in batch) == 18
    assert all(t.price_cents == 15900 for t in batch if t.billable)  # severity B, open hours
    async with db.session() as session:
        usage = (await session.exec(select(Usage))).all()
        count = len((await session.exec(select(Ticket))).all())
    assert count == 20
    assert [(u.kind, u.month, u.used) for u in usage] == [("incident", "2026-11", 2)]


async def test_allowance_is_per_berlin_month(db: Database, engine: Engine) -> None:
    customer = await add_customer(db, "K-1", {"dehosted": "basic-plus"})
    november = datetime(2026, 11, 30, 22, 30, tzinfo=UTC)  # 23:30 in Berlin, still November
    december = datetime(2026, 11, 30, 23, 30, tzinfo=UTC)  # 00:30 on 1 December in Berlin
    first = [await opened(db, engine, customer, trouble(), november) for _ in range(3)]
    after = await opened(db, engine, customer, trouble(), december)
    assert [t.included for t in first] == [True, True, False]
    assert after.included and after.usage_month == "2026-12"


async def test_billable_ticket_waits_for_consent_then_starts_the_clock(
    db: Database, engine: Engine
) -> None:
    customer = await add_customer(db, "K-1", {"dehosted": "basic"})  # Basic: every incident billed
    saturday = datetime(2026, 11, 21, 11, tzinfo=BERLIN)
    ticket = await opened(db, engine, customer, trouble(Severity.C), saturday)
    assert ticket.status == TicketStatus.AWAITING_CONSENT and ticket.due_at is None
    assert ticket.price_cents == 16900  # opened at the weekend: after-hours price
    monday = datetime(2026, 11, 23, 9, tzinfo=BERLIN)
    assert ticket.number is not None
    accepted = await consent(db, engine, ticket.number, True, monday)
    assert accepted.status == TicketStatus.OPEN
    assert accepted.accepted_at == monday
    assert accepted.due_at == datetime(2026, 11, 23, 17, tzinfo=BERLIN)  # 8 h from consent
    assert accepted.price_cents == 16900  # the price of when it was opened stays
    async with db.session() as session:
        events = (await session.exec(
            select(AuditEvent).where(AuditEvent.ticket_number == ticket.number)
            .order_by(col(AuditEvent.id))
        )).all()
    assert [e.action for e in events] == ["created", "consent"]


async def test_declined_consent_closes_without_a_deadline(db: Database, engine: Engine) -> None:
    ticket = await opened(db, engine, None, trouble(), MONDAY_10)
    assert ticket.billable and ticket.customer_id is None and ticket.number is not None
    declined = await consent(db, engine, ticket.number, False, MONDAY_10)
    assert declined.status == TicketStatus.DECLINED and declined.due_at is None


async def test_a_senders_recent_tickets_are_read_without_their_raw_mail(
        db: Database, engine: Engine) -> None:
    # the flood check reads them on every mail: a raw mail can be megabytes
    ticket = await opened(db, engine, None, trouble(), MONDAY_10)
    async with db.session() as session:
        session.add(Message(ticket_number=ticket.number, direction="in", channel="email",
                            external_id="<m1@acme.de>", sender="anna@acme.de",
                            text="Server down", subject="Hilfe", raw=b"x" * 100_000,
                            disposition="ticket", created_at=MONDAY_10))
    statements: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        statements.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", seen)
    try:
        async with db.session() as session:  # where the flood check runs
            recent = await senders.tickets_opened_by(
                session, sender="anna@acme.de", channel="email",
                since=MONDAY_10 - timedelta(hours=1), customer_id=None)
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", seen)
    assert recent == [senders.RecentTicket(ticket.number, ticket.status, "Server down",
                                           "Hilfe", MONDAY_10)]
    assert [s for s in statements if "raw" in s] == []
