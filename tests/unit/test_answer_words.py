"""The answer's words: department names once per language, hours from the policy, CET/CEST."""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Any

import pytest

from bot.cases.replies import business_hours, render
from bot.domain import Language
from bot.sla.rules import BusinessHoursRule, Policy

WINTER = datetime(2026, 11, 23, 9, tzinfo=UTC)
SUMMER = datetime(2026, 7, 1, 9, tzinfo=UTC)


@pytest.mark.parametrize(
    ("language", "at", "text"),
    [
        (Language.DE, WINTER, "Mo–Fr 8–18 Uhr (CET)"),
        (Language.DE, SUMMER, "Mo–Fr 8–18 Uhr (CEST)"),
        (Language.EN, WINTER, "Mon–Fri 8:00–18:00 CET"),
        (Language.EN, SUMMER, "Mon–Fri 8:00–18:00 CEST"),
    ],
)
def test_business_hours_from_the_policy_with_the_zone_of_the_date(
        policy: Policy, language: Language, at: datetime, text: str) -> None:
    assert business_hours(policy.business_hours, language, at) == text


def test_other_hours_and_days_follow_the_policy_file() -> None:
    rule = BusinessHoursRule(timezone="Europe/Berlin", open=time(7, 30), close=time(16),
                             weekdays=frozenset({1, 3, 5}), holiday_country="DE")
    assert business_hours(rule, Language.DE, WINTER) == "Mo, Mi, Fr 7:30–16 Uhr (CET)"
    assert business_hours(rule, Language.EN, WINTER) == "Mon, Wed, Fri 7:30–16:00 CET"


def opened(language: Language, **changes: Any) -> str:
    values: dict[str, Any] = dict(
        channel="email", name="", number=5, department="trouble", severity="B",
        product_name="deHOSTED",
        needs_triage=False, unknown_sender=False, unverified=False, plan_name="Basic",
        entitled=False, covered=["accounting", "trouble"], included=False, included_left=0,
        is_incident=True, billable=True, price="85,00", target_hours=8,
        clock="business_hours", due="", business_hours="Mo–Fr 8–18 Uhr (CEST)",
        plan_includes=0)
    values.update(changes)
    return render("ticket_opened", language, **values)


def test_the_covered_departments_use_the_same_words_as_the_department_line() -> None:
    text = opened(Language.DE)
    assert "Abteilung:    Störung\n" in text
    assert "er deckt ab: Abrechnung, Störung." in text


def test_the_english_covered_departments_use_the_same_words() -> None:
    text = opened(Language.EN, business_hours="Mon–Fri 8:00–18:00 CEST")
    assert "Department:  Service disruption\n" in text
    assert "it covers: Accounting, Service disruption." in text


def test_the_quote_prints_the_hours_it_is_given() -> None:
    assert "in unseren Geschäftszeiten, Mo–Fr 8–18 Uhr (CEST))." in opened(Language.DE)


@pytest.mark.parametrize(
    ("language", "includes", "line"),
    [
        (Language.DE, 0, "Ihr Plan enthält keine Vorfälle; wir berechnen jeden Vorfall einzeln.\n"),
        (Language.DE, 2,
         "Die in Ihrem Plan enthaltenen Vorfälle sind für diesen Monat aufgebraucht.\n"),
        (Language.EN, 0, "Your plan includes no incidents; each incident is billed on its own.\n"),
        (Language.EN, 2, "The incidents included in your plan are used up for this month.\n"),
    ],
)
def test_a_billed_incident_says_whether_the_plan_includes_none_or_they_are_used_up(
        language: Language, includes: int, line: str) -> None:
    assert line in opened(language, entitled=True, plan_includes=includes)


def test_a_plan_without_included_incidents_never_says_they_are_used_up() -> None:
    assert "aufgebraucht" not in opened(Language.DE, entitled=True, plan_includes=0)
