"""The severity a customer states, read from the subject and the first lines (table-driven)."""

from __future__ import annotations

import pytest

from bot.classify.stated import stated_severity, states_severity_label
from bot.domain import Severity

A, B, C = Severity.A, Severity.B, Severity.C

CASES = [
    # (subject, body, stated)
    ("Schweregrad A: Shop offline", "Seit 6 Uhr geht nichts.", A),
    ("Störung", "Schweregrad: B\nEin Drucker druckt nicht.", B),
    ("Frage", "Hallo,\nSchweregrad C, nur eine Frage zur Rechnung.", C),
    ("severity B - slow VPN", "", B),
    ("Severity: 1", "site down", A),
    ("Anfrage", "Priorität: hoch\nBitte um Rückruf.", A),
    ("Anfrage", "Priorität: mittel", B),
    ("Anfrage", "Priorität: niedrig", C),
    ("Angebot", "Ticket#: 2026112310000123\nPriorität: 3 hoch\nQueue: Einkauf", A),
    ("Backup", "ID: INC-1\nDringlichkeit: mittel\nSystem: web02", B),
    ("Mail log review", "Exported from Zendesk\nPriority: High\nSubject: x", A),
    ("Quote", "Ticket ID: 88341\nPriority: Urgent\nStatus: Open", A),
    ("Backup job", "Number: INC0045512\nUrgency: 3 - Medium", B),
    ("Copilot", "INC0012399\nImpact: 1 - High\nUrgency: 1 - High", A),
    ("x", "Priority: P1 - Highest", A),
    ("x", "Priority: Low", C),
    ("[P1] Logfile Auswertung", "", A),
    ("P2: Outlook langsam", "", B),
    ("(P3) Frage", "", C),
    ("Prio 2", "", B),
    ("Bitte mit hoher Priorität", "", None),  # inflected adjective: no label form we read
    ("low priority: typo on the status page", "", C),
    ("Hohe Priorität: Sperrung", "", A),
    ("KRITISCH: Server down", "", A),
    ("URGENT!!! need invoice copy", "", A),
    ("DRINGEND Tenant deaktiviert", "", A),
    ("[Ticket#2026120710000123] web-2 returns 503", "Ticket#: 2026120710000123\n"
     "Priority: 5 very high\nState: new", Severity.A),  # OTRS counts upwards
    ("Ticket", "Prio: 1 very low", Severity.C),
    ("Ticket", "Priorität: 1 sehr niedrig", Severity.C),
    # negatives
    ("Nicht kritisch: Tippfehler", "", None),
    ("Rechnung", "Ist nicht dringend, nur zur Info.", None),
    ("no urgency - question about DKIM", "", None),
    ("not urgent", "Just a question.", None),
    ("unkritisch", "", None),
    ("P1 ist unser Projektname", "Wie bekommen wir das Deployment hin?", None),
    ("Projekt P1", "Frage zur API", None),
    ("Our priority is the migration", "What do you recommend?", None),
    ("What severity a ticket gets", "how do you decide?", None),
    ("Outage", "It is critical for us that this works.", None),  # prose, not a label
    ("Fwd: old ticket", "see below\n> Priorität: hoch\n> Schweregrad A", None),  # quoted
    ("Frage", "\n".join(["Zeile"] * 9) + "\nPriorität: hoch", None),  # too far down
    ("", "", None),
]


@pytest.mark.parametrize(("subject", "body", "stated"), CASES)
def test_stated_severity(subject: str, body: str, stated: Severity | None) -> None:
    assert stated_severity(subject, body) == stated


@pytest.mark.parametrize(("subject", "body", "label"), [
    ("Schweregrad B", "Shop offline", True),
    ("Störung", "Severity: C\nOne printer", True),
    ("[Sev 2] VPN", "", True),
    ("Ticket 4711", "Priorität: 3 normal\nStatus: neu", False),  # a ticket system's field
    ("INC0104473", "Priority: 4 - Low", False),
    ("[P1] Shop", "", False),
    ("Frage", "Nicht kritisch", False),
])
def test_severity_label_or_priority(subject: str, body: str, label: bool) -> None:
    assert states_severity_label(subject, body) is label
