"""The customer CSV: plans checked against the policy, every bad line reported at once."""

from __future__ import annotations

from pathlib import Path

import pytest

import bot
from bot.cases.customers_csv import CustomerCsvError, parse_customer_csv, plans_not_in_policy
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


def test_one_address_on_two_customers_names_both_lines(policy: Policy) -> None:
    text = HEADER + (
        "K-1,Acme,it@acme.de;@acme.de,T1/C1,,standard,\n"
        "K-2,Beta,IT@acme.de,,,basic,\n"
        "K-3,Gamma,@acme.de,T1/C1,,basic,\n"
    )
    with pytest.raises(CustomerCsvError) as info:
        parse_customer_csv(text, policy)
    message = str(info.value)
    assert "line 3: it@acme.de is also on line 2 (customer K-1)" in message
    assert "line 4: acme.de is also on line 2 (customer K-1)" in message
    assert "line 4: slack T1/C1 is also on line 2 (customer K-1)" in message


def test_cells_beyond_the_header_are_refused(policy: Policy) -> None:
    text = HEADER + "K-1,Acme,@acme.de,,,standard,,premium,42\n"
    with pytest.raises(CustomerCsvError) as info:
        parse_customer_csv(text, policy)
    assert str(info.value) == (
        "line 2: 2 cell(s) beyond the header's 7 columns: 'premium', '42'"
    )


def test_plans_the_policy_lacks_are_named_with_their_customers(policy: Policy) -> None:
    held = [("K-1", "dehosted", "standard"), ("K-2", "dehosted", "gold"),
            ("K-3", "dehosted", "gold"), ("K-4", "azure", "basic")]
    assert plans_not_in_policy(held, policy) == (
        "the policy file lacks plans that customers hold: azure:basic (held by K-4); "
        "dehosted:gold (held by K-2, K-3); add the plans to the policy or move the customers "
        "to other plans"
    )


def test_plans_the_policy_has_give_no_sentence(policy: Policy) -> None:
    assert plans_not_in_policy([("K-1", "dehosted", "standard")], policy) == ""
