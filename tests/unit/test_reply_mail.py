"""Our outgoing mail as bytes (`mail_bytes`): what a mail client reads back from them."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from email.utils import parseaddr
from typing import Any, cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.cases.replies import as_message, mail_bytes
from bot.domain import Language
from bot.intake.mail.mime import parse

NOW = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
BODY = ("Guten Tag Frau Müller,\n\nwir haben Ihre Anfrage als NT#1234 aufgenommen. "
        "Die Erstreaktion erfolgt bis Mo 23.11.2026 15:00 Uhr (MEZ); Preis: 89,00 € netto.\n")


def fields(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = dict(
        sender="support@nettask.de", sender_name="Jörg Weiß (NetTask Support)",
        to="anna.mueller@logistik-nord.de",
        subject="[NT#1234] Re: Exchange-Postfach nimmt keine Mails an – dringend",
        body=BODY, message_id="<nt1234.0123456789abcdef@nettask.de>",
        in_reply_to="<abc@logistik-nord.de>", references=("<x1@logistik-nord.de>",),
        language=Language.DE, ticket_number=1234, now=NOW)
    return {**base, **changes}


def read(**changes: Any) -> EmailMessage:
    return cast(EmailMessage, message_from_bytes(mail_bytes(**fields(**changes)),
                                                 policy=default))


def test_the_sender_name_with_umlauts_reads_back() -> None:
    assert parseaddr(str(read()["From"])) == ("Jörg Weiß (NetTask Support)",
                                              "support@nettask.de")


def test_the_subject_with_a_dash_reads_back() -> None:
    assert str(read()["Subject"]) == fields()["subject"]


def test_the_recipient_reads_back() -> None:
    assert str(read()["To"]) == "anna.mueller@logistik-nord.de"


def test_the_date_is_now() -> None:
    assert str(read()["Date"]) == "Mon, 23 Nov 2026 09:30:00 +0000"


def test_the_message_id_is_ours() -> None:
    assert str(read()["Message-ID"]) == "<nt1234.0123456789abcdef@nettask.de>"


def test_it_answers_the_customers_message() -> None:
    assert str(read()["In-Reply-To"]) == "<abc@logistik-nord.de>"


def test_references_end_with_the_answered_message() -> None:
    assert str(read()["References"]) == "<x1@logistik-nord.de> <abc@logistik-nord.de>"


def test_references_keep_the_last_ten_of_a_long_thread() -> None:
    thread = tuple(f"<m{n}.0123456789abcdef@logistik-nord.de>" for n in range(15))
    kept = str(read(references=thread)["References"]).split()
    assert kept == [*thread[-10:], "<abc@logistik-nord.de>"]


def test_a_long_references_header_is_folded_at_78() -> None:
    thread = tuple(f"<m{n}.0123456789abcdef@logistik-nord.de>" for n in range(15))
    raw = mail_bytes(**fields(references=thread))
    assert max(len(line) for line in raw.splitlines()) <= 78


def test_a_first_mail_has_no_in_reply_to() -> None:
    assert read(in_reply_to="", references=())["In-Reply-To"] is None


def test_an_automatic_answer_says_so() -> None:
    assert str(read()["Auto-Submitted"]) == "auto-replied"


def test_an_automatic_answer_asks_exchange_not_to_answer() -> None:
    assert str(read()["X-Auto-Response-Suppress"]) == "All"


def test_a_notification_is_auto_generated() -> None:
    assert str(read(auto_submitted="auto-generated")["Auto-Submitted"]) == "auto-generated"


def test_a_persons_answer_is_not_marked_automatic() -> None:
    mail = read(auto_submitted=None)
    assert (mail["Auto-Submitted"], mail["X-Auto-Response-Suppress"]) == (None, None)


def test_it_carries_our_loop_header_with_the_ticket() -> None:
    assert str(read()["x-nettask-intake"]) == "1234"


def test_it_names_its_language() -> None:
    assert str(read(language=Language.EN)["Content-Language"]) == "en"


def test_the_body_with_umlauts_reads_back() -> None:
    assert read().get_content() == BODY


def test_a_body_with_umlauts_is_quoted_printable() -> None:
    assert read()["Content-Transfer-Encoding"] == "quoted-printable"


def test_a_short_ascii_body_is_sent_as_it_is() -> None:
    assert read(body="Hello,\nyour ticket is NT#1.")["Content-Transfer-Encoding"] == "7bit"


def test_a_body_gets_its_last_line_break() -> None:
    assert read(body="Hello,\nyour ticket is NT#1.").get_content() == \
        "Hello,\nyour ticket is NT#1.\n"


def test_a_line_break_in_the_subject_is_refused() -> None:
    with pytest.raises(ValueError, match="Subject"):
        mail_bytes(**fields(subject="Hallo\r\nBcc: victim@example.org"))


def test_our_own_parser_reads_the_answer_as_a_mail_of_ours() -> None:
    parsed = parse(mail_bytes(**fields()), envelope_sender="support@nettask.de")
    assert (parsed.sender, parsed.subject, parsed.body) == (
        "support@nettask.de", fields()["subject"], BODY.rstrip("\n"))


def test_an_invitation_can_be_added_to_it() -> None:
    mail = as_message(mail_bytes(**fields()))
    mail.add_attachment("BEGIN:VCALENDAR\nEND:VCALENDAR\n", subtype="calendar",
                        filename="callback.ics")
    again = cast(EmailMessage, message_from_bytes(bytes(mail), policy=default))
    parts = [(p.get_content_type(), p.get_content()) for p in again.iter_parts()]
    assert parts == [("text/plain", BODY),
                     ("text/calendar", "BEGIN:VCALENDAR\nEND:VCALENDAR\n")]


def words(alphabet: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """Text as our answers carry it in a header: single spaces, no line breaks."""
    return st.text(alphabet, min_size=1, max_size=200).map(lambda s: " ".join(s.split())) \
        .filter(bool)


PRINTABLE = st.characters(codec="utf-8", categories=("L", "N", "P", "S", "Zs"))


@settings(max_examples=300, deadline=None)
@given(subject=words(PRINTABLE), name=words(PRINTABLE),
       body=st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=600))
def test_any_text_reads_back_as_it_was_written(subject: str, name: str, body: str) -> None:
    raw = mail_bytes(**fields(subject=subject, sender_name=name, body=body))
    mail = cast(EmailMessage, message_from_bytes(raw, policy=default))
    lines = raw.splitlines()
    expected_body = "\n".join(body.encode().splitlines()[i].decode() for i in
                              range(len(body.encode().splitlines()))) + "\n"
    assert (str(mail["Subject"]), parseaddr(str(mail["From"]))[0],
            mail.get_content(), raw.isascii(), max(len(line) for line in lines) <= 998) == \
        (subject, name, expected_body, True, True)


def test_the_ticket_tag_stays_readable_in_an_encoded_subject() -> None:
    subject = next(line for line in mail_bytes(**fields()).splitlines()
                   if line.startswith(b"Subject:"))
    assert subject.startswith(b"Subject: [NT#1234] Re: Exchange-Postfach nimmt keine Mails an ")
