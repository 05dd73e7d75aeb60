"""Use cases on tickets: open one under the policy, record consent. Adapters call these.

Each takes the caller's session, so that a ticket, its messages and the reply are one
transaction: a crash leaves all of them or none.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.cases.deadlines import cancel, plan_reminders, record_first_answer, reschedule
from bot.domain import Channel, Clock, Department, Language, Severity, TicketStatus, Triage
from bot.sla.allowances import premier_escalation, usage_month
from bot.sla.engine import Assessment, Case, Engine
from bot.sla.rules import PlanRule
from models.customers import CustomerView, get_customer
from models.tables import Ticket
from models.tickets import (
    add_ticket,
    allowance_used,
    audit,
    claim_allowance,
    get_ticket,
    lock_ticket,
    release_allowance,
)

log = logging.getLogger(__name__)

INCIDENT = "incident"
PREMIER = "premier"  # the allowance kind, and the ticket's flag once escalated
# a ticket being worked on; not one that waits for its sender's proof or consent, or is done
ESCALATABLE = (TicketStatus.OPEN, TicketStatus.ANSWERED, TicketStatus.WAITING_CUSTOMER)
# where a re-triage's new price asks for consent again
QUOTABLE = (*ESCALATABLE, TicketStatus.AWAITING_CONSENT)


@dataclass(frozen=True)
class NewTicket:
    """What intake knows about a new ticket once it is classified."""

    channel: Channel
    subject: str
    product: str
    department: Department
    severity: Severity
    language: Language
    requester: str = ""
    triage: Triage | None = None
    flags: tuple[str, ...] = ()
    linked_ticket: int | None = None
    verified: bool = True  # False: a known customer's address, but the sender is not proven
    evidence: str = ""  # how the sender was verified (or why not)


class TicketNotFound(LookupError):
    """No ticket has that number."""


def choose_product(engine: Engine, customer: CustomerView | None, suggested: str | None) -> str:
    """The product line: the customer's only line, else the classifier's, else the first."""
    lines = list(engine.policy.products)
    held = [p for p in lines if customer and p in customer.plans]
    if len(held) == 1:
        return held[0]
    if suggested in lines and (not held or suggested in held):
        return str(suggested)
    return held[0] if held else lines[0]


def terms(engine: Engine, ticket: Ticket) -> PlanRule | None:
    """The plan's rule the ticket was priced under (its snapshot; the policy's for old rows)."""
    return engine.ticket_plan(ticket.product, ticket.plan, ticket.plan_terms)


def snapshot(rule: PlanRule | None) -> str | None:
    """The plan's terms as a ticket keeps them."""
    return rule.model_dump_json() if rule is not None else None


async def keep_plan_terms(session: AsyncSession, engine: Engine) -> str:
    """Snapshot the plan terms of tickets stored before tickets kept them (from the policy,
    which still has the plan); a sentence naming the tickets whose plan it no longer has."""
    rows = await session.exec(select(Ticket).where(col(Ticket.plan).is_not(None),
                                                   col(Ticket.plan_terms).is_(None)))
    lost = []
    for ticket in rows.all():
        plans = engine.policy.products.get(ticket.product)
        if plans is None or ticket.plan not in plans.plans:
            lost.append(f"NT#{ticket.number} ({ticket.product} {ticket.plan})")
            continue
        ticket.plan_terms = snapshot(plans.plans[str(ticket.plan)])
        session.add(ticket)
    if not lost:
        return ""
    more = f" and {len(lost) - 10} more" if len(lost) > 10 else ""
    return (f"the policy has no plan for {', '.join(lost[:10])}{more}, stored before tickets "
            "kept their plan terms: put the plan back into the policy file and start once")


async def _assess(
    session: AsyncSession, *, engine: Engine, customer: CustomerView | None, product: str,
    department: Department, severity: Severity, language: Language, now: datetime,
    month: str | None = None, held: Ticket | None = None,
) -> tuple[str | None, Assessment, str]:
    """The plan, the policy's answer and the usage month, claiming an included incident if due.

    With `held`, the ticket's own plan and terms count (a re-triage), not the customer's plan
    today: a ticket keeps the terms it was opened under, even when the plan left the policy.
    """
    if held is not None:
        plan, rule = held.plan, terms(engine, held)
    else:
        plan = customer.plans.get(product) if customer else None
        rule = engine.plan_rule(product, plan)
    month = month or usage_month(now, engine.calendar.zone)
    used = 0
    if customer is not None:
        wants_included = (
            rule is not None
            and engine.policy.departments[department].consumes_incident
            and engine.entitled(rule, department)
        )
        if wants_included and rule is not None:
            claimed = await claim_allowance(
                session, customer_id=customer.id, product=product, month=month,
                kind=INCIDENT, limit=rule.included_incidents,
            )
            used = rule.included_incidents if claimed is None else claimed - 1
        else:
            used = await allowance_used(
                session, customer_id=customer.id, product=product, month=month, kind=INCIDENT,
            )
    result = engine.assess(
        Case(product=product, plan=plan, department=department, severity=severity,
             language=language, accepted=now, used=used, terms=rule)
    )
    return plan, result, month


async def open_ticket(
    session: AsyncSession,
    *,
    engine: Engine,
    customer: CustomerView | None,
    new: NewTicket,
    now: datetime,
    actor: str = "intake",
) -> tuple[Ticket, Assessment]:
    """Store a ticket priced and timed by the policy, claiming an included incident if due."""
    if customer is not None and not new.verified:
        return await _open_unverified(session, engine=engine, customer=customer, new=new,
                                      now=now, actor=actor)
    plan, result, month = await _assess(session, engine=engine, customer=customer,
                                        product=new.product, department=new.department,
                                        severity=new.severity, language=new.language, now=now)
    needs_consent = result.billable
    triage = new.triage
    ticket = await add_ticket(
        session,
        Ticket(
            customer_id=customer.id if customer else None,
            channel=new.channel.value,
            subject=new.subject,
            product=new.product,
            plan=plan,
            plan_terms=snapshot(engine.plan_rule(new.product, plan)),
            department=new.department.value,
            severity=new.severity.value,
            language=new.language.value,
            predicted_department=triage.department.value if triage else None,
            predicted_severity=triage.severity.value if triage else None,
            predicted_product=triage.product if triage else None,
            predicted_confidence=min(triage.confidence.values()) if triage else None,
            stated_severity=triage.stated_severity.value if triage and triage.stated_severity
            else None,
            model_version=triage.model if triage else None,
            status=TicketStatus.AWAITING_CONSENT if needs_consent else TicketStatus.OPEN,
            entitled=result.entitled,
            included=result.included,
            usage_month=month,
            billable=result.billable,
            price_cents=int(result.price_eur * 100),
            created_at=now,
            accepted_at=None if needs_consent else now,
            target_hours=float(result.target_hours),
            clock=result.clock.value,
            due_at=None if needs_consent else result.due,
            requester=new.requester,
            linked_ticket=new.linked_ticket,
            flags=",".join(new.flags),
        ),
    )
    await audit(
        session, ticket_number=ticket.number, actor=actor, action="created", now=now,
        customer=customer.number if customer else None, plan=plan,
        department=new.department.value, severity=new.severity.value,
        included=result.included, billable=result.billable,
        price_eur=f"{result.price_eur:.2f}", due=None if needs_consent else result.due,
        needs_triage=triage.needs_triage if triage else None, flags=list(new.flags),
        evidence=new.evidence,
    )
    await plan_reminders(session, engine=engine, ticket=ticket, now=now)
    log.info(
        "event=ticket_opened ticket=%s customer=%s included=%s billable=%s",
        ticket.number, customer.number if customer else "-", result.included, result.billable,
    )
    return ticket, result


async def _open_unverified(
    session: AsyncSession, *, engine: Engine, customer: CustomerView, new: NewTicket,
    now: datetime, actor: str,
) -> tuple[Ticket, Assessment]:
    """A ticket from an unproven sender at a customer's address: for the agents only.

    It uses none of the customer's allowance, carries no price and no deadline until an agent
    confirms the sender (`confirm_sender`); the answer tells the sender nothing about the plan.
    """
    result = engine.assess(
        Case(product=new.product, plan=None, department=new.department, severity=new.severity,
             language=new.language, accepted=now, used=0)
    )
    triage = new.triage
    ticket = await add_ticket(session, Ticket(
        customer_id=customer.id, channel=new.channel.value, subject=new.subject,
        product=new.product, plan=None, department=new.department.value,
        severity=new.severity.value, language=new.language.value,
        predicted_department=triage.department.value if triage else None,
        predicted_severity=triage.severity.value if triage else None,
        predicted_product=triage.product if triage else None,
        predicted_confidence=min(triage.confidence.values()) if triage else None,
        model_version=triage.model if triage else None,
        stated_severity=triage.stated_severity.value if triage and triage.stated_severity
        else None,
        status=TicketStatus.UNVERIFIED, entitled=False, included=False,
        usage_month=usage_month(now, engine.calendar.zone), billable=False, price_cents=0,
        created_at=now, requester=new.requester, linked_ticket=new.linked_ticket,
        flags=",".join(new.flags),
    ))
    await audit(session, ticket_number=ticket.number, actor=actor, action="created", now=now,
                claimed_customer=customer.number, verified=False, evidence=new.evidence,
                department=new.department.value, severity=new.severity.value,
                flags=list(new.flags))
    log.info("event=ticket_opened ticket=%s customer=%s verified=false", ticket.number,
             customer.number)
    return ticket, result


async def confirm_sender(
    session: AsyncSession, *, engine: Engine, number: int, customer: CustomerView,
    now: datetime, actor: str,
) -> tuple[Ticket, Assessment]:
    """An agent vouches for an unverified sender: the ticket is priced, timed and charged now."""
    ticket = await get_ticket(session, number)
    if ticket is None:
        raise TicketNotFound(f"no ticket NT#{number}")
    if ticket.status != TicketStatus.UNVERIFIED:
        raise ValueError(f"NT#{number} is {ticket.status}, not waiting for sender confirmation")
    plan, result, month = await _assess(
        session, engine=engine, customer=customer, product=ticket.product,
        department=Department(ticket.department), severity=Severity(ticket.severity),
        language=Language(ticket.language), now=now)
    needs_consent = result.billable
    ticket.customer_id, ticket.plan, ticket.usage_month = customer.id, plan, month
    ticket.plan_terms = snapshot(engine.plan_rule(ticket.product, plan))
    ticket.entitled, ticket.included = result.entitled, result.included
    ticket.billable, ticket.price_cents = result.billable, int(result.price_eur * 100)
    ticket.status = TicketStatus.AWAITING_CONSENT if needs_consent else TicketStatus.OPEN
    ticket.accepted_at = None if needs_consent else now
    ticket.target_hours, ticket.clock = float(result.target_hours), result.clock.value
    ticket.due_at = None if needs_consent else result.due
    ticket.flags = ",".join(f for f in ticket.flags.split(",") if f and f != "sender_unverified")
    session.add(ticket)
    await audit(session, ticket_number=number, actor=actor, action="sender_confirmed", now=now,
                customer=customer.number, plan=plan, included=result.included,
                billable=result.billable, price_eur=f"{result.price_eur:.2f}",
                due=ticket.due_at)
    await plan_reminders(session, engine=engine, ticket=ticket, now=now)
    log.info("event=sender_confirmed ticket=%s customer=%s by=%s", number, customer.number,
             actor)
    return ticket, result


async def record_consent(
    session: AsyncSession, *, engine: Engine, number: int, consent: bool, now: datetime,
    actor: str, evidence: str = "",
) -> Ticket:
    """Record the customer's yes or no to a billable incident; yes starts the clock."""
    ticket = await lock_ticket(session, number)
    if ticket is None:
        raise TicketNotFound(f"no ticket NT#{number}")
    if ticket.status != TicketStatus.AWAITING_CONSENT:
        return ticket  # a repeated or late answer changes nothing
    ticket.consent = consent
    ticket.consent_at = now
    if consent:
        assert ticket.target_hours is not None and ticket.clock is not None
        ticket.status = TicketStatus.OPEN
        ticket.accepted_at = now
        ticket.due_at = engine.due(now, Decimal(str(ticket.target_hours)), Clock(ticket.clock))
    else:
        ticket.status = TicketStatus.DECLINED
        ticket.closed_at = now
    session.add(ticket)
    await audit(session, ticket_number=number, actor=actor, action="consent", now=now,
                consent=consent, due=ticket.due_at, evidence=evidence)
    await plan_reminders(session, engine=engine, ticket=ticket, now=now)
    log.info("event=consent ticket=%s consent=%s", number, consent)
    return ticket


# an agent may re-triage a ticket in these states; later ones are settled
RETRIAGEABLE = (TicketStatus.OPEN, TicketStatus.AWAITING_CONSENT, TicketStatus.ANSWERED,
                TicketStatus.WAITING_CUSTOMER)


class NotRetriageable(ValueError):
    """The ticket cannot be re-triaged in its state (unverified sender, closed, declined)."""


@dataclass(frozen=True)
class Retriaged:
    """What an agent's triage change did: the ticket after it and what the customer must hear."""

    ticket: Ticket
    result: Assessment
    changed: bool  # department or severity differ from before
    old_price_cents: int
    asks_consent: bool  # the ticket now waits for the customer's yes to a (new) price

    @property
    def price_changed(self) -> bool:
        """The price the customer would pay is not the one they were told."""
        return self.ticket.price_cents != self.old_price_cents


async def retriage(
    session: AsyncSession, engine: Engine, number: int, department: Department,
    severity: Severity, agent: str, now: datetime,
) -> Retriaged:
    """An agent sets (or confirms) department and severity: the policy runs again.

    The included incident is released and claimed again as the new department requires, price
    and deadline are recomputed, a (new) price waits for consent, and the audit names the agent.
    """
    ticket = await lock_ticket(session, number)
    if ticket is None:
        raise TicketNotFound(f"no ticket NT#{number}")
    if ticket.status not in RETRIAGEABLE:
        raise NotRetriageable(f"NT#{number} is {ticket.status}; it cannot be re-triaged")
    customer = await get_customer(session, ticket.customer_id) if ticket.customer_id else None
    old = (ticket.department, ticket.severity, ticket.included, ticket.billable,
           ticket.price_cents)
    if ticket.included and customer is not None:
        await release_allowance(session, customer_id=customer.id, product=ticket.product,
                                month=ticket.usage_month, kind=INCIDENT)
    # priced as when the ticket was opened (business or after hours), in its own usage month
    _, result, _ = await _assess(
        session, engine=engine, customer=customer, product=ticket.product,
        department=department, severity=severity, language=Language(ticket.language),
        now=ticket.created_at, month=ticket.usage_month, held=ticket)
    ticket.department, ticket.severity = department.value, severity.value
    ticket.entitled, ticket.included = result.entitled, result.included
    ticket.billable, ticket.price_cents = result.billable, int(result.price_eur * 100)
    ticket.confirmed_by, ticket.confirmed_at = agent, now
    new_quote = ticket.billable and (not old[3] or ticket.price_cents != old[4])
    # a new or higher price is never billed without a yes, however far the ticket has come
    asks_consent = new_quote and ticket.status in QUOTABLE
    if asks_consent:
        ticket.status, ticket.consent, ticket.consent_at = (TicketStatus.AWAITING_CONSENT,
                                                            None, None)
        ticket.accepted_at, ticket.due_at, ticket.paused_at = None, None, None
        await cancel(session, ticket=ticket, now=now, reason="awaiting consent")
    elif not ticket.billable and ticket.status == TicketStatus.AWAITING_CONSENT:
        ticket.status, ticket.accepted_at = TicketStatus.OPEN, now  # nothing to consent to
    await reschedule(session, engine=engine, ticket=ticket, now=now)
    await audit(
        session, ticket_number=number, actor=f"agent {agent}", action="retriaged", now=now,
        department=[old[0], ticket.department], severity=[old[1], ticket.severity],
        included=[old[2], ticket.included], billable=[old[3], ticket.billable],
        price_eur=[f"{old[4] / 100:.2f}", f"{ticket.price_cents / 100:.2f}"],
        due=ticket.due_at, status=ticket.status)
    log.info("event=ticket_retriaged ticket=%s agent=%s department=%s severity=%s "
             "included=%s price_cents=%s", number, agent, ticket.department, ticket.severity,
             ticket.included, ticket.price_cents)
    return Retriaged(ticket=ticket, result=result,
                     changed=(old[0], old[1]) != (ticket.department, ticket.severity),
                     old_price_cents=old[4], asks_consent=asks_consent)


@dataclass(frozen=True)
class Escalation:
    """The outcome of an agent's Premier escalation: done, or refused with the reason."""

    ticket: Ticket
    escalated: bool
    reason: str = ""  # why not, in a sentence for the agent
    used: int = 0
    total: int = 0


async def premier_left(session: AsyncSession, engine: Engine, ticket: Ticket,
                       now: datetime) -> int:
    """How many Premier escalations this ticket could still use this month (0: no button)."""
    if (ticket.customer_id is None or PREMIER in ticket.flags.split(",")
            or ticket.status not in ESCALATABLE):
        return 0
    allowance = premier_escalation(engine.policy, terms(engine, ticket),
                                   Severity(ticket.severity), 0)
    if allowance is None:
        return 0
    used = await allowance_used(session, customer_id=ticket.customer_id,
                                product=ticket.product,
                                month=usage_month(now, engine.calendar.zone), kind=PREMIER)
    return max(allowance.total - used, 0)


async def escalate_premier(session: AsyncSession, engine: Engine, number: int, agent: str,
                           now: datetime) -> Escalation:
    """Escalate a ticket to Microsoft Premier, claiming one of the month's escalations atomically.

    Refused with the reason when the plan has none, the severity does not qualify, the ticket is
    escalated already or not being worked on (unverified, awaiting consent, closed, declined), or
    the month's escalations are used up; the refusal is audited too. The ticket is locked, so
    that a double click cannot claim twice.
    """
    ticket = await lock_ticket(session, number)
    if ticket is None:
        raise TicketNotFound(f"no ticket NT#{number}")
    flags = [f for f in ticket.flags.split(",") if f]
    allowance = premier_escalation(engine.policy, terms(engine, ticket),
                                   Severity(ticket.severity), 0)
    month = usage_month(now, engine.calendar.zone)
    reason, used = "", 0
    if PREMIER in flags:
        reason = f"NT#{number} is escalated to Microsoft Premier already"
    elif ticket.status not in ESCALATABLE:
        reason = f"NT#{number} is {ticket.status.replace('_', ' ')}, not being worked on"
    elif ticket.customer_id is None or allowance is None:
        reason = (f"the {ticket.product} {ticket.plan or 'no'} plan has no Premier escalation "
                  f"for severity {ticket.severity}")
    else:
        claimed = await claim_allowance(session, customer_id=ticket.customer_id,
                                        product=ticket.product, month=month, kind=PREMIER,
                                        limit=allowance.total)
        if claimed is None:
            reason = (f"this month's Premier escalations are used up ({allowance.total} of "
                      f"{allowance.total})")
        else:
            used = claimed
    total = allowance.total if allowance else 0
    if reason:
        await audit(session, ticket_number=number, actor=f"agent {agent}",
                    action="premier_refused", now=now, reason=reason, month=month)
        log.info("event=premier_refused ticket=%s agent=%s reason=%r", number, agent, reason)
        return Escalation(ticket=ticket, escalated=False, reason=reason, total=total)
    ticket.flags = ",".join([*flags, PREMIER])
    session.add(ticket)
    await audit(session, ticket_number=number, actor=f"agent {agent}", action="premier_escalated",
                now=now, month=month, used=used, total=total)
    log.info("event=premier_escalated ticket=%s agent=%s used=%s total=%s", number, agent, used,
             total)
    return Escalation(ticket=ticket, escalated=True, used=used, total=total)


async def record_first_response(session: AsyncSession, ticket: Ticket, now: datetime, *,
                                actor: str = "agent") -> Ticket:
    """An agent's first answer went out: first_response_at, status answered, reminders stop.

    The one hook for "the customer got a person's answer"; repeated answers change nothing.
    """
    assert ticket.number is not None
    return await record_first_answer(session, number=ticket.number, now=now, actor=actor)
