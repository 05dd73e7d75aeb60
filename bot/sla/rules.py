"""The policy data file's schema: parsed and validated once, then read by the engine."""

from __future__ import annotations

import tomllib
import zoneinfo
from datetime import time
from decimal import Decimal
from typing import Annotated, Any

import holidays
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    ValidationError,
    field_validator,
)

from bot.domain import Audience, Department, Language, Severity
from bot.errors import ConfigError


class PolicyError(ConfigError):
    """The policy file is missing, unreadable or wrong; the message names the bad key."""


class _Strict(BaseModel):
    """Unknown keys are errors; counts and switches are strict (`true` is no count, 1 no
    switch), since TOML has real integers and booleans."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class BusinessHoursRule(_Strict):
    timezone: str
    open: time
    close: time
    weekdays: Annotated[
        frozenset[Annotated[int, Field(ge=1, le=7, strict=True)]], Field(min_length=1)
    ]
    holiday_country: str
    holiday_subdivision: str = ""

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value


class CallbackRule(_Strict):
    slot_minutes: Annotated[int, Field(gt=0, le=480, strict=True)]
    agents: Annotated[int, Field(ge=1, strict=True)] = 1  # callback agents: bookings per slot
    offer: Annotated[int, Field(ge=1, le=10, strict=True)] = 3  # slots offered at a time
    min_lead_minutes: Annotated[int, Field(ge=0, strict=True)] = 60
    reminder_minutes: Annotated[int, Field(ge=0, strict=True)] = 15
    # priority processing first: the first N slots of each open day are held for priority
    # plans until this many hours before they start
    priority_first_slots: Annotated[int, Field(ge=0, strict=True)] = 0
    priority_release_hours: Annotated[Decimal, Field(ge=0)] = Decimal(24)


class LanguageRule(_Strict):
    around_the_clock: frozenset[Language]
    supported: frozenset[Language]


class SeverityRule(_Strict):
    target_hours: Annotated[Decimal, Field(gt=0)]
    around_the_clock: StrictBool


class DepartmentRule(_Strict):
    consumes_incident: StrictBool


class PriceTable(_Strict):
    business_hours: dict[Severity, Annotated[Decimal, Field(ge=0, decimal_places=2)]]
    after_hours: dict[Severity, Annotated[Decimal, Field(ge=0, decimal_places=2)]]


class NoPlanRule(_Strict):
    departments: frozenset[Department]


class PlanRule(_Strict):
    name: str
    monthly_price_eur: Annotated[Decimal, Field(ge=0, decimal_places=2)]
    departments: frozenset[Department]
    features: tuple[str, ...] = ()
    response_hours: Annotated[Decimal, Field(gt=0)]
    around_the_clock: StrictBool
    included_incidents: Annotated[int, Field(ge=0, strict=True)]
    callbacks: Annotated[int, Field(ge=0, strict=True)]
    premier_escalations: Annotated[int, Field(ge=0, strict=True)]
    priority: StrictBool


class ProductRule(_Strict):
    name: str
    plans: dict[str, PlanRule]


class PremierRule(_Strict):
    severities: frozenset[Severity]


class ReminderRule(_Strict):
    """One reminder: at `percent` of the first-response window, to these audiences."""

    kind: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=24)]
    percent: Annotated[Decimal, Field(gt=0, le=100)]
    audiences: Annotated[frozenset[Audience], Field(min_length=1)]
    severities: frozenset[Severity] = frozenset(Severity)


class RemindersRule(_Strict):
    """The deadline reminders; an empty list sends none."""

    # the customer's status note names a next expected time this far past the deadline
    status_note_next_percent: Annotated[Decimal, Field(gt=0, le=1000)] = Decimal(50)
    rules: tuple[ReminderRule, ...] = ()


class Policy(_Strict):
    business_hours: BusinessHoursRule
    callbacks: CallbackRule
    languages: LanguageRule
    severities: dict[Severity, SeverityRule]
    departments: dict[Department, DepartmentRule]
    single_incident_price_eur: PriceTable
    no_plan: NoPlanRule
    products: dict[str, ProductRule]
    premier: PremierRule
    reminders: RemindersRule = RemindersRule()

    def plan(self, product: str, plan: str | None) -> PlanRule | None:
        """The plan rule, or None for a customer without a plan on that line."""
        if plan is None:
            return None
        return self.products[product].plans[plan]


def _where(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(top level)"


def _check_complete(policy: Policy) -> None:
    """Cross-field checks pydantic cannot express: every enum member has its rule."""
    for label, present, wanted in (
        ("severities", set(policy.severities), set(Severity)),
        ("departments", set(policy.departments), set(Department)),
        ("single_incident_price_eur.business_hours",
         set(policy.single_incident_price_eur.business_hours), set(Severity)),
        ("single_incident_price_eur.after_hours",
         set(policy.single_incident_price_eur.after_hours), set(Severity)),
    ):
        missing = sorted(str(m) for m in wanted - present)
        if missing:
            raise PolicyError(f"key '{label}' lacks an entry for {', '.join(missing)}")
    if not policy.products:
        raise PolicyError("key 'products' names no product line")
    for key, product in policy.products.items():
        if not product.plans:
            raise PolicyError(f"key 'products.{key}.plans' names no plan")
    kinds = [r.kind for r in policy.reminders.rules]
    twice = sorted({k for k in kinds if kinds.count(k) > 1})
    if twice:
        raise PolicyError(f"key 'reminders.rules' names kind {', '.join(twice)} twice")
    rule = policy.business_hours
    if rule.open >= rule.close:
        raise PolicyError("key 'business_hours.open' must be earlier than 'business_hours.close'")
    try:
        holidays.country_holidays(
            rule.holiday_country, subdiv=rule.holiday_subdivision or None, years=2000
        )
    except NotImplementedError as exc:
        raise PolicyError(
            f"key 'business_hours.holiday_country' / 'holiday_subdivision': {exc}"
        ) from exc


def parse_policy(text: str, source: str = "policy file") -> Policy:
    """Parse and validate the policy TOML text; raise PolicyError naming the bad key."""
    try:
        raw: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"{source} is not valid TOML: {exc}") from exc
    try:
        policy = Policy.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        more = exc.error_count() - 1
        tail = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
        raise PolicyError(
            f"{source}: key '{_where(first['loc'])}': {first['msg']}{tail}"
        ) from exc
    try:
        _check_complete(policy)
    except PolicyError as exc:
        raise PolicyError(f"{source}: {exc}") from exc
    return policy
