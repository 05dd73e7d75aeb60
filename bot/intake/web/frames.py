"""The web chat's frames (docs/webchat-protocol.md), pure: text in, a checked frame out."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from models.tables import WebItem

CLIENT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
CODE = re.compile(r"[0-9]{6}")
MAX_FRAME_BYTES = 16 * 1024
OUR_NAME = "NetTask Support"  # the author of our automatic answers and notes
TYPES = ("hello", "message", "choice", "email", "code", "seen", "ping")


class BadFrame(ValueError):
    """A frame the protocol does not allow; the message says what is wrong."""


@dataclass(frozen=True)
class Frame:
    """One visitor frame: its type and its checked fields."""

    type: str
    fields: dict[str, Any]

    def text(self, name: str) -> str:
        """A string field (checked by `parse`)."""
        return str(self.fields[name])


def _string(body: dict[str, Any], name: str, *, max_chars: int = 100_000,
                 optional: bool = False) -> str | None:
    value = body.get(name)
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise BadFrame(f"{name} must be a string")
    if len(value) > max_chars:
        raise BadFrame(f"{name} is longer than {max_chars} characters")
    if "\x00" in value:  # PostgreSQL's text holds no NUL
        raise BadFrame(f"{name} holds a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:  # JSON's \ud800 escapes: half a surrogate pair
        raise BadFrame(f"{name} is not valid Unicode") from exc
    return value


def _client_id(body: dict[str, Any]) -> str:
    value = _string(body, "client_id", max_chars=64)
    if value is None or not CLIENT_ID.fullmatch(value):
        raise BadFrame("client_id must be 1-64 characters of A-Z a-z 0-9 _ -")
    return value


def parse(data: str) -> Frame:
    """The frame in `data`, or BadFrame. Text length limits are the caller's (`too_large`)."""
    try:
        body = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise BadFrame("not JSON") from exc
    if not isinstance(body, dict):
        raise BadFrame("not a JSON object")
    kind = body.get("type")
    if kind not in TYPES:
        raise BadFrame(f"unknown type {str(kind)[:40]!r}")
    fields: dict[str, Any] = {}
    if kind == "hello":
        fields["visitor"] = _string(body, "visitor", max_chars=200, optional=True)
        fields["identity"] = _string(body, "identity", max_chars=4000, optional=True)
        lang = body.get("lang")
        fields["lang"] = lang if lang in ("de", "en") else "de"
    elif kind == "message":
        fields["client_id"] = _client_id(body)
        fields["text"] = _string(body, "text")
        if not fields["text"].strip():
            raise BadFrame("text is empty")
    elif kind == "choice":
        fields["client_id"] = _client_id(body)
        fields["action"] = _string(body, "action", max_chars=64)
        fields["value"] = _string(body, "value", max_chars=200)
    elif kind == "email":
        address = (_string(body, "address", max_chars=320) or "").strip().lower()
        local, at, domain = address.rpartition("@")
        if not at or not local or "." not in domain or any(c.isspace() for c in address):
            raise BadFrame("address is not an e-mail address")
        fields["address"] = address
    elif kind == "code":
        code = _string(body, "code", max_chars=6)
        if code is None or not CODE.fullmatch(code):
            raise BadFrame("code must be six digits")
        fields["code"] = code
    elif kind == "seen":
        upto = body.get("upto")
        if not isinstance(upto, int) or isinstance(upto, bool) or not 0 <= upto < 2**63:
            raise BadFrame("upto must be an item id")
        fields["upto"] = upto
    return Frame(type=kind, fields=fields)


def item_body(item: WebItem) -> dict[str, Any]:
    """An item as the `welcome` history and the `item` frame carry it."""
    body: dict[str, Any] = {
        "id": item.id, "direction": item.direction, "kind": item.kind, "text": item.text,
        "choices": json.loads(item.choices) if item.choices else [],
        "ticket": item.ticket_number,
        # a chat names who speaks instead of signing each answer as a mail does
        "author": (item.author or OUR_NAME) if item.direction == "out" else None,
        "at": item.created_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
    }
    if item.direction == "in":
        body["client_id"] = item.client_id
    if item.kind == "choice":  # which button it was: the widget disables its question's others
        body["action"], body["value"] = item.action, item.value
    return body


MESSAGES = {
    "bad_frame": {"de": "Diese Nachricht konnte nicht gelesen werden.",
                  "en": "This message could not be read."},
    "too_large": {"de": "Die Nachricht ist zu lang.", "en": "The message is too long."},
    "rate_limited": {"de": "Zu viele Nachrichten in kurzer Zeit. Bitte warten Sie einen Moment.",
                     "en": "Too many messages in a short time. Please wait a moment."},
    "identity_invalid": {"de": "Ihre Anmeldung konnte nicht bestätigt werden.",
                         "en": "Your sign-in could not be confirmed."},
    "not_verified": {"de": "Dafür muss Ihre E-Mail-Adresse bestätigt sein.",
                     "en": "Your e-mail address must be confirmed for this."},
}


def error(code: str, language: str, client_id: str | None = None) -> dict[str, Any]:
    """An `error` frame with its sentence in the visitor's language."""
    frame: dict[str, Any] = {"type": "error", "code": code,
                             "message": MESSAGES[code].get(language, MESSAGES[code]["en"])}
    if client_id is not None:
        frame["client_id"] = client_id
    return frame
