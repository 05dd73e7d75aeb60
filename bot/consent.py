"""Reading a customer's answer to a price quote, strictly (pure).

A consent costs the customer money, so only a clear yes counts: a yes word and no negation or
refusal anywhere in the first lines. A clear no is a no word and no yes word. Everything else is
unclear and is asked again; it changes nothing.
"""

from __future__ import annotations

import re
from enum import StrEnum

FIRST_LINES = 3

# "ja"/"yes" only where a line begins ("Das ist ja toll" is no consent); phrases anywhere.
YES = re.compile(
    r"(^\W*(ja|jawohl|yes)\b)|\b(einverstanden|zugestimmt|ich stimme zu|stimme ich zu|"
    r"agreed|i agree|i confirm|ich bestätige)\b", re.I | re.M)
NO = re.compile(r"\b(nein|no|abgelehnt|ablehnen|lehne ab|decline|declined|storno|stornieren|"
                r"cancel|abbrechen|zu teuer|too expensive|nicht bearbeiten|do not proceed|"
                r"don't proceed)\b", re.I)
# Negations and refusals that make a yes unclear ("ja, aber nicht zu dem Preis").
DOUBT = re.compile(
    r"\b(nicht|kein|keine|keinen|keinesfalls|niemals|not|don't|dont|do not|never|"
    r"aber|but|jedoch|however|vielleicht|maybe|perhaps|falls|if|unless|erst|first|"
    r"zu teuer|too expensive|teuer|expensive|warum|why|wieso)\b|\?", re.I)


class Answer(StrEnum):
    YES = "yes"
    NO = "no"
    UNCLEAR = "unclear"


def first_lines(text: str, count: int = FIRST_LINES) -> str:
    """The first `count` non-empty lines, where an answer to a quote stands."""
    lines = [line.strip() for line in text.splitlines()
             if line.strip() and not line.lstrip().startswith(">")]
    return "\n".join(lines[:count])


def read_answer(text: str) -> Answer:
    """YES only for a clear yes; NO for a clear no; otherwise UNCLEAR."""
    head = first_lines(text)
    has_yes = bool(YES.search(head))
    has_no = bool(NO.search(head))
    if has_yes and not has_no and not DOUBT.search(head):
        return Answer.YES
    if has_no and not has_yes:
        return Answer.NO
    return Answer.UNCLEAR
