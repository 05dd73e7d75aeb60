"""Customer repository: import, list, and match a sender to an organisation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.cases.customers_csv import CustomerRecord
from bot.errors import UserError
from models.tables import Customer, CustomerEmail, CustomerPlan, CustomerSlack


@dataclass(frozen=True)
class CustomerView:
    """A customer with its plans, as the service needs it."""

    id: int
    number: str
    name: str
    contact_24_7: str | None
    plans: dict[str, str]
    emails: tuple[str, ...] = ()
    slack: tuple[str, ...] = ()
    active: bool = True


async def count_customers(session: AsyncSession) -> int:
    """How many customer organisations are stored."""
    result = await session.exec(select(func.count()).select_from(Customer))
    return int(result.one())


class CustomerClash(UserError):
    """An address, domain, Slack channel or Slack team would belong to two customers."""


async def upsert_customers(
    session: AsyncSession, records: list[CustomerRecord], *, now: datetime
) -> tuple[int, int]:
    """Create or replace customers by number; returns (created, updated).

    CustomerClash names every address, domain or Slack channel that a customer outside
    `records` already holds, and every Slack team that would belong to two customers; the
    caller's transaction then writes nothing.
    """
    created = updated = 0
    ids: list[int] = []
    for record in records:
        existing = (
            await session.exec(select(Customer).where(Customer.number == record.number))
        ).first()
        if existing is None:
            customer = Customer(number=record.number, name=record.name, created_at=now)
            created += 1
        else:
            customer = existing
            customer.name = record.name
            customer.deactivated_at = None  # named again: active again
            updated += 1
        customer.contact_24_7 = record.contact_24_7
        session.add(customer)
        await session.flush()
        assert customer.id is not None
        ids.append(customer.id)
        for table in (CustomerEmail, CustomerSlack, CustomerPlan):
            await session.exec(delete(table).where(col(table.customer_id) == customer.id))
    await session.flush()
    await _refuse_clashes(session, records)
    for customer_id, record in zip(ids, records, strict=True):
        for kind, values in (("address", record.addresses), ("domain", record.domains)):
            for value in values:
                session.add(CustomerEmail(customer_id=customer_id, kind=kind, value=value))
        for team, channel in record.slack:
            session.add(CustomerSlack(customer_id=customer_id, team_id=team, channel_id=channel))
        for product, plan in record.plans.items():
            session.add(CustomerPlan(customer_id=customer_id, product=product, plan=plan))
    await session.flush()
    return created, updated


async def missing_from(session: AsyncSession,
                       records: list[CustomerRecord]) -> list[tuple[str, str]]:
    """(number, name) of every active customer in the store that `records` do not name."""
    named = [r.number for r in records]
    rows = await session.exec(
        select(Customer.number, Customer.name)
        .where(col(Customer.deactivated_at).is_(None), col(Customer.number).not_in(named))
        .order_by(col(Customer.number))
    )
    return [(str(n), str(name)) for n, name in rows.all()]


async def deactivate(session: AsyncSession, numbers: list[str], *, now: datetime) -> int:
    """Deactivate customers: their addresses, domains, Slack channels and plans are removed
    (their mail is then an unknown sender's), the row and its tickets stay; how many."""
    customers = (await session.exec(
        select(Customer).where(col(Customer.number).in_(numbers),
                               col(Customer.deactivated_at).is_(None))
    )).all()
    for customer in customers:
        for table in (CustomerEmail, CustomerSlack, CustomerPlan):
            await session.exec(delete(table).where(col(table.customer_id) == customer.id))
        customer.deactivated_at = now
        session.add(customer)
    await session.flush()
    return len(customers)


async def _refuse_clashes(session: AsyncSession, records: list[CustomerRecord]) -> None:
    """Raise CustomerClash when a customer not being imported holds what a record claims."""
    wanted = {value: r.number for r in records for value in (*r.addresses, *r.domains)}
    clashes = []
    if wanted:
        rows = await session.exec(
            select(CustomerEmail.value, Customer.number)
            .join(Customer, col(Customer.id) == col(CustomerEmail.customer_id))
            .where(col(CustomerEmail.value).in_(list(wanted)))
        )
        clashes += [f"{value} (customer {wanted[value]}) belongs to customer {owner}"
                    for value, owner in rows.all()]
    for record in records:
        for team, channel in record.slack:
            owner = (await session.exec(
                select(Customer.number)
                .join(CustomerSlack, col(CustomerSlack.customer_id) == col(Customer.id))
                .where(CustomerSlack.team_id == team, CustomerSlack.channel_id == channel)
            )).first()
            if owner is not None:
                clashes.append(f"slack {team}/{channel} (customer {record.number}) "
                               f"belongs to customer {owner}")
    clashes += await _shared_teams(session, records)
    clashes += await _shared_channels(session, records)
    if clashes:
        raise CustomerClash("nothing imported: " + "; ".join(sorted(clashes)))


async def _shared_teams(session: AsyncSession, records: list[CustomerRecord]) -> list[str]:
    """A sentence per Slack team that would belong to more than one customer: a user of one
    customer's workspace would be taken for the customer in another's channel."""
    return await _shared(session, "team", [(r.number, team) for r in records
                                           for team, _ in r.slack])


async def _shared_channels(session: AsyncSession, records: list[CustomerRecord]) -> list[str]:
    """A sentence per Slack channel that would belong to more than one customer (under any
    teams): a message there would be taken for one customer's while it may be the other's."""
    return await _shared(session, "channel", [(r.number, channel) for r in records
                                              for _, channel in r.slack])


async def _shared(session: AsyncSession, kind: str, held: list[tuple[str, str]]) -> list[str]:
    """A sentence per Slack team or channel (`kind`) held by more than one customer, counting
    the (customer number, id) pairs of the file and those already in the store."""
    holders: dict[str, set[str]] = {}
    for number, slack_id in held:
        holders.setdefault(slack_id, set()).add(number)
    column = col(CustomerSlack.team_id if kind == "team" else CustomerSlack.channel_id)
    if holders:
        rows = await session.exec(
            select(column, Customer.number)
            .join(Customer, col(Customer.id) == col(CustomerSlack.customer_id))
            .where(column.in_(list(holders)))
        )
        for slack_id, number in rows.all():
            holders[slack_id].add(number)
    return [f"slack {kind} {slack_id} would belong to customers {', '.join(sorted(numbers))} "
            f"(one {'Slack team' if kind == 'team' else 'channel'}, one customer)"
            for slack_id, numbers in holders.items() if len(numbers) > 1]


async def held_plans(session: AsyncSession) -> list[tuple[str, str, str]]:
    """(customer number, product line, plan) for every plan a customer holds."""
    rows = await session.exec(
        select(Customer.number, CustomerPlan.product, CustomerPlan.plan)
        .join(CustomerPlan, col(CustomerPlan.customer_id) == col(Customer.id))
        .order_by(col(Customer.number))
    )
    return [(str(n), str(p), str(plan)) for n, p, plan in rows.all()]


async def _view(session: AsyncSession, customer: Customer) -> CustomerView:
    assert customer.id is not None
    plans = await session.exec(select(CustomerPlan).where(CustomerPlan.customer_id == customer.id))
    emails = await session.exec(
        select(CustomerEmail).where(CustomerEmail.customer_id == customer.id)
    )
    slack = await session.exec(
        select(CustomerSlack).where(CustomerSlack.customer_id == customer.id)
    )
    return CustomerView(
        id=customer.id,
        number=customer.number,
        name=customer.name,
        contact_24_7=customer.contact_24_7,
        plans={row.product: row.plan for row in plans},
        emails=tuple(
            ("@" + e.value) if e.kind == "domain" else e.value
            for e in sorted(emails, key=lambda e: e.value)
        ),
        slack=tuple(f"{s.team_id}/{s.channel_id}" for s in slack),
        active=customer.deactivated_at is None,
    )


async def list_customers(session: AsyncSession) -> list[CustomerView]:
    """Every customer, by number."""
    customers = await session.exec(select(Customer).order_by(col(Customer.number)))
    return [await _view(session, customer) for customer in customers.all()]


async def get_customer(session: AsyncSession, customer_id: int) -> CustomerView | None:
    """One customer by id."""
    customer = await session.get(Customer, customer_id)
    return None if customer is None else await _view(session, customer)


async def find_by_email(session: AsyncSession, address: str) -> CustomerView | None:
    """The customer of a sender, with its plans: exact address first, then the domain.

    One statement (a mail is looked up on every processing step): the matching address and
    domain rows, each with its customer and that customer's plans.
    """
    address = address.strip().lower()
    domain = address.rpartition("@")[2]
    rows = (await session.exec(
        select(CustomerEmail.kind, Customer, CustomerPlan.product, CustomerPlan.plan)
        .join(Customer, col(Customer.id) == col(CustomerEmail.customer_id))
        .join(CustomerPlan, col(CustomerPlan.customer_id) == col(Customer.id), isouter=True)
        .where(col(CustomerEmail.value).in_([address, domain]))
    )).all()
    if not rows:
        return None
    customer = min(rows, key=lambda row: 0 if row[0] == "address" else 1)[1]
    assert customer.id is not None
    return CustomerView(
        id=customer.id, number=customer.number, name=customer.name,
        contact_24_7=customer.contact_24_7,
        plans={product: plan for _, owner, product, plan in rows
               if owner.id == customer.id and product is not None},
    )


@dataclass(frozen=True)
class SlackMatch:
    """The customer a Slack channel is mapped to, and whether this author is that customer."""

    customer: CustomerView | None
    trusted: bool


async def slack_team_owner(session: AsyncSession, team_id: str) -> int | None:
    """The id of the one customer a Slack team is mapped to; None for none or several (a
    mapping stored before imports refused shared teams proves nothing)."""
    if not team_id:
        return None
    owners = (await session.exec(
        select(CustomerSlack.customer_id).where(CustomerSlack.team_id == team_id).distinct()
    )).all()
    return int(owners[0]) if len(owners) == 1 else None


async def find_by_slack(session: AsyncSession, channel_id: str, team_id: str) -> SlackMatch:
    """The customer whose Slack channel this is (Slack Connect channels keep their id); the
    author (of team `team_id`) is that customer only if the channel is mapped with that team
    and the team with no other customer: a NetTask employee or a third party in a shared
    channel, or an author whose team the event does not name, is not."""
    rows = (await session.exec(
        select(CustomerSlack.customer_id, CustomerSlack.team_id)
        .where(CustomerSlack.channel_id == channel_id).order_by(col(CustomerSlack.id))
    )).all()
    if not rows:
        return SlackMatch(None, trusted=False)
    mapped = [int(customer) for customer, team in rows if team_id and team == team_id]
    customer_id = mapped[0] if mapped else int(rows[0][0])
    trusted = bool(mapped) and await slack_team_owner(session, team_id) == customer_id
    return SlackMatch(await get_customer(session, customer_id), trusted=trusted)
