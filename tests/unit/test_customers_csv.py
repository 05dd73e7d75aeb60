"""The customer CSV: plans checked against the policy, every bad line reported at once."""

from __future__ import annotations

from pathlib import Path

import pytest

import bot
from bot.customers_csv import CustomerCsvError, parse_customer_csv
from bot.sla.rules import Policy

HEADER = "number,name,emails,slack,contact_24_7,dehosted,m365\n"


def test_demo_customers_cover_every_plan_of_each_line(policy: Policy) -> None:
    text = (Path(bot.__file__).parent / "demo_customers.csv").read_text(encoding="utf-8")
    records = parse_customer_csv(text, policy)
    for product, rule in policy.products.items():
        held = sorted(r.plans[product] for r in records if product in r.plans)
        assert held == sorted(rule.plans)


def test_addresses_domains_and_slack(policy: Policy) -> None:
    text = HEADER + "K-1,Acme,@Acme.DE;Boss@Other.de;acme.com,T1/C1;T1/C2,+49 1,standard,basic\n"
    [record] = parse_customer_csv(text, policy)
    assert record.domains == ("acme.de", "acme.com")
    assert record.addresses == ("boss@other.de",)
    assert record.slack == (("T1", "C1"), ("T1", "C2"))
    assert record.plans == {"dehosted": "standard", "m365": "basic"}


def test_every_bad_line_is_reported(policy: Policy) -> None:
    text = HEADER + (
        "K-1,Acme,@acme.de,,,gold,\n"
        "K-2,,@b.de,,,,\n"
        "K-1,Dup,not an address,C1,,,\n"
    )
    with pytest.raises(CustomerCsvError) as info:
        parse_customer_csv(text, policy)
    message = str(info.value)
    assert "line 2: dehosted plan 'gold'" in message
    assert "line 3: number and name are required" in message
    assert "line 4: customer number K-1 appears twice" in message
    assert "'not an address' is neither" in message
    assert "slack 'C1'" in message


def test_unknown_columns_are_refused(policy: Policy) -> None:
    with pytest.raises(CustomerCsvError, match="unknown column.*azure"):
        parse_customer_csv("number,name,azure\nK-1,A,basic\n", policy)
