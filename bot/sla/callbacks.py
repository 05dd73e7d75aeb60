"""Which callback slots a customer may be offered and book: capacity, lead time, priority.

Pure. A slot is `slot_minutes` long, aligned to the day's opening, inside open time, and starts
at least `min_lead_minutes` after `now`. Each slot takes as many bookings as there are callback
agents. Priority processing (Professional) comes first when slots are scarce: the first
`priority_first_slots` slots of each open day are held for priority plans until
`priority_release_hours` before they start; then anyone may book them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta

from bot.sla.clock import BusinessCalendar
from bot.sla.rules import CallbackRule


def _slots(calendar: BusinessCalendar, rule: CallbackRule,
           since: datetime) -> Iterator[tuple[datetime, int]]:
    """(start, index within its day) of every slot starting at or after `since`, in order."""
    length = timedelta(minutes=rule.slot_minutes)
    day = since.astimezone(calendar.zone).date()
    for _ in range(366):
        if calendar.is_open_day(day):
            start, end = calendar.window(day)
            index, slot = 0, start
            while slot + length <= end:
                if slot >= since:
                    yield slot, index
                index, slot = index + 1, slot + length
        day += timedelta(days=1)


def held_for_priority(rule: CallbackRule, *, slot: datetime, index: int, now: datetime) -> bool:
    """Whether a slot is still reserved for priority plans at `now`."""
    release = slot - timedelta(hours=float(rule.priority_release_hours))
    return index < rule.priority_first_slots and now < release


def offer(calendar: BusinessCalendar, rule: CallbackRule, *, now: datetime,
          booked: Mapping[datetime, int], priority: bool,
          count: int | None = None) -> list[datetime]:
    """The earliest free slots (UTC) this customer may book, `rule.offer` of them by default."""
    wanted = rule.offer if count is None else count
    taken = {slot.astimezone(UTC): n for slot, n in booked.items()}
    found: list[datetime] = []
    earliest = now.astimezone(UTC) + timedelta(minutes=rule.min_lead_minutes)
    for slot, index in _slots(calendar, rule, earliest):
        if len(found) >= wanted:
            break
        if taken.get(slot, 0) >= rule.agents:
            continue
        if not priority and held_for_priority(rule, slot=slot, index=index, now=now):
            continue
        found.append(slot)
    return found


def bookable(calendar: BusinessCalendar, rule: CallbackRule, *, now: datetime, slot: datetime,
             booked: int, priority: bool) -> bool:
    """Whether this customer may book `slot` now (capacity is re-checked by the store)."""
    earliest = now.astimezone(UTC) + timedelta(minutes=rule.min_lead_minutes)
    for start, index in _slots(calendar, rule, slot.astimezone(UTC)):
        if start != slot.astimezone(UTC) or start < earliest or booked >= rule.agents:
            return False
        return priority or not held_for_priority(rule, slot=start, index=index, now=now)
    return False
