"""A refusal below a yes is no consent, over real SMTP on SQLite and PostgreSQL (issue 21, 5)."""

from __future__ import annotations

import pytest

from tests.integration.conftest import Running
from tests.integration.test_mail_money import answer_quote, billable_weber_ticket


@pytest.mark.parametrize("body", [
    "Ja\r\nBitte abbrechen, das ist uns zu viel Geld.",
    "Yes\r\nActually, cancel that.",
    "Ja\r\nAb\u00adbrechen",
    "JA\r\nViele Grüße\r\nJan Meier\r\nP.S. Bitte doch noch warten.",
])
async def test_a_yes_taken_back_in_the_next_lines_is_asked_again(running: Running,
                                                                  body: str) -> None:
    await billable_weber_ticket(running)
    after = await answer_quote(running, body, name="taken-back")
    assert after.status == "awaiting_consent"
    assert after.consent is None
    assert "mit JA" in running.replies()[-1].get_content()


async def test_a_full_width_refusal_declines(running: Running) -> None:
    await billable_weber_ticket(running)
    after = await answer_quote(running, "Ａｂｇｅｌｅｈｎｔ", name="full-width")
    assert after.status == "declined"
    assert after.consent is False
