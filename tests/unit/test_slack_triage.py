"""The triage post (pure): what agents see, and customer text that cannot ping anyone."""

from __future__ import annotations

import json
from typing import Any

from bot.intake.slack.triage import ASSIGN, CONFIRM, RESUME, WAIT, TriageFacts, triage_post


def facts(**changes: Any) -> TriageFacts:
    values: dict[str, Any] = dict(
        number=7, channel="slack", customer="Logistik Nord AG (D-1003)",
        plan="dehosted standard", included_left=3, department="trouble", severity="A",
        confidence={"department": 0.91, "severity": 0.55, "product": 0.8}, needs_triage=True,
        due="Mon 23 Nov 2026 14:00 (CET)", price_eur=None,
        text="<!channel> Hilfe! <script>alert(1)</script>\nzweite Zeile")
    values.update(changes)
    return TriageFacts(**values)


def test_customer_text_is_escaped_in_the_post() -> None:
    _, blocks = triage_post(facts())
    quoted = blocks[1]["text"]["text"]
    assert quoted == ">&lt;!channel&gt; Hilfe! &lt;script&gt;alert(1)&lt;/script&gt;\n>zweite Zeile"


def test_no_raw_mention_or_tag_anywhere_in_the_post() -> None:
    fallback, blocks = triage_post(facts(customer="<!here> Evil & Co"))
    everything = fallback + json.dumps(blocks)
    assert "<!channel>" not in everything
    assert "<!here>" not in everything
    assert "<script>" not in everything


def test_the_post_names_plan_confidences_and_deadline() -> None:
    _, blocks = triage_post(facts())
    assert blocks[0]["text"]["text"].splitlines() == [
        "*New ticket NT#7 (slack) from Logistik Nord AG (D-1003)*",
        "Plan: dehosted standard, included incidents left: 3",
        "Department: trouble (91 %), severity: A (55 %) *needs triage*",
        "Deadline: Mon 23 Nov 2026 14:00 (CET)",
    ]


def test_a_billable_ticket_shows_its_price() -> None:
    _, blocks = triage_post(facts(price_eur="255.00", due="", needs_triage=False))
    lines = blocks[0]["text"]["text"].splitlines()
    assert lines[-2:] == ["Deadline: not running (waiting for consent or a check)",
                          "Billable: EUR 255.00"]


def buttons(blocks: list[dict[str, Any]]) -> list[str]:
    return [e["action_id"] for e in blocks[-1]["elements"] if e["type"] == "button"]


def test_an_open_ticket_offers_waiting_for_the_customer() -> None:
    _, blocks = triage_post(facts(status="open"))
    assert buttons(blocks) == [CONFIRM, ASSIGN, WAIT]


def test_a_waiting_ticket_offers_resume_and_says_since_when() -> None:
    _, blocks = triage_post(facts(status="waiting_customer",
                                  paused_since="Mon 23 Nov 2026 11:00 (CET)"))
    assert buttons(blocks) == [CONFIRM, ASSIGN, RESUME]
    assert blocks[0]["text"]["text"].splitlines()[3] == (
        "*Waiting for the customer* since Mon 23 Nov 2026 11:00 (CET): the clock is stopped")


def test_an_answered_ticket_offers_neither() -> None:
    _, blocks = triage_post(facts(status="answered"))
    assert buttons(blocks) == [CONFIRM, ASSIGN]


def test_the_assignee_is_named_on_the_post() -> None:
    _, blocks = triage_post(facts(assignee="U0AGENT"))
    assert blocks[0]["text"]["text"].splitlines()[-1] == "Assigned to <@U0AGENT>"
