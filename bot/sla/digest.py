"""The managers' daily digest: yesterday's breaches, today's risks, money and triage agreement.

Pure: it gets plain facts about tickets and callbacks and the day it reports on.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True, slots=True)
class TicketFacts:
    """What the digest needs of one ticket (instants in UTC)."""

    number: int
    product: str
    plan: str | None
    status: str
    created_at: datetime
    due_at: datetime | None
    first_response_at: datetime | None
    billable: bool
    consent: bool | None
    price_cents: int
    included: bool
    confirmed_at: datetime | None
    agreed: bool | None  # the agent kept the model's department and severity; None: no model
    breached_at: datetime | None = None  # the deadline passed unanswered (recorded then)


@dataclass(frozen=True)
class Digest:
    """One day's figures; `line` is "product/plan"."""

    day: date
    breached: list[int]
    at_risk: list[int]  # the most urgent first
    overdue: list[int] = field(default_factory=list)  # breached and still unanswered, now
    breached_by_line: dict[str, int] = field(default_factory=dict)
    at_risk_by_line: dict[str, int] = field(default_factory=dict)
    billed: int = 0
    billed_cents: int = 0
    included_used: int = 0
    callbacks_booked: int = 0
    confirmed: int = 0
    agreed: int = 0

    @property
    def agreement(self) -> float | None:
        """Share of confirmed triages where the agent kept the model's answer."""
        return self.agreed / self.confirmed if self.confirmed else None


def day_bounds(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """[start, end) of a local calendar day, in UTC."""
    start = datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)
    return start, end


def next_run(at: time, zone: ZoneInfo, now: datetime) -> datetime:
    """The next instant (UTC) at local time `at`, strictly after `now`."""
    local = now.astimezone(zone)
    candidate = datetime.combine(local.date(), at, tzinfo=zone)
    if candidate.astimezone(UTC) <= now:
        candidate = datetime.combine(local.date() + timedelta(days=1), at, tzinfo=zone)
    return candidate.astimezone(UTC)


def _line(t: TicketFacts) -> str:
    return f"{t.product}/{t.plan or 'none'}"


def build(day: date, zone: ZoneInfo, now: datetime, tickets: list[TicketFacts],
          callbacks_booked: int) -> Digest:
    """The digest about `day` (normally yesterday), read at `now`."""
    start, end = day_bounds(day, zone)
    _, today_end = day_bounds(now.astimezone(zone).date(), zone)
    breached = [t for t in tickets if t.due_at is not None and start <= t.due_at < end
                and (t.first_response_at is None or t.first_response_at > t.due_at)]
    unanswered = [t for t in tickets if t.due_at is not None and t.first_response_at is None
                  and t.status in ("open", "waiting_customer")]
    # a recorded breach, or a deadline already past (its breach reminder not yet run)
    overdue = [t for t in unanswered if t.breached_at is not None
               or (t.due_at is not None and t.due_at <= now)]
    at_risk = [t for t in unanswered if t not in overdue and t.due_at is not None
               and t.due_at < today_end]
    created = [t for t in tickets if start <= t.created_at < end]
    billed = [t for t in created if t.billable and t.consent]
    confirmed = [t for t in tickets if t.confirmed_at is not None and start <= t.confirmed_at < end
                 and t.agreed is not None]
    return Digest(
        day=day, breached=sorted(t.number for t in breached),
        at_risk=[t.number for t in sorted(at_risk, key=lambda t: (t.due_at or now, t.number))],
        overdue=[t.number for t in sorted(overdue, key=lambda t: (t.due_at or now, t.number))],
        breached_by_line=dict(sorted(Counter(_line(t) for t in breached).items())),
        at_risk_by_line=dict(sorted(Counter(_line(t) for t in at_risk).items())),
        billed=len(billed), billed_cents=sum(t.price_cents for t in billed),
        included_used=sum(1 for t in created if t.included),
        callbacks_booked=callbacks_booked, confirmed=len(confirmed),
        agreed=sum(1 for t in confirmed if t.agreed),
    )


def render(d: Digest) -> str:
    """The digest as plain text for mail and Slack."""
    def by_line(counts: dict[str, int]) -> str:
        return ", ".join(f"{k} {v}" for k, v in counts.items()) or "-"

    rate = (f"{d.agreement:.0%} of {d.confirmed}" if d.agreement is not None
            else "no triage confirmed")
    return "\n".join([
        f"Support digest for {d.day:%a %d %b %Y}",
        f"Breached that day: {len(d.breached)} ({by_line(d.breached_by_line)})"
        + (f": {', '.join(f'NT#{n}' for n in d.breached)}" if d.breached else ""),
        f"Breached, still unanswered: {len(d.overdue)}"
        + (f": {', '.join(f'NT#{n}' for n in d.overdue)}" if d.overdue else ""),
        f"At risk today (unanswered, due by tonight): {len(d.at_risk)} "
        f"({by_line(d.at_risk_by_line)})"
        + (f": {', '.join(f'NT#{n}' for n in d.at_risk)}" if d.at_risk else ""),
        f"Incidents billed: {d.billed} (EUR {d.billed_cents / 100:.2f} + VAT); "
        f"included incidents used: {d.included_used}",
        f"Callbacks booked: {d.callbacks_booked}",
        f"Agents kept the model's triage: {rate}",
    ])
