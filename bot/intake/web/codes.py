"""Six-digit codes: mailed to an address a visitor gives, typed back to verify the visitor.

A code is mailed only when the address belongs to a customer, but every `email` frame gets the
same answer and leaves the same row (a code nobody can type for other addresses): neither the
answer nor the limits tell whether an address is a customer's. Codes are stored as an HMAC of
visitor, code and the server's secret, live WEBCHAT_CODE_MINUTES and allow TRIES tries.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.cases.notices import queue_notice
from bot.domain import Language
from models.customers import find_by_email
from models.tables import WebCode, WebVisitor
from models.webchat import close_codes, codes_since, open_code

TRIES = 5


@dataclass(frozen=True)
class CodeConfig:
    """How codes are made and mailed."""

    from_address: str
    from_name: str
    minutes: int = 10
    per_hour: int = 5  # `email` frames per visitor and per address
    secret: bytes = b""


class Asked(enum.Enum):
    """What became of an `email` frame (the visitor is told `email_ok` unless LIMITED)."""

    MAILED = "mailed"
    NO_CUSTOMER = "no-customer"
    VERIFIED_ALREADY = "verified-already"
    LIMITED = "limited"


@dataclass(frozen=True)
class Tried:
    """What became of a `code` frame: verified, wrong (tries left), or expired."""

    outcome: str  # "verified", "wrong", "expired"
    tries_left: int = 0


def code_hash(secret: bytes, visitor_id: int, code: str) -> str:
    """The stored form of a code: bound to its visitor, unreadable without the secret."""
    return hmac.new(secret, f"{visitor_id}:{code}".encode(), hashlib.sha256).hexdigest()


def code_mail(config: CodeConfig, *, code: str, language: str) -> tuple[str, str]:
    """The code's mail: its subject and text."""
    if language == "en":
        return ("Your code for the NetTask support chat",
                f"Your code for the support chat: {code}\n\nIt is valid for {config.minutes} "
                "minutes. If you did not ask for it, ignore this mail: nobody gets access "
                "without the code.\n")
    return ("Ihr Code für den NetTask-Support-Chat",
            f"Ihr Code für den Support-Chat: {code}\n\nEr gilt {config.minutes} Minuten. "
            "Wenn Sie ihn nicht angefordert haben, ignorieren Sie diese Mail: ohne den Code "
            "erhält niemand Zugang.\n")


async def ask_code(session: AsyncSession, *, visitor: WebVisitor, address: str, now: datetime,
                   config: CodeConfig) -> Asked:
    """An `email` frame: the address kept on the visitor, its open code replaced, and a new
    code queued in the mail outbox when the address is a customer's; LIMITED past the hourly
    limit per visitor or per address (counted in the store: every instance sees them)."""
    assert visitor.id is not None
    if visitor.verified_by:  # a verified visitor's address stays the one that was proven
        return Asked.VERIFIED_ALREADY
    mine, theirs = await codes_since(session, visitor_id=visitor.id, email=address,
                                     since=now - timedelta(hours=1))
    if mine >= config.per_hour or theirs >= config.per_hour:
        return Asked.LIMITED
    await close_codes(session, visitor_id=visitor.id, now=now)
    customer = await find_by_email(session, address)
    code = f"{secrets.randbelow(10**6):06d}"
    row = WebCode(visitor_id=visitor.id, email=address, tries_left=TRIES,
                  # "" matches no typed code: an address of nobody can never be verified
                  code_hash=code_hash(config.secret, visitor.id, code) if customer else "",
                  expires_at=now + timedelta(minutes=config.minutes), created_at=now)
    session.add(row)
    visitor.email = address
    session.add(visitor)
    await session.flush()
    if customer is None:
        return Asked.NO_CUSTOMER
    domain = config.from_address.rpartition("@")[2]
    message_id = f"<webchat-code.{row.id}.{secrets.token_hex(8)}@{domain}>"
    subject, text = code_mail(config, code=code, language=visitor.language)
    await queue_notice(session, sender=config.from_address, sender_name=config.from_name,
                       to=address, subject=subject, text=text, message_id=message_id, now=now,
                       language=Language.EN if visitor.language == "en" else Language.DE)
    return Asked.MAILED


async def try_code(session: AsyncSession, *, visitor: WebVisitor, code: str, now: datetime,
                   config: CodeConfig) -> Tried:
    """A `code` frame: the visitor verified by its open code, or a try used up, or expired.
    After the last wrong try even the right code fails (no guessing past TRIES)."""
    assert visitor.id is not None
    row = await open_code(session, visitor_id=visitor.id)
    if row is None or row.expires_at <= now:
        return Tried("expired")
    if row.tries_left <= 0:
        return Tried("wrong", 0)
    if row.code_hash and hmac.compare_digest(row.code_hash,
                                             code_hash(config.secret, visitor.id, code)):
        customer = await find_by_email(session, row.email)
        if customer is not None:  # it was when the code was mailed; a removed one proves none
            row.used_at = now
            visitor.verified_by, visitor.verified_at = "code", now
            visitor.customer_id, visitor.email = customer.id, row.email
            session.add_all([row, visitor])
            return Tried("verified")
    row.tries_left -= 1
    session.add(row)
    return Tried("wrong", row.tries_left)
