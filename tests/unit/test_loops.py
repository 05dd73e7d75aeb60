"""Loop and bounce protection (RFC 3834): pure rules."""

from __future__ import annotations

import pytest

from bot.intake.loops import judge
from bot.intake.mime import parse
from tests.unit.test_mime import load

OURS = ("support@nettask.de",)


def mail(headers: str, body: str = "Hallo", sender: str = "kunde@acme.de") -> bytes:
    return (f"From: {sender}\r\nTo: support@nettask.de\r\nSubject: Hilfe\r\n"
            f"Message-ID: <x@acme.de>\r\n{headers}\r\n{body}\r\n").encode()


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("bounce-dsn.eml", "bounce"),
        ("ooo-german.eml", "auto-reply"),
        ("ooo-english-no-header.eml", "auto-reply"),
        ("mailing-list.eml", "bulk"),
        ("noreply-webform.eml", "no-reply"),
        ("gmail-english.eml", "normal"),
        ("outlook-aw-german.eml", "normal"),
        ("smime-signed.eml", "normal"),
    ],
)
def test_corpus_verdicts(name: str, kind: str) -> None:
    parsed = parse(load(name))
    envelope = "" if name == "bounce-dsn.eml" else parsed.sender
    assert judge(parsed, envelope_sender=envelope, own_addresses=OURS).kind == kind


@pytest.mark.parametrize(
    ("headers", "sender", "kind"),
    [
        ("Auto-Submitted: auto-generated\r\n", "kunde@acme.de", "auto-reply"),
        ("Auto-Submitted: auto-replied; owner-email=x@y\r\n", "kunde@acme.de", "auto-reply"),
        ("Auto-Submitted: no\r\n", "kunde@acme.de", "normal"),
        ("Precedence: junk\r\n", "kunde@acme.de", "bulk"),
        ("Precedence: list\r\n", "kunde@acme.de", "bulk"),
        ("List-Unsubscribe: <mailto:u@acme.de>\r\n", "kunde@acme.de", "bulk"),
        ("X-Autoreply: yes\r\n", "kunde@acme.de", "auto-reply"),
        ("X-Auto-Response-Suppress: All\r\n", "kunde@acme.de", "no-reply"),
        ("", "postmaster@acme.de", "no-reply"),
        ("", "MAILER-DAEMON@acme.de", "no-reply"),
        ("", "support@nettask.de", "loop"),
        ("X-NetTask-Intake: 12\r\n", "kunde@acme.de", "loop"),
    ],
)
def test_header_rules(headers: str, sender: str, kind: str) -> None:
    parsed = parse(mail(headers, sender=sender))
    assert judge(parsed, envelope_sender=sender, own_addresses=OURS).kind == kind


def test_null_envelope_sender_is_never_answered() -> None:
    verdict = judge(parse(mail("")), envelope_sender="", own_addresses=OURS)
    assert verdict.kind == "auto-reply" and not verdict.may_answer


def test_verdict_consequences() -> None:
    bounce = judge(parse(load("bounce-dsn.eml")), envelope_sender="", own_addresses=OURS)
    assert not bounce.opens_ticket and not bounce.may_answer
    web = judge(parse(load("noreply-webform.eml")), envelope_sender="x@y.de", own_addresses=OURS)
    assert web.opens_ticket and not web.may_answer
