"""The quote's buttons and the answered quote, as Block Kit (pure)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from bot.cases.replies import words
from bot.domain import Language
from bot.intake.slack.consent_blocks import (
    CONFIRM,
    DECLINE,
    answered_blocks,
    parse_value,
    quote_blocks,
)
from bot.intake.slack.customer_evidence import REASONS

BERLIN = ZoneInfo("Europe/Berlin")


def test_english_buttons_carry_the_ticket_and_the_price() -> None:
    _, buttons = quote_blocks("quote", number=12, price_cents=8500, language=Language.EN)
    assert [(b["action_id"], b["text"]["text"], b["value"], b["style"])
            for b in buttons["elements"]] == [(CONFIRM, "Confirm", "12:8500", "primary"),
                                              (DECLINE, "Decline", "12:8500", "danger")]


def test_the_quote_text_stays_above_the_buttons() -> None:
    [text, _] = quote_blocks("EUR 85.00", number=12, price_cents=8500, language=Language.EN)
    assert text["text"]["text"] == "EUR 85.00"


@pytest.mark.parametrize(("at", "line"), [
    (datetime(2026, 11, 23, 9, 5, tzinfo=UTC), "Confirmed by <@U1> at 10:05 CET"),
    (datetime(2026, 7, 6, 9, 5, tzinfo=UTC), "Confirmed by <@U1> at 11:05 CEST"),
])
def test_the_answered_quote_names_the_clicker_and_the_local_time(at: datetime,
                                                                 line: str) -> None:
    [_, context] = answered_blocks("quote", consent=True, user="U1", at=at, zone=BERLIN,
                                   language=Language.EN)
    assert context["elements"][0]["text"] == line


def test_a_clicker_id_cannot_ping_anyone() -> None:
    [_, context] = answered_blocks("quote", consent=False, user="U1> <!channel", at=datetime(
        2026, 11, 23, 9, tzinfo=UTC), zone=BERLIN, language=Language.DE)
    assert "<!channel" not in context["elements"][0]["text"]


@pytest.mark.parametrize("value", ["", "12", "12:", ":8500", "12:-1", "x:8500", "12:85.00"])
def test_a_value_that_is_not_ticket_and_cents_is_none(value: str) -> None:
    assert parse_value(value) is None


def test_a_value_reads_as_ticket_and_cents() -> None:
    assert parse_value("12:8500") == (12, 8500)


@pytest.mark.parametrize("language", list(Language))
def test_every_refusal_is_worded_in_every_language(language: Language) -> None:
    worded = words("click_refusals", language)
    assert sorted(worded) == sorted(REASONS | {"answered", "not_ours", "not_callbackable"})
