"""What a manager alert says: ticket, customer, plan, severity, deadline, and how late."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.jobs.alerts import ManagerAlert, duration

BERLIN = ZoneInfo("Europe/Berlin")
DUE = datetime(2026, 11, 23, 13, 0, tzinfo=UTC)


def alert(now: datetime, due: datetime | None = DUE, kind: str = "breach") -> ManagerAlert:
    return ManagerAlert(number=7, customer="Logistik Nord AG (D-1003)", plan="dehosted standard",
                        severity="A", due=due, now=now, kind=kind)


@pytest.mark.parametrize(
    ("delta", "text"),
    [(timedelta(minutes=5, seconds=59), "5 min"), (timedelta(hours=1, minutes=20), "1 h 20 min"),
     (timedelta(hours=2), "2 h 0 min"), (timedelta(days=2, hours=3, minutes=9), "2 d 3 h")],
)
def test_duration(delta: timedelta, text: str) -> None:
    assert duration(delta) == text


def test_late_after_the_deadline() -> None:
    assert alert(DUE + timedelta(hours=1, minutes=20)).late() == "1 h 20 min late"


def test_before_the_deadline_it_says_how_long_is_left() -> None:
    assert alert(DUE - timedelta(minutes=25)).late() == "due in 25 min"


def test_no_deadline_running() -> None:
    assert alert(DUE, due=None).late() == "no deadline running"


def test_headline_names_everything_with_the_berlin_deadline() -> None:
    text = alert(DUE + timedelta(minutes=90)).headline(BERLIN)
    assert text == ("NT#7 missed its deadline: customer Logistik Nord AG (D-1003), plan dehosted "
                    "standard, severity A, deadline Mon 23 Nov 2026 14:00 (CET), 1 h 30 min late.")


def test_summer_deadlines_print_cest() -> None:
    due = datetime(2026, 7, 1, 10, 0, tzinfo=UTC)
    assert "Wed 01 Jul 2026 12:00 (CEST)" in alert(due, due=due).headline(BERLIN)


def test_subject() -> None:
    assert alert(DUE).subject() == ("[NT#7] Deadline missed: Logistik Nord AG (D-1003), "
                                    "severity A")
