"""What the store keeps over real SMTP, on SQLite and PostgreSQL: duplicates are the same
message, every accepted mail ends as a ticket or a recorded disposition (issue 7)."""

from __future__ import annotations

import json

from bot.cli.db import mail_list
from bot.intake.mail.mime import content_digest
from models.db import Database
from models.messages import store_inbound
from models.tables import Message
from tests.integration.conftest import MONDAY_10, Running
from tests.unit.test_mime import load


def request(subject: str = "Drucker druckt nicht", *, sender: str = "anna@logistik-nord.de",
            message_id: str | None = "<r-1@logistik-nord.de>", body: str = "Hallo, bitte helfen.",
            extra: str = "") -> bytes:
    id_line = f"Message-ID: {message_id}\r\n" if message_id else ""
    return (
        f"From: <{sender}>\r\nTo: support@nettask.de\r\nSubject: {subject}\r\n{id_line}"
        f"Date: Mon, 23 Nov 2026 10:00:00 +0100\r\n{extra}"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    ).encode()


async def test_the_same_message_relayed_twice_is_stored_once(running: Running) -> None:
    first = request()
    relayed = b"Received: from mx2.logistik-nord.de by mx.nettask.de\r\n" + first
    assert (await running.send(first))[0] == 250
    code, text = await running.send(relayed)
    await running.settle()
    assert code == 250
    assert "already have" in text
    assert len([m for m in await running.messages() if m.direction == "in"]) == 1


async def test_a_reused_message_id_with_other_content_is_a_new_mail(running: Running) -> None:
    await running.send(request("Drucker druckt nicht"))
    code, text = await running.send(request("VPN geht nicht", body="Das VPN bricht ab."))
    await running.settle()
    inbound = [m for m in await running.messages() if m.direction == "in"]
    assert code == 250
    assert "queued as" in text
    assert [m.external_id for m in inbound] == ["<r-1@logistik-nord.de>"] * 2
    assert [m.flags for m in inbound] == ["", "message_id_reused"]
    assert [m.disposition for m in inbound] == ["ticket", "ticket"]
    # processed concurrently: which becomes NT#1 is not fixed
    assert sorted(t.subject for t in await running.tickets()) == ["Drucker druckt nicht",
                                                                  "VPN geht nicht"]
    assert len(running.replies()) == 2


async def test_alerts_without_message_id_from_two_senders_are_two_mails(running: Running) -> None:
    def alert(host: str) -> bytes:
        return request("Disk full", sender=f"{host}@logistik-nord.de", message_id=None,
                       body="Disk full on /var")

    await running.send(alert("nagios1"), sender="nagios1@logistik-nord.de")
    code, text = await running.send(alert("nagios2"), sender="nagios2@logistik-nord.de")
    await running.settle()
    inbound = [m for m in await running.messages() if m.direction == "in"]
    assert code == 250
    assert "queued as" in text
    assert [m.disposition for m in inbound] == ["ticket", "ticket"]


async def test_a_reply_threads_to_the_newest_ticket_of_a_reused_id(running: Running) -> None:
    await running.send(request("Drucker druckt nicht"))
    await running.settle()
    await running.send(request("VPN geht nicht", body="Das VPN bricht ab."))
    await running.settle()
    reply = request("Re: VPN", message_id="<r-2@logistik-nord.de>", body="Noch ein Detail.",
                    extra="In-Reply-To: <r-1@logistik-nord.de>\r\n")
    await running.send(reply)
    await running.settle()
    last = [m for m in await running.messages() if m.direction == "in"][-1]
    assert last.disposition == "follow-up"
    assert last.ticket_number == 2


async def test_requests_about_auto_replies_open_tickets(running: Running) -> None:
    subjects = ["Abwesenheitsnotiz in Outlook funktioniert nicht",
                "Out of office assistant not working in Exchange Online"]
    for n, subject in enumerate(subjects):
        await running.send(request(subject, message_id=f"<ooo-q-{n}@logistik-nord.de>"))
    await running.settle()
    assert sorted(t.subject for t in await running.tickets()) == sorted(subjects)
    assert len(running.replies()) == 2


async def test_a_postmaster_forwarding_an_undeliverable_report_opens_a_ticket(
    running: Running,
) -> None:
    forward = request("WG: Unzustellbar: Angebot 2026-118", sender="postmaster@logistik-nord.de",
                      body="Hallo Support, warum kommt diese Mail nicht an?\r\n\r\n"
                           "Von: Microsoft Outlook\r\nDie Nachricht konnte nicht zugestellt "
                           "werden.")
    await running.send(forward, sender="postmaster@logistik-nord.de")
    await running.settle()
    [ticket] = await running.tickets()
    assert ticket.subject == "Unzustellbar: Angebot 2026-118"


async def test_nul_bytes_become_a_ticket(running: Running) -> None:
    await running.send(request("Server\x00 down", body="Die Platte\x00 ist voll."))
    await running.settle()
    [message] = [m for m in await running.messages() if m.direction == "in"]
    assert message.disposition == "ticket"
    assert message.subject == "Server down"
    assert message.raw is not None
    assert b"Server\x00 down" in message.raw  # the raw bytes stay as received


async def test_a_from_address_over_320_characters_becomes_a_ticket(running: Running) -> None:
    long_from = f"{'x' * 330}@logistik-nord.de"
    await running.send(request(sender=long_from), sender="anna@logistik-nord.de")
    await running.settle()
    [message] = [m for m in await running.messages() if m.direction == "in"]
    assert message.disposition == "ticket"
    assert message.sender == "anna@logistik-nord.de"


async def test_a_raw_latin1_subject_keeps_its_umlauts(running: Running) -> None:
    raw = ("From: <anna@logistik-nord.de>\r\nTo: support@nettask.de\r\n"
           "Subject: Störung im Büro\r\nMessage-ID: <l1@logistik-nord.de>\r\n\r\n"
           "Kein Netz.\r\n").encode("latin-1")
    await running.send(raw)
    await running.settle()
    [ticket] = await running.tickets()
    assert ticket.subject == "Störung im Büro"


async def test_a_plain_text_bounce_quoting_our_reply_is_linked(running: Running) -> None:
    await running.send(request())
    await running.settle()
    [answer] = running.replies()
    bounce = (
        "From: MAILER-DAEMON@mx.logistik-nord.de\r\nTo: support@nettask.de\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "Message-ID: <b-1@mx.logistik-nord.de>\r\n\r\n"
        "I'm sorry to have to inform you that your message could not be delivered.\r\n\r\n"
        "--- Below this line is a copy of the message.\r\n\r\n"
        f"   Message-ID: {answer['Message-ID']}\r\n   Subject: {answer['Subject']}\r\n"
    ).encode()
    assert (await running.send(bounce, sender=""))[0] == 250
    await running.settle()
    last = (await running.messages())[-1]
    assert last.disposition == "bounce"
    assert last.ticket_number == 1
    assert len(await running.tickets()) == 1


async def test_empty_data_is_stored_as_empty_without_ticket_or_answer(running: Running) -> None:
    assert (await running.send(b""))[0] == 250
    headers_only = b"From: <anna@logistik-nord.de>\r\nTo: support@nettask.de\r\n\r\n"
    assert (await running.send(headers_only))[0] == 250
    await running.settle()
    inbound = await running.messages()
    assert [m.disposition for m in inbound] == ["empty", "empty"]
    assert await running.tickets() == []
    assert running.replies() == []


async def test_the_empty_corpus_mail_is_empty(running: Running) -> None:
    await running.send(load("empty-body.eml"))
    await running.settle()
    [message] = await running.messages()
    assert message.disposition == "empty"


async def test_mail_list_shows_the_reused_id_flag(running: Running) -> None:
    await running.send(request("Drucker druckt nicht"))
    await running.send(request("VPN geht nicht", body="Das VPN bricht ab."))
    await running.settle()
    listed = await mail_list(running.db, running.service.settings, True)
    newest_first = [json.loads(line)["flags"] for line in listed.splitlines()]
    assert newest_first == ["message_id_reused", ""]


async def test_envelope_text_is_cut_to_the_columns_and_the_raw_kept(db: Database) -> None:
    raw = b"From: a@b.de\r\nSubject: x\r\n\r\nText\r\n"
    sender = f"{'s' * 400}@acme.de"
    recipients = ",".join(f"support{n}@nettask.de" for n in range(20))
    async with db.session() as session:
        stored = await store_inbound(session, channel="email", external_id="<x@b.de>",
                                     digest=content_digest(raw), raw=raw, sender=sender,
                                     recipient=recipients, now=MONDAY_10)
    assert stored is not None
    async with db.session() as session:
        row = await session.get(Message, stored)
    assert row is not None
    assert row.sender == sender[:320]
    assert row.recipient == recipients[:320]
    assert row.raw == raw
