"""The managers' daily digest: breaches of the day, risks of today, money, triage agreement."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.sla.digest import TicketFacts, build, next_run, render

BERLIN = ZoneInfo("Europe/Berlin")
TUESDAY_0730 = datetime(2026, 11, 24, 7, 30, tzinfo=BERLIN)
MONDAY = date(2026, 11, 23)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=BERLIN).astimezone(UTC)


def facts(number: int, *, due: str | None, answered: str | None = None, status: str = "open",
          created: str = "2026-11-23 09:00", plan: str | None = "standard",
          billable: bool = False, consent: bool | None = None, price_cents: int = 0,
          included: bool = False, confirmed: str | None = None,
          agreed: bool | None = None, breached: str | None = None) -> TicketFacts:
    return TicketFacts(number=number, product="dehosted", plan=plan, status=status,
                       created_at=at(created), due_at=at(due) if due else None,
                       first_response_at=at(answered) if answered else None, billable=billable,
                       consent=consent, price_cents=price_cents, included=included,
                       confirmed_at=at(confirmed) if confirmed else None, agreed=agreed,
                       breached_at=at(breached) if breached else None)


TICKETS = [
    facts(1, due="2026-11-23 12:00"),  # unanswered past its deadline: breached
    facts(2, due="2026-11-23 12:00", answered="2026-11-23 12:30", status="answered"),  # late
    facts(3, due="2026-11-23 12:00", answered="2026-11-23 11:00", status="answered"),  # met
    facts(4, due="2026-11-24 15:00", plan=None, billable=True, consent=True, price_cents=8500),
    facts(5, due="2026-11-25 15:00"),  # due tomorrow: not at risk today
    facts(6, due="2026-11-24 11:00", included=True, confirmed="2026-11-23 10:00", agreed=True),
    facts(7, due=None, status="answered", confirmed="2026-11-23 11:00", agreed=False),
]


def test_breached_are_unanswered_or_late_at_their_deadline() -> None:
    assert build(MONDAY, BERLIN, TUESDAY_0730, TICKETS, 0).breached == [1, 2]


def test_at_risk_are_unanswered_and_due_by_tonight_and_not_breached_yet() -> None:
    assert build(MONDAY, BERLIN, TUESDAY_0730, TICKETS, 0).at_risk == [6, 4]


def test_breached_and_unanswered_tickets_have_their_own_section() -> None:
    assert build(MONDAY, BERLIN, TUESDAY_0730, TICKETS, 0).overdue == [1]


def test_a_breach_recorded_this_morning_is_in_todays_digest_not_at_risk() -> None:
    early = facts(8, due="2026-11-24 07:00", created="2026-11-24 06:00",
                  breached="2026-11-24 07:00")
    digest = build(MONDAY, BERLIN, TUESDAY_0730, [*TICKETS, early], 0)
    assert (digest.overdue, digest.at_risk) == ([1, 8], [6, 4])


def test_the_text_has_a_breached_section() -> None:
    text = render(build(MONDAY, BERLIN, TUESDAY_0730, TICKETS, 2))
    assert text.splitlines()[2] == "Breached, still unanswered: 1: NT#1"


def test_breaches_per_product_line_and_plan() -> None:
    assert build(MONDAY, BERLIN, TUESDAY_0730, TICKETS, 0).breached_by_line == {
        "dehosted/standard": 2}


def test_billed_incidents_and_their_sum() -> None:
    digest = build(MONDAY, BERLIN, TUESDAY_0730, TICKETS, 0)
    assert (digest.billed, digest.billed_cents, digest.included_used) == (1, 8500, 1)


def test_the_agreement_rate_counts_confirmed_triage() -> None:
    assert build(MONDAY, BERLIN, TUESDAY_0730, TICKETS, 0).agreement == 0.5


def test_the_text_names_the_tickets() -> None:
    text = render(build(MONDAY, BERLIN, TUESDAY_0730, TICKETS, 2))
    assert text.splitlines()[1] == "Breached that day: 2 (dehosted/standard 2): NT#1, NT#2"


def test_the_next_run_keeps_local_time_across_dst() -> None:
    # Saturday 24 Oct 2026 08:00 CEST; clocks go back overnight; Sunday 07:30 is CET
    assert next_run(time(7, 30), BERLIN, at("2026-10-24 08:00")) == \
        datetime(2026, 10, 25, 6, 30, tzinfo=UTC)


def test_the_next_run_today_when_not_yet_passed() -> None:
    assert next_run(time(7, 30), BERLIN, at("2026-11-24 07:00")) - at("2026-11-24 07:00") == \
        timedelta(minutes=30)
