"""Training copies in other voices (pure): the same message as a mobile one-liner without
umlauts, under a signature and legal footer, or above quoted history.

data/README.md names the voices real customers write in; the training text has few of them.
A copy keeps its labels: a footer, a quote or missing umlauts change no impact. The footers and
quotes here are generic, written for this module, and never taken from an evaluation set.
"""

from __future__ import annotations

import random

from bot.domain import Language

FOOTERS = {
    Language.DE: [
        "Mit freundlichen Grüßen\nJ. Berger\nIT-Leitung\n\nMüller & Partner GmbH\n"
        "Geschäftsführer: Thomas Müller, Anna Weiß\nAmtsgericht Stuttgart, HRB 734512\n"
        "USt-IdNr.: DE281734512",
        "Viele Grüße\nSandra\n\nVon meinem iPhone gesendet",
        "Beste Grüße / Best regards\nDr. M. Kaya\nTel. +49 89 1234 567\n\nDiese E-Mail enthält "
        "vertrauliche Informationen. Wenn Sie nicht der richtige Adressat sind, informieren Sie "
        "bitte sofort den Absender und vernichten Sie diese Mail.",
    ],
    Language.EN: [
        "Kind regards\nPriya Sharma\nIT Operations\n\nCONFIDENTIALITY NOTICE: This e-mail and any "
        "attachments are confidential and intended solely for the addressee.",
        "Thanks\nTom\n\nSent from my phone, please excuse typos",
        "Best regards,\nMarek Nowak\nSystem Administrator | Tel. +48 22 123 45 67\n"
        "Please consider the environment before printing this e-mail.",
    ],
}
QUOTES = {
    Language.DE: "Am 12.11. schrieb NetTask Support <support@nettask.example>:\n> Vielen Dank "
                 "für Ihre Nachricht.\n> Ihr Ticket wurde angelegt.\n> Mit freundlichen Grüßen",
    Language.EN: "On Tue, 12 Nov, NetTask Support <support@nettask.example> wrote:\n> Thank you "
                 "for your message.\n> Your ticket has been created.\n> Kind regards",
}
PLAIN = str.maketrans({"ä": "a", "ö": "o", "ü": "u", "Ä": "A", "Ö": "O", "Ü": "U", "ß": "ss"})


def other_voice(subject: str, body: str, language: Language, rng: random.Random) -> str:
    """One copy of a message in another voice, as the classifier's "subject\\nbody" text."""
    kind = rng.randrange(3)
    if kind == 0:  # mobile: no subject, no umlauts, lower case
        return body.translate(PLAIN).lower().strip()
    if kind == 1:
        return f"{subject}\n{body}\n\n{rng.choice(FOOTERS[language])}".strip()
    return f"{subject}\n{body}\n\n{QUOTES[language]}".strip()
