"""Agents' labels flow back: confirmed tickets become training examples, and their agreement
with the model is reported (SQLite and PostgreSQL); the customer's stated severity is stored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.cases.service import NewTicket, open_ticket
from bot.classify.commands import training_set
from bot.classify.feedback import agreement, agreement_report, confirmed_since
from bot.cli.db import confirmed_examples
from bot.config import Settings
from bot.domain import Channel, Department, Language, Severity, Triage
from bot.sla.engine import Engine
from models.db import Database
from models.tables import Message, Ticket

NOW = datetime(2026, 11, 23, 9, tzinfo=UTC)


def triage(department: Department, severity: Severity,
           stated: Severity | None = None) -> Triage:
    return Triage(department=department, severity=severity, product="dehosted",
                  confidence={"department": 0.9, "severity": 0.9, "product": 0.9},
                  needs_triage=False, model="e5-small-head-test", stated_severity=stated)


async def ticket_with_mail(db: Database, engine: Engine, *, text: str, model: Triage,
                           final: tuple[Department, Severity] | None,
                           confirmed_at: datetime | None) -> int:
    """A ticket the model triaged, its first inbound mail, and an agent's verdict."""
    new = NewTicket(channel=Channel.EMAIL, subject=text.split("\n")[0], product="dehosted",
                    department=model.department, severity=model.severity,
                    language=Language.DE, triage=model)
    async with db.session() as session:
        ticket, _ = await open_ticket(session, engine=engine, customer=None, new=new, now=NOW)
        assert ticket.number is not None
        session.add(Message(ticket_number=ticket.number, direction="in", channel="email",
                            external_id=f"<{ticket.number}@test>", text=text,
                            subject=new.subject, disposition="ticket", created_at=NOW))
        if final is not None:
            ticket.department, ticket.severity = final[0].value, final[1].value
            ticket.confirmed_by, ticket.confirmed_at = "agent.anna", confirmed_at
        session.add(ticket)
        return ticket.number


async def seed(db: Database, engine: Engine) -> dict[str, int]:
    return {
        "confirmed": await ticket_with_mail(
            db, engine, text="Rechnung fehlt\nBitte die Oktoberrechnung schicken.",
            model=triage(Department.ACCOUNTING, Severity.C),
            final=(Department.ACCOUNTING, Severity.C), confirmed_at=NOW - timedelta(days=1)),
        "corrected": await ticket_with_mail(
            db, engine, text="Shop langsam\nDer Shop lädt seit heute 10 Sekunden.",
            model=triage(Department.TROUBLE, Severity.A),
            final=(Department.TROUBLE, Severity.B), confirmed_at=NOW - timedelta(days=2)),
        "old": await ticket_with_mail(
            db, engine, text="API Frage\nWie bekomme ich einen Token?",
            model=triage(Department.CONSULTING, Severity.C),
            final=(Department.DEVELOPER, Severity.C), confirmed_at=NOW - timedelta(days=40)),
        "unconfirmed": await ticket_with_mail(
            db, engine, text="Server down\nNichts geht.",
            model=triage(Department.TROUBLE, Severity.A), final=None, confirmed_at=None),
    }


async def test_confirmed_tickets_are_in_the_training_set(db: Database, engine: Engine) -> None:
    numbers = await seed(db, engine)
    extra = await confirmed_examples(db, Settings(_env_file=None))
    by_id = {e.id: e for e in extra}
    assert set(by_id) == {f"ticket:{numbers[k]}" for k in ("confirmed", "corrected", "old")}
    corrected = by_id[f"ticket:{numbers['corrected']}"]
    assert (corrected.department, corrected.severity) == (Department.TROUBLE, Severity.B)
    assert corrected.body == "Shop langsam\nDer Shop lädt seit heute 10 Sekunden."
    training = training_set(extra)
    assert [e.id for e in training if e.id.startswith("ticket:")] == [e.id for e in extra]
    assert all(e.split == "T" for e in training)


async def test_agreement_over_the_last_days(db: Database, engine: Engine) -> None:
    await seed(db, engine)
    rows = await confirmed_since(db, NOW - timedelta(days=30))
    by_task = {a.task: a for a in agreement(rows)}
    assert by_task["department"].n == 2
    assert by_task["department"].agreed == 2
    assert by_task["severity"].agreed == 1
    assert by_task["severity"].corrections == {"A->B": 1}
    report = await agreement_report(db, Settings(_env_file=None), 30, NOW)
    assert "agents confirmed 2 model-triaged tickets in the last 30 days" in report
    wider = await agreement_report(db, Settings(_env_file=None), 60, NOW)
    assert "agents confirmed 3 model-triaged tickets in the last 60 days" in wider


async def test_the_stated_severity_is_stored_beside_the_models(db: Database,
                                                               engine: Engine) -> None:
    number = await ticket_with_mail(
        db, engine, text="Priorität: hoch\nBitte Rechnung schicken.",
        model=triage(Department.ACCOUNTING, Severity.C, stated=Severity.A),
        final=None, confirmed_at=None)
    async with db.reader() as session:
        ticket = await session.get(Ticket, number)
    assert ticket is not None
    assert (ticket.stated_severity, ticket.predicted_severity) == ("A", "C")
