"""Only the customer spends the customer's money: forged senders, stolen quotes, floods.

Each test plays the attack over real SMTP against the running service, on SQLite and
PostgreSQL. Demo customers' genuine mail is DKIM-signed with the demo key.
"""

from __future__ import annotations

import json
from datetime import timedelta

from sqlmodel import col, select

from bot.cli.sample_mail import sign_demo
from models.tables import AuditEvent, Ticket, Usage
from tests.integration.conftest import Running
from tests.integration.test_email import outage

WEBER = "j.meier@kanzlei-weber.de"  # Kanzlei Weber: deHOSTED Basic Plus, 2 included incidents


def weber(n: int, *, signed: bool = True, extra: str = "", subject: str = "",
          body: str = "") -> bytes:
    return outage(sender=WEBER, message_id=f"<w-{n}@kanzlei-weber.de>",
                  subject=subject or f"Ausfall Standort {'ABCDEFGHIJKLMNOPQRSTUVWXYZ'[n % 26]}",
                  body=body or f"Standort {n}: die Server sind komplett ausgefallen, alle "
                               f"Mitarbeiter dort sind betroffen ({'x' * (n * 7 % 50)}).",
                  signed=signed, extra=extra)


async def used_incidents(running: Running) -> int:
    async with running.db.session() as session:
        rows = (await session.exec(select(Usage))).all()
    return sum(r.used for r in rows if r.kind == "incident")


async def audit_actions(running: Running, number: int) -> list[tuple[str, dict[str, object]]]:
    async with running.db.session() as session:
        rows = (await session.exec(select(AuditEvent).where(AuditEvent.ticket_number == number)
                                   .order_by(col(AuditEvent.id)))).all()
    return [(r.action, json.loads(r.detail)) for r in rows]


async def billable_weber_ticket(running: Running) -> Ticket:
    """Use up Weber's two included incidents, then a third (signed) mail is billable."""
    for n in range(3):
        await running.send(weber(n), sender=WEBER)
        await running.settle()
    tickets = await running.tickets()
    assert [t.billable for t in tickets] == [False, False, True]
    return tickets[2]


async def answer_quote(running: Running, body: str, *, name: str, subject: str = "Re: Angebot",
                       signed: bool = False) -> Ticket:
    """Answer our quote (In-Reply-To its Message-ID) from Weber's address; the ticket after."""
    quote = running.replies()[2]
    answer = outage(sender=WEBER, message_id=f"<w-{name}@kanzlei-weber.de>", signed=signed,
                    subject=subject, body=body, extra=f"In-Reply-To: {quote['Message-ID']}\r\n")
    await running.send(answer, sender=WEBER)
    await running.settle()
    return (await running.tickets())[2]


async def test_spoofed_senders_use_no_allowance_and_learn_no_plan(running: Running) -> None:
    for n in range(15):
        reply_to = f"Reply-To: attacker{n}@evil.example\r\n"
        await running.send(weber(n, signed=False, extra=reply_to), sender=f"x{n}@evil.example")
    await running.settle()
    tickets = await running.tickets()
    assert {t.status for t in tickets} == {"unverified"}
    assert {t.price_cents for t in tickets} == {0}
    assert await used_incidents(running) == 0
    recipients = {str(r["To"]) for r in running.replies()}
    assert recipients <= {WEBER}  # never the outside Reply-To
    bodies = [r.get_content() for r in running.replies()]
    assert not any("Basic Plus" in b for b in bodies)
    assert not any("EUR" in b for b in bodies)


async def test_a_verified_sender_uses_the_allowance(running: Running) -> None:
    await running.send(weber(0), sender=WEBER)
    await running.settle()
    [ticket] = await running.tickets()
    assert ticket.status == "open"
    assert ticket.included is True
    assert await used_incidents(running) == 1


async def test_the_quote_never_goes_to_an_outside_reply_to(running: Running) -> None:
    for n in range(2):
        await running.send(weber(n), sender=WEBER)
        await running.settle()
    await running.send(weber(2, extra="Reply-To: billing@evil.example\r\n"), sender=WEBER)
    await running.settle()
    quote = running.replies()[-1]
    assert quote["To"] == WEBER
    assert "159,00 EUR" in quote.get_content() or "255,00 EUR" in quote.get_content()


async def test_a_reply_to_within_the_customer_is_used(running: Running) -> None:
    extra = "Reply-To: it@weber-extern.de\r\n"  # Kanzlei Weber's second address
    await running.send(weber(0, extra=extra), sender=WEBER)
    await running.settle()
    assert running.replies()[-1]["To"] == "it@weber-extern.de"


async def test_a_tagged_yes_without_evidence_is_not_consent(running: Running) -> None:
    ticket = await billable_weber_ticket(running)
    forged = outage(sender=WEBER, message_id="<forged-yes@evil.example>", signed=False,
                    subject=f"Re: [NT#{ticket.number}]", body="JA")
    await running.send(forged, sender="x@evil.example")
    await running.settle()
    after = (await running.tickets())[2]
    assert after.status == "awaiting_consent"
    assert after.consent is None
    stored = (await running.messages())[-1]
    assert stored.ticket_number != ticket.number  # an unproven tag threads nothing


async def test_a_signed_mail_to_someone_else_replayed_is_no_consent(running: Running) -> None:
    ticket = await billable_weber_ticket(running)
    to_partner = outage(sender=WEBER, message_id="<w-partner@kanzlei-weber.de>", signed=False,
                        subject="Termin", body="Ja, passt uns gut.").replace(
        b"To: support@nettask.de", b"To: partner@evil.example")
    replayed = (f"Subject: Re: [NT#{ticket.number}] Angebot\r\n"
                "Message-ID: <replay-1@evil.example>\r\n").encode() + sign_demo(to_partner)
    await running.send(replayed, sender="x@evil.example")
    as_is = sign_demo(to_partner)  # unchanged, but addressed to someone else
    await running.send(as_is, sender="x@evil.example")
    await running.settle()
    after = (await running.tickets())[2]
    assert after.consent is None
    assert after.status == "awaiting_consent"
    assert [t.status for t in (await running.tickets())[3:]] == ["unverified", "unverified"]


async def test_a_declined_quote_stays_declined_whoever_answers_it(running: Running) -> None:
    await billable_weber_ticket(running)
    quote = running.replies()[2]
    declined = await answer_quote(running, "NEIN, danke.", name="no-first")
    assert declined.status == "declined"
    leaked = outage(sender="berater@evil.example", message_id="<leak@evil.example>",
                    signed=False, subject="Re: Angebot", body="JA",
                    extra=f"In-Reply-To: {quote['Message-ID']}\r\n")
    await running.send(leaked, sender="berater@evil.example")
    again = await answer_quote(running, "JA", name="yes-later", signed=True)
    assert again.status == "declined"
    assert again.consent is False


async def test_a_forged_requester_with_the_tag_does_not_reopen_a_closed_ticket(
    running: Running,
) -> None:
    await running.send(weber(0), sender=WEBER)
    await running.settle()
    async with running.db.session() as session:
        ticket = await session.get(Ticket, 1)
        assert ticket is not None
        ticket.status, ticket.closed_at = "closed", running.clock.now
        session.add(ticket)
    forged = outage(sender=WEBER, message_id="<forged-reopen@evil.example>", signed=False,
                    subject="Re: [NT#1] doch", body="Bitte doch bearbeiten.")
    await running.send(forged, sender="x@evil.example")
    await running.settle()
    first = (await running.tickets())[0]
    assert first.status == "closed"


async def test_forged_mail_does_not_use_up_the_answers_a_quote_needs(running: Running) -> None:
    chef = "chef@baeckerei-krume.de"  # Bäckerei Krume: deHOSTED Basic, every incident billed
    for n in range(12):
        raw = outage(sender=f"x{n}@baeckerei-krume.de", message_id=f"<f{n}@evil.example>",
                     signed=False, subject=f"Frage {n}", body=f"Bitte {'prüfen ' * n}.",
                     extra=f"Reply-To: {chef}\r\n")
        await running.send(raw, sender="x@evil.example")
    await running.settle(timeout=30)
    await running.send(outage(sender=chef, message_id="<chef-1@baeckerei-krume.de>"),
                       sender=chef)
    await running.settle()
    to_chef = [r for r in running.replies() if r["To"] == chef]
    assert len(to_chef) == 1
    assert "255,00 EUR" in to_chef[0].get_content()


async def test_a_huge_ticket_number_in_the_tag_is_no_crash(running: Running) -> None:
    raw = outage(sender="someone@unknown.example", message_id="<big@unknown.example>",
                 subject="Re: [NT#99999999999999999999] Frage")
    await running.send(raw, sender="someone@unknown.example")
    await running.settle()
    [stored] = [m for m in await running.messages() if m.direction == "in"]
    assert stored.disposition == "ticket"


async def test_okay_too_expensive_is_not_a_yes(running: Running) -> None:
    ticket = await billable_weber_ticket(running)
    after = await answer_quote(running, "Okay, das ist mir zu teuer - bitte NICHT bearbeiten.",
                               name="answer", subject=f"Re: [NT#{ticket.number}]", signed=True)
    assert after.consent is False
    assert after.status == "declined"


async def test_an_unclear_answer_is_asked_again_and_changes_nothing(running: Running) -> None:
    await billable_weber_ticket(running)
    after = await answer_quote(running, "Ja, aber nicht zu dem Preis.", name="unclear")
    assert after.status == "awaiting_consent"
    assert after.consent is None
    assert "mit JA" in running.replies()[-1].get_content()


async def test_a_yes_to_our_quote_consents_and_names_the_evidence(running: Running) -> None:
    ticket = await billable_weber_ticket(running)
    quote = running.replies()[2]
    running.clock.now += timedelta(minutes=5)
    after = await answer_quote(running, "JA", name="yes", subject="Re: Ihr Angebot")
    assert after.status == "open"
    assert after.consent is True
    assert after.accepted_at == running.clock.now
    [consent] = [d for a, d in await audit_actions(running, ticket.number) if a == "consent"]
    assert consent["evidence"] == f"reply to our message {quote['Message-ID']}"


async def test_a_verified_yes_with_only_the_tag_consents(running: Running) -> None:
    ticket = await billable_weber_ticket(running)
    answer = outage(sender=WEBER, message_id="<w-signed-yes@kanzlei-weber.de>",
                    subject=f"Re: [NT#{ticket.number}]", body="JA")
    await running.send(answer, sender=WEBER)
    await running.settle()
    after = (await running.tickets())[2]
    assert after.consent is True
    [consent] = [d for a, d in await audit_actions(running, ticket.number) if a == "consent"]
    assert str(consent["evidence"]).startswith("verified sender (dkim=pass")


async def test_nein_by_mail_declines(running: Running) -> None:
    ticket = await billable_weber_ticket(running)
    after = await answer_quote(running, "NEIN, danke.", name="no", subject="AW: Angebot")
    assert after.status == "declined"
    assert after.consent is False
    assert "Ablehnung" in running.replies()[-1].get_content()
    assert ticket.number == after.number


async def test_in_reply_to_alone_threads_a_follow_up(running: Running) -> None:
    await running.send(weber(0), sender=WEBER)
    await running.settle()
    [answer] = running.replies()
    follow = outage(sender=WEBER, message_id="<w-follow@kanzlei-weber.de>",
                    subject="noch eine Frage", body="Gibt es schon etwas Neues?",
                    extra=f"In-Reply-To: {answer['Message-ID']}\r\n")
    await running.send(follow, sender=WEBER)
    await running.settle()
    assert len(await running.tickets()) == 1
    last = (await running.messages())[-1]
    assert last.disposition == "follow-up"
    assert last.ticket_number == 1


async def test_the_same_mail_fifty_times_is_one_ticket(running: Running) -> None:
    for n in range(50):
        raw = outage(sender="anna@logistik-nord.de", message_id=f"<flood-{n}@logistik-nord.de>")
        await running.send(raw, sender="anna@logistik-nord.de")
    await running.settle(timeout=60)
    assert len(await running.tickets()) == 1
    assert await used_incidents(running) == 1
    joined = [m for m in await running.messages() if m.direction == "in"]
    assert sum(1 for m in joined if m.disposition == "follow-up") == 49


async def test_a_helpdesk_acknowledging_in_a_loop_is_one_ticket(running: Running) -> None:
    for n in range(12):
        raw = outage(sender="helpdesk@logistik-nord.de", message_id=f"<ack-{n}@logistik-nord.de>",
                     subject=f"Ihre Anfrage #{4711 + n} ist eingegangen",
                     body=f"Vielen Dank, Ihre Anfrage wurde unter der Nummer {4711 + n} "
                          f"am 23.11.2026 um 10:{n:02d} Uhr erfasst.")
        await running.send(raw, sender="helpdesk@logistik-nord.de")
    await running.settle(timeout=30)
    assert len(await running.tickets()) == 1
    assert await used_incidents(running) == 1


async def test_many_different_mails_from_one_sender_stop_at_the_limit(running: Running) -> None:
    for n in range(12):
        await running.send(weber(n, subject=f"Thema {n}",
                                 body=f"{'Anfrage ' * n}Nummer {n}: {'ABCDEFGHIJKL'[n] * 40}"),
                           sender=WEBER)
    await running.settle(timeout=30)
    tickets = await running.tickets()
    assert len(tickets) == running.service.intake.config.floods.max_per_sender
    assert await used_incidents(running) == 2  # Basic Plus: two included, the rest quoted
    limited = [m for m in await running.messages()
               if m.direction == "in" and (m.reason or "").startswith("rate limit")]
    assert len(limited) == 12 - len(tickets)


async def test_signed_mail_verifies_and_unsigned_demo_mail_does_not(running: Running) -> None:
    await running.send(sign_demo(outage(signed=False)), sender="anna@logistik-nord.de")
    await running.settle()  # one after the other, so that ticket numbers follow
    await running.send(outage(signed=False, message_id="<o-2@logistik-nord.de>",
                              subject="Drucker", body="Drucker defekt."),
                       sender="anna@logistik-nord.de")
    await running.settle()
    first, second = await running.tickets()
    assert first.status == "open"
    assert second.status == "unverified"


async def test_an_agent_confirms_an_unverified_sender(running: Running) -> None:
    await running.send(weber(0, signed=False), sender=WEBER)
    await running.settle()
    [before] = await running.tickets()
    assert before.status == "unverified"
    confirmed = await running.service.intake.confirm_sender(1, agent="mia", now=running.clock())
    running.service.deliverer.wake.set()  # type: ignore[union-attr]
    await running.settle()
    assert confirmed.status == "open"
    assert confirmed.included is True
    assert await used_incidents(running) == 1
    answer = running.replies()[-1]
    assert answer["To"] == WEBER
    assert "Ihr Supportplan: deHOSTED Basic Plus." in answer.get_content()
    [event] = [d for a, d in await audit_actions(running, 1) if a == "sender_confirmed"]
    assert event["customer"] == "D-1002"


async def test_forged_mail_from_many_addresses_of_a_domain_stops_at_the_limit(
    running: Running,
) -> None:
    limit = running.service.intake.config.floods.max_per_customer
    for n in range(limit + 3):
        raw = outage(sender=f"user{n}@kanzlei-weber.de", message_id=f"<forged-{n}@evil.example>",
                     signed=False, subject=f"Frage {n}",
                     body=f"{'Bitte ' * n}prüfen Sie Vorgang {'XYZW'[n % 4] * (n + 3)}.")
        await running.send(raw, sender=f"bounce{n}@evil.example")
    await running.settle(timeout=60)
    tickets = await running.tickets()
    assert len(tickets) == limit
    assert {t.status for t in tickets} == {"unverified"}
    await running.send(weber(0), sender=WEBER)  # the genuine customer is not held back
    await running.settle()
    genuine = (await running.tickets())[-1]
    assert genuine.status == "open"
    assert genuine.included is True
