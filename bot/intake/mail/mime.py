"""Raw mail bytes to a ParsedMail (pure): robust to the mail that real servers deliver."""

from __future__ import annotations

import codecs
import email
import email.policy
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.feedparser import BytesFeedParser
from email.header import decode_header, make_header
from email.message import EmailMessage, Message
from email.parser import BytesHeaderParser
from email.policy import Policy
from email.utils import parseaddr

from mailparser_reply import EmailReplyParser

from bot.intake.mail.htmltext import html_to_text

MSGID = re.compile(r"<[^<>\s]+>")
MAX_ID = 998  # the longest Message-ID the store keeps (RFC 5322 line length)
MAX_ADDRESS = 320  # the longest address RFC 5321 allows (64 + @ + 255); also the column size
UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")  # PostgreSQL text holds no NUL, no surrogates
TRACE_HEADERS = frozenset({
    "received", "return-path", "delivered-to", "x-original-to", "authentication-results",
    "arc-seal", "arc-message-signature", "arc-authentication-results", "dkim-signature",
    "received-spf", "x-received", "x-original-authentication-results", "x-virus-scanned",
    "x-spam-status", "x-spam-score", "x-spam-flag", "x-spam-level", "x-spam-checker-version",
})
TRACE_PREFIXES = ("x-ms-exchange-organization-", "x-forefront-", "x-microsoft-antispam")
MAX_DEPTH = 32  # nested multiparts parsed; deeper ones are kept whole, as one attachment
CUT_NAME = "nested-parts-not-parsed.txt"
SUBJECT_PREFIX = re.compile(r"^\s*((re|aw|wg|fw|fwd|antw|sv|vs)\s*(\[\d+\])?\s*:\s*)+", re.I)
REPLY_PARSER = EmailReplyParser(languages=["de", "en"])
POSTSCRIPT = re.compile(r"^[ \t]*(?:p\.?[ \t]?)+s\b\.?:?.*(?:\n(?![ \t]*\n).+)*", re.I | re.M)


@dataclass(frozen=True)
class Attachment:
    """A file that came with the mail: kept by name, type and size."""

    name: str
    content_type: str
    size: int
    inline: bool = False


@dataclass(frozen=True)
class ParsedMail:
    """What intake needs from one mail."""

    message_id: str
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    subject: str
    sender: str  # lower-case address, "" if none could be found
    sender_name: str
    reply_to: str
    content_type: str
    headers: dict[str, list[str]]  # lower-case name -> decoded values
    body: str  # the full text
    new_text: str  # the new part: quoted history and signature removed
    attachments: tuple[Attachment, ...] = ()
    defects: tuple[str, ...] = field(default=())
    nesting_cut: bool = False  # parts nested deeper than MAX_DEPTH kept as one attachment

    def header(self, name: str) -> str:
        """The first value of a header, or ""."""
        values = self.headers.get(name.lower())
        return values[0] if values else ""


def storable(text: str) -> str:
    """Text any database can hold: NUL removed, lone surrogates replaced."""
    return UNSTORABLE.sub(lambda m: "" if m.group(0) == "\x00" else "\ufffd", text)


def _first_id(value: str) -> str | None:
    for found in MSGID.findall(storable(value)):
        if len(found) <= MAX_ID:
            return str(found)
    return None


def content_digest(raw: bytes, *, envelope_sender: str = "") -> str:
    """A hash of what the sender wrote: trace headers added in transit and line endings aside.

    A mail without a Message-ID also hashes its envelope sender, so the same alert text from
    two senders is two mails while a retried delivery stays one.
    """
    text = raw.replace(b"\r\n", b"\n")
    head, _, body = text.partition(b"\n\n")
    fields: list[tuple[bytes, bytes]] = []
    for line in head.split(b"\n"):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] = (fields[-1][0], fields[-1][1] + b" " + line.strip())
        elif b":" in line:
            name, _, value = line.partition(b":")
            fields.append((name.strip().lower(), value.strip()))
    digest = hashlib.sha256()
    has_id = False
    for name, value in fields:
        key = name.decode("ascii", "replace")
        if key in TRACE_HEADERS or key.startswith(TRACE_PREFIXES):
            continue
        has_id = has_id or (key == "message-id" and MSGID.search(value.decode("latin-1"))
                            is not None)
        digest.update(name + b":" + b" ".join(value.split()) + b"\n")
    if not has_id:
        digest.update(b"envelope:" + envelope_sender.strip().lower().encode("utf-8", "replace"))
    digest.update(b"\n" + b"\n".join(line.rstrip() for line in body.rstrip().split(b"\n")))
    return digest.hexdigest()


def synthetic_message_id(raw: bytes) -> str:
    """A stable id for a mail that has none: the same content gives the same id, whatever
    line endings the transport used."""
    canonical = raw.replace(b"\r\n", b"\n").strip()
    return f"<sha256-{hashlib.sha256(canonical).hexdigest()[:40]}@intake.invalid>"


def message_id_of(raw: bytes) -> str:
    """The Message-ID from the headers alone (cheap: used before saying 250)."""
    try:
        headers = BytesHeaderParser(policy=email.policy.compat32).parsebytes(raw)
        found = _first_id(_repair_8bit(str(headers.get("Message-ID", "") or "")))
    except Exception:  # a header block too broken to read still gets an id
        found = None
    return found or synthetic_message_id(raw)


def _ids(value: str) -> tuple[str, ...]:
    return tuple(i for i in MSGID.findall(storable(value or "")) if len(i) <= MAX_ID)


def _repair_8bit(value: str) -> str:
    """Raw 8-bit header bytes (no RFC 2047): UTF-8 if they are, else Windows-1252."""
    if not UNSTORABLE.search(value):
        return value
    data = value.encode("utf-8", "surrogateescape")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def _decode_words(value: str) -> str:
    try:
        return str(make_header(decode_header(value)))
    except Exception:  # an encoded word in an unknown charset: keep the raw text
        return value


LONG_HEADER = 16_384  # characters; longer header values are decoded leniently


def _header_values(msg: Message) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    modern = isinstance(msg, EmailMessage)
    for name, raw_value in msg.raw_items() if modern else msg.items():
        if isinstance(raw_value, str):
            raw_value = _repair_8bit(raw_value)
        try:
            if not modern:
                raise TypeError("compat32 message")
            if len(raw_value) > LONG_HEADER:
                # the stdlib's header grammar takes time quadratic in the length: a hostile
                # 2 MB header would hold a worker for most of a minute
                raise ValueError("header too long for the structured parser")
            text = str(msg.policy.header_factory(name, raw_value))  # type: ignore[attr-defined]
        except Exception:  # a header that does not follow its grammar: decode leniently
            text = _decode_words(str(raw_value))
        values.setdefault(name.lower(), []).append(storable(" ".join(text.split())))
    return values


class _BoundedParser(BytesFeedParser):
    """The stdlib's parser, which recurses once per nested part: 3,000 nested multiparts
    raise RecursionError. Below MAX_DEPTH a multipart or message part is not descended into:
    it becomes an opaque attachment holding the rest, for the agents to look at."""

    cut = False

    def _parse_headers(self, lines: list[str]) -> None:
        super()._parse_headers(lines)  # type: ignore[misc]
        current: Message = self._cur  # type: ignore[attr-defined]
        depth = len(self._msgstack)  # type: ignore[attr-defined]
        if depth > MAX_DEPTH and current.get_content_maintype() in ("multipart", "message"):
            del current["Content-Type"]
            current["Content-Type"] = f'application/octet-stream; name="{CUT_NAME}"'
            self.cut = True


def _parse_bounded(raw: bytes, policy: Policy) -> tuple[Message, bool]:
    parser = _BoundedParser(policy=policy)
    parser.feed(raw)
    return parser.close(), parser.cut


def _message(raw: bytes) -> tuple[Message, bool]:
    """Parse with the modern policy; mail that breaks the stdlib's header parser gets compat32.
    Also whether parts nested too deep were kept whole."""
    try:
        return _parse_bounded(raw, email.policy.default)
    except Exception:
        return _parse_bounded(raw, email.policy.compat32)


def _address(value: str) -> tuple[str, str]:
    name, addr = parseaddr(value)
    addr = storable(addr.strip().lower())
    if "@" not in addr or len(addr) > MAX_ADDRESS:  # no address, or none that could be real
        return storable(name), ""
    return storable(name), addr


def normalise_subject(subject: str) -> str:
    """The subject without Re:/AW:/WG:/Fwd: prefixes and our [NT#n] tag."""
    subject = re.sub(r"\[NT#\d+\]", "", subject)
    return " ".join(SUBJECT_PREFIX.sub("", subject).split())


def _charset_ok(name: str) -> bool:
    try:
        codecs.lookup(name)
    except LookupError:
        return False
    return True


def decode_text(payload: bytes, declared: str | None) -> str:
    """Decode a text part, distrusting its declared charset where the bytes disagree."""
    declared = (declared or "").strip().strip('"').lower()
    if declared and _charset_ok(declared):
        try:
            text = payload.decode(declared)
        except (UnicodeDecodeError, LookupError):
            text = None
        single_byte = declared in {"us-ascii", "ascii", "iso-8859-1", "latin-1", "latin1",
                                   "windows-1252", "cp1252", "iso-8859-15"}
        if text is not None and not single_byte:
            return text
        if text is not None and single_byte:
            # Mail that says latin-1 but carries UTF-8 is common; UTF-8 rarely decodes by chance.
            try:
                utf8 = payload.decode("utf-8")
            except UnicodeDecodeError:
                return text
            return utf8
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        return payload.decode("cp1252", errors="replace")


def _part_bytes(part: Message) -> bytes:
    try:
        payload = part.get_payload(decode=True)
    except Exception:  # broken base64 or quoted-printable: fall back to the raw text
        payload = None
    if isinstance(payload, bytes):
        return payload
    raw = part.get_payload()
    return raw.encode("utf-8", "replace") if isinstance(raw, str) else b""


def _filename(part: Message) -> str | None:
    name = _param(part, "get_filename")
    if name and "=?" in name:
        name = _decode_words(name)  # compat32 leaves RFC 2047 words in parameters
    if name:
        return " ".join(str(name).split())  # names with CR/LF or tabs become one line
    return None


def _walk(msg: Message) -> Iterator[Message]:
    """Every leaf part, descending into multiparts but not into attached messages."""
    if msg.is_multipart() and _content_type(msg) != "message/rfc822":
        payload = msg.get_payload()
        for sub in payload if isinstance(payload, list) else []:
            if isinstance(sub, Message):
                yield from _walk(sub)
    else:
        yield msg


def _content_type(part: Message) -> str:
    try:
        return part.get_content_type()
    except Exception:
        return "application/octet-stream"


def _param(part: Message, getter: str) -> str | None:
    try:
        value = getattr(part, getter)()
    except Exception:  # a parameter in a charset Python cannot decode
        return None
    return str(value) if value else None


def _disposition(part: Message) -> str:
    try:
        value = str(part.get("Content-Disposition") or "")
    except Exception:
        return ""
    return value.split(";")[0].strip().lower()


def _bodies(msg: Message) -> tuple[str, list[Attachment]]:
    plain: list[str] = []
    html: list[str] = []
    forwarded: list[str] = []
    attachments: list[Attachment] = []
    for part in _walk(msg):
        ctype = _content_type(part)
        disposition = _disposition(part)
        name = _filename(part)
        if ctype in ("message/rfc822", "text/rfc822-headers"):
            inner = part.get_payload()
            attached = inner[0] if isinstance(inner, list) and inner else None
            size = len(attached.as_bytes()) if isinstance(attached, Message) else len(str(inner))
            attachments.append(Attachment(name or "forwarded message", ctype, size))
            if isinstance(attached, Message):
                text, _ = _bodies(attached)
                forwarded.append(text)
            continue
        is_text = ctype in ("text/plain", "text/html")
        if is_text and disposition != "attachment" and not (name and disposition != "inline"):
            text = decode_text(_part_bytes(part), _param(part, "get_content_charset"))
            (plain if ctype == "text/plain" else html).append(text)
        elif not part.is_multipart():
            data = _part_bytes(part)
            inline = disposition == "inline" or part.get("Content-ID") is not None
            attachments.append(Attachment(name or f"unnamed.{ctype.split('/')[-1]}", ctype,
                                          len(data), inline=inline))
    if plain and any(p.strip() for p in plain):
        body = "\n\n".join(p.strip() for p in plain if p.strip())
    else:
        body = "\n\n".join(html_to_text(h) for h in html if h.strip())
    for text in forwarded:
        body += f"\n\n---------- forwarded message ----------\n{text}"
    return body.replace("\r\n", "\n").strip(), attachments


def new_part(body: str) -> str:
    """The text the sender wrote now: no quoted history, no signature."""
    if not body.strip():
        return ""
    try:
        replies = REPLY_PARSER.read(body).replies
        text = replies[0].body if replies else body
        # a P.S. below the name is something the sender wrote now, not their signature
        text += "".join(f"\n\n{ps.strip()}" for ps in POSTSCRIPT.findall(
            replies[0].content if replies else "") if ps.strip() not in text)
    except Exception:  # the reply parser gave up on odd input: keep the whole body
        text = body
    text = text.strip()
    return text or body.strip()


def parse(raw: bytes, envelope_sender: str = "") -> ParsedMail:
    """Parse one raw mail; never raises for malformed input."""
    msg, cut = _message(raw)
    headers = _header_values(msg)

    def first(name: str) -> str:
        values = headers.get(name)
        return values[0] if values else ""

    name, sender = _address(first("from"))
    if not sender:
        name2, sender = _address(first("sender"))
        name = name or name2
    if not sender and envelope_sender:
        _, sender = _address(envelope_sender)
    _, reply_to = _address(first("reply-to"))
    body, attachments = _bodies(msg)
    return ParsedMail(
        message_id=_first_id(first("message-id")) or synthetic_message_id(raw),
        in_reply_to=_ids(first("in-reply-to")),
        references=_ids(" ".join(headers.get("references", []))),
        subject=first("subject"),
        sender=sender,
        sender_name=name,
        reply_to=reply_to,
        content_type=_content_type(msg),
        headers=headers,
        body=storable(body),
        new_text=storable(new_part(body)),
        attachments=tuple(attachments),
        defects=tuple(type(d).__name__ for d in msg.defects),
        nesting_cut=cut,
    )

