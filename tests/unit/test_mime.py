"""Parsing real-world mail (tests/mail, written for these tests): text, charsets, attachments."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.intake.mail.mime import (
    content_digest,
    decode_text,
    message_id_of,
    normalise_subject,
    parse,
)

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


def test_raw_latin1_subject_shows_its_characters() -> None:
    raw = "From: a@b.de\r\nSubject: Störung bei Müller\r\n\r\nText\r\n".encode("latin-1")
    assert parse(raw).subject == "Störung bei Müller"


def test_raw_utf8_subject_stays_utf8() -> None:
    raw = "From: a@b.de\r\nSubject: Störung bei Müller\r\n\r\nText\r\n".encode()
    assert parse(raw).subject == "Störung bei Müller"


def test_nul_bytes_leave_no_trace_in_text_fields() -> None:
    raw = b"From: a@b.de\r\nSubject: Ser\x00ver down\r\n\r\nDisk\x00 full\r\n"
    mail = parse(raw)
    assert mail.subject == "Server down"
    assert mail.body == "Disk full"


def test_an_address_longer_than_smtp_allows_is_no_address() -> None:
    raw = f"From: {'x' * 400}@acme.de\r\nSubject: long\r\n\r\nText\r\n".encode()
    assert parse(raw, "bounce-handler@acme.de").sender == "bounce-handler@acme.de"


def test_an_overlong_message_id_is_replaced_by_a_synthetic_one() -> None:
    raw = f"From: a@b.de\r\nMessage-ID: <{'x' * 1000}@acme.de>\r\n\r\nText\r\n".encode()
    assert parse(raw).message_id == message_id_of(raw)
    assert message_id_of(raw).endswith("@intake.invalid>")


SAME = b"From: a@b.de\r\nSubject: Hilfe\r\nMessage-ID: <m1@b.de>\r\n\r\nDrucker kaputt\r\n"


def test_digest_ignores_trace_headers_and_line_endings() -> None:
    relayed = (b"Received: from mx.b.de by mx.nettask.de\r\nReturn-Path: <a@b.de>\r\n"
               b"Authentication-Results: mx.nettask.de; dkim=pass header.d=b.de\r\n"
               b"DKIM-Signature: v=1; d=relay.example;\r\n\tb=abc\r\n" + SAME)
    assert content_digest(relayed) == content_digest(SAME.replace(b"\r\n", b"\n"))


def test_digest_sees_other_content() -> None:
    assert content_digest(SAME) != content_digest(SAME.replace(b"kaputt", b"geht wieder"))


def test_digest_of_a_mail_without_id_depends_on_the_envelope_sender() -> None:
    alert = b"From: monitor@b.de\r\nSubject: Disk full\r\n\r\nDisk full on /var\r\n"
    assert (content_digest(alert, envelope_sender="a@b.de")
            != content_digest(alert, envelope_sender="c@d.de"))


def test_digest_of_a_mail_with_id_ignores_the_envelope_sender() -> None:
    assert (content_digest(SAME, envelope_sender="a@b.de")
            == content_digest(SAME, envelope_sender="srs=x@relay.example"))


def nested(depth: int, *, kind: str = "multipart/mixed") -> bytes:
    """`depth` multiparts one inside the other, the text in the innermost."""
    head = ("From: Anna <anna@logistik-nord.de>\r\nTo: support@nettask.de\r\n"
            "Subject: Verschachtelt\r\nMessage-ID: <nest@logistik-nord.de>\r\n"
            "MIME-Version: 1.0\r\n")
    opening = "".join(f'Content-Type: {kind}; boundary="b{i}"\r\n\r\n--b{i}\r\n'
                      for i in range(depth))
    closing = "".join(f"\r\n--b{i}--\r\n" for i in reversed(range(depth)))
    inner = "Content-Type: text/plain; charset=utf-8\r\n\r\nDer Server ist ausgefallen.\r\n"
    return (head + opening + inner + closing).encode()


def test_three_thousand_nested_multiparts_are_cut_into_one_attachment() -> None:
    mail = parse(nested(3000))
    assert mail.nesting_cut is True
    assert [a.name for a in mail.attachments] == ["nested-parts-not-parsed.txt"]
    assert mail.subject == "Verschachtelt"


def test_a_few_nested_multiparts_are_parsed_to_the_text() -> None:
    mail = parse(nested(10))
    assert mail.nesting_cut is False
    assert mail.body == "Der Server ist ausgefallen."
