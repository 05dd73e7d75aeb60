"""Monthly allowances besides incidents: Premier escalations, callbacks, and callback slots."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.domain import Severity
from bot.sla.clock import BusinessCalendar
from bot.sla.rules import PlanRule, Policy


def usage_month(now: datetime, zone: ZoneInfo) -> str:
    """The allowance month of `now` ("2026-11"), a calendar month in the policy's time zone."""
    return now.astimezone(zone).strftime("%Y-%m")


@dataclass(frozen=True, slots=True)
class Allowance:
    """How many of a monthly allowance a plan has, and how many are left."""

    total: int
    used: int

    @property
    def left(self) -> int:
        return max(self.total - self.used, 0)


def premier_escalation(
    policy: Policy, plan: PlanRule | None, severity: Severity, used: int
) -> Allowance | None:
    """The Premier Support escalation allowance, or None if this ticket cannot be escalated."""
    if plan is None or plan.premier_escalations == 0:
        return None
    if severity not in policy.premier.severities:
        return None
    return Allowance(total=plan.premier_escalations, used=used)


def callbacks(plan: PlanRule | None, used: int) -> Allowance:
    """The callback (or chat) allowance of the month."""
    return Allowance(total=plan.callbacks if plan is not None else 0, used=used)


def free_slots(
    calendar: BusinessCalendar,
    *,
    now: datetime,
    slot_minutes: int,
    booked: Collection[datetime],
    count: int,
) -> list[datetime]:
    """The earliest `count` free slot starts (UTC) in business hours after `now`.

    Slots are aligned to the opening time of each day; a slot must end by closing time and
    start strictly after `now`.
    """
    length = timedelta(minutes=slot_minutes)
    taken = {slot.astimezone(UTC) for slot in booked}
    found: list[datetime] = []
    day = now.astimezone(calendar.zone).date()
    for _ in range(366):  # a year of days is far more than any booking horizon
        if calendar.is_open_day(day):
            start, end = calendar.window(day)
            slot = start
            while slot + length <= end and len(found) < count:
                if slot > now and slot not in taken:
                    found.append(slot)
                slot += length
        if len(found) >= count:
            break
        day += timedelta(days=1)
    return found
