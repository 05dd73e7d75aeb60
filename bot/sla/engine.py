"""Entitlement, incident allowance, price and first-response deadline for one ticket."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from bot.domain import Clock, Department, Language, Severity
from bot.sla.clock import BusinessCalendar
from bot.sla.rules import PlanRule, Policy

ZERO = Decimal("0.00")


@dataclass(frozen=True, slots=True)
class Case:
    """What the engine needs to know about a ticket at the moment it is accepted."""

    product: str
    plan: str | None
    department: Department
    severity: Severity
    language: Language
    accepted: datetime
    used: int  # included incidents of this product line already used this month
    terms: PlanRule | None = None  # the plan's rule as a ticket keeps it (else the policy's)


@dataclass(frozen=True, slots=True)
class Assessment:
    """The policy's answer for one case."""

    entitled: bool
    incident: bool  # counts as an incident (trouble, developer, consulting)
    included: bool  # uses one of the plan's included incidents
    billable: bool
    price_eur: Decimal
    included_left: int
    target_hours: Decimal
    clock: Clock
    due: datetime  # UTC


class Engine:
    """Applies one validated Policy; build it once and reuse it."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.calendar = BusinessCalendar(policy.business_hours)

    def plan_rule(self, product: str, plan: str | None) -> PlanRule | None:
        """The plan's rule; KeyError names an unknown product line or plan."""
        if product not in self.policy.products:
            raise KeyError(f"unknown product line {product!r}")
        plans = self.policy.products[product].plans
        if plan is not None and plan not in plans:
            raise KeyError(f"product line {product!r} has no plan {plan!r}")
        return self.policy.plan(product, plan)

    def ticket_plan(self, product: str, plan: str | None, terms: str | None) -> PlanRule | None:
        """The plan's rule a ticket was priced under: its snapshot, else the policy's now."""
        if plan is None:
            return None
        if terms:
            return PlanRule.model_validate_json(terms)
        return self.plan_rule(product, plan)

    def entitled(self, plan: PlanRule | None, department: Department) -> bool:
        """Whether the plan (or no plan) covers the department."""
        if plan is None:
            return department in self.policy.no_plan.departments
        return department in plan.departments

    def single_incident_price(self, severity: Severity, opened: datetime) -> Decimal:
        """The single-incident price by severity and by when the ticket was opened."""
        table = self.policy.single_incident_price_eur
        prices = table.business_hours if self.calendar.is_open(opened) else table.after_hours
        return prices[severity]

    def assess(self, case: Case) -> Assessment:
        """Apply every rule of the spec to one case."""
        if case.used < 0:
            raise ValueError("used must not be negative")
        plan = (case.terms if case.terms is not None and case.plan is not None
                else self.plan_rule(case.product, case.plan))
        entitled = self.entitled(plan, case.department)
        incident = self.policy.departments[case.department].consumes_incident
        allowance = plan.included_incidents if plan is not None else 0
        left_before = max(allowance - case.used, 0)
        included = incident and entitled and left_before > 0
        # An incident the plan does not cover, or beyond the allowance, is a single incident;
        # a non-incident question the plan does not cover (none today) is priced the same way.
        billable = (incident and not included) or not entitled
        price = self.single_incident_price(case.severity, case.accepted) if billable else ZERO
        included_left = left_before - 1 if included else left_before
        target, clock = self.first_response_target(plan, case.severity, case.language, billable)
        return Assessment(
            entitled=entitled,
            incident=incident,
            included=included,
            billable=billable,
            price_eur=price,
            included_left=included_left,
            target_hours=target,
            clock=clock,
            due=self.due(case.accepted, target, clock),
        )

    def first_response_target(
        self, plan: PlanRule | None, severity: Severity, language: Language, billable: bool
    ) -> tuple[Decimal, Clock]:
        """Target hours and clock, per the spec's "First-response deadline"."""
        rule = self.policy.severities[severity]
        if plan is None or billable:
            target = rule.target_hours
        else:
            target = max(plan.response_hours, rule.target_hours)
        around = (
            rule.around_the_clock
            and language in self.policy.languages.around_the_clock
            and (billable or (plan is not None and plan.around_the_clock))
        )
        return target, Clock.AROUND_THE_CLOCK if around else Clock.BUSINESS_HOURS

    def due(self, accepted: datetime, target_hours: Decimal, clock: Clock) -> datetime:
        """The first-response deadline (UTC) for a clock started at `accepted`."""
        span = timedelta(seconds=float(target_hours * 3600))
        if clock is Clock.AROUND_THE_CLOCK:
            return accepted.astimezone(UTC) + span
        return self.calendar.add_open_time(accepted, span)
