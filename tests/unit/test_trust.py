"""Sender verification: DKIM with the real dkimpy, our upstream's Authentication-Results."""

from __future__ import annotations

import pytest

from bot.app import DEMO_DKIM_KEYS
from bot.intake.trust import SenderVerifier, aligned, dns_lookup, load_key_table, topmost_results
from bot.sample_mail import sign_demo
from tests.fakes.dns_stub import DnsStub

KEYS = load_key_table(DEMO_DKIM_KEYS)
DEMO_RECORD = KEYS["demo._domainkey.logistik-nord.de"].decode()


def mail(sender: str = "anna@logistik-nord.de", body: str = "Alles steht still.") -> bytes:
    return (f"From: Anna <{sender}>\r\nTo: support@nettask.de\r\nSubject: Ausfall\r\n"
            f"Message-ID: <m1@x>\r\nDate: Mon, 23 Nov 2026 10:00:00 +0100\r\n\r\n{body}\r\n"
            ).encode()


@pytest.mark.parametrize(("signer", "domain", "expected"), [
    ("logistik-nord.de", "logistik-nord.de", True),
    ("logistik-nord.de", "mail.logistik-nord.de", True),
    ("mail.logistik-nord.de", "logistik-nord.de", True),
    ("evil.test", "logistik-nord.de", False),
    ("nord.de", "logistik-nord.de", False),
    ("de", "logistik-nord.de", False),
])
def test_alignment(signer: str, domain: str, expected: bool) -> None:
    assert aligned(signer, domain) is expected


def test_a_demo_signature_verifies_with_the_local_key() -> None:
    trust = SenderVerifier(keys=KEYS).assess(sign_demo(mail()), "anna@logistik-nord.de")
    assert trust.verified is True
    assert trust.method == "dkim"


def test_a_changed_body_fails_the_signature() -> None:
    signed = sign_demo(mail()).replace(b"Alles steht still.", b"Alles gut, JA bitte.")
    trust = SenderVerifier(keys=KEYS).assess(signed, "anna@logistik-nord.de")
    assert trust.verified is False


def test_a_valid_signature_of_another_domain_does_not_verify_the_from_domain() -> None:
    # a valid signature by kanzlei-weber.de proves nothing about logistik-nord.de
    signed = sign_demo(mail(sender="eve@kanzlei-weber.de"))
    trust = SenderVerifier(keys=KEYS).assess(signed, "anna@logistik-nord.de")
    assert trust.verified is False


def test_unsigned_mail_is_not_verified() -> None:
    trust = SenderVerifier(keys=KEYS).assess(mail(), "anna@logistik-nord.de")
    assert trust.verified is False
    assert "no DKIM signature" in trust.reason


def test_the_key_is_looked_up_in_dns_through_the_resolver() -> None:
    with DnsStub({"demo._domainkey.logistik-nord.de": DEMO_RECORD}) as stub:
        verifier = SenderVerifier(dns=dns_lookup(stub.address), dns_timeout=2)
        trust = verifier.assess(sign_demo(mail()), "anna@logistik-nord.de")
    assert trust.verified is True
    assert stub.queries == ["demo._domainkey.logistik-nord.de"]


def test_a_missing_dns_key_does_not_verify() -> None:
    with DnsStub({}) as stub:
        verifier = SenderVerifier(dns=dns_lookup(stub.address), dns_timeout=2)
        trust = verifier.assess(sign_demo(mail()), "anna@logistik-nord.de")
    assert trust.verified is False


OURS_PASS = ("Authentication-Results", "mx.nettask.de; dmarc=pass header.from=logistik-nord.de")
OURS_FAIL = ("Authentication-Results", "mx.nettask.de; dmarc=fail header.from=logistik-nord.de")
RECEIVED = ("Received", "from client by mx.nettask.de")
FROM = ("From", "anna@logistik-nord.de")


def test_results_at_the_top_are_ours() -> None:
    assert topmost_results([OURS_PASS, RECEIVED, FROM], "mx.nettask.de") == [OURS_PASS[1]]


def test_results_below_our_received_after_ours_are_ignored() -> None:
    forged = [OURS_FAIL, RECEIVED, OURS_PASS, FROM]
    assert topmost_results(forged, "mx.nettask.de") == [OURS_FAIL[1]]


def test_results_below_the_senders_own_headers_are_ignored() -> None:
    assert topmost_results([RECEIVED, FROM, OURS_PASS], "mx.nettask.de") == []


def raw_with(*fields: tuple[str, str]) -> bytes:
    head = "".join(f"{name}: {value}\r\n" for name, value in fields)
    return head.encode() + mail()


def test_dmarc_pass_for_another_domain_does_not_verify() -> None:
    evil = ("Authentication-Results", "mx.nettask.de; dmarc=pass header.from=evil.test")
    trust = SenderVerifier(authserv_id="mx.nettask.de").assess(raw_with(evil),
                                                                "anna@logistik-nord.de")
    assert trust.verified is False


def test_a_forged_pass_below_our_failing_result_does_not_verify() -> None:
    raw = raw_with(OURS_FAIL, RECEIVED, OURS_PASS)
    trust = SenderVerifier(authserv_id="mx.nettask.de").assess(raw, "anna@logistik-nord.de")
    assert trust.verified is False


def test_our_aligned_dmarc_pass_verifies() -> None:
    trust = SenderVerifier(authserv_id="mx.nettask.de").assess(raw_with(OURS_PASS, RECEIVED),
                                                                "anna@logistik-nord.de")
    assert trust.verified is True
    assert trust.method == "authentication-results"


def test_results_of_another_server_do_not_count() -> None:
    other = ("Authentication-Results", "mx.evil.test; dmarc=pass header.from=logistik-nord.de")
    trust = SenderVerifier(authserv_id="mx.nettask.de").assess(raw_with(other),
                                                                "anna@logistik-nord.de")
    assert trust.verified is False


def test_trust_all_says_so() -> None:
    trust = SenderVerifier(trust_all=True).assess(mail(), "anna@logistik-nord.de")
    assert trust.method == "trust-all"
