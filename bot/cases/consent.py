"""Reading a customer's answer to a price quote, strictly (pure).

A consent costs the customer money, so only a clear yes counts: the text is normalised first
(NFKC, so full-width letters read as letters; format characters such as a soft hyphen or a
zero-width space removed), the first line is a yes form and nothing else (politeness and "go
ahead" aside), the lines after it are only a closing or a name, and no refusal, negation,
delay, condition or question stands anywhere in the first lines. A clear no is a refusal with
no yes form first. Everything else is unclear, is asked again, and changes nothing.
"""

from __future__ import annotations

import re
import unicodedata
from enum import StrEnum

FIRST_LINES = 3  # where the answer itself stands: the yes line, a closing, a name
READ_LINES = 10  # where a refusal still counts (a P.S. "bitte doch abbrechen" included)

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
# What may stand below a yes: the words of a closing formula, and the sender's own name. An
# unknown capitalised word is not taken for a name: "Yes / Just Kidding" is asked again.
CLOSING_WORDS = {
    "mit", "freundlichen", "freundliche", "besten", "beste", "herzlichen", "herzliche",
    "schönen", "schöne", "viele", "liebe", "lieben", "grüßen", "grüße", "gruß", "grüssen",
    "grüsse", "gruss", "mfg", "vg", "lg", "bg", "danke", "dank", "vielen", "schön", "sehr",
    "thanks", "thank", "you", "cheers", "regards", "best", "kind", "wishes", "sincerely",
    "yours", "many", "aus", "dem", "der",
}

# Refusals people write, German and English (tests/unit/test_consent.py reads 150+ of them):
# each stem counts wherever it stands in the first lines. Text is lower-cased, "ß" read as "ss".
REFUSALS = [
    # no
    r"nein", r"nee+", r"ne", r"nö+", r"noe", r"nä+h?", r"nix", r"no+", r"nope", r"nah", r"nay",
    r"no thanks?", r"nein danke",
    # refuse, decline, reject
    r"ab(ge)?lehn\w*", r"lehne\w*", r"ablehnung\w*", r"decline\w*", r"reject\w*", r"refus\w*",
    r"deny", r"denied", r"widersprech\w*", r"widerspr(u|i)ch\w*", r"einspruch", r"dagegen",
    r"disagree\w*", r"object\w*", r"against", r"oppose\w*", r"pass", r"nicht einverstanden",
    # cancel, stop, withdraw
    r"(ab)?brech\w*", r"abbruch", r"abgebrochen", r"bricht", r"absag\w*", r"abgesagt",
    r"sag\w*( \w+)? ab", r"verzicht\w*", r"storn\w*", r"annull\w*", r"cancel\w*",
    r"abort\w*", r"stop+\w*", r"halt",
    r"anhalten", r"einstellen", r"withdraw\w*", r"revok\w*", r"retract\w*", r"rescind\w*",
    r"widerruf\w*", r"zurück\w*", r"zurueck\w*", r"rückgängig", r"ruckgangig",
    r"rueckgaengig", r"undo", r"call (it )?off", r"called off", r"back out",
    # wait, later
    r"wart\w*", r"abwarten", r"später", r"spaeter", r"vorerst", r"erstmal", r"erst mal",
    r"zunächst", r"zunaechst", r"moment", r"gedulden", r"verschieb\w*", r"verschoben",
    r"aufschieb\w*", r"wait\w*", r"hold", r"on hold", r"pause\w*", r"later", r"postpone\w*",
    r"defer\w*", r"delay\w*", r"not yet", r"noch nicht", r"sec", r"second",
    r"melde\w*", r"nochmal", r"noch ?mal", r"get back",
    # forget it, never mind, changed our mind
    r"vergess\w*", r"vergiss\w*", r"vergesst", r"egal", r"lassen", r"lass\w*", r"forget\w*",
    r"never ?mind", r"mind", r"scratch", r"ignore\w*", r"disregard\w*", r"umentschieden",
    r"anders überlegt", r"überlegt", r"ueberlegt", r"überleg\w*", r"actually", r"eigentlich",
    # too expensive, money
    r"teuer\w*", r"kostspielig", r"budget\w*", r"leisten", r"zu ?viel\w*", r"geld", r"kosten\w*",
    r"kostenlos\w*", r"gratis", r"umsonst", r"kulanz", r"wucher\w*", r"expensive", r"pricey",
    r"costly", r"cost\w*", r"afford\w*", r"too much", r"money", r"free", r"charge\w*",
    r"included", r"inklusive", r"enthalten", r"warranty", r"garantie", r"overpriced",
    # not needed, done, ourselves
    r"erledigt", r"gelöst", r"geloest", r"behoben", r"läuft wieder", r"laeuft wieder",
    r"funktioniert wieder", r"schon", r"bereits", r"selbst", r"selber", r"intern", r"unnötig",
    r"unnoetig", r"brauch\w*", r"nötig", r"noetig", r"schließ\w*", r"schliess\w*",
    r"geschlossen", r"resolved", r"solved", r"fixed", r"working again", r"already",
    r"ourselves", r"myself", r"in-house", r"internally", r"need\w*", r"close\w*",
    r"unnecessary",
    # negation, condition, doubt, a question
    r"nicht\w*", r"nichts", r"kein\w*", r"nie", r"niemals", r"not", r"never", r"none",
    r"nothing", r"cannot", r"can't", r"cant", r"won't", r"wont", r"don't", r"dont", r"do not",
    r"\w+n't", r"aber", r"jedoch", r"doch", r"allerdings", r"sondern", r"trotzdem", r"but",
    r"however", r"though", r"although", r"vielleicht", r"eventuell", r"evtl", r"womöglich",
    r"ggf", r"maybe", r"perhaps", r"possibly", r"might", r"falls", r"wenn", r"sofern",
    r"solange", r"nur", r"if", r"unless", r"only", r"except", r"erst", r"first", r"unsicher",
    r"unklar", r"sure\?", r"not sure", r"unsure", r"prüf\w*", r"pruef\w*", r"klär\w*",
    r"klaer\w*", r"rücksprache", r"ruecksprache", r"besprech\w*", r"chef\w*", r"check\w*",
    r"discuss\w*", r"think\w*", r"consider\w*", r"boss", r"manager", r"approval",
    r"warum", r"wieso", r"weshalb", r"why", r"what", r"how",
    # sorry, mistake, nonsense
    r"leider", r"sorry", r"entschuldig\w*", r"tut mir leid", r"unfortunately", r"apolog\w*",
    r"versehen\w*", r"irrtum", r"irrtümlich", r"falsch", r"fehler", r"mistake\w*", r"wrong",
    r"accident\w*", r"quatsch", r"unsinn", r"frechheit", r"unverschämt", r"nonsense",
    r"ridiculous", r"lol", r"haha\w*",
    # an acknowledgement of receipt, not an answer
    r"erhalten", r"eingang", r"eingegangen", r"empfangen", r"received", r"receipt",
    r"acknowledge\w*",
]
REFUSAL = re.compile(r"\b(" + "|".join(REFUSALS) + r")\b|\?", re.I)
# Phrases that contain a "no" but are not one.
NOT_A_NO = re.compile(r"\b(no problem|no objections?|kein problem|keine einwände|"
                      r"keine einwaende)\b", re.I)
# Words that refuse on their own (a reply with one of them and no yes is a NO, not unclear).
CLEAR_NO = re.compile(
    r"\b(nein|nee+|nö+|noe|no|nope|nah|abgelehnt|ablehnen|lehne\w*|ablehnung|decline\w*|"
    r"reject\w*|refuse\w*|storn\w*|cancel\w*|abbrech\w*|abort\w*|absag\w*|abgesagt|"
    r"zu teuer|too expensive|nicht bearbeiten|do not proceed|don't proceed|verzicht\w*|"
    r"widerruf\w*|withdraw\w*)\b", re.I)
FORMAT = "Cf"  # Unicode format characters: soft hyphen, zero-width space/joiners, bidi marks


class Answer(StrEnum):
    YES = "yes"
    NO = "no"
    UNCLEAR = "unclear"


def normalise(text: str) -> str:
    """The text as a person reads it: NFKC (full-width letters are letters), format
    characters (soft hyphen, zero-width space, ...) removed."""
    text = unicodedata.normalize("NFKC", text)
    return "".join(c for c in text if unicodedata.category(c) != FORMAT)


def first_lines(text: str, count: int = FIRST_LINES) -> list[str]:
    """The first `count` non-empty lines that are not quoted, where an answer stands."""
    lines = [line.strip() for line in normalise(text).splitlines()
             if line.strip() and not line.lstrip().startswith(">")]
    if lines and GREETING.match(lines[0]) and len(lines[0].split()) <= 6:
        lines = lines[1:]  # "Hallo Herr Meier," before the answer
    return lines[:count]


def _words(line: str) -> list[str]:
    return re.findall(r"[\w']+", line.lower())


def _clear_yes(line: str) -> bool:
    words = _words(line)
    return bool(YES_FORMS.match(" ".join(words))) and all(w in YES_FILLER for w in words)


def _sign_off(line: str, name: set[str]) -> bool:
    """A closing formula, the sender's name, or both: what may stand below a yes."""
    return all(w in CLOSING_WORDS or w in name for w in _words(line))


def _refuses(lines: list[str]) -> bool:
    head = NOT_A_NO.sub(" ", "\n".join(lines).lower().replace("ß", "ss"))
    return bool(REFUSAL.search(head) or REFUSAL.search(head.replace("ss", "ß")))


def read_answer(text: str, name: str = "") -> Answer:
    """YES only for a clear yes; NO for a clear no; otherwise UNCLEAR. `name` is the sender's
    display name, which may sign below the yes."""
    lines = first_lines(text, READ_LINES)
    name_words = set(_words(normalise(name)))
    if not lines:
        return Answer.UNCLEAR
    answer = lines[:FIRST_LINES]
    starts_yes = bool(YES_FORMS.match(" ".join(_words(lines[0]))))
    if (_clear_yes(lines[0]) and all(_sign_off(line, name_words) for line in answer[1:])
            and not _refuses(lines)):
        return Answer.YES
    without_idioms = NOT_A_NO.sub(" ", "\n".join(answer))
    if CLEAR_NO.search(without_idioms) and not starts_yes:
        return Answer.NO
    return Answer.UNCLEAR
