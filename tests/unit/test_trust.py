"""Sender verification: DKIM with the real dkimpy, our upstream's Authentication-Results."""

from __future__ import annotations

import pytest

from bot.app import DEMO_DKIM_KEYS
from bot.cli.sample_mail import sign_demo
from bot.intake.mail.trust import (
    SenderVerifier,
    aligned,
    dns_lookup,
    load_key_table,
    signed_instances,
    topmost_results,
)
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
    ("co.uk", "example-consulting.co.uk", False),  # a public suffix is nobody's domain
    ("example-consulting.co.uk", "mail.example-consulting.co.uk", True),
    ("other.co.uk", "example-consulting.co.uk", False),
    ("github.io", "customer.github.io", False),
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


OTHER_HOP = ("Received", "from laptop by mail.logistik-nord.de")


def test_results_at_the_top_are_ours() -> None:
    fields = [OURS_PASS, RECEIVED, OTHER_HOP, FROM]
    assert topmost_results(fields, "mx.nettask.de") == [OURS_PASS[1]]


def test_results_below_our_received_are_ours_too() -> None:
    fields = [RECEIVED, OURS_PASS, OTHER_HOP, FROM]
    assert topmost_results(fields, "mx.nettask.de") == [OURS_PASS[1]]


def test_a_second_result_with_our_id_means_none_is_believed() -> None:
    forged = [OURS_FAIL, RECEIVED, OURS_PASS, FROM]
    assert topmost_results(forged, "mx.nettask.de") is None


def test_a_forged_result_right_below_ours_means_none_is_believed() -> None:
    forged = [RECEIVED, OURS_FAIL, OURS_PASS, FROM]
    assert topmost_results(forged, "mx.nettask.de") is None


def test_two_milters_add_two_results_when_configured() -> None:
    dkim_ar = ("Authentication-Results", "mx.nettask.de; dkim=pass header.d=logistik-nord.de")
    fields = [dkim_ar, OURS_PASS, RECEIVED, FROM]
    assert topmost_results(fields, "mx.nettask.de", expected=2) == [dkim_ar[1], OURS_PASS[1]]


def test_results_below_the_senders_own_headers_are_ignored() -> None:
    assert topmost_results([RECEIVED, FROM, OURS_PASS], "mx.nettask.de") is None


def test_results_below_another_hop_are_ignored() -> None:
    assert topmost_results([RECEIVED, OTHER_HOP, OURS_PASS, FROM], "mx.nettask.de") is None


def test_no_result_at_all_when_the_check_did_not_run() -> None:
    assert topmost_results([RECEIVED, FROM], "mx.nettask.de") is None


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


SUPPORT = ("support@nettask.de",)


def test_a_signed_mail_to_someone_else_replayed_to_us_does_not_verify() -> None:
    elsewhere = mail().replace(b"To: support@nettask.de", b"To: partner@evil.example")
    trust = SenderVerifier(keys=KEYS, recipients=SUPPORT).assess(sign_demo(elsewhere),
                                                                 "anna@logistik-nord.de")
    assert trust.verified is False
    assert "not addressed to us" in trust.reason


def test_a_signed_mail_to_us_verifies_with_recipients_checked() -> None:
    trust = SenderVerifier(keys=KEYS, recipients=SUPPORT).assess(sign_demo(mail()),
                                                                 "anna@logistik-nord.de")
    assert trust.verified is True


@pytest.mark.parametrize("name", ["Subject", "Message-ID", "From", "To", "Date"])
def test_a_second_copy_of_a_single_header_on_top_of_a_signed_mail_does_not_verify(
    name: str,
) -> None:
    replayed = f"{name}: <replay@evil.example>\r\n".encode() + sign_demo(mail())
    trust = SenderVerifier(keys=KEYS).assess(replayed, "anna@logistik-nord.de")
    assert trust.verified is False
    assert f"2 {name.lower()} fields" in trust.reason


@pytest.mark.parametrize("selector", ["a" * 64, "s\u00e9l", "a..b"])
def test_a_selector_dns_cannot_hold_is_a_failed_check_not_a_crash(selector: str) -> None:
    raw = (f"DKIM-Signature: v=1; a=rsa-sha256; d=logistik-nord.de; s={selector}; h=from; "
           "bh=AAAA; b=AAAA\r\n").encode() + mail()
    with DnsStub({}) as stub:
        verifier = SenderVerifier(dns=dns_lookup(stub.address), dns_timeout=2)
        trust = verifier.assess(raw, "anna@logistik-nord.de")
    assert trust.verified is False


def test_the_aligned_signature_is_checked_first_among_many() -> None:
    others = "".join(f"DKIM-Signature: v=1; a=rsa-sha256; d=fwd{n}.example; s=x; h=from; "
                     f"bh=AAAA; b=AAAA\r\n" for n in range(4))
    signed = sign_demo(mail())
    trust = SenderVerifier(keys=KEYS).assess(others.encode() + signed, "anna@logistik-nord.de")
    assert trust.verified is True


HEADERS = [(b"Cc", b"a"), (b"From", b"f"), (b"Cc", b"b"), (b"To", b"t")]


@pytest.mark.parametrize(("names", "signed"), [
    ([b"from", b"to"], {1, 3}),  # cc not named: both instances unsigned
    ([b"cc"], {2}),  # named once: only the last (lowest) instance
    ([b"cc", b"cc"], {0, 2}),  # named twice: bottom-up, both
    ([b"cc", b"cc", b"cc"], {0, 2}),  # named more often than present: signs the absence
])
def test_the_signed_instances_are_the_last_ones(names: list[bytes], signed: set[int]) -> None:
    assert signed_instances(HEADERS, names) == signed


def test_an_unsigned_field_is_named_in_the_trust() -> None:
    signed = sign_demo(mail(), headers=[b"from", b"to", b"date", b"message-id"])
    trust = SenderVerifier(keys=KEYS, recipients=SUPPORT).assess(signed, "anna@logistik-nord.de")
    assert trust.signs("from") is True
    assert trust.signs("subject") is False
    assert trust.signs("in-reply-to") is True  # absent: nothing unsigned to believe


def test_an_l_shorter_than_the_body_does_not_verify() -> None:
    signed = sign_demo(mail(), length=True) + b"JA, bitte.\r\n"
    trust = SenderVerifier(keys=KEYS).assess(signed, "anna@logistik-nord.de")
    assert trust.verified is False
    assert "l= signs only" in trust.reason
