"""The portal's signed identity, checked without a store: each way of forging one fails."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import pytest

from bot.intake.web.identity import Claims, IdentityInvalid, b64encode, check, sign

SECRET = b"portal-secret"
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
DAY = 86_400


def payload(**changes: object) -> dict[str, object]:
    values: dict[str, object] = {"customer": "D-1001", "email": "Anna@Baeckerei-Krume.de",
                                 "name": "Anna Krume", "exp": int(NOW.timestamp()) + 3600,
                                 "jti": "login-4711"}
    values.update(changes)
    return values


def refusal(token: str, *, secret: bytes = SECRET) -> str:
    with pytest.raises(IdentityInvalid) as refused:
        check(token, secret=secret, now=NOW, max_seconds=DAY)
    return str(refused.value)


def test_a_good_identity_gives_its_claims() -> None:
    assert check(sign(payload(), SECRET), secret=SECRET, now=NOW, max_seconds=DAY) == Claims(
        customer="D-1001", email="anna@baeckerei-krume.de", name="Anna Krume",
        expires_at=NOW + timedelta(hours=1), jti="login-4711")


def test_signed_with_another_secret() -> None:
    assert refusal(sign(payload(), b"guessed")) == "bad signature"


def test_no_secret_configured_refuses_every_identity() -> None:
    assert refusal(sign(payload(), b""), secret=b"") == "no WEBCHAT_IDENTITY_SECRET configured"


def test_a_changed_payload_with_the_old_signature() -> None:
    _, mac = sign(payload(), SECRET).split(".")
    forged = b64encode(json.dumps(payload(customer="D-1004")).encode())
    assert refusal(f"{forged}.{mac}") == "bad signature"


def test_a_signature_cut_short() -> None:
    token = sign(payload(), SECRET)
    assert refusal(token[:-4]) == "bad signature"


def test_expired() -> None:
    assert refusal(sign(payload(exp=int(NOW.timestamp()) - 1), SECRET)) == "expired"


def test_expiring_exactly_now_is_expired() -> None:
    assert refusal(sign(payload(exp=int(NOW.timestamp())), SECRET)) == "expired"


def test_expiring_too_far_ahead() -> None:
    token = sign(payload(exp=int(NOW.timestamp()) + DAY + 1), SECRET)
    assert refusal(token) == f"exp more than {DAY} s ahead"


def test_expiring_at_the_longest_lifetime_is_good() -> None:
    token = sign(payload(exp=int(NOW.timestamp()) + DAY), SECRET)
    assert check(token, secret=SECRET, now=NOW, max_seconds=DAY).jti == "login-4711"


@pytest.mark.parametrize("token", ["", "no-dot", ".", "abc.", ".abc", "a.b.c", "äöü.xyz",
                                   "abc.$$$", "abc.a"])
def test_malformed_tokens(token: str) -> None:
    refusal(token)


def signed_raw(body: bytes) -> str:
    part = base64.urlsafe_b64encode(body).rstrip(b"=").decode()
    mac = hmac.new(SECRET, part.encode(), hashlib.sha256).digest()
    return f"{part}.{b64encode(mac)}"


@pytest.mark.parametrize("body,reason", [
    (b"not json", "payload is not JSON"),
    (b"[1]", "payload is not a JSON object"),
    (b"\xff\xfe", "payload is not JSON"),
    (b"[" * 2000, "payload is not JSON"),
])
def test_a_signed_payload_that_is_not_an_object(body: bytes, reason: str) -> None:
    assert refusal(signed_raw(body)) == reason


@pytest.mark.parametrize("changes,reason", [
    ({"exp": "tomorrow"}, "exp missing or not whole seconds"),
    ({"exp": True}, "exp missing or not whole seconds"),
    ({"exp": 1.5e9}, "exp missing or not whole seconds"),
    ({"email": "no-address"}, "email is not an address"),
    ({"email": None}, "email missing or not a string of at most 320 chars"),
    ({"customer": 1001}, "customer missing or not a string of at most 32 chars"),
    ({"jti": ""}, "jti is not 1-64 plain characters"),
    ({"jti": "x" * 65}, "jti missing or not a string of at most 64 chars"),
    ({"jti": "a b"}, "jti is not 1-64 plain characters"),
    ({"name": ["x"]}, "name missing or not a string of at most 200 chars"),
])
def test_a_signed_payload_with_a_bad_field(changes: dict[str, object], reason: str) -> None:
    assert refusal(sign(payload(**changes), SECRET)) == reason


def test_a_huge_token_is_refused_before_any_work() -> None:
    assert refusal("a" * 5000 + ".b") == "too long"
