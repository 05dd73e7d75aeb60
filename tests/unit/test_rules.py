"""The policy file: the shipped one is valid, a wrong one is refused naming the bad key."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from bot.config import DEFAULT_POLICY_FILE, load_policy
from bot.domain import Department, Severity
from bot.sla.rules import Policy, PolicyError, parse_policy

SHIPPED = DEFAULT_POLICY_FILE.read_text(encoding="utf-8")


def test_shipped_policy_holds_both_product_lines(policy: Policy) -> None:
    assert list(policy.products) == ["dehosted", "m365"]
    assert list(policy.products["dehosted"].plans) == [
        "basic", "basic-plus", "standard", "professional"
    ]
    assert list(policy.products["m365"].plans) == [
        "basic", "basic-plus", "basic-plus-advanced", "standard", "professional"
    ]


def test_shipped_prices_match_the_spec_price_table(policy: Policy) -> None:
    # spec "Incidents, quota and price": 85/159/255 in business hours, 169/318/510 outside
    table = policy.single_incident_price_eur
    assert table.business_hours == {
        Severity.C: Decimal("85"), Severity.B: Decimal("159"), Severity.A: Decimal("255")
    }
    assert table.after_hours == {
        Severity.C: Decimal("169"), Severity.B: Decimal("318"), Severity.A: Decimal("510")
    }


@pytest.mark.parametrize(
    ("old", "new", "named"),
    [
        ('response_hours = 8\n', 'response_hours = "eight"\n', "products.dehosted.plans.basic"
         ".response_hours"),
        ('included_incidents = 2\n', 'included_incidents = -2\n', "included_incidents"),
        ('timezone = "Europe/Berlin"', 'timezone = "Europe/Bonn"', "business_hours.timezone"),
        ('slot_minutes = 30', 'slot_minutes = 30\nslot_length = 30', "callbacks.slot_length"),
        ('departments = ["accounting", "trouble"]\nfeatures = ["ticket_accounting", '
         '"ticket_trouble"]\n',
         'departments = ["accounting", "repairs"]\nfeatures = []\n', "departments"),
        ('open = "08:00"', 'open = "19:00"', "business_hours.open"),
        ('holiday_subdivision = ""', 'holiday_subdivision = "XX"', "holiday_subdivision"),
        # counts and switches are strict: TOML has real integers and booleans (issue 7 item 10)
        ('included_incidents = 2\n', 'included_incidents = true\n', "included_incidents"),
        ('included_incidents = 2\n', 'included_incidents = 2.0\n', "included_incidents"),
        ('included_incidents = 2\n', 'included_incidents = "2"\n', "included_incidents"),
        ('slot_minutes = 30', 'slot_minutes = true', "callbacks.slot_minutes"),
        ('weekdays = [1, 2, 3, 4, 5]', 'weekdays = [true, 2, 3, 4, 5]', "weekdays"),
        ('around_the_clock = true', 'around_the_clock = 1', "around_the_clock"),
        ('consumes_incident = false', 'consumes_incident = "no"', "consumes_incident"),
    ],
)
def test_a_wrong_value_is_refused_with_the_key_named(old: str, new: str, named: str) -> None:
    assert old in SHIPPED
    with pytest.raises(PolicyError) as info:
        parse_policy(SHIPPED.replace(old, new, 1), source="policy.toml")
    assert named in str(info.value)
    assert str(info.value).startswith("policy.toml")


def test_a_missing_severity_is_refused() -> None:
    start = SHIPPED.index("[severities.B]")
    end = SHIPPED.index("[severities.C]")
    with pytest.raises(PolicyError, match=r"'severities' lacks an entry for B"):
        parse_policy(SHIPPED[:start] + SHIPPED[end:])


def test_broken_toml_is_refused() -> None:
    with pytest.raises(PolicyError, match="not valid TOML"):
        parse_policy("[business_hours\nopen = 8")


def test_unreadable_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read policy file"):
        load_policy(tmp_path / "missing.toml")


def test_every_department_has_a_rule(policy: Policy) -> None:
    assert set(policy.departments) == set(Department)
    assert not policy.departments[Department.ACCOUNTING].consumes_incident
