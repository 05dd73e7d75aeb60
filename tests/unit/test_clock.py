"""The business-hours clock: open time, holidays, DST, and properties of adding open time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.sla.clock import BusinessCalendar
from bot.sla.engine import Engine

BERLIN = ZoneInfo("Europe/Berlin")
TICK = timedelta(microseconds=1)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=BERLIN)


@pytest.fixture(scope="module")
def calendar(engine: Engine) -> BusinessCalendar:
    return engine.calendar


@pytest.mark.parametrize(
    ("moment", "is_open"),
    [
        ("2026-11-23 07:59:59", False),
        ("2026-11-23 08:00:00", True),   # spec: open time is [08:00, 18:00)
        ("2026-11-23 17:59:59", True),
        ("2026-11-23 18:00:00", False),  # 18:00:00 sharp is outside business hours
        ("2026-11-21 10:00:00", False),  # Saturday
        ("2026-11-22 10:00:00", False),  # Sunday
        ("2026-01-01 10:00:00", False),  # New Year's Day
        ("2026-05-14 10:00:00", False),  # Ascension Day
        ("2026-05-25 10:00:00", False),  # Whit Monday
        ("2026-12-25 10:00:00", False),
        ("2026-12-26 10:00:00", False),  # a Saturday anyway, and a holiday
        ("2027-12-27 10:00:00", True),   # Monday after Christmas 2027: open
        ("2026-01-06 10:00:00", True),   # Epiphany is regional (BW, BY, ST), not nationwide
    ],
)
def test_open_time(calendar: BusinessCalendar, moment: str, is_open: bool) -> None:
    assert calendar.is_open(at(moment)) is is_open


def test_regional_holidays_follow_the_setting(policy: object) -> None:
    from bot.sla.rules import Policy

    assert isinstance(policy, Policy)
    bavaria = policy.business_hours.model_copy(update={"holiday_subdivision": "BY"})
    assert not BusinessCalendar(bavaria).is_open(at("2026-01-06 10:00"))


def test_open_windows_are_utc_and_follow_dst(calendar: BusinessCalendar) -> None:
    winter = calendar.window(at("2026-03-27 00:00").date())
    summer = calendar.window(at("2026-03-30 00:00").date())
    assert winter[0] == datetime(2026, 3, 27, 7, tzinfo=UTC)
    assert summer[0] == datetime(2026, 3, 30, 6, tzinfo=UTC)


def test_next_opening(calendar: BusinessCalendar) -> None:
    assert calendar.next_opening(at("2026-11-20 18:00")) == at("2026-11-23 08:00")
    assert calendar.next_opening(at("2026-11-23 09:30")) == at("2026-11-23 09:30")


instants = st.datetimes(
    min_value=datetime(2024, 1, 1), max_value=datetime(2030, 12, 31), timezones=st.just(UTC)
)
durations = st.integers(min_value=1, max_value=60 * 60 * 30).map(lambda s: timedelta(seconds=s))


@settings(max_examples=300, deadline=None)
@given(start=instants, duration=durations)
def test_due_is_never_in_closed_hours(
    calendar: BusinessCalendar, start: datetime, duration: timedelta
) -> None:
    due = calendar.add_open_time(start, duration)
    # the last instant before the deadline is open time; the deadline itself may be closing
    assert calendar.is_open(due - TICK)
    assert calendar.open_time_between(start, due) == duration


@settings(max_examples=300, deadline=None)
@given(start=instants, first=durations, more=durations)
def test_more_open_time_never_gives_an_earlier_due(
    calendar: BusinessCalendar, start: datetime, first: timedelta, more: timedelta
) -> None:
    assert calendar.add_open_time(start, first + more) >= calendar.add_open_time(start, first)


@settings(max_examples=200, deadline=None)
@given(start=instants, later=durations, duration=durations)
def test_a_later_start_never_gives_an_earlier_due(
    calendar: BusinessCalendar, start: datetime, later: timedelta, duration: timedelta
) -> None:
    assert calendar.add_open_time(start + later, duration) >= calendar.add_open_time(
        start, duration
    )
