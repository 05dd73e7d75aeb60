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
    WEB = "web"


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
    stated_severity: Severity | None = None  # what the customer wrote ("Priorität: hoch"), if any


@dataclass(frozen=True)
class IncomingMessage:
    """A customer's message from any channel, as the conversation use case needs it.

    The channel adapter fills it in: MIME for mail, an event for Slack. `thread_refs` are the
    external ids this message answers (newest first); `trusted` says the sender is proven to
    belong to the customer (DKIM for mail; a mapped Slack channel), which money depends on.
    """

    channel: Channel
    external_id: str  # Message-ID, or Slack channel:ts
    thread_refs: tuple[str, ...]
    ticket_hint: int | None  # a ticket number the sender names ([NT#n] in a mail subject)
    sender: str  # mail address, or Slack user id
    sender_name: str
    subject: str  # as sent (may be empty)
    topic: str  # the ticket's subject if this opens one
    text: str  # the new text (quotes removed)
    requester: str  # where answers go: an address, or a Slack channel:thread
    may_open_ticket: bool
    may_answer: bool
    trusted: bool
    trust_reason: str = ""
    quiet_reason: str = ""  # why no automatic answer, when may_answer is False
    flags: tuple[str, ...] = ()  # hints for the agents the adapter found (not decisions)
    refs_signed: bool = True  # the thread_refs are covered by what made the sender trusted


@dataclass(frozen=True)
class Choice:
    """An answer a customer can give with one click (a Slack button); mail names it in the text."""

    action: str  # what the click does, e.g. "callback_book"
    value: str  # what it applies to, the ticket number first: "12:2026-11-23T13:00:00+00:00"
    label: str  # in the customer's language
