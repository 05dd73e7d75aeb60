"""Callback slots: business hours, lead time, capacity per slot, and priority plans first."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from bot.sla.callbacks import bookable, offer
from bot.sla.engine import Engine
from bot.sla.rules import CallbackRule, Policy

BERLIN = ZoneInfo("Europe/Berlin")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=BERLIN)


def local(slots: list[datetime]) -> list[str]:
    return [s.astimezone(BERLIN).strftime("%a %H:%M") for s in slots]


@pytest.fixture(scope="module")
def rule(policy: Policy) -> CallbackRule:
    # two agents; the first slot of each day is held for priority plans until 24 h before
    return policy.callbacks.model_copy(update={
        "agents": 2, "offer": 3, "min_lead_minutes": 60, "priority_first_slots": 1,
        "priority_release_hours": 24})


def test_the_shipped_policy_states_the_priority_rule(policy: Policy) -> None:
    assert (policy.callbacks.priority_first_slots, policy.callbacks.priority_release_hours) == \
        (1, 24)


def test_three_slots_at_least_an_hour_ahead(engine: Engine, rule: CallbackRule) -> None:
    slots = offer(engine.calendar, rule, now=at("2026-11-23 10:10"), booked={}, priority=False)
    assert local(slots) == ["Mon 11:30", "Mon 12:00", "Mon 12:30"]


def test_slots_skip_the_night_and_end_by_closing(engine: Engine, rule: CallbackRule) -> None:
    slots = offer(engine.calendar, rule, now=at("2026-11-23 16:20"), booked={}, priority=True)
    assert local(slots) == ["Mon 17:30", "Tue 08:00", "Tue 08:30"]


def test_a_full_slot_is_not_offered(engine: Engine, rule: CallbackRule) -> None:
    full = {at("2026-11-23 11:30"): 2, at("2026-11-23 12:00"): 1}
    slots = offer(engine.calendar, rule, now=at("2026-11-23 10:10"), booked=full,
                  priority=False)
    assert local(slots) == ["Mon 12:00", "Mon 12:30", "Mon 13:00"]


def test_the_first_slot_of_a_day_is_held_for_priority_plans(engine: Engine,
                                                             rule: CallbackRule) -> None:
    # Monday 16:20: Tuesday 08:00 is less than 24 h ahead and free for all; Wednesday 08:00
    # is still held for priority plans
    now = at("2026-11-23 16:20")
    standard = offer(engine.calendar, rule, now=now, booked={}, priority=False, count=40)
    professional = offer(engine.calendar, rule, now=now, booked={}, priority=True, count=40)
    assert sorted(set(local(professional)) - set(local(standard))) == ["Wed 08:00"]


def test_a_held_slot_is_released_24_hours_before(engine: Engine, rule: CallbackRule) -> None:
    slot = at("2026-11-25 08:00")
    assert bookable(engine.calendar, rule, now=at("2026-11-24 08:00"), slot=slot, booked=0,
                    priority=False)


def test_a_held_slot_is_refused_earlier(engine: Engine, rule: CallbackRule) -> None:
    slot = at("2026-11-25 08:00")
    assert not bookable(engine.calendar, rule, now=at("2026-11-24 07:59"), slot=slot, booked=0,
                        priority=False)


@pytest.mark.parametrize(("slot", "booked"), [
    ("2026-11-23 10:30", 0),  # less than an hour ahead
    ("2026-11-23 11:15", 0),  # not a slot start
    ("2026-11-23 17:45", 0),  # would end after closing
    ("2026-11-28 10:00", 0),  # Saturday
    ("2026-11-23 12:00", 2),  # both agents booked
])
def test_what_cannot_be_booked(engine: Engine, rule: CallbackRule, slot: str,
                               booked: int) -> None:
    assert not bookable(engine.calendar, rule, now=at("2026-11-23 10:10"), slot=at(slot),
                        booked=booked, priority=True)
