"""A keyword rule set: the stand-in classifier until the trained model (issue 4) arrives.

It is deliberately simple and says so in `model`; low-evidence guesses are marked for triage.
"""

from __future__ import annotations

import re

from bot.domain import Department, Severity, Triage

MODEL = "keywords-v1"


def _rx(*words: str) -> re.Pattern[str]:
    return re.compile(r"(?<![\w])(" + "|".join(words) + r")", re.I)


DEPARTMENT_WORDS = {
    Department.ACCOUNTING: _rx(
        r"rechnung", r"invoice", r"zahlung", r"payment", r"lastschrift", r"gutschrift",
        r"credit note", r"refund", r"erstattung", r"kündig", r"cancel", r"vertrag",
        r"abonnement", r"subscription", r"tarif", r"mahnung", r"billing", r"abrechnung",
        r"preis", r"price", r"plan change", r"upgrade", r"downgrade", r"iban", r"ust-id",
    ),
    Department.DEVELOPER: _rx(
        r"api\b", r"sdk", r"webhook", r"rest\b", r"powershell", r"script", r"graph api",
        r"oauth", r"endpoint", r"integration", r"terraform", r"ansible", r"cli\b", r"json",
        r"programmier", r"entwickl", r"developer", r"code\b", r"python", r"curl",
    ),
    Department.CONSULTING: _rx(
        r"beratung", r"advice", r"architektur", r"architecture", r"best practice",
        r"konzept", r"empfehlung", r"recommend", r"migration plan", r"strategie",
        r"strategy", r"planung", r"sizing", r"roadmap",
    ),
    Department.TROUBLE: _rx(
        r"fehler", r"error", r"down\b", r"ausfall", r"ausgefallen", r"geht nicht",
        r"funktioniert nicht", r"not working", r"broken", r"kaputt", r"störung",
        r"outage", r"crash", r"timeout", r"langsam", r"slow", r"nicht erreichbar",
        r"unreachable", r"cannot", r"can't", r"kann nicht", r"problem", r"5\d\d\b",
        r"bounce", r"gehackt", r"hacked", r"virus", r"spam",
    ),
}
CRITICAL = _rx(
    r"komplett", r"alle mitarbeiter", r"all users", r"everyone", r"niemand kann",
    r"nobody can", r"production", r"produktion", r"datenverlust", r"data loss",
    r"totalausfall", r"outage", r"ausgefallen", r"is down", r"ist down", r"steht",
    r"nicht erreichbar", r"unreachable", r"gehackt", r"hacked",
)
MINOR = _rx(
    r"frage", r"question", r"wie kann", r"how (do|can)", r"wann", r"when convenient",
    r"bei gelegenheit", r"kein eilig", r"no rush", r"kosmetisch", r"cosmetic", r"info",
)
PRODUCT_WORDS = {
    "m365": _rx(r"microsoft", r"m365", r"office ?365", r"outlook", r"teams", r"exchange",
                r"sharepoint", r"onedrive", r"entra", r"azure ad", r"intune", r"word\b",
                r"excel"),
    "dehosted": _rx(r"dehosted", r"server", r"\bvm\b", r"hosting", r"dns", r"domain",
                    r"webspace", r"backup", r"ssl", r"zertifikat", r"datenbank", r"database",
                    r"mysql", r"ftp", r"plesk", r"website", r"webseite", r"cloud"),
}


class KeywordClassifier:
    """Counts keyword hits; confidence grows with the margin between the best two."""

    def __init__(self, threshold: float = 0.6) -> None:
        self.threshold = threshold

    def classify(self, subject: str, text: str) -> Triage:
        """Suggest department, severity and product for one message."""
        words = f"{subject}\n{text}"
        hits = {dept: len(rx.findall(words)) for dept, rx in DEPARTMENT_WORDS.items()}
        ranked = sorted(hits.items(), key=lambda item: item[1], reverse=True)
        (best, top), (_, second) = ranked[0], ranked[1]
        department = best if top else Department.TROUBLE
        dept_conf = 0.4 if not top else min(0.95, 0.55 + 0.15 * (top - second))

        critical, minor = len(CRITICAL.findall(words)), len(MINOR.findall(words))
        if department is Department.TROUBLE and critical:
            severity, sev_conf = Severity.A, min(0.9, 0.6 + 0.1 * critical)
        elif department is not Department.TROUBLE or minor:
            severity, sev_conf = Severity.C, 0.65
        else:
            severity, sev_conf = Severity.B, 0.55

        products = {key: len(rx.findall(words)) for key, rx in PRODUCT_WORDS.items()}
        product, count = max(products.items(), key=lambda item: item[1])
        others = sum(products.values()) - count
        prod_conf = 0.0 if not count else min(0.95, 0.6 + 0.1 * (count - others))
        confidence = {"department": round(dept_conf, 2), "severity": round(sev_conf, 2),
                      "product": round(prod_conf, 2)}
        return Triage(
            department=department,
            severity=severity,
            product=product if count and count > others else None,
            confidence=confidence,
            needs_triage=min(dept_conf, sev_conf) < self.threshold,
            model=MODEL,
        )
