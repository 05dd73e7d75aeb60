"""The CLI commands that need the database; each returns the text to print."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bot.cases.customers_csv import parse_customer_csv, plans_not_in_policy
from bot.config import Settings, load_policy
from bot.errors import UserError
from models import customers as customer_repo
from models import messages as message_repo
from models import migrate
from models import tickets as ticket_repo
from models.db import Database
from models.tables import Ticket


class CommandError(UserError):
    """A command that failed for a reason the user can fix; the message says which."""


async def run_with_db(
    settings: Settings,
    func: Callable[..., Coroutine[Any, Any, str]],
    *args: Any,
) -> str:
    """Open the database, run one command, close it again."""
    db = Database(settings.database_url.get_secret_value())
    try:
        return await func(db, settings, *args)
    finally:
        await db.dispose()


async def _require_schema(db: Database) -> None:
    if await migrate.current_revision(db) != migrate.head_revision():
        raise CommandError("the database schema is not current: run `intake-bot db upgrade`")


async def db_upgrade(db: Database, settings: Settings) -> str:
    """Migrate to the newest schema."""
    before = await migrate.current_revision(db)
    await migrate.upgrade(db)
    after = await migrate.current_revision(db)
    if before == after:
        return f"database schema is current ({after}, {db.backend})"
    return f"database schema upgraded from {before or 'empty'} to {after} ({db.backend})"


async def customers_import(db: Database, settings: Settings, text: str, if_empty: bool,
                           deactivate_missing: bool = False) -> str:
    """Create or update customers from CSV text; nothing is written if any line is bad,
    an address would belong to two customers, or any customer would hold a plan the policy
    lacks (also customers the CSV does not name). Customers in the store but not in the file
    are named; with `deactivate_missing` they are deactivated (their tickets stay)."""
    policy = load_policy(settings.policy_file)
    records = parse_customer_csv(text, policy)
    await _require_schema(db)
    async with db.session() as session:
        if if_empty and await customer_repo.count_customers(session):
            return "customers already present; nothing imported"
        now = datetime.now(UTC)
        created, updated = await customer_repo.upsert_customers(session, records, now=now)
        missing = await customer_repo.missing_from(session, records)
        if deactivate_missing and missing:
            await customer_repo.deactivate(session, [n for n, _ in missing], now=now)
        problem = plans_not_in_policy(await customer_repo.held_plans(session), policy)
        if problem:
            raise CommandError(f"nothing imported: {problem}")
    done = f"imported {len(records)} customers ({created} new, {updated} updated)"
    if not missing:
        return done
    names = ", ".join(f"{number} ({name})" for number, name in missing)
    if deactivate_missing:
        return (f"{done}\ndeactivated {len(missing)} customers not in the file: {names}; "
                "their mail is now an unknown sender's, their tickets stay")
    return (f"{done}\nnot in the file, kept with their plans: {names} "
            "(--deactivate-missing deactivates them)")


async def customers_list(db: Database, settings: Settings, as_json: bool) -> str:
    """Every customer with plans, addresses and Slack channels."""
    await _require_schema(db)
    async with db.session() as session:
        views = await customer_repo.list_customers(session)
    if as_json:
        return "\n".join(
            json.dumps({
                "number": v.number, "name": v.name, "plans": v.plans, "emails": list(v.emails),
                "slack": list(v.slack), "contact_24_7": v.contact_24_7, "active": v.active,
            }, ensure_ascii=False)
            for v in views
        )
    lines = [f"{'number':<8} {'name':<32} {'plans':<34} emails"]
    for v in views:
        plans = ", ".join(f"{product}:{plan}" for product, plan in sorted(v.plans.items()))
        plans = plans if v.active else "inactive"
        lines.append(f"{v.number:<8} {v.name[:32]:<32} {plans or '-':<34} {' '.join(v.emails)}")
    return "\n".join(lines)


@functools.lru_cache(maxsize=4)
def _zone(policy_file: str) -> ZoneInfo:
    """The policy's time zone (the file is read once, not once per timestamp)."""
    return ZoneInfo(load_policy(Path(policy_file)).business_hours.timezone)


def _when(moment: datetime | None, settings: Settings) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(_zone(str(settings.policy_file))).isoformat(timespec="seconds")


def ticket_json(ticket: Ticket, settings: Settings) -> dict[str, Any]:
    """A ticket as JSON-ready data; instants in the policy's local time."""
    dumped = ticket.model_dump(mode="json")
    data = {key: dumped[key] for key in Ticket.model_fields}
    for key, value in list(data.items()):
        if isinstance(getattr(ticket, key), datetime):
            data[key] = _when(value and getattr(ticket, key), settings)
    data["price_eur"] = f"{ticket.price_cents / 100:.2f}"
    del data["price_cents"]
    return data


async def mail_list(db: Database, settings: Settings, as_json: bool) -> str:
    """Every stored inbound mail and what became of it, newest first."""
    await _require_schema(db)
    async with db.session() as session:
        rows = await message_repo.list_inbound(session)
    items = [
        {"id": m.id, "message_id": m.external_id, "from": m.sender,
         "received": _when(m.created_at, settings), "subject": m.subject,
         "disposition": m.disposition,
         "ticket": f"NT#{m.ticket_number}" if m.ticket_number else None,
         "reason": m.reason, "attempts": m.attempts, "flags": m.flags}
        for m in rows
    ]
    if as_json:
        return "\n".join(json.dumps(item, ensure_ascii=False) for item in items)
    if not items:
        return "no mail received yet"
    lines = [f"{'received':<25} {'disposition':<11} {'ticket':<8} {'from':<32} message-id"]
    for item in items:
        lines.append(
            f"{item['received']:<25} {item['disposition']:<11} {item['ticket'] or '-':<8} "
            f"{str(item['from'])[:32]:<32} {item['message_id']}"
            + (f"\n{'':<26}reason: {item['reason']}" if item["reason"] else "")
            + (f"\n{'':<26}flags: {item['flags']}" if item["flags"] else "")
        )
    return "\n".join(lines)


async def wait_for_reply(db: Database, settings: Settings, message_id: str,
                         seconds: float) -> str:
    """Wait until the mail with `message_id` is processed; say what became of it."""
    import asyncio
    import time

    deadline = time.monotonic() + seconds
    while True:
        async with db.session() as session:
            found = await message_repo.find(session, "in", message_id)
            reply = await message_repo.reply_to(session, message_id) if found else None
        delivered = reply is not None and reply.disposition != "queued"
        if found is not None and found.disposition != "pending":
            if delivered or found.disposition != "ticket":
                break
        if time.monotonic() > deadline:
            return f"sent {message_id}; not processed after {seconds:.0f} s (see `mail list`)"
        await asyncio.sleep(0.05)
    assert found is not None
    ticket = f"NT#{found.ticket_number}" if found.ticket_number else "no ticket"
    answer = f"reply {reply.external_id} ({reply.disposition})" if reply else "no reply"
    return f"sent {message_id}: {found.disposition}, {ticket}, {answer}"


async def tickets_list(db: Database, settings: Settings, as_json: bool) -> str:
    """The newest tickets, one line each."""
    await _require_schema(db)
    async with db.session() as session:
        tickets = await ticket_repo.list_tickets(session)
    if as_json:
        return "\n".join(json.dumps(ticket_json(t, settings), ensure_ascii=False) for t in tickets)
    lines = [f"{'ticket':<9} {'status':<17} {'dept':<11} sev {'price':>8}  due"]
    for t in tickets:
        lines.append(
            f"NT#{t.number:<6} {t.status:<17} {t.department:<11} {t.severity:<3} "
            f"{t.price_cents / 100:>8.2f}  {_when(t.due_at, settings) or '-'}"
        )
    return "\n".join(lines) if tickets else "no tickets"


async def tickets_show(db: Database, settings: Settings, number: int, as_json: bool) -> str:
    """One ticket with its messages and audit trail."""
    await _require_schema(db)
    async with db.session() as session:
        ticket = await ticket_repo.get_ticket(session, number)
        if ticket is None:
            raise CommandError(f"no ticket NT#{number}")
        messages, events = await ticket_repo.ticket_history(session, number)
    thread = [
        {"direction": m.direction, "channel": m.channel, "id": m.external_id, "from": m.sender,
         "at": _when(m.created_at, settings), "text": m.text}
        for m in messages
    ]
    trail = [
        {"at": _when(e.at, settings), "actor": e.actor, "action": e.action,
         "detail": json.loads(e.detail)}
        for e in events
    ]
    data = ticket_json(ticket, settings)
    if as_json:
        return json.dumps({**data, "messages": thread, "audit": trail}, ensure_ascii=False)
    lines = [f"NT#{number}  {ticket.subject}"]
    shown = {k: v for k, v in data.items() if k not in ("number", "subject")}
    lines += [f"  {key}: {value}" for key, value in shown.items()]
    lines.append("messages:")
    lines += [f"  {m['at']} {m['direction']} {m['from']}: {str(m['text'])[:200]}" for m in thread]
    lines.append("audit:")
    lines += [f"  {e['at']} {e['actor']} {e['action']} {json.dumps(e['detail'])}" for e in trail]
    return "\n".join(lines)


async def load_confirmed(settings: Settings) -> list[Any]:
    """Open the database and read the confirmed triage decisions."""
    db = Database(settings.database_url.get_secret_value())
    try:
        return await confirmed_examples(db, settings)
    finally:
        await db.dispose()


async def confirmed_examples(db: Database, settings: Settings) -> list[Any]:
    """Tickets whose triage an agent confirmed or corrected, as training examples."""
    from sqlmodel import col, select

    from bot.classify.corpus import Example
    from bot.domain import Department, Language, Severity
    from models.tables import Message

    await _require_schema(db)
    examples = []
    async with db.reader() as session:
        tickets = (await session.exec(
            select(Ticket).where(col(Ticket.confirmed_at).is_not(None)))).all()
        for ticket in tickets:
            first = (await session.exec(
                select(Message).where(Message.ticket_number == ticket.number,
                                      Message.direction == "in").order_by(col(Message.id))
            )).first()
            if first is None:
                continue
            examples.append(Example(
                id=f"ticket:{ticket.number}", language=Language(ticket.language),
                department=Department(ticket.department), severity=Severity(ticket.severity),
                product=ticket.product, subject=ticket.subject, body=first.text, split="T",
            ))
    return examples


async def tickets_confirm_sender(db: Database, settings: Settings, number: int,
                                 agent: str) -> str:
    """An agent vouches for an unverified sender: the ticket is priced and answered now."""
    from datetime import UTC, datetime

    from bot.app import customer_replies, mail_config
    from bot.cases.service import TicketNotFound
    from bot.classify.keywords import KeywordClassifier
    from bot.classify.language import LanguageDetector
    from bot.config import load_policy
    from bot.intake.mail.inbound import MailIntake
    from bot.sla.engine import Engine

    await _require_schema(db)
    config = mail_config(settings)
    intake = MailIntake(db=db, engine=Engine(load_policy(settings.policy_file)),
                        config=config, classifier=KeywordClassifier(),
                        detector=LanguageDetector(), replies=customer_replies(config))
    try:
        ticket = await intake.confirm_sender(number, agent=agent, now=datetime.now(UTC))
    except (TicketNotFound, ValueError) as exc:
        raise CommandError(str(exc)) from exc
    price = f", {ticket.price_cents / 100:.2f} EUR awaiting consent" if ticket.billable else ""
    return (f"NT#{number}: sender confirmed by {agent}; {ticket.status}"
            f"{', included incident' if ticket.included else ''}{price}; "
            f"the answer is queued to {ticket.requester} (sent by the running service)")
