"""The policy engine against the spec (../shared/spec/support-policy.md), case by case.

Each table cites the spec section it encodes. Times are Europe/Berlin unless written in UTC.
November 2026: Fri 20, Sat 21, Sun 22, Mon 23.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from bot.domain import Clock, Department, Language, Severity
from bot.sla.engine import Case, Engine

BERLIN = ZoneInfo("Europe/Berlin")
ACC, TRB, DEV, CON = (Department.ACCOUNTING, Department.TROUBLE, Department.DEVELOPER,
                      Department.CONSULTING)


def at(text: str) -> datetime:
    """A Berlin wall-clock time, 'YYYY-MM-DD HH:MM'."""
    return datetime.fromisoformat(text).replace(tzinfo=BERLIN)


def case(product: str, plan: str | None, department: Department = TRB,
         severity: Severity = Severity.C, language: Language = Language.DE,
         received: str = "2026-11-23 10:00", used: int = 0) -> Case:
    return Case(product=product, plan=plan, department=department, severity=severity,
                language=language, accepted=at(received), used=used)


# spec "Product lines and plans" tables and the "Scope" decision: which departments each plan
# covers. accounting: every plan; trouble: every plan but M365 Basic ("service disruption via
# ticket: –"); developer: Standard and Professional (prose); consulting: Professional only.
ENTITLEMENT = {
    ("dehosted", "basic"): {ACC, TRB},
    ("dehosted", "basic-plus"): {ACC, TRB},
    ("dehosted", "standard"): {ACC, TRB, DEV},
    ("dehosted", "professional"): {ACC, TRB, DEV, CON},
    ("m365", "basic"): {ACC},
    ("m365", "basic-plus"): {ACC, TRB},
    ("m365", "basic-plus-advanced"): {ACC, TRB},
    ("m365", "standard"): {ACC, TRB, DEV},
    ("m365", "professional"): {ACC, TRB, DEV, CON},
    ("dehosted", None): {ACC},  # no plan: pay-per-incident; billing questions stay free
    ("m365", None): {ACC},
}

# spec tables: shortest response time, incidents included per month, 24/7 troubleshooting
PLAN_FACTS = {
    ("dehosted", "basic"): (8, 0, False),
    ("dehosted", "basic-plus"): (6, 2, False),
    ("dehosted", "standard"): (4, 5, True),
    ("dehosted", "professional"): (2, 25, True),
    ("m365", "basic"): (8, 0, False),
    ("m365", "basic-plus"): (6, 2, False),
    ("m365", "basic-plus-advanced"): (6, 2, False),
    ("m365", "standard"): (4, 5, False),
    ("m365", "professional"): (2, 10, False),
}


@pytest.mark.parametrize(("product", "plan"), list(ENTITLEMENT))
@pytest.mark.parametrize("department", list(Department))
def test_entitlement_of_every_department_on_every_plan(
    engine: Engine, product: str, plan: str | None, department: Department
) -> None:
    result = engine.assess(case(product, plan, department))
    assert result.entitled == (department in ENTITLEMENT[(product, plan)])
    if department is ACC:
        # spec "Departments": billing questions consume no incident and are free on every plan
        assert not result.billable and result.price_eur == 0
    elif not result.entitled:
        # spec: "a request outside the customer's plan ... offers the ticket as a billable
        # single incident"; 10:00 on a Monday is business hours: 85 EUR for severity C
        assert result.billable and result.price_eur == Decimal("85.00")


@pytest.mark.parametrize(("product", "plan"), list(PLAN_FACTS))
def test_included_incidents_of_every_plan(engine: Engine, product: str, plan: str) -> None:
    _, included, _ = PLAN_FACTS[(product, plan)]
    first = engine.assess(case(product, plan, used=0))
    if included == 0:
        # spec: "on Basic ... each incident is billed"
        assert first.billable and not first.included and first.included_left == 0
        return
    assert not first.billable and first.included and first.included_left == included - 1
    last = engine.assess(case(product, plan, used=included - 1))
    assert not last.billable and last.included_left == 0
    beyond = engine.assess(case(product, plan, used=included))
    assert beyond.billable and not beyond.included and beyond.included_left == 0
    assert beyond.price_eur == Decimal("85.00")


@pytest.mark.parametrize(("product", "plan"), list(PLAN_FACTS))
@pytest.mark.parametrize("severity", list(Severity))
def test_target_is_the_longer_of_plan_and_severity(
    engine: Engine, product: str, plan: str, severity: Severity
) -> None:
    # spec "First-response deadline": target = the longer of P's shortest response time and S's
    # target. Accounting is never billable, so it shows the rule on every plan.
    response, _, _ = PLAN_FACTS[(product, plan)]
    severity_target = {"A": 2, "B": 4, "C": 8}[severity]
    result = engine.assess(case(product, plan, ACC, severity))
    assert result.target_hours == max(response, severity_target)


@pytest.mark.parametrize(
    ("received", "severity", "price"),
    [
        # spec price table: business hours (Mon-Fri 8-18) vs outside, weekends, public holidays
        ("2026-11-23 08:00", Severity.C, "85.00"),
        ("2026-11-23 12:00", Severity.B, "159.00"),
        ("2026-11-23 17:59", Severity.A, "255.00"),
        ("2026-11-23 18:00", Severity.C, "169.00"),  # 18:00:00 sharp is outside
        ("2026-11-23 07:59", Severity.B, "318.00"),
        ("2026-11-21 12:00", Severity.A, "510.00"),  # Saturday
        ("2026-11-22 12:00", Severity.C, "169.00"),  # Sunday
        ("2026-10-03 12:00", Severity.C, "169.00"),  # German Unity Day (a Saturday in 2026)
        ("2025-10-03 12:00", Severity.B, "318.00"),  # German Unity Day on a Friday
        ("2026-12-25 10:00", Severity.A, "510.00"),  # Christmas Day, a Friday
        ("2026-12-24 10:00", Severity.A, "255.00"),  # Christmas Eve is no public holiday
        ("2026-04-03 10:00", Severity.C, "169.00"),  # Good Friday
    ],
)
def test_single_incident_price_table(
    engine: Engine, received: str, severity: Severity, price: str
) -> None:
    result = engine.assess(case("dehosted", None, TRB, severity, received=received))
    assert result.billable and result.price_eur == Decimal(price)


@pytest.mark.parametrize(
    ("label", "kase", "target", "clock", "due"),
    [
        # spec worked example: severity C (8 h) accepted Friday 17:00 -> Monday 15:00 ...
        ("worked example, Friday", case("dehosted", "basic-plus", received="2026-11-20 17:00"),
         8, Clock.BUSINESS_HOURS, "2026-11-23T15:00:00+01:00"),
        # ... the same ticket accepted Saturday is due Monday 16:00
        ("worked example, Saturday", case("dehosted", "basic-plus", received="2026-11-21 11:00"),
         8, Clock.BUSINESS_HOURS, "2026-11-23T16:00:00+01:00"),
        # Friday evening: 18:00 sharp is closed, the clock starts Monday 08:00
        ("Friday 18:00", case("m365", "standard", severity=Severity.B,
                              received="2026-11-20 18:00"),
         4, Clock.BUSINESS_HOURS, "2026-11-23T12:00:00+01:00"),
        # a deadline that falls at the end of open time is 18:00 that day
        ("ends at closing", case("m365", "standard", severity=Severity.B,
                                 received="2026-11-23 14:00"),
         4, Clock.BUSINESS_HOURS, "2026-11-23T18:00:00+01:00"),
        # 3 October 2025 (Friday) is closed: Thursday 17:00 + 4 h -> Monday 6 Oct 11:00
        ("German Unity Day", case("m365", "standard", severity=Severity.B,
                                  received="2025-10-02 17:00"),
         4, Clock.BUSINESS_HOURS, "2025-10-06T11:00:00+02:00"),
        # Christmas 2026: 24th open until 18:00, 25th and 26th closed, then the weekend
        ("Christmas", case("dehosted", "professional", received="2026-12-24 16:00"),
         8, Clock.BUSINESS_HOURS, "2026-12-28T14:00:00+01:00"),
        # DST starts Sunday 29 March 2026: a business-hours clock over it keeps wall hours
        ("DST spring, business hours", case("dehosted", "basic-plus",
                                            received="2026-03-27 17:00"),
         8, Clock.BUSINESS_HOURS, "2026-03-30T15:00:00+02:00"),
        # ... and an around-the-clock ticket counts real hours across the missing hour
        ("DST spring, 24/7", case("dehosted", "standard", severity=Severity.A,
                                  received="2026-03-29 00:30"),
         4, Clock.AROUND_THE_CLOCK, "2026-03-29T05:30:00+02:00"),
        # DST ends Sunday 25 October 2026: the repeated hour counts once more
        ("DST autumn, 24/7", case("dehosted", "standard", severity=Severity.A,
                                  received="2026-10-25 00:30"),
         4, Clock.AROUND_THE_CLOCK, "2026-10-25T03:30:00+01:00"),
        # severity A, German, 24/7 plan: around the clock from Saturday night
        ("severity A, 24/7 plan", case("dehosted", "professional", severity=Severity.A,
                                       received="2026-11-21 23:00"),
         2, Clock.AROUND_THE_CLOCK, "2026-11-22T01:00:00+01:00"),
        # English is supported in business hours only, even for severity A on a 24/7 plan
        ("severity A, English", case("dehosted", "professional", severity=Severity.A,
                                     language=Language.EN, received="2026-11-21 23:00"),
         2, Clock.BUSINESS_HOURS, "2026-11-23T10:00:00+01:00"),
        # M365 plans have no 24/7 troubleshooting: severity A included runs in business hours
        ("severity A, M365 Professional", case("m365", "professional", severity=Severity.A,
                                               received="2026-11-21 23:00"),
         2, Clock.BUSINESS_HOURS, "2026-11-23T10:00:00+01:00"),
        # a single incident (Basic) of severity A in German: around the clock, 2 h (S alone)
        ("severity A, billed single incident", case("m365", "basic", severity=Severity.A,
                                                    received="2026-11-21 23:00"),
         2, Clock.AROUND_THE_CLOCK, "2026-11-22T01:00:00+01:00"),
        # a Basic customer's severity-A ticket that is not billed (a billing question) gets 8 h
        ("Basic, severity A, accounting", case("dehosted", "basic", ACC, Severity.A,
                                               received="2026-11-23 10:00"),
         8, Clock.BUSINESS_HOURS, "2026-11-23T18:00:00+01:00"),
        # a Professional customer's severity-C ticket gets 8 h
        ("Professional, severity C", case("m365", "professional", received="2026-11-23 11:00"),
         8, Clock.BUSINESS_HOURS, "2026-11-24T09:00:00+01:00"),
        # beyond the allowance: the severity's target alone (Basic Plus 6 h would be longer)
        ("beyond allowance", case("dehosted", "basic-plus", severity=Severity.B, used=2,
                                  received="2026-11-23 10:00"),
         4, Clock.BUSINESS_HOURS, "2026-11-23T14:00:00+01:00"),
        # no plan, English, severity A: billed, but English keeps business hours
        ("no plan, English A", case("m365", None, severity=Severity.A, language=Language.EN,
                                    received="2026-11-21 23:00"),
         2, Clock.BUSINESS_HOURS, "2026-11-23T10:00:00+01:00"),
    ],
)
def test_first_response_deadline(
    engine: Engine, label: str, kase: Case, target: int, clock: Clock, due: str
) -> None:
    result = engine.assess(kase)
    assert (result.target_hours, result.clock) == (target, clock), label
    assert result.due.astimezone(BERLIN).isoformat() == due, label
    assert result.due.utcoffset() is not None and result.due.utcoffset().total_seconds() == 0


def test_unknown_plan_is_refused(engine: Engine) -> None:
    with pytest.raises(KeyError, match="no plan 'gold'"):
        engine.assess(case("dehosted", "gold"))
    with pytest.raises(KeyError, match="unknown product line"):
        engine.assess(case("azure", None))
