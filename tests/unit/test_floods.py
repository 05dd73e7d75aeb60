"""Flood control: repeats and floods join an open ticket instead of opening incidents."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.cases.floods import FloodLimits, Join, Opened, decide, near_duplicate

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
LIMITS = FloodLimits(window=timedelta(hours=1), max_per_sender=3, max_per_customer=5,
                     duplicate_window=timedelta(minutes=10))


def opened(number: int, minutes_ago: int, status: str = "open", subject: str = "s",
           text: str = "t") -> Opened:
    return Opened(number, status, NOW - timedelta(minutes=minutes_ago), subject, text)


def test_acknowledgements_that_differ_only_in_numbers_are_near_duplicates() -> None:
    assert near_duplicate("Ihre Anfrage #4711", "Eingang bestätigt am 23.11.2026 um 10:01.",
                          "Ihre Anfrage #4712", "Eingang bestätigt am 23.11.2026 um 10:02.")


def test_different_problems_are_not_near_duplicates() -> None:
    assert not near_duplicate("Drucker", "Der Drucker druckt nicht.",
                              "VPN", "Das VPN bricht ab.")


def test_a_repeat_within_minutes_joins_the_first_ticket() -> None:
    first = opened(7, 3, subject="Server down", text="Alles steht.")
    join = decide(LIMITS, subject="Server down", text="Alles steht.", now=NOW,
                  by_sender=[first], by_customer=[])
    assert join == Join(7, "near-duplicate of the mail that opened NT#7")


def test_a_repeat_after_the_duplicate_window_opens_a_ticket() -> None:
    first = opened(30, 11, subject="Server down", text="Alles steht.")
    assert decide(LIMITS, subject="Server down", text="Alles steht.", now=NOW,
                  by_sender=[first], by_customer=[]) is None


def test_the_sender_limit_joins_the_newest_open_ticket() -> None:
    tickets = [opened(9, 1, status="closed"), opened(8, 2), opened(7, 3)]
    join = decide(LIMITS, subject="x", text="y", now=NOW, by_sender=tickets, by_customer=[])
    assert join is not None
    assert join.number == 8


def test_the_customer_limit_applies_across_senders() -> None:
    tickets = [opened(n, n) for n in range(20, 15, -1)]
    join = decide(LIMITS, subject="x", text="y", now=NOW, by_sender=[], by_customer=tickets)
    assert join is not None
    assert join.number == 20


def test_below_the_limits_a_new_ticket_opens() -> None:
    assert decide(LIMITS, subject="x", text="y", now=NOW, by_sender=[opened(1, 5)],
                  by_customer=[opened(1, 5)]) is None


def test_a_zero_duplicate_window_joins_nothing_even_a_younger_ticket() -> None:
    limits = FloodLimits(duplicate_window=timedelta(0))
    younger = Opened(3, "open", NOW + timedelta(seconds=1), "Server down", "Alles steht.")
    assert decide(limits, subject="Server down", text="Alles steht.", now=NOW,
                  by_sender=[younger], by_customer=[]) is None
