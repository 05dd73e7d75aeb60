"""Parsing real-world mail (tests/mail, written for these tests): text, charsets, attachments."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.intake.mime import decode_text, message_id_of, normalise_subject, parse

MAIL = Path(__file__).resolve().parents[1] / "mail"


def load(name: str, **placeholders: str) -> bytes:
    raw = (MAIL / name).read_bytes()
    for key, value in {"TICKET": "7", "REPLY_ID": "nt7.abc@nettask.de", **placeholders}.items():
        raw = raw.replace(b"{" + key.encode() + b"}", value.encode())
    return raw


def test_outlook_reply_strips_quote_and_signature_and_decodes_latin1() -> None:
    mail = parse(load("outlook-aw-german.eml"))
    assert mail.sender == "j.meier@kanzlei-weber.de" and mail.sender_name == "Meier, Jonas"
    assert mail.in_reply_to == ("<nt7.abc@nettask.de>",)
    assert mail.references[-1] == "<nt7.abc@nettask.de>"
    assert mail.new_text.startswith("JA, bitte beheben Sie das Problem.")
    assert "Ursprüngliche Nachricht" not in mail.new_text
    assert "Ursprüngliche Nachricht" in mail.body  # the full body is kept too
    assert normalise_subject(mail.subject) == "Drucker-Freigabe geht nicht"


def test_gmail_prefers_the_plain_part() -> None:
    mail = parse(load("gmail-english.eml"))
    assert mail.body.startswith("Hi,\n\nsince this morning every Teams call")
    assert "<div" not in mail.body


def test_html_only_mail_becomes_text_without_script_or_style() -> None:
    mail = parse(load("html-only.eml"))
    assert mail.subject == "Exchange synchronisiert nicht mehr – dingend!"
    assert "unser Exchange-Postfach synchronisiert" in mail.body
    assert "Freundliche Grüße" in mail.body
    assert "alert" not in mail.body and "color" not in mail.body and "<p>" not in mail.body


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("iso-8859-1.eml", "unsere Webseite lädt seit heute Nacht nicht mehr"),
        ("windows-1252.eml", "„Microsoft 365 Basic“ fristgerecht zum 31.12.2026 – bitte"),
        ("lying-charset.eml", "Das nächtliche Backup schlägt fehl: „Zugriff verweigert“"),
        ("apple-mail-german.eml", "auf der Rechnung für November sind zwei Lizenzen"),
    ],
)
def test_charsets_including_a_lying_one(name: str, expected: str) -> None:
    assert expected in " ".join(parse(load(name)).body.split())


def test_latin1_headers_are_decoded() -> None:
    mail = parse(load("iso-8859-1.eml"))
    assert mail.sender_name == "Jörg Bäcker" and mail.subject == "Webseite lädt nicht"


def test_broken_encodings_do_not_stop_parsing() -> None:
    mail = parse(load("broken-encoding.eml"))
    assert mail.sender == "rene@logistik-nord.de" and mail.sender_name == "René Krüger"
    assert mail.subject  # an unknown charset in an encoded word is kept as raw text
    assert "Server" in mail.body  # base64 with garbage still yields what it can
    assert [a.name for a in mail.attachments] == ["Protokoll März.log"]  # RFC 2231 name


def test_attachments_inline_images_and_forwarded_messages() -> None:
    mail = parse(load("forwarded-with-attachment.eml"))
    kinds = {(a.name, a.content_type, a.inline) for a in mail.attachments}
    assert ("screenshot.png", "image/png", True) in kinds
    assert any(a.content_type == "message/rfc822" for a in mail.attachments)
    assert mail.body.startswith("Siehe unten, der Kollege kommt nicht mehr in OneDrive.")


def test_smime_signed_mail_keeps_text_and_signature_as_attachment() -> None:
    mail = parse(load("smime-signed.eml"))
    assert "das VPN-Gateway im Rechenzentrum verweigert" in mail.body
    assert [a.name for a in mail.attachments] == ["smime.p7s"]


def test_empty_mail() -> None:
    mail = parse(load("empty-body.eml"))
    assert mail.body == "" and mail.new_text == "" and mail.subject == ""


def test_message_id_is_read_cheaply_and_synthesised_when_missing() -> None:
    assert message_id_of(load("gmail-english.eml")) == "<CAHx8kLk2+0wQ7pVb_3mZtq@mail.gmail.com>"
    raw = b"From: a@b.de\r\nSubject: no id\r\n\r\nbody\r\n"
    assert message_id_of(raw) == message_id_of(raw)
    assert message_id_of(raw).endswith("@intake.invalid>")
    assert message_id_of(raw) != message_id_of(raw + b"more")


def test_decode_text_distrusts_single_byte_labels_only() -> None:
    assert decode_text("Grüße".encode(), "iso-8859-1") == "Grüße"
    assert decode_text("Grüße".encode("latin-1"), "iso-8859-1") == "Grüße"
    assert decode_text("Grüße".encode("latin-1"), "utf-8") == "Grüße"  # bad UTF-8: cp1252
    assert decode_text("Grüße".encode(), "x-unknown") == "Grüße"
    assert decode_text(b"+AMQ-rger", "utf-7") == "Ärger"
