"""The business-hours calendar: open time, holidays, and adding open time across closed hours.

All instants are aware datetimes; arithmetic happens in UTC, calendar questions in local time,
so DST changes neither stretch nor shrink a deadline.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import holidays

from bot.sla.rules import BusinessHoursRule


class BusinessCalendar:
    """Open hours on open days in one time zone, minus public holidays."""

    def __init__(self, rule: BusinessHoursRule) -> None:
        self.zone = ZoneInfo(rule.timezone)
        self._open = rule.open
        self._close = rule.close
        self._weekdays = rule.weekdays
        self._holidays = holidays.country_holidays(
            rule.holiday_country, subdiv=rule.holiday_subdivision or None
        )

    def is_open_day(self, day: date) -> bool:
        """True for a weekday of business that is not a public holiday."""
        return day.isoweekday() in self._weekdays and day not in self._holidays

    def window(self, day: date) -> tuple[datetime, datetime]:
        """The day's open time [start, end) in UTC (whether or not the day is open)."""
        start = datetime.combine(day, self._open, tzinfo=self.zone).astimezone(UTC)
        end = datetime.combine(day, self._close, tzinfo=self.zone).astimezone(UTC)
        return start, end

    def is_open(self, now: datetime) -> bool:
        """True when `now` falls in open time: [open, close) on an open day."""
        local = now.astimezone(self.zone)
        if not self.is_open_day(local.date()):
            return False
        return self._open <= local.time() < self._close

    def open_windows(self, start: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Open windows in UTC from `start` on, the first one cut at `start`."""
        start = start.astimezone(UTC)
        day = start.astimezone(self.zone).date()
        while True:
            if self.is_open_day(day):
                begin, end = self.window(day)
                if end > start:
                    yield max(begin, start), end
            day += timedelta(days=1)

    def next_opening(self, now: datetime) -> datetime:
        """`now` itself if open, else the start of the next open window (UTC)."""
        begin, _ = next(self.open_windows(now))
        return begin

    def add_open_time(self, start: datetime, duration: timedelta) -> datetime:
        """The instant (UTC) when `duration` of open time has passed since `start`.

        A deadline that falls exactly at closing is that closing time, not the next opening.
        """
        if duration < timedelta(0):
            raise ValueError("duration must not be negative")
        remaining = duration
        for begin, end in self.open_windows(start):
            available = end - begin
            if remaining <= available:
                return begin + remaining
            remaining -= available
        raise AssertionError("unreachable: open_windows never ends")

    def open_time_between(self, start: datetime, end: datetime) -> timedelta:
        """How much open time lies in [start, end)."""
        total = timedelta(0)
        end = end.astimezone(UTC)
        for begin, close in self.open_windows(start):
            if begin >= end:
                break
            total += min(close, end) - begin
        return total

