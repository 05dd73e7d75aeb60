"""Reading a customer's answer to a price quote, strictly (pure).

A consent costs the customer money, so only a clear yes counts: the first line is a yes form
and nothing else (politeness and "go ahead" aside), and no negation, refusal, condition or
question stands anywhere in the first lines. A clear no is a no form with no yes form. Everything
else is unclear, is asked again, and changes nothing.
"""

from __future__ import annotations

import re
from enum import StrEnum

FIRST_LINES = 3

YES_FORMS = re.compile(
    r"^(ja|jawohl|yes|einverstanden|zugestimmt|agreed|i agree|ich stimme zu|hiermit stimme ich zu|"
    r"wir stimmen zu|ich bin einverstanden|wir sind einverstanden)\b", re.I)
# What may follow a yes form on its line: politeness and "please go ahead" words only.
YES_FILLER = {
    "ja", "jawohl", "yes", "einverstanden", "zugestimmt", "agreed", "i", "agree", "ich", "wir",
    "stimme", "stimmen", "zu", "bin", "sind", "bitte", "please", "danke", "dank", "vielen",
    "thanks", "thank", "you", "gerne", "gern", "sehr", "go", "ahead", "proceed", "fortfahren",
    "loslegen", "starten", "start", "beheben", "bearbeiten", "machen", "sie", "das", "problem",
    "the", "issue", "it", "fix", "auftrag", "erteilt", "genehmigt", "approved", "ok", "okay",
    "sure", "und", "and", "mit", "dem", "preis", "price", "to", "with", "for", "den", "hiermit",
}
GREETING = re.compile(r"^(hallo|hi|hello|guten (tag|morgen|abend)|moin|servus|dear|"
                      r"sehr geehrte\w*|liebe\w*)\b[^.!?]*$", re.I)
NO_FORMS = re.compile(
    r"\b(nein|no|nee|nö|abgelehnt|ablehnen|lehne|ablehnung|decline|declined|refuse|storno|"
    r"stornieren|storniert|cancel|abbrechen|abort|zu teuer|too expensive|nicht bearbeiten|"
    r"do not proceed|don't proceed|verzichte|verzichten)\b", re.I)
NOT_A_NO = re.compile(r"\b(no problem|no objections?|kein problem|keine einwände)\b", re.I)
# Negations, refusals, conditions, questions: a yes next to any of them is not clear.
DOUBT = re.compile(
    r"(\b(nicht|nichts|kein|keine|keinen|keinesfalls|nie|niemals|not|never|no|nein|cannot|"
    r"can't|cant|won't|wont|don't|dont|do not|aber|but|jedoch|however|vielleicht|maybe|"
    r"perhaps|falls|wenn|if|unless|erst|first|teuer|expensive|kostspielig|budget|afford|"
    r"erledigt|schließen|schliessen|geschlossen|close|closed|storn\w*|absag\w*|abgesagt|"
    r"ablehn\w*|widersprech\w*|widerspreche|dagegen|disagree|object|objection|refuse|"
    r"withdraw|abort|stop\w*|verzicht\w*|warum|why|wieso|received|erhalten|eingang|"
    r"receipt|\w+n't)\b|\?)", re.I)


class Answer(StrEnum):
    YES = "yes"
    NO = "no"
    UNCLEAR = "unclear"


def first_lines(text: str, count: int = FIRST_LINES) -> list[str]:
    """The first `count` non-empty lines that are not quoted, where an answer stands."""
    lines = [line.strip() for line in text.splitlines()
             if line.strip() and not line.lstrip().startswith(">")]
    if lines and GREETING.match(lines[0]) and len(lines[0].split()) <= 6:
        lines = lines[1:]  # "Hallo Herr Meier," before the answer
    return lines[:count]


def _clear_yes(line: str) -> bool:
    words = re.findall(r"[\w']+", line.lower())
    return bool(YES_FORMS.match(" ".join(words))) and all(w in YES_FILLER for w in words)


def read_answer(text: str) -> Answer:
    """YES only for a clear yes; NO for a clear no; otherwise UNCLEAR."""
    lines = first_lines(text)
    if not lines:
        return Answer.UNCLEAR
    head = "\n".join(lines)
    without_idioms = NOT_A_NO.sub(" ", head)
    starts_yes = bool(YES_FORMS.match(" ".join(re.findall(r"[\w']+", lines[0].lower()))))
    if _clear_yes(lines[0]) and not DOUBT.search(NOT_A_NO.sub(" ", head)):
        return Answer.YES
    if NO_FORMS.search(without_idioms) and not starts_yes:
        return Answer.NO
    return Answer.UNCLEAR
