"""The portal's signed identity (docs/webchat-protocol.md), pure: checked with `now`.

`base64url(payload) + "." + base64url(HMAC-SHA256(secret, base64url(payload)))`, payload
`{"customer", "email", "name", "exp", "jti"}`. This module checks what the token itself can
prove (signature, shape, expiry); that the address belongs to the customer and that the jti
was not shown by another visitor needs the store (bot/intake/web/verify.py).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

JTI = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
MAX_TOKEN_CHARS = 4000


class IdentityInvalid(ValueError):
    """The identity proves nothing; the message says why (for the log, not the visitor)."""


@dataclass(frozen=True)
class Claims:
    """What a valid identity says: this customer's person, until `expires_at`."""

    customer: str
    email: str
    name: str
    expires_at: datetime
    jti: str


def _b64decode(part: str) -> bytes:
    if not re.fullmatch(r"[A-Za-z0-9_-]*", part):
        raise IdentityInvalid("not base64url")
    try:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except (binascii.Error, ValueError) as exc:
        raise IdentityInvalid("not base64url") from exc


def b64encode(data: bytes) -> str:
    """base64url without padding, as the identity's parts are written."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def sign(payload: dict[str, object], secret: bytes) -> str:
    """An identity for `payload` (what the portal does; tests and the demo use it)."""
    body = b64encode(json.dumps(payload, separators=(",", ":")).encode("utf-8"))
    mac = hmac.new(secret, body.encode("ascii"), hashlib.sha256).digest()
    return f"{body}.{b64encode(mac)}"


def _text(payload: dict[str, object], name: str, max_chars: int) -> str:
    value = payload.get(name)
    if not isinstance(value, str) or len(value) > max_chars:
        raise IdentityInvalid(f"{name} missing or not a string of at most {max_chars} chars")
    return value


def check(token: str, *, secret: bytes, now: datetime, max_seconds: int) -> Claims:
    """The identity's claims, or IdentityInvalid: no secret, bad shape, bad signature (compared
    in constant time), expired, or expiring further ahead than `max_seconds`."""
    if not secret:
        raise IdentityInvalid("no WEBCHAT_IDENTITY_SECRET configured")
    if len(token) > MAX_TOKEN_CHARS:
        raise IdentityInvalid("too long")
    body, dot, mac = token.partition(".")
    if not dot or not body or not mac:
        raise IdentityInvalid("not payload.signature")
    expected = hmac.new(secret, body.encode("ascii", "replace"), hashlib.sha256).digest()
    if not hmac.compare_digest(_b64decode(mac), expected):
        raise IdentityInvalid("bad signature")
    try:
        payload = json.loads(_b64decode(body))
    except (ValueError, RecursionError) as exc:  # a signed payload from a broken portal
        raise IdentityInvalid("payload is not JSON") from exc
    if not isinstance(payload, dict):
        raise IdentityInvalid("payload is not a JSON object")
    exp = payload.get("exp")
    if not isinstance(exp, int) or isinstance(exp, bool):
        raise IdentityInvalid("exp missing or not whole seconds")
    if exp <= now.timestamp():
        raise IdentityInvalid("expired")
    if exp > now.timestamp() + max_seconds:
        raise IdentityInvalid(f"exp more than {max_seconds} s ahead")
    email = _text(payload, "email", 320).strip().lower()
    if "@" not in email:
        raise IdentityInvalid("email is not an address")
    jti = _text(payload, "jti", 64)
    if not JTI.fullmatch(jti):
        raise IdentityInvalid("jti is not 1-64 plain characters")
    return Claims(customer=_text(payload, "customer", 32).strip(), email=email,
                  name=_text(payload, "name", 200).strip(),
                  expires_at=datetime.fromtimestamp(0, UTC) + timedelta(seconds=exp), jti=jti)
