"""Reminder due times on the ticket's own clock: open time, nights, holidays, DST, pauses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bot
from bot.config import load_policy
from bot.domain import Audience, Clock, Severity
from bot.sla.clock import BusinessCalendar
from bot.sla.engine import Engine
from bot.sla.reminders import (
    Due,
    TicketClock,
    clock_elapsed,
    deadline,
    next_expected,
    plan,
    point,
    still_to_send,
)
from bot.sla.rules import Policy, PolicyError, RemindersRule, parse_policy

BERLIN = ZoneInfo("Europe/Berlin")
DEFAULT_POLICY = Path(bot.__file__).with_name("policy.toml")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=BERLIN)


def local(moment: datetime) -> str:
    return moment.astimezone(BERLIN).strftime("%a %Y-%m-%d %H:%M:%S")


@pytest.fixture(scope="module")
def calendar(engine: Engine) -> BusinessCalendar:
    return engine.calendar


@pytest.fixture(scope="module")
def rules(policy: Policy) -> RemindersRule:
    return policy.reminders


def business(accepted: str, target: str = "8", paused: timedelta = timedelta(0)) -> TicketClock:
    return TicketClock(accepted_at=at(accepted), target_hours=Decimal(target),
                       clock=Clock.BUSINESS_HOURS, paused=paused)


def by_kind(due: list[Due]) -> dict[tuple[str, str], str]:
    return {(d.kind, d.audience.value): local(d.due_at) for d in due}


def test_the_shipped_policy_lists_the_reminders_of_the_issue(
    calendar: BusinessCalendar, rules: RemindersRule
) -> None:
    # Monday 14:00, severity C, 8 h of open time: the 75 % point would be 20:00 wall-clock
    due = plan(calendar, rules, business("2026-11-23 14:00"), Severity.C)
    assert by_kind(due) == {
        ("agents_50", "agents"): "Tue 2026-11-24 08:00:00",  # 4 h = 18:00 sharp: next opening
        ("agents_75", "agents"): "Tue 2026-11-24 10:00:00",  # not 20:00 (zammad #4432)
        ("agents_90", "agents"): "Tue 2026-11-24 11:12:00",
        ("breach", "agents"): "Tue 2026-11-24 12:00:00",
        ("breach", "managers"): "Tue 2026-11-24 12:00:00",
        ("status_note", "customer"): "Tue 2026-11-24 12:00:00",
    }


def test_reminders_are_earliest_first(calendar: BusinessCalendar, rules: RemindersRule) -> None:
    due = plan(calendar, rules, business("2026-11-23 14:00"), Severity.C)
    assert [d.due_at for d in due] == sorted(d.due_at for d in due)


def test_severity_a_warns_the_managers_at_75_percent(
    calendar: BusinessCalendar, rules: RemindersRule
) -> None:
    ticket = TicketClock(accepted_at=at("2026-11-23 10:00"), target_hours=Decimal(2),
                         clock=Clock.AROUND_THE_CLOCK)
    due = by_kind(plan(calendar, rules, ticket, Severity.A))
    assert due[("managers_75", "managers")] == "Mon 2026-11-23 11:30:00"


def test_severity_b_has_no_early_managers_warning(
    calendar: BusinessCalendar, rules: RemindersRule
) -> None:
    due = by_kind(plan(calendar, rules, business("2026-11-23 10:00", "4"), Severity.B))
    assert ("managers_75", "managers") not in due


def test_a_holiday_is_skipped(calendar: BusinessCalendar, rules: RemindersRule) -> None:
    # Thursday 24 Dec 16:00: two open hours, then Christmas (Fri), the weekend; Monday 28th
    due = by_kind(plan(calendar, rules, business("2026-12-24 16:00"), Severity.C))
    assert due[("agents_50", "agents")] == "Mon 2026-12-28 10:00:00"


def test_the_night_is_skipped_by_an_around_the_clock_ticket_only(
    calendar: BusinessCalendar, rules: RemindersRule
) -> None:
    ticket = TicketClock(accepted_at=at("2026-11-23 17:00"), target_hours=Decimal(2),
                         clock=Clock.AROUND_THE_CLOCK)
    due = by_kind(plan(calendar, rules, ticket, Severity.A))
    assert due[("agents_90", "agents")] == "Mon 2026-11-23 18:48:00"


def test_a_dst_change_keeps_local_open_hours(
    calendar: BusinessCalendar, rules: RemindersRule
) -> None:
    # Friday 23 Oct 2026 16:00 CEST; clocks go back on Sunday; Monday is CET
    due = plan(calendar, rules, business("2026-10-23 16:00"), Severity.C)
    agents_75 = next(d for d in due if d.kind == "agents_75")
    assert agents_75.due_at == datetime(2026, 10, 26, 11, 0, tzinfo=UTC)  # 12:00 CET


def test_an_around_the_clock_window_across_dst_is_real_time(calendar: BusinessCalendar) -> None:
    ticket = TicketClock(accepted_at=at("2026-10-25 01:30"), target_hours=Decimal(2),
                         clock=Clock.AROUND_THE_CLOCK)  # 01:30 CEST; at 03:00 it is 02:00 again
    assert deadline(calendar, ticket) == datetime(2026, 10, 25, 1, 30, tzinfo=UTC)


def test_fractional_hours_give_seconds(calendar: BusinessCalendar, rules: RemindersRule) -> None:
    ticket = TicketClock(accepted_at=datetime(2026, 11, 23, 12, 0, tzinfo=UTC),
                         target_hours=Decimal("0.01"), clock=Clock.AROUND_THE_CLOCK)
    due = {(d.kind, d.audience.value): d.due_at for d in plan(calendar, rules, ticket,
                                                               Severity.A)}
    assert due[("agents_50", "agents")] == datetime(2026, 11, 23, 12, 0, 18, tzinfo=UTC)
    assert due[("breach", "managers")] == datetime(2026, 11, 23, 12, 0, 36, tzinfo=UTC)


def test_a_sub_minute_business_window_crosses_the_night(calendar: BusinessCalendar) -> None:
    # 36 s of open time from 17:59:50: 10 s today, 26 s from 08:00 tomorrow
    ticket = business("2026-11-23 17:59:50", "0.01")
    assert local(deadline(calendar, ticket)) == "Tue 2026-11-24 08:00:26"


def test_a_pause_pushes_every_point_back_by_the_open_time_paused(
    calendar: BusinessCalendar, rules: RemindersRule
) -> None:
    # paused from Monday 17:00 to Tuesday 09:00: two open hours (17-18, 8-9) of waiting
    paused = clock_elapsed(calendar, Clock.BUSINESS_HOURS, at("2026-11-23 17:00"),
                           at("2026-11-24 09:00"))
    assert paused == timedelta(hours=2)
    ticket = business("2026-11-23 10:00", paused=paused)
    due = by_kind(plan(calendar, rules, ticket, Severity.C))
    assert due[("agents_50", "agents")] == "Mon 2026-11-23 16:00:00"  # 4 h + 2 h paused
    assert due[("breach", "managers")] == "Tue 2026-11-24 10:00:00"  # was Mon 18:00


def test_the_status_note_promises_half_a_window_past_the_deadline(
    calendar: BusinessCalendar, rules: RemindersRule
) -> None:
    assert local(next_expected(calendar, rules, business("2026-11-23 14:00"))) == \
        "Tue 2026-11-24 16:00:00"


def test_re_planning_skips_what_was_sent_and_what_has_passed(
    calendar: BusinessCalendar, rules: RemindersRule
) -> None:
    # severity raised to A at 11:20: the 50 % point (11:00) is past, agents_75 was sent already
    ticket = TicketClock(accepted_at=at("2026-11-23 10:00"), target_hours=Decimal(2),
                         clock=Clock.AROUND_THE_CLOCK)
    due = plan(calendar, rules, ticket, Severity.A)
    kept = still_to_send(due, sent={("agents_75", "agents")}, now=at("2026-11-23 11:20"))
    assert sorted((d.kind, d.audience.value) for d in kept) == [
        ("agents_90", "agents"), ("breach", "agents"), ("breach", "managers"),
        ("managers_75", "managers"), ("status_note", "customer")]


def test_an_overdue_breach_is_still_reported(calendar: BusinessCalendar,
                                             rules: RemindersRule) -> None:
    ticket = TicketClock(accepted_at=at("2026-11-23 10:00"), target_hours=Decimal(2),
                         clock=Clock.AROUND_THE_CLOCK)
    kept = still_to_send(plan(calendar, rules, ticket, Severity.B), sent=set(),
                         now=at("2026-11-23 15:00"))
    assert sorted({d.kind for d in kept}) == ["breach", "status_note"]


@settings(max_examples=300, deadline=None)
@given(
    start=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31)),
    target=st.decimals(min_value=Decimal("0.01"), max_value=Decimal(40), places=2),
    percent=st.decimals(min_value=Decimal(1), max_value=Decimal("99.9"), places=1),
)
def test_business_reminders_before_the_deadline_fall_in_open_time(
    engine: Engine, start: datetime, target: Decimal, percent: Decimal
) -> None:
    ticket = TicketClock(accepted_at=start.replace(tzinfo=BERLIN), target_hours=target,
                         clock=Clock.BUSINESS_HOURS)
    moment = point(engine.calendar, ticket, percent)
    assert engine.calendar.is_open(moment)
    assert moment <= deadline(engine.calendar, ticket)


def test_a_kind_named_twice_is_refused() -> None:
    text = DEFAULT_POLICY.read_text(encoding="utf-8").replace('kind = "agents_75"',
                                                              'kind = "agents_50"')
    with pytest.raises(PolicyError, match="names kind agents_50 twice"):
        parse_policy(text)


def test_a_percentage_above_100_is_refused() -> None:
    text = DEFAULT_POLICY.read_text(encoding="utf-8").replace("percent = 90", "percent = 120")
    with pytest.raises(PolicyError, match=r"reminders\.rules\.3\.percent"):
        parse_policy(text)


def test_an_unknown_audience_is_refused() -> None:
    text = DEFAULT_POLICY.read_text(encoding="utf-8").replace('audiences = ["agents"]',
                                                              'audiences = ["everyone"]', 1)
    with pytest.raises(PolicyError, match=r"reminders\.rules\.0\.audiences"):
        parse_policy(text)


def test_the_demo_policy_has_a_36_second_severity_a_window() -> None:
    demo = load_policy(Path(bot.__file__).with_name("policy-demo.toml"))
    ticket = TicketClock(accepted_at=datetime(2026, 11, 23, 12, tzinfo=UTC),
                         target_hours=demo.severities[Severity.A].target_hours,
                         clock=Clock.AROUND_THE_CLOCK)
    assert deadline(Engine(demo).calendar, ticket) - ticket.accepted_at == timedelta(seconds=36)


def test_audiences_are_the_three_of_the_issue() -> None:
    assert {a.value for a in Audience} == {"agents", "managers", "customer"}
