"""The sample mail of `intake-bot mail send-test`: a demo customer reports an outage."""

from __future__ import annotations

import uuid
from email.message import EmailMessage
from email.utils import formatdate


def sample_mail(to: str) -> EmailMessage:
    """A German outage report from the demo customer Logistik Nord AG (Standard plan)."""
    mail = EmailMessage()
    mail["From"] = "Anna Schmidt <anna.schmidt@logistik-nord.de>"
    mail["To"] = to
    mail["Subject"] = "Mailserver nicht erreichbar"
    mail["Date"] = formatdate(localtime=False)
    mail["Message-ID"] = f"<send-test.{uuid.uuid4().hex}@logistik-nord.de>"
    mail.set_content(
        "Hallo NetTask-Team,\n\n"
        "seit heute früh ist unser Mailserver nicht erreichbar, keiner unserer Mitarbeiter kann\n"
        "Mails senden oder empfangen. Outlook meldet einen Zeitüberschreitungsfehler.\n\n"
        "Viele Grüße\nAnna Schmidt\nLogistik Nord AG\n"
    )
    return mail
