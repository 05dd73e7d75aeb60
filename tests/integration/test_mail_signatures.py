"""A DKIM signature proves only what it covers, and only once (issue 21, items 1 to 4).

Byte-exact mails signed with real dkimpy signatures by the demo key the test service trusts,
sent over real SMTP to the running service, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import base64
import re
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path

import pytest
from dkim.crypto import parse_pem_private_key

import bot
from bot.app import DEMO_DKIM_KEYS
from bot.cli.sample_mail import sign_demo
from models.db import Database
from tests.integration.conftest import Clock, Running, make_settings, start_service
from tests.integration.test_mail_money import (
    WEBER,
    audit_actions,
    billable_weber_ticket,
    used_incidents,
)

SHORT = [b"from", b"to", b"subject", b"date", b"message-id"]  # the usual h= without a Cc


def mail(*, to: str = "support@nettask.de", message_id: str = "<w-sig-1@kanzlei-weber.de>",
         subject: str = "Ausfall Standort A", sender: str = WEBER,
         body: str = "unser Server ist komplett ausgefallen, alle Mitarbeiter sind betroffen.",
         ) -> bytes:
    return (f"From: Jan Meier <{sender}>\r\nTo: {to}\r\nSubject: {subject}\r\n"
            f"Message-ID: {message_id}\r\nDate: Mon, 23 Nov 2026 10:00:00 +0100\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n\r\n"
            f"Hallo,\r\n{body}\r\n").encode()


async def created_evidence(running: Running, number: int) -> str:
    [created] = [d for a, d in await audit_actions(running, number) if a == "created"]
    return str(created["evidence"])


# ---- 1. only signed header fields prove anything ---------------------------------------------

async def test_an_unsigned_cc_does_not_make_a_mail_to_someone_else_proof(
        running: Running) -> None:
    to_partner = sign_demo(mail(to="partner@evil.example"), headers=SHORT)
    replayed = b"Cc: support@nettask.de\r\n" + to_partner
    await running.send(replayed, sender="x@evil.example")
    await running.settle()
    [ticket] = await running.tickets()
    assert ticket.status == "unverified"
    assert await used_incidents(running) == 0
    assert "not addressed to us" in await created_evidence(running, ticket.number or 0)


async def test_a_cc_added_above_a_signed_cc_proves_nothing(running: Running) -> None:
    """Under-signed: h= names cc once, the mail then carries two Cc fields; only the lower
    one is signed (RFC 6376 5.4.2) and it names the partner."""
    signed = sign_demo(mail(to="partner@evil.example").replace(
        b"To: partner@evil.example\r\n", b"To: partner@evil.example\r\nCc: b@evil.example\r\n"),
        headers=[*SHORT, b"cc"])
    await running.send(b"Cc: support@nettask.de\r\n" + signed, sender="x@evil.example")
    await running.settle()
    [ticket] = await running.tickets()
    assert ticket.status == "unverified"
    assert await used_incidents(running) == 0


async def test_an_over_signed_cc_cannot_be_added(running: Running) -> None:
    """Over-signed: h= names cc although the mail has none, so adding one breaks it."""
    signed = sign_demo(mail(to="partner@evil.example"), headers=[*SHORT, b"cc"])
    await running.send(b"Cc: support@nettask.de\r\n" + signed, sender="x@evil.example")
    await running.settle()
    [ticket] = await running.tickets()
    assert ticket.status == "unverified"
    assert "signature fails" in await created_evidence(running, ticket.number or 0)


async def test_a_signed_cc_to_us_proves_the_mail_is_ours(running: Running) -> None:
    raw = mail(to="partner@kanzlei-weber.de").replace(
        b"To: partner@kanzlei-weber.de\r\n",
        b"To: partner@kanzlei-weber.de\r\nCc: support@nettask.de\r\n")
    await running.send(sign_demo(raw, headers=[*SHORT, b"cc"]), sender=WEBER)
    await running.settle()
    [ticket] = await running.tickets()
    assert ticket.status == "open"
    assert ticket.included is True


# ---- 2. l= ------------------------------------------------------------------------------------

ACCOUNTING = "wir haben eine Frage zur letzten Rechnung, bitte senden Sie uns eine Kopie."


async def test_text_appended_beyond_l_makes_the_mail_unverified(running: Running) -> None:
    signed = sign_demo(mail(subject="Rechnung", body=ACCOUNTING), length=True)
    appended = signed + b"\r\nUPDATE: unser Datenbankserver ist ausgefallen, nichts geht mehr!\r\n"
    await running.send(appended, sender=WEBER)
    await running.settle()
    [ticket] = await running.tickets()
    assert ticket.status == "unverified"
    assert await used_incidents(running) == 0
    assert "l= signs only" in await created_evidence(running, ticket.number or 0)


async def test_an_l_that_covers_the_whole_body_still_verifies(running: Running) -> None:
    await running.send(sign_demo(mail(), length=True), sender=WEBER)
    await running.settle()
    [ticket] = await running.tickets()
    assert ticket.status == "open"
    assert ticket.included is True


# ---- 3. a signature or a proven Message-ID is evidence once -----------------------------------

async def first_and_replay(running: Running, after: timedelta) -> bytes:
    original = sign_demo(mail())
    await running.send(original, sender=WEBER)
    await running.settle()
    running.clock.now += after
    return original


@pytest.mark.parametrize("after", [timedelta(minutes=1), timedelta(seconds=620),
                                   timedelta(days=40)])
async def test_a_replayed_signed_mail_joins_the_first_ticket(running: Running,
                                                           after: timedelta) -> None:
    original = await first_and_replay(running, after)
    await running.send(b"X-Resent: 1\r\n" + original, sender="x@evil.example")
    await running.settle()
    tickets = await running.tickets()
    assert len(tickets) == 1
    assert await used_incidents(running) == 1
    replay = (await running.messages())[-1]
    assert replay.ticket_number == 1
    assert "replay of message" in (replay.reason or "")


async def test_a_replay_with_another_message_id_unsigned_is_still_a_replay(
        running: Running) -> None:
    """The b= alone recognises it, where the signature leaves the Message-ID unsigned."""
    original = sign_demo(mail(), headers=[b"from", b"to", b"subject", b"date"])
    await running.send(original, sender=WEBER)
    await running.settle()
    running.clock.now += timedelta(hours=2)
    await running.send(original.replace(b"<w-sig-1@kanzlei-weber.de>", b"<new@evil.example>"),
                       sender="x@evil.example")
    await running.settle()
    assert len(await running.tickets()) == 1
    assert await used_incidents(running) == 1


def respelled(signed: bytes) -> bytes:
    """The same signature with b= spelled otherwise: the last base64 character's spare bits
    flipped, which decodes to the same bytes and so still verifies."""
    value = re.search(rb"\bb=([A-Za-z0-9+/=\s]+?)\r\n(?=\S)", signed)
    assert value is not None
    b64 = re.sub(rb"\s+", b"", value.group(1))
    data = b64.rstrip(b"=")
    alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    flipped = alphabet[alphabet.index(data[-1:]) ^ 1:][:1]
    other = data[:-1] + flipped + b64[len(data):]
    assert base64.b64decode(other) == base64.b64decode(b64)
    return signed.replace(value.group(1), other, 1)


async def test_a_replay_with_b_spelled_otherwise_is_still_a_replay(running: Running) -> None:
    """Found by the attacker's review: the b= text differs, its bytes do not."""
    original = sign_demo(mail(), headers=[b"from", b"to", b"subject", b"date"])
    await running.send(original, sender=WEBER)
    await running.settle()
    running.clock.now += timedelta(hours=1)
    replay = respelled(original).replace(b"<w-sig-1@kanzlei-weber.de>", b"<new@evil.example>")
    await running.send(replay, sender="x@evil.example")
    await running.settle()
    assert len(await running.tickets()) == 1
    assert await used_incidents(running) == 1


def with_b(signed: bytes, change: Callable[[bytes], bytes]) -> bytes:
    """The mail with its first signature's b= bytes changed by `change`, base64 again."""
    value = re.search(rb"\bb=([A-Za-z0-9+/=\s]+?)\r\n(?=\S)", signed)
    assert value is not None
    decoded = base64.b64decode(re.sub(rb"\s+", b"", value.group(1)))
    return signed.replace(value.group(1), base64.b64encode(change(decoded)), 1)


def demo_modulus() -> int:
    """n of the demo key that signs the test mails."""
    pem = (Path(bot.__file__).parent / "demo" / "dkim-demo.key").read_bytes()
    return int(parse_pem_private_key(pem)["modulus"])


def plus_n(signature: bytes) -> bytes:
    """s + n: the same RSA value, other bytes (dkimpy checks neither s < n nor the length)."""
    value = int.from_bytes(signature, "big") + demo_modulus()
    return value.to_bytes((value.bit_length() + 7) // 8, "big")


@pytest.mark.parametrize("change", [lambda b: b"\x00" + b, plus_n],
                         ids=["a zero byte before s", "s plus n"])
async def test_a_replay_with_other_signature_bytes_is_still_a_replay(
        running: Running, change: Callable[[bytes], bytes]) -> None:
    """Found by the attacker's review: other bytes for the same RSA value verify too."""
    original = sign_demo(mail(), headers=[b"from", b"to", b"subject", b"date"])
    await running.send(original, sender=WEBER)
    await running.settle()
    running.clock.now += timedelta(hours=1)
    replay = with_b(original, change).replace(b"<w-sig-1@kanzlei-weber.de>",
                                              b"<new@evil.example>")
    await running.send(replay, sender="x@evil.example")
    await running.settle()
    assert len(await running.tickets()) == 1
    assert await used_incidents(running) == 1


async def test_a_mail_signed_twice_replayed_with_its_second_signature_is_a_replay(
        running: Running) -> None:
    """Found by the attacker's review: every valid signature of the first mail is seen, not
    only the one that proved it (dual signing, RFC 8463, puts two on every mail)."""
    inner = sign_demo(mail(), headers=[b"from", b"to", b"subject", b"date"])
    both = sign_demo(inner, headers=[b"from", b"to", b"subject"])
    await running.send(both, sender=WEBER)
    await running.settle()
    running.clock.now += timedelta(hours=1)
    await running.send(inner.replace(b"<w-sig-1@kanzlei-weber.de>", b"<new@evil.example>"),
                       sender="x@evil.example")
    await running.settle()
    assert len(await running.tickets()) == 1
    assert await used_incidents(running) == 1


async def test_a_proven_message_id_signed_again_is_no_new_evidence(running: Running) -> None:
    """The same mail signed anew (another b=) under the Message-ID already proven."""
    await first_and_replay(running, timedelta(hours=1))
    again = sign_demo(mail(subject="Ausfall Standort B"), headers=SHORT)
    await running.send(again, sender=WEBER)
    await running.settle()
    assert len(await running.tickets()) == 1
    assert await used_incidents(running) == 1


async def test_a_forged_mail_first_does_not_take_the_genuine_mails_evidence(
        running: Running) -> None:
    """Only a verified mail makes its Message-ID seen: a forgery sent ahead under the
    customer's next Message-ID must not turn the genuine mail into a 'replay'."""
    await running.send(mail(body="gefälscht"), sender="x@evil.example")
    await running.settle()
    await running.send(sign_demo(mail()), sender=WEBER)
    await running.settle()
    forged, genuine = await running.tickets()
    assert forged.status == "unverified"
    assert genuine.status == "open"
    assert genuine.included is True


# ---- 4. alignment by the Public Suffix List ----------------------------------------------------

@pytest.fixture
async def trusting_co_uk(db: Database, database_url: str,
                         tmp_path: Path) -> AsyncIterator[Running]:
    """The service, trusting the demo key for d=co.uk too (as a DNS answer would)."""
    keys = DEMO_DKIM_KEYS.read_text(encoding="utf-8")
    record = next(line.partition(" ")[2] for line in keys.splitlines()
                  if line.startswith("demo._domainkey.kanzlei-weber.de "))
    table = tmp_path / "keys.txt"
    table.write_text(f"{keys}\ndemo._domainkey.co.uk {record}\n", encoding="utf-8")
    await db.dispose()
    started = await start_service(make_settings(tmp_path, database_url, dkim_keys_file=table),
                                  Clock())
    yield started
    await started.service.stop()


async def test_a_signature_by_a_public_suffix_does_not_align(trusting_co_uk: Running) -> None:
    sender = "ceo@example-consulting.co.uk"
    raw = sign_demo(mail(sender=sender, message_id="<c-1@example-consulting.co.uk>"),
                    domain="co.uk")
    await trusting_co_uk.send(raw, sender=sender)
    await trusting_co_uk.settle()
    [ticket] = await trusting_co_uk.tickets()
    assert ticket.status == "unverified"
    assert "not aligned" in await created_evidence(trusting_co_uk, ticket.number or 0)



# ---- 1. other header fields as evidence -------------------------------------------------------

async def test_a_tag_in_an_unsigned_subject_names_no_ticket(running: Running) -> None:
    ticket = await billable_weber_ticket(running)
    yes = sign_demo(mail(subject="Frage", body="JA", message_id="<w-tag@kanzlei-weber.de>"),
                    headers=[b"from", b"to", b"date", b"message-id"])
    await running.send(yes.replace(b"Subject: Frage", f"Subject: [NT#{ticket.number}]".encode()),
                       sender=WEBER)
    await running.settle()
    after = (await running.tickets())[2]
    assert after.status == "awaiting_consent"
    assert after.consent is None


async def test_an_unsigned_in_reply_to_carries_no_trust_to_the_ticket_it_finds(
        running: Running) -> None:
    """The customer's own Message-ID (not ours) in an In-Reply-To the signature leaves out."""
    ticket = await billable_weber_ticket(running)
    yes = sign_demo(mail(subject="Re: Angebot", body="JA", message_id="<w-irt@kanzlei-weber.de>"),
                    headers=SHORT)
    await running.send(b"In-Reply-To: <w-2@kanzlei-weber.de>\r\n" + yes, sender=WEBER)
    await running.settle()
    after = (await running.tickets())[2]
    assert after.number == ticket.number
    assert after.status == "awaiting_consent"
    assert after.consent is None


async def test_an_unsigned_reply_to_is_not_used(running: Running) -> None:
    raw = b"Reply-To: it@weber-extern.de\r\n" + sign_demo(mail(), headers=SHORT)
    await running.send(raw, sender=WEBER)
    await running.settle()
    assert running.replies()[-1]["To"] == WEBER
