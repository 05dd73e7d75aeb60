"""What a customer's answer asks of their booked callback (pure): cancel, move, or nothing."""

from __future__ import annotations

import pytest

from bot.cases.callbacks import callback_change


@pytest.mark.parametrize(("text", "wanted"), [
    ("Rückruf absagen", "cancel"),
    ("Hallo,\nbitte den Termin absagen.", "cancel"),
    ("Please cancel the callback", "cancel"),
    ("Termin verschieben", "move"),
    ("Können wir den Rückruf verschieben?", "move"),
    ("Could we move the call to another time?", "move"),
    ("reschedule the callback please", "move"),
    ("2", None),
    ("Danke, der Termin passt.", None),
    ("Bitte absagen", None),  # names no callback
    ("Termin absagen oder verschieben, ich weiß noch nicht", None),  # both: unclear
    ("Wir müssen leider das Meeting mit dem Kunden absagen, deshalb brauchen wir dringend "
     "Hilfe beim Mailserver, der Termin ist morgen", None),  # a long line is a message
    ("> Rückruf absagen\nDanke für den Termin.", None),  # a quote is not the answer
])
def test_a_callback_change_is_read_from_the_first_line(text: str, wanted: str | None) -> None:
    assert callback_change(text) == wanted
