"""When a ticket's deadline reminders are due, measured on the ticket's own clock.

Pure: no database, no scheduler. A business-hours ticket counts open time only, so a
percentage point is a point in open time; one that would fall exactly on closing time moves
to the next opening (a reminder at 18:00 is a reminder nobody reads before morning). The
deadline itself (100 %) stays where the policy puts it. Time spent waiting on the customer
(`paused`, measured on the same clock) pushes every point back by as much.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from bot.domain import Audience, Clock, Severity
from bot.sla.clock import BusinessCalendar
from bot.sla.rules import RemindersRule

HUNDRED = Decimal(100)


@dataclass(frozen=True, slots=True)
class TicketClock:
    """A ticket's first-response clock: when it started, how long, which kind, time paused."""

    accepted_at: datetime
    target_hours: Decimal
    clock: Clock
    paused: timedelta = timedelta(0)


@dataclass(frozen=True, slots=True)
class Due:
    """One reminder to send: its kind, who gets it, and when (UTC)."""

    kind: str
    audience: Audience
    due_at: datetime
    percent: Decimal


def hours(value: Decimal | float) -> timedelta:
    """A (possibly fractional) number of hours as a timedelta, to the microsecond."""
    return timedelta(microseconds=int(Decimal(str(value)) * 3_600_000_000))


def clock_add(calendar: BusinessCalendar, clock: Clock, start: datetime,
              span: timedelta) -> datetime:
    """The instant (UTC) when `span` of the clock's time has passed since `start`."""
    if clock is Clock.AROUND_THE_CLOCK:
        return start.astimezone(UTC) + span
    return calendar.add_open_time(start, span)


def clock_elapsed(calendar: BusinessCalendar, clock: Clock, start: datetime,
                  end: datetime) -> timedelta:
    """How much of the clock's time lies between `start` and `end` (zero if end <= start)."""
    if end <= start:
        return timedelta(0)
    if clock is Clock.AROUND_THE_CLOCK:
        return end - start
    return calendar.open_time_between(start, end)


def point(calendar: BusinessCalendar, ticket: TicketClock, percent: Decimal) -> datetime:
    """The instant at `percent` of the ticket's window (past 100 % for later points)."""
    span = hours(ticket.target_hours * percent / HUNDRED) + ticket.paused
    at = clock_add(calendar, ticket.clock, ticket.accepted_at, span)
    if percent != HUNDRED and ticket.clock is Clock.BUSINESS_HOURS and not calendar.is_open(at):
        at = calendar.next_opening(at)  # exactly at closing: wait for the next opening
    return at


def deadline(calendar: BusinessCalendar, ticket: TicketClock) -> datetime:
    """The first-response deadline, pauses included."""
    return point(calendar, ticket, HUNDRED)


def next_expected(calendar: BusinessCalendar, rule: RemindersRule,
                  ticket: TicketClock) -> datetime:
    """The time the customer's status note promises: a share of the window past the deadline."""
    return point(calendar, ticket, HUNDRED + rule.status_note_next_percent)


def plan(calendar: BusinessCalendar, rule: RemindersRule, ticket: TicketClock,
         severity: Severity) -> list[Due]:
    """Every reminder the policy lists for this ticket, earliest first."""
    planned = [
        Due(kind=r.kind, audience=audience, due_at=point(calendar, ticket, r.percent),
            percent=r.percent)
        for r in rule.rules
        if severity in r.severities
        for audience in sorted(r.audiences)
    ]
    return sorted(planned, key=lambda d: (d.due_at, d.kind, d.audience))


def still_to_send(planned: list[Due], *, sent: set[tuple[str, str]], now: datetime) -> list[Due]:
    """What to store when a running ticket is re-planned (severity change, end of a pause).

    Reminders already sent are not repeated. A point that now lies in the past is dropped,
    except the deadline (100 %): a breach is always reported, at once if it is overdue.
    """
    return [
        d for d in planned
        if (d.kind, d.audience.value) not in sent and (d.due_at > now or d.percent == HUNDRED)
    ]
