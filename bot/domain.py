"""Plain domain vocabulary shared by the policy, the store and the adapters."""

from dataclasses import dataclass
from enum import StrEnum


class Department(StrEnum):
    ACCOUNTING = "accounting"
    TROUBLE = "trouble"
    DEVELOPER = "developer"
    CONSULTING = "consulting"


class Severity(StrEnum):
    A = "A"
    B = "B"
    C = "C"


class Language(StrEnum):
    DE = "de"
    EN = "en"


class Channel(StrEnum):
    EMAIL = "email"
    SLACK = "slack"


class Clock(StrEnum):
    BUSINESS_HOURS = "business_hours"
    AROUND_THE_CLOCK = "around_the_clock"


class TicketStatus(StrEnum):
    NEW = "new"
    UNVERIFIED = "unverified"  # from a customer's address, sender not proven: agents decide
    AWAITING_CONSENT = "awaiting_consent"
    OPEN = "open"
    WAITING_CUSTOMER = "waiting_customer"  # an agent waits on the customer: the clock pauses
    ANSWERED = "answered"
    CLOSED = "closed"
    DECLINED = "declined"


class Audience(StrEnum):
    """Who a deadline reminder goes to."""

    AGENTS = "agents"  # the ticket's triage thread (and its assignee, when there is one)
    MANAGERS = "managers"  # the manager notifier: Slack and mail
    CUSTOMER = "customer"  # the customer's own conversation, in their language


@dataclass(frozen=True)
class Triage:
    """A classifier's suggestion for one message, with calibrated confidences in [0, 1]."""

    department: Department
    severity: Severity
    product: str | None  # a product line key, or None when the text does not say
    confidence: dict[str, float]  # "department", "severity", "product"
    needs_triage: bool  # below the threshold: an agent must decide, not the model
    model: str  # which model (and version) decided
