"""The new-visitor limit's arithmetic (bot/intake/web/newcomers.py): a sliding hour per client
address, an IPv6 address counted by its /64, memory bounded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.intake.web.newcomers import NewcomerLimit, client

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def test_two_addresses_of_one_ipv6_64_are_one_client() -> None:
    assert client("2001:db8:1:2::1") == client("2001:db8:1:2:ffff::7")


def test_another_ipv6_64_is_another_client() -> None:
    assert client("2001:db8:1:2::1") != client("2001:db8:1:3::1")


def test_an_ipv4_mapped_address_is_its_ipv4_address() -> None:
    assert client("::ffff:192.0.2.7") == "192.0.2.7"


def test_the_limit_counts_an_ipv6_64_together() -> None:
    limit = NewcomerLimit(2)
    assert [limit.allow(f"2001:db8::{n}", NOW) for n in range(1, 4)] == [True, True, False]


def test_a_refused_visitor_is_not_counted() -> None:
    """A script that keeps trying does not push its own window further out."""
    limit = NewcomerLimit(1)
    limit.allow("192.0.2.7", NOW)
    limit.allow("192.0.2.7", NOW + timedelta(minutes=30))
    assert limit.allow("192.0.2.7", NOW + timedelta(hours=1)) is True


def test_other_addresses_are_not_held_up() -> None:
    limit = NewcomerLimit(1)
    limit.allow("192.0.2.7", NOW)
    assert limit.allow("192.0.2.8", NOW) is True


def test_memory_stays_bounded_when_every_address_is_new() -> None:
    limit = NewcomerLimit(1, max_addresses=10)
    for n in range(100):
        limit.allow(f"10.0.{n // 256}.{n % 256}", NOW)
    assert len(limit) <= 10
