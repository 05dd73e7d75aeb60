"""Premier escalations, callbacks and callback slots (spec "Telephone callbacks" and M365)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from bot.domain import Severity
from bot.sla.allowances import callbacks, free_slots, premier_escalation, usage_month
from bot.sla.engine import Engine

BERLIN = ZoneInfo("Europe/Berlin")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=BERLIN)


def test_premier_escalations_m365_standard_and_professional(engine: Engine) -> None:
    policy = engine.policy
    standard = policy.plan("m365", "standard")
    professional = policy.plan("m365", "professional")
    basic_plus = policy.plan("m365", "basic-plus-advanced")
    allowance = premier_escalation(policy, standard, Severity.B, used=0)
    assert allowance is not None and allowance.left == 1
    spent = premier_escalation(policy, standard, Severity.C, used=1)
    assert spent is not None and spent.left == 0
    pro = premier_escalation(policy, professional, Severity.C, used=1)
    assert pro is not None and pro.left == 1
    assert premier_escalation(policy, professional, Severity.A, used=0) is None  # B or C only
    assert premier_escalation(policy, basic_plus, Severity.B, used=0) is None
    assert premier_escalation(policy, policy.plan("dehosted", "professional"), Severity.B,
                              used=0) is None


def test_callbacks_per_plan(engine: Engine) -> None:
    policy = engine.policy
    expected = {("dehosted", "standard"): 5, ("dehosted", "professional"): 25,
                ("m365", "standard"): 5, ("m365", "professional"): 10,
                ("dehosted", "basic-plus"): 0, ("m365", "basic-plus-advanced"): 0}
    for (product, plan), total in expected.items():
        assert callbacks(policy.plan(product, plan), used=0).total == total
    assert callbacks(policy.plan("m365", "professional"), used=12).left == 0
    assert callbacks(None, used=0).left == 0


def test_slots_are_30_minutes_in_business_hours_earliest_first(engine: Engine) -> None:
    slots = free_slots(engine.calendar, now=at("2026-11-20 16:40"), slot_minutes=30,
                       booked=[at("2026-11-20 17:00")], count=4)
    assert [s.astimezone(BERLIN).strftime("%a %H:%M") for s in slots] == [
        "Fri 17:30", "Mon 08:00", "Mon 08:30", "Mon 09:00"
    ]


def test_slots_skip_holidays(engine: Engine) -> None:
    slots = free_slots(engine.calendar, now=at("2026-12-24 17:45"), slot_minutes=30, booked=[],
                       count=1)
    assert slots == [at("2026-12-28 08:00")]


def test_usage_month_is_the_berlin_calendar_month() -> None:
    # 30 Nov 23:30 UTC is already 1 December in Berlin
    assert usage_month(datetime.fromisoformat("2026-11-30T23:30:00+00:00"), BERLIN) == "2026-12"
