"""The sample mail of `intake-bot mail send-test`: a demo customer reports an outage."""

from __future__ import annotations

import uuid
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path

import dkim

DEMO = Path(__file__).parent.parent / "demo"
DEMO_SELECTOR = b"demo"
SIGNED_HEADERS = [b"from", b"to", b"subject", b"date", b"message-id", b"reply-to",
                  b"in-reply-to", b"references", b"content-type"]


def sign_demo(raw: bytes, *, headers: list[bytes] | None = None, length: bool = False,
              domain: str = "") -> bytes:
    """Prepend a DKIM-Signature by the demo key for the From domain (a demo customer's).

    `headers` (h=), `length` (l=) and `domain` (d=) are for tests that play with what a
    signature covers."""
    from email.parser import BytesHeaderParser
    from email.utils import parseaddr

    sender = parseaddr(str(BytesHeaderParser().parsebytes(raw)["From"] or ""))[1]
    signer = (domain or sender.rpartition("@")[2]).encode("ascii")
    key = (DEMO / "dkim-demo.key").read_bytes()
    signature: bytes = dkim.sign(raw, DEMO_SELECTOR, signer, key,
                                 include_headers=headers or SIGNED_HEADERS, length=length)
    return signature + raw


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
