"""The text classifier behind one interface: department, severity, product line."""

from __future__ import annotations

from typing import Protocol

from bot.domain import Triage


class Classifier(Protocol):
    """Anything that triages a message; `classify` may be slow and is run off the event loop."""

    def classify(self, subject: str, text: str) -> Triage:
        """Suggest department, severity and product for one message."""
        ...
