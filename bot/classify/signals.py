"""Severity signals the spec names, read from the text with plain patterns (pure; de and en).

Used two ways: as extra inputs of the severity head beside the embedding (how many users,
production down, a workaround, data loss, a security breach, a deadline today; and the marks of
a minimal-impact message: a question, "no rush", an invoice or a plan for later), and as the
impact evidence a stated severity A needs before we take it.
"""

from __future__ import annotations

import re

import numpy as np

_I = re.I


def _any(*patterns: str) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in patterns), _I)


SIGNALS: dict[str, re.Pattern[str]] = {
    "many_users": _any(
        r"\b(alle|sämtliche|saemtliche|all|every)\s+(\w+\s+)?(mitarbeiter\w*|kolleg\w*|benutzer\w*|"
        r"nutzer\w*|user\w*|staff|employees|people|standorte|sites|clients|pcs?)\b",
        r"\b(niemand|keiner|keinem|nobody|no\s?one|everyone|everybody|ganze[ns]?\s+(büro|firma|team)|"
        r"whole\s+(office|company|team))\b",
        r"\b([2-9]\d|\d{3,})\s+(mitarbeiter\w*|leute|personen|benutzer\w*|nutzer\w*|users|staff|"
        r"people|employees|kolleg\w*)\b"),
    "down": _any(
        r"\b(down|offline|ausgefallen|ausfall|nicht\s+(mehr\s+)?erreichbar|unreachable|"
        r"not\s+reachable|stillstand|steh(en|t)\s+(komplett\s+)?still|outage|gesperrt|suspended|"
        r"deaktiviert|disabled)\b",
        r"\b(geht|funktioniert|works?)\s+(gar\s+)?(nichts|nothing)\b|\bnothing\s+works\b",
        r"\b(50[234])\b|bad gateway|service unavailable",
        r"\b(keine|no)\s+(e-?)?mails?\b.{0,40}\b(rein|raus|mehr|in|out|coming|going)\b",
        r"\b(can(no|')t|cannot|können\s+nicht|kann\s+nicht|kommt\s+niemand)\b.{0,40}"
        r"\b(work|arbeiten|order|bestellen|buchen|book|log\s?in|anmelden)\b"),
    "production": _any(r"\b(produktiv\w*|production|prod|live|shop|webshop|erp|"
                        r"warenwirtschaft|kasse|checkout|bestellungen|orders)\b"),
    "workaround": _any(r"\b(workaround|notlösung|notloesung|stopgap|behelf\w*|übergangsweise|"
                       r"vorerst|for\s+now|in\s+the\s+meantime|solange|ausweich\w*|"
                       r"(im|per|via|in\s+the)\s+browser|owa|outlook\s+on\s+the\s+web)\b"),
    "data_loss": _any(r"\b(datenverlust|data\s+loss|lost\s+(all|data|files|emails?)|"
                      r"(gelöscht|geloescht|deleted|verschwunden|disappeared|weg)\b.{0,30}"
                      r"\b(daten|data|dateien|files|mails?|datenbank|database)|"
                      r"verschlüsselt|encrypted\s+by|ransom\w*)\b"),
    "security": _any(r"\b(gehackt|hacked|compromised|kompromittiert|phishing|breach|"
                     r"angriff|attack|malware|trojaner|einbruch|unbefugt\w*|unauthori[sz]ed)\b"),
    "deadline_today": _any(r"\b(heute|today|tonight|heute\s+abend|bis\s+\d{1,2}\s*uhr|"
                           r"by\s+\d{1,2}\s*(am|pm))\b.{0,80}\b(frist|deadline|vertrags\w*|"
                           r"penalt\w*|bußgeld\w*|fine|go-?live|launch|live)\b",
                           r"\b(frist|deadline|go-?live|launch)\b.{0,60}\b(heute|today)\b"),
    "some_users": _any(r"\b(ein(ige|zelne)?|some|a\s+few|several|manche|mehrere|\d\s+von\s+\d+|"
                       r"\d+\s+of\s+(our\s+)?\d+)\s+(\w+\s+)?(mitarbeiter\w*|kolleg\w*|benutzer\w*|"
                       r"nutzer\w*|users?|staff|people)\b"),
    "one_user": _any(r"\b(ein\s+kollege|eine\s+kollegin|a\s+colleague|one\s+user|one\s+of\s+"
                     r"our|bei\s+mir|for\s+me|my\s+(laptop|pc|account|mailbox))\b"),
    "question": _any(r"^\s*(wie|was|welche\w*|wo|wann|kann|können|gibt\s+es|lohnt|macht\s+es|"
                     r"how|what|which|where|when|can|could|is\s+there|does|do\s+you|should)\b",
                     r"\?\s*$"),
    "calm": _any(r"\b(keine\s+eile|kein\s+zeitdruck|nicht\s+dringend|no\s+rush|not\s+urgent|"
                 r"no\s+time\s+pressure|no\s+hurry|nur\s+neugierig|just\s+curious|kleinigkeit|"
                 r"small\s+thing|minor|cosmetic|kosmetisch|nur\s+zur\s+info|fyi|sonst\s+(ist\s+)?"
                 r"alles\s+(ok|gut)|everything\s+else\s+is\s+fine|not\s+a\s+big\s+deal|"
                 r"nicht\s+schlimm|läuft\s+(ganz\s+)?normal|runs\s+fine|works\s+fine)\b"),
    "money": _any(r"\b(rechnung\w*|invoice\w*|gutschrift|credit\s+note|angebot|quote|preis\w*|"
                  r"price\w*|kosten|cost\w*|mwst|vat|ust|kündig\w*|cancel\w*|kundennummer|"
                  r"customer\s+number|lastschrift|direct\s+debit|mahnung|reminder)\b"),
    "planning": _any(r"\b(nächste[ns]?\s+(jahr|monat|quartal)|next\s+(year|month|quarter)|q[1-4]|"
                     r"planen|planung|planning|überlegen|thinking\s+about|konzept|concept|"
                     r"empfehl\w*|recommend\w*|best\s+practice|strategie|strategy|roadmap)\b"),
    "log_check": _any(r"\b(log|logfile|error\.log|mail\.log|protokoll)\b.{0,120}"
                      r"\b(schauen|prüfen|check|look|bedeutet|mean|anschauen)\b",
                      r"\b(schauen|prüfen|check|look|bedeutet|mean)\b.{0,80}\b(log|logfile)\b"),
}
NAMES = tuple(SIGNALS)
IMPACT = ("many_users", "down", "data_loss", "security", "deadline_today")


def signals(text: str) -> dict[str, bool]:
    """Which severity signals the text shows."""
    return {name: bool(pattern.search(text)) for name, pattern in SIGNALS.items()}


def has_impact(text: str) -> bool:
    """Evidence of critical impact: many users, something down, data loss, a breach, a deadline."""
    found = signals(text)
    return any(found[name] for name in IMPACT)


def vector(texts: list[str], scale: float) -> np.ndarray[tuple[int, int], np.dtype[np.float32]]:
    """The signals of many texts as a 0/`scale` matrix, one column per signal in NAMES."""
    rows = [[scale if SIGNALS[name].search(text) else 0.0 for name in NAMES] for text in texts]
    return np.asarray(rows, dtype=np.float32).reshape(len(texts), len(NAMES))
