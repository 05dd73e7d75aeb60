"""The SQLModel tables. Instants are UTC; money is whole cents."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, Index, LargeBinary, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from models.types import UTCDateTime


def _instant(*, nullable: bool = True, index: bool = False) -> Any:
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=nullable, index=index))


class Customer(SQLModel, table=True):
    """A customer organisation."""

    id: int | None = Field(default=None, primary_key=True)
    number: str = Field(unique=True, index=True, max_length=32)
    name: str = Field(max_length=200)
    contact_24_7: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    deactivated_at: datetime | None = _instant()  # by an import: no address, channel, plan


class CustomerEmail(SQLModel, table=True):
    """An email address or a whole domain that belongs to a customer."""

    __tablename__ = "customer_email"
    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    kind: str = Field(max_length=10)  # "address" or "domain"
    value: str = Field(unique=True, max_length=320)  # lower-case


class CustomerSlack(SQLModel, table=True):
    """A Slack workspace and channel where a customer chats with support."""

    __tablename__ = "customer_slack"
    __table_args__ = (UniqueConstraint("team_id", "channel_id"),)
    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    team_id: str = Field(max_length=32)
    channel_id: str = Field(max_length=32)


class CustomerPlan(SQLModel, table=True):
    """The plan a customer holds on one product line (at most one per line)."""

    __tablename__ = "customer_plan"
    customer_id: int = Field(foreign_key="customer.id", primary_key=True)
    product: str = Field(primary_key=True, max_length=32)
    plan: str = Field(max_length=64)


class Usage(SQLModel, table=True):
    """How much of a monthly allowance a customer used: incidents, premier, callbacks."""

    customer_id: int = Field(foreign_key="customer.id", primary_key=True)
    product: str = Field(primary_key=True, max_length=32)
    month: str = Field(primary_key=True, max_length=7)  # "2026-11", Europe/Berlin
    kind: str = Field(primary_key=True, max_length=16)
    used: int = 0


class Ticket(SQLModel, table=True):
    """A support ticket. `number` is what customers see, as [NT#number]."""

    __table_args__ = (
        # the tickets still without their plan terms, which every start looks for: empty once
        # they are kept, so the start reads an empty index, not the whole history
        Index("ix_ticket_terms_missing", "number",
              sqlite_where=text("plan IS NOT NULL AND plan_terms IS NULL"),
              postgresql_where=text("plan IS NOT NULL AND plan_terms IS NULL")),
        # one customer's tickets lately (the flood check per customer)
        Index("ix_ticket_customer_created_at", "customer_id", "created_at"),
    )
    number: int | None = Field(default=None, primary_key=True)
    customer_id: int | None = Field(default=None, foreign_key="customer.id", index=True)
    channel: str = Field(max_length=10)
    subject: str = Field(default="", sa_column=Column(Text, nullable=False))
    product: str = Field(max_length=32)
    plan: str | None = Field(default=None, max_length=64)
    # the plan's terms (its policy rule, JSON) when the ticket was priced: a plan later removed
    # from the policy leaves the ticket its terms
    plan_terms: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    department: str = Field(max_length=16)
    severity: str = Field(max_length=1)
    language: str = Field(max_length=2)
    predicted_department: str | None = Field(default=None, max_length=16)
    predicted_severity: str | None = Field(default=None, max_length=1)
    predicted_product: str | None = Field(default=None, max_length=32)
    predicted_confidence: float | None = None
    stated_severity: str | None = Field(default=None, max_length=1)  # the customer's own word
    model_version: str | None = Field(default=None, max_length=64)
    confirmed_by: str | None = Field(default=None, max_length=64)
    confirmed_at: datetime | None = _instant(index=True)  # the digest reads by these dates
    status: str = Field(max_length=20, index=True)
    entitled: bool = True
    included: bool = False  # used one of the plan's included incidents
    usage_month: str = Field(max_length=7)
    billable: bool = False
    price_cents: int = 0
    consent: bool | None = None
    consent_at: datetime | None = _instant()
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, index=True))
    accepted_at: datetime | None = _instant()
    target_hours: float | None = None
    clock: str | None = Field(default=None, max_length=20)
    due_at: datetime | None = _instant(index=True)
    first_response_at: datetime | None = _instant()
    paused_at: datetime | None = _instant()  # waiting on the customer since (clock stopped)
    paused_seconds: float = 0.0  # clock time spent waiting on the customer, all pauses
    breached_at: datetime | None = _instant()
    closed_at: datetime | None = _instant(index=True)  # retention counts from here
    requester: str = Field(default="", max_length=320)  # where replies go
    linked_ticket: int | None = None  # the closed ticket a follow-up came from
    assignee: str | None = Field(default=None, max_length=32)  # Slack user id ("Assign to me")
    flags: str = Field(default="", max_length=200)  # comma-separated, e.g. sender_unverified


class Message(SQLModel, table=True):
    """One message of a conversation, inbound or outbound, with its raw source.

    Inbound dispositions: pending, ticket, follow-up, auto-reply, bounce, bulk, loop, empty,
    failed; from the Slack triage thread: agent-answer, note, ignored.
    Outbound: queued, sent, failed (after the last retry).
    A message is the same message when its Message-ID and its content digest match; the same
    Message-ID with other content is another message, stored and flagged `message_id_reused`.
    """

    __table_args__ = (
        UniqueConstraint("channel", "direction", "external_id", "digest",
                         name="uq_message_identity"),
        # automatic answers to one address lately (the daily cap)
        Index("ix_message_recipient_created_at", "recipient", "created_at"),
        # what one sender opened lately (the flood and duplicate checks)
        Index("ix_message_sender_created_at", "sender", "created_at"),
        # the messages whose raw bytes are still kept (retention's work list)
        Index("ix_message_raw_kept", "ticket_number", "created_at",
              sqlite_where=text("raw IS NOT NULL"), postgresql_where=text("raw IS NOT NULL")),
    )
    id: int | None = Field(default=None, primary_key=True)
    ticket_number: int | None = Field(default=None, foreign_key="ticket.number", index=True)
    direction: str = Field(max_length=3)  # "in" or "out"
    channel: str = Field(max_length=10)
    external_id: str = Field(max_length=998, index=True)  # Message-ID, or Slack channel:ts
    digest: str = Field(default="", max_length=64)  # content hash, trace headers aside
    flags: str = Field(default="", max_length=200)  # comma-separated, e.g. message_id_reused
    thread_id: str | None = Field(default=None, max_length=998)
    sender: str = Field(default="", max_length=320)
    text: str = Field(default="", sa_column=Column(Text, nullable=False))
    raw: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    recipient: str = Field(default="", max_length=320)
    subject: str = Field(default="", sa_column=Column(Text, nullable=False))
    disposition: str = Field(default="pending", max_length=16, index=True)
    reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    attempts: int = 0
    next_attempt_at: datetime | None = _instant()
    done_at: datetime | None = _instant()
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class CallbackBooking(SQLModel, table=True):
    """A telephone callback slot booked for a ticket (several per slot: one per agent)."""

    __tablename__ = "callback_booking"
    # the callbacks booked on one day (the digest)
    __table_args__ = (Index("ix_callback_booking_created_at", "created_at"),)
    id: int | None = Field(default=None, primary_key=True)
    ticket_number: int = Field(foreign_key="ticket.number", index=True)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    product: str = Field(max_length=32)
    usage_month: str = Field(max_length=7)  # the month whose callback it used
    slot_start: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, index=True))
    slot_end: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    status: str = Field(default="booked", max_length=16)  # booked, cancelled
    phone: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    cancelled_at: datetime | None = _instant()
    # the invitation in the customer's calendar (None: none was sent): its UID, kept when the
    # callback moves, and the SEQUENCE of the last update sent (RFC 5546)
    calendar_uid: str | None = Field(default=None, max_length=200)
    calendar_sequence: int | None = None


class CallbackSlot(SQLModel, table=True):
    """How many bookings a slot holds; taken in one conditional UPDATE (never over capacity)."""

    __tablename__ = "callback_slot"
    slot_start: datetime = Field(sa_column=Column(UTCDateTime(), primary_key=True))
    booked: int = 0


class Reminder(SQLModel, table=True):
    """A deadline reminder to send at `due_at`: claimed once, then marked sent, or cancelled.

    Pending means neither sent nor cancelled. A claim (claimed_at, claimed_by) is taken in one
    conditional UPDATE before sending; a claim left by a process that died is released by the
    next leader. `late`: claimed later than the late threshold after `due_at` (downtime).
    """

    __table_args__ = (Index("ix_reminder_pending", "sent_at", "cancelled_at", "due_at"),)
    id: int | None = Field(default=None, primary_key=True)
    ticket_number: int = Field(foreign_key="ticket.number", index=True)
    kind: str = Field(max_length=32)
    audience: str = Field(default="agents", max_length=16)
    due_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, index=True))
    next_attempt_at: datetime | None = _instant()  # after a failed delivery
    claimed_at: datetime | None = _instant()
    claimed_by: str | None = Field(default=None, max_length=64)
    sent_at: datetime | None = _instant()
    attempts: int = 0
    late: bool = False
    cancelled_at: datetime | None = _instant()
    reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    booking_id: int | None = Field(default=None, foreign_key="callback_booking.id", index=True)


class DigestSent(SQLModel, table=True):
    """The managers' daily digest of one day, sent once (the row is its claim)."""

    __tablename__ = "digest_sent"
    day: str = Field(primary_key=True, max_length=10)  # the local day reported on
    sent_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    sent_by: str = Field(max_length=64)


class AuditEvent(SQLModel, table=True):
    """One state change, who made it and when; never updated, never deleted."""

    __tablename__ = "audit_event"
    __table_args__ = (Index("ix_audit_event_ticket_at", "ticket_number", "at"),)
    id: int | None = Field(default=None, primary_key=True)
    ticket_number: int | None = Field(default=None, foreign_key="ticket.number")
    at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    actor: str = Field(max_length=64)
    action: str = Field(max_length=32)
    detail: str = Field(default="{}", sa_column=Column(Text, nullable=False))


class SlackEvent(SQLModel, table=True):
    """A Slack event id we took, so that Slack's retries and other replicas store it once."""

    __tablename__ = "slack_event"
    event_id: str = Field(primary_key=True, max_length=64)
    message_id: int | None = Field(default=None, foreign_key="message.id")
    received_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class SlackCall(SQLModel, table=True):
    """One Slack Web API call waiting to be made, made, or given up (the durable Slack outbox).

    Status: queued, sent, failed (permanent error or last retry; `reason` says which).
    """

    __tablename__ = "slack_call"
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, max_length=200)  # the caller's idempotency key
    ticket_number: int | None = Field(default=None, foreign_key="ticket.number", index=True)
    method: str = Field(max_length=64)  # chat.postMessage, chat.update, ...
    payload: str = Field(sa_column=Column(Text, nullable=False))  # the call's JSON arguments
    status: str = Field(default="queued", max_length=16, index=True)
    attempts: int = 0
    next_attempt_at: datetime | None = _instant()
    reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    result_ts: str | None = Field(default=None, max_length=32)  # ts of the posted message
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    done_at: datetime | None = _instant()
    # calls of one conversation (a channel's top level, a thread, one message's updates) are
    # made in id order; None: no order (rows queued before 0010_slack_delivery)
    conversation: str | None = Field(default=None, max_length=200, index=True)
    sending_at: datetime | None = _instant()  # set while a call is out: its outcome is unknown


class SeenSignature(SQLModel, table=True):
    """Evidence already used once: a DKIM signature (its b=), or a Message-ID a verified sender
    proved. Seen again, however late, it proves nothing new (a replay)."""

    __tablename__ = "seen_signature"
    key: str = Field(primary_key=True, max_length=64)  # sha256 of "b=..." or "id:sender:mid"
    message_id: int = Field(foreign_key="message.id")  # the mail that showed it first
    seen_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class WebVisitor(SQLModel, table=True):
    """One browser that opened the web chat: its token (hashed), who it is proven to be.

    `verified_by`: "" (nobody), "identity" (a valid portal identity), "code" (the six-digit
    code mailed to `email` was typed). Only a verified visitor's messages are evidence for
    the money rule."""

    __tablename__ = "webchat_visitor"
    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(unique=True, max_length=64)  # sha256 hex of the browser's token
    language: str = Field(default="de", max_length=2)
    name: str = Field(default="", max_length=200)
    email: str = Field(default="", max_length=320)  # given or from the identity; "" if none
    customer_id: int | None = Field(default=None, foreign_key="customer.id", index=True)
    verified_by: str = Field(default="", max_length=16)
    verified_at: datetime | None = _instant()
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    last_seen_at: datetime | None = _instant()


class WebItem(SQLModel, table=True):
    """One line of a web-chat conversation, as the widget shows it.

    direction "in": the visitor wrote it (`kind` "text") or clicked a button (`kind` "choice",
    `action`/`value` set); its pipeline row is `message_id`. direction "out": our answer, a
    status note or an agent's reply (`kind` "text" or "note"), `choices` its buttons as JSON.
    """

    __tablename__ = "webchat_item"
    __table_args__ = (
        # a resent message (same client id) is stored once
        UniqueConstraint("visitor_id", "client_id", name="uq_webchat_item_client"),
        # what the push loop has not sent yet, and the mail fallback's unseen answers
        Index("ix_webchat_item_direction_id", "direction", "id"),
    )
    id: int | None = Field(default=None, primary_key=True)
    visitor_id: int = Field(foreign_key="webchat_visitor.id", index=True)
    direction: str = Field(max_length=3)  # "in" or "out"
    kind: str = Field(default="text", max_length=8)  # text, choice, note
    client_id: str | None = Field(default=None, max_length=64)  # the widget's id ("in" only)
    key: str | None = Field(default=None, unique=True, max_length=200)  # "out": idempotency
    message_id: int | None = Field(default=None, foreign_key="message.id", index=True)
    ticket_number: int | None = Field(default=None, foreign_key="ticket.number", index=True)
    text: str = Field(default="", sa_column=Column(Text, nullable=False))
    choices: str = Field(default="", sa_column=Column(Text, nullable=False))  # JSON list or ""
    action: str = Field(default="", max_length=64)  # a clicked choice's action
    value: str = Field(default="", max_length=200)  # a clicked choice's value
    author: str = Field(default="", max_length=200)  # "out": the agent's name; "" ours
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    seen_at: datetime | None = _instant()  # "out": the widget showed it in an open panel
    mailed_at: datetime | None = _instant()  # "out": sent by mail too (visitor away)


class WebCode(SQLModel, table=True):
    """A six-digit code mailed to an address a visitor gave; typing it verifies the visitor."""

    __tablename__ = "webchat_code"
    id: int | None = Field(default=None, primary_key=True)
    visitor_id: int = Field(foreign_key="webchat_visitor.id", index=True)
    email: str = Field(max_length=320)
    code_hash: str = Field(max_length=64)  # sha256 hex of visitor id, code and a server secret
    tries_left: int = 5
    expires_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    used_at: datetime | None = _instant()
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class WebIdentityUse(SQLModel, table=True):
    """A portal identity's id (its `jti`), bound to the first visitor that showed it: shown by
    another visitor it proves nothing (a replay)."""

    __tablename__ = "webchat_identity"
    jti: str = Field(primary_key=True, max_length=64)
    visitor_id: int = Field(foreign_key="webchat_visitor.id")
    expires_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    seen_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
