"""The customer's own word: a severity or priority stated in the subject or the first lines (pure).

Only what reads as a label counts: "Schweregrad A", "Severity: B", "Priorität: hoch",
"Priority: 1 - High", "[P1]", "Prio 2", or a bare "kritisch"/"critical"/"urgent"/"dringend" in
the subject. Quoted lines (">") are skipped: a forwarded mail's priority is someone else's word.
Negations ("nicht kritisch", "no urgency") state nothing.

A severity label on NetTask's own scale ("Schweregrad", "Severity", "Sev") is the customer's
judgement; a priority may be a ticket system's field or default (decide.py weighs it so).
Scales differ between ticket systems; we read a three-level scale: the top level (critical,
urgent, highest, high, 1) is A, the middle (medium, normal, 2) is B, the bottom (low, 3+) is C.
"""

from __future__ import annotations

import re

from bot.domain import Severity

FIRST_LINES = 8  # ticket-system exports put the priority a few lines down

_WORDS_A = ("kritisch", "critical", "urgent", "dringend", "sehr hoch", "very high", "highest",
            "blocker", "notfall", "emergency", "hoch", "high")
_WORDS_B = ("mittel", "medium", "normal", "moderate")
_WORDS_C = ("sehr niedrig", "very low", "niedrig", "gering", "lowest", "low", "minor")
_NEGATION = re.compile(
    r"\b(nicht|kein|keine|not|no|non|un)[\s-]*(so\s+|sehr\s+|really\s+|very\s+)?"
    r"(kritisch|critical|urgent|dringend|urgency|eilig)", re.I)

_SEVERITY = re.compile(r"\b(?i:schweregrad|severity|sev)\s*[:=\-]?\s*([ABC123])\b")
_PRIORITY = re.compile(
    r"\b(?:priorit[äa]t|priority|prio|dringlichkeit|urgency|impact)\s*[:=\-]?\s*"
    r"(?:p?([1-5])\b)?\s*[\-–:]?\s*([a-zäöü]+(?:\s+(?:hoch|high|low|niedrig))?)?", re.I)
_PRIORITY_BEFORE = re.compile(
    r"\b(h[öo]chste|hohe|high|top|mittlere|medium|normale|niedrige|low)\s+"
    r"(?:priorit[äa]t|priority|prio)\b", re.I)
_P_LABEL = re.compile(r"(?:^|[\[(])\s*p([1-4])\s*(?:[\])]|\s*[-–:|])", re.I)
_SUBJECT_WORD = re.compile(r"\b(kritisch|critical|urgent|dringend|notfall|emergency)\b", re.I)


def _from_number(number: str) -> Severity:
    return {"1": Severity.A, "2": Severity.B}.get(number, Severity.C)


def _from_word(word: str) -> Severity | None:
    word = word.lower().strip()
    for words, severity in ((_WORDS_A, Severity.A), (_WORDS_B, Severity.B),
                            (_WORDS_C, Severity.C)):
        if any(word == w or word.startswith(w + " ") for w in words):
            return severity
    return None


def _severity_label(line: str) -> Severity | None:
    if match := _SEVERITY.search(line):
        value = match.group(1).upper()
        return Severity(value) if value in "ABC" else _from_number(value)
    return None


def _in_line(line: str) -> Severity | None:
    if (found := _severity_label(line)) is not None:
        return found
    if match := _PRIORITY.search(line):
        number, word = match.group(1), match.group(2)
        from_word = _from_word(word) if word else None
        if from_word is not None:  # "3 hoch" (OTRS counts upwards): the word is unambiguous
            return from_word
        if number:
            return _from_number(number)
    if match := _PRIORITY_BEFORE.search(line):
        word = match.group(1).lower()
        return (Severity.C if word in ("niedrige", "low") else
                Severity.B if word in ("mittlere", "medium", "normale") else Severity.A)
    if match := _P_LABEL.search(line):
        return _from_number(match.group(1))
    return None


def _lines(subject: str, body: str) -> list[str]:
    lines = [subject] + [line for line in body.splitlines()
                         if line.strip() and not line.lstrip().startswith(">")][:FIRST_LINES]
    return [_NEGATION.sub(" ", line) for line in lines]


def states_severity_label(subject: str, body: str) -> bool:
    """Whether the customer names a severity on NetTask's own scale ("Schweregrad B",
    "Severity: C") rather than a priority, which is often a ticket system's field or default."""
    return any(_severity_label(line) is not None for line in _lines(subject, body))


def stated_severity(subject: str, body: str) -> Severity | None:
    """The severity the customer states in the subject or the first lines, if any."""
    for line in _lines(subject, body):
        found = _in_line(line)
        if found is not None:
            return found
    cleaned = _NEGATION.sub(" ", subject)
    if _SUBJECT_WORD.search(cleaned):
        return Severity.A
    return None
