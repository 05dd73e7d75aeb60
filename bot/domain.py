"""Plain domain vocabulary shared by the policy, the store and the adapters."""

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
    AWAITING_CONSENT = "awaiting_consent"
    OPEN = "open"
    ANSWERED = "answered"
    CLOSED = "closed"
    DECLINED = "declined"
