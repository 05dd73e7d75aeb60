"""The rules from probabilities to triage: needs_triage, an uncertain A, the customer's word."""

from __future__ import annotations

import numpy as np
import pytest

from bot.classify.decide import decide
from bot.classify.signals import has_impact, signals
from bot.domain import Department, Severity

LABELS = {"department": ["accounting", "consulting", "developer", "trouble"],
          "severity": ["A", "B", "C"], "product": ["dehosted", "m365"]}
THRESHOLD = 0.76


def probs(department: float, severity: tuple[float, float, float]) -> dict[str, np.ndarray]:
    """Trouble with this confidence, and these A/B/C probabilities."""
    rest = (1 - department) / 3
    return {"department": np.array([rest, rest, rest, department]),
            "severity": np.array(severity), "product": np.array([0.9, 0.1])}


def run(p: dict[str, np.ndarray], text: str) -> tuple[Severity, bool, Severity | None]:
    t = decide(LABELS, p, text, threshold=THRESHOLD, model="m")
    assert t.department is Department.TROUBLE
    return t.severity, t.needs_triage, t.stated_severity


OUTAGE = "Shop offline\nSeit 6 Uhr ist unser Shop nicht erreichbar, alle Bestellungen stehen."
QUESTION = "Frage\nWie richte ich einen Cronjob ein?"
TYPO = "Schweregrad A\nAuf der Login-Seite steht ein Tippfehler."

CASES = [
    # (probabilities, text, severity, needs_triage, stated)
    (probs(0.95, (0.9, 0.08, 0.02)), OUTAGE, Severity.A, False, None),
    (probs(0.95, (0.05, 0.05, 0.9)), QUESTION, Severity.C, False, None),
    (probs(0.60, (0.05, 0.05, 0.9)), QUESTION, Severity.C, True, None),  # unsure department
    (probs(0.95, (0.6, 0.3, 0.1)), OUTAGE, Severity.B, True, None),  # an unsure A is not priced
    (probs(0.95, (0.5, 0.1, 0.4)), OUTAGE, Severity.C, True, None),  # ... the likelier of B, C
    (probs(0.95, (0.9, 0.08, 0.02)), "Schweregrad B\nShop offline seit 6 Uhr", Severity.B,
     False, Severity.B),  # lower stated severity counts
    (probs(0.95, (0.02, 0.9, 0.08)), "Priorität: niedrig\nDrucker langsam", Severity.C, False,
     Severity.C),
    # a ticket system's priority below our sure A, with impact in the text: A stands, flagged
    (probs(0.95, (0.9, 0.08, 0.02)), "Priorität: 3 normal\n" + OUTAGE, Severity.A, True,
     Severity.B),
    (probs(0.95, (0.9, 0.08, 0.02)), "Priority: 4 - Low\nSince 2 am nobody can log in.",
     Severity.A, True, Severity.C),
    # ... but not without impact in the text, nor against an unsure A
    (probs(0.95, (0.9, 0.08, 0.02)), "Priorität: niedrig\nBitte das Zertifikat tauschen",
     Severity.C, False, Severity.C),
    (probs(0.95, (0.6, 0.3, 0.1)), "Priorität: 3 normal\n" + OUTAGE, Severity.B, True,
     Severity.B),
    (probs(0.95, (0.02, 0.08, 0.9)), "Priorität: mittel\nFrage zur API", Severity.C, False,
     Severity.B),  # higher stated B: only recorded
    (probs(0.95, (0.15, 0.8, 0.05)), "Schweregrad A\n" + OUTAGE, Severity.A, False,
     Severity.A),  # stated A with impact evidence the model does not rule out
    # the attack: a stated A without impact evidence keeps our sure C, recorded, not flagged
    (probs(0.95, (0.02, 0.08, 0.9)), TYPO, Severity.C, False, Severity.A),
    (probs(0.95, (0.02, 0.08, 0.9)), "Priorität: kritisch\nGutschrift für den Ausfall am 4.11. "
     "fehlt auf der Rechnung", Severity.C, False, Severity.A),  # impact words, P(A) too low
    (probs(0.95, (0.02, 0.4, 0.58)), TYPO, Severity.C, True, Severity.A),  # unsure: flagged
]


@pytest.mark.parametrize(("p", "text", "severity", "flagged", "stated"), CASES)
def test_rules(p: dict[str, np.ndarray], text: str, severity: Severity, flagged: bool,
               stated: Severity | None) -> None:
    assert run(p, text) == (severity, flagged, stated)


def test_confidence_is_the_models_own() -> None:
    t = decide(LABELS, probs(0.95, (0.6, 0.3, 0.1)), OUTAGE, threshold=THRESHOLD, model="m")
    assert t.confidence == {"department": 0.95, "severity": 0.6, "product": 0.9}


@pytest.mark.parametrize(("text", "impact"), [
    (OUTAGE, True),
    ("Keine Mails\nSeit heute früh kommen bei keinem im Büro Mails rein.", True),
    ("Compromised mailbox\nOur CFO's mailbox is sending phishing to customers.", True),
    ("Mailboxes empty\nWe fear data loss, all mails deleted from the inbox.", True),
    (QUESTION, False),
    (TYPO, False),
    ("Invoice copy\nURGENT!!! please send the March invoice as PDF.", False),
])
def test_impact_evidence(text: str, impact: bool) -> None:
    assert has_impact(text) is impact


def test_signals_of_a_minimal_impact_message() -> None:
    found = signals("Log\nIm error.log steht eine Warnung, was bedeutet das? Keine Eile.")
    assert {k for k, v in found.items() if v} == {"log_check", "calm"}
