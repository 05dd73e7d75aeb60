"""Reading an answer to a price quote: only a clear yes consents."""

from __future__ import annotations

import pytest

from bot.cases.consent import Answer, read_answer


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
    ("Ja gerne, wann meldet sich jemand?", Answer.UNCLEAR),
    ("Hiermit stimme ich zu.", Answer.YES),
    ("Ja, bitte beheben Sie das Problem.\n\nMit freundlichen Grüßen", Answer.YES),
    ("Guten Tag Herr Meier,\nJA\nGruß", Answer.YES),
    # refusals that begin with a yes (found by an attacker's review)
    ("Ja, hat sich erledigt.", Answer.UNCLEAR),
    ("Ja, bitte schließen.", Answer.UNCLEAR),
    ("Ja, das Ticket kann geschlossen werden.", Answer.UNCLEAR),
    ("Ja, wir verzichten.", Answer.UNCLEAR),
    ("Ja, ist storniert", Answer.UNCLEAR),
    ("ja, abgesagt", Answer.UNCLEAR),
    ("Ja, ich lehne das Angebot ab.", Answer.UNCLEAR),
    ("Ja, ich widerspreche.", Answer.UNCLEAR),
    ("Ja, ich bin dagegen.", Answer.UNCLEAR),
    ("Ja, das übersteigt unser Budget.", Answer.UNCLEAR),
    ("Ja, leider zu kostspielig.", Answer.UNCLEAR),
    ("Ja, nichts tun.", Answer.UNCLEAR),
    ("Ich bestätige den Eingang Ihrer Nachricht.", Answer.UNCLEAR),
    ("Ja. Nö.", Answer.UNCLEAR),
    ("Yes, I cannot accept that price.", Answer.UNCLEAR),
    ("Yes, we can't afford this.", Answer.UNCLEAR),
    ("Yes, we won't pay for that.", Answer.UNCLEAR),
    ("Yes, please close the ticket.", Answer.UNCLEAR),
    ("Yes, withdraw my request.", Answer.UNCLEAR),
    ("Yes, abort.", Answer.UNCLEAR),
    ("Yes, stop.", Answer.UNCLEAR),
    ("I confirm receipt of your quote.", Answer.UNCLEAR),
    ("Yes, we received your mail.", Answer.UNCLEAR),
    ("I agree that's way too much.", Answer.UNCLEAR),
    ("Agreed, we will handle it ourselves.", Answer.UNCLEAR),
    ("Yes, I disagree.", Answer.UNCLEAR),
    ("Yes, I object.", Answer.UNCLEAR),
    ("No problem, go ahead.", Answer.UNCLEAR),
    ("No objection.", Answer.UNCLEAR),
    ("Nee.", Answer.NO),
    ("Nö.", Answer.NO),
    ("> Bitte antworten Sie mit JA\nNEIN", Answer.NO),
    ("Hallo\n\nWir melden uns.\nGruß\nJA", Answer.UNCLEAR),  # beyond the first lines
])
def test_answer(text: str, expected: Answer) -> None:
    assert read_answer(text) is expected
