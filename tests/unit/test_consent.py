"""Reading an answer to a price quote: only a clear yes consents."""

from __future__ import annotations

import pytest

from bot.consent import Answer, read_answer


@pytest.mark.parametrize(("text", "expected"), [
    ("JA", Answer.YES),
    ("Ja, bitte beheben Sie das Problem.", Answer.YES),
    ("yes please go ahead", Answer.YES),
    ("Einverstanden.\n\nGruß", Answer.YES),
    ("I agree to the price.", Answer.YES),
    ("NEIN", Answer.NO),
    ("No thanks.", Answer.NO),
    ("Okay, das ist mir zu teuer - bitte NICHT bearbeiten.", Answer.NO),
    ("Too expensive, do not proceed.", Answer.NO),
    ("Ja, aber nicht zu dem Preis.", Answer.UNCLEAR),
    ("Ja? Was kostet das genau?", Answer.UNCLEAR),
    ("ja nein weiß nicht", Answer.UNCLEAR),
    ("Yes, but only if it is done today.", Answer.UNCLEAR),
    ("ok", Answer.UNCLEAR),
    ("Okay", Answer.UNCLEAR),
    ("Danke für die Info.", Answer.UNCLEAR),
    ("", Answer.UNCLEAR),
    ("Das ist ja toll", Answer.UNCLEAR),
    ("Janine hier", Answer.UNCLEAR),
    ("Hallo,\nja, bitte loslegen.", Answer.YES),
    ("Hiermit stimme ich zu.", Answer.YES),
    ("> Bitte antworten Sie mit JA\nNEIN", Answer.NO),
    ("Hallo\n\nWir melden uns.\nGruß\nJA", Answer.UNCLEAR),  # beyond the first lines
])
def test_answer(text: str, expected: Answer) -> None:
    assert read_answer(text) is expected
