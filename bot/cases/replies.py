"""Customer-facing replies: rendered from templates in the customer's language, as MIME."""

from __future__ import annotations

import uuid
from datetime import datetime, time
from email import message_from_bytes, quoprimime
from email.header import Header
from email.message import EmailMessage
from email.policy import default
from email.utils import format_datetime, formataddr
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from bot.domain import Language
from bot.sla.rules import BusinessHoursRule

OUR_HEADER = "x-nettask-intake"  # set on every mail we send (loops.py spots it coming back)
MAX_LINE = 78  # RFC 5322's recommended line length
TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
_env = Environment(loader=FileSystemLoader(TEMPLATES), undefined=StrictUndefined,
                   keep_trailing_newline=True, autoescape=False, trim_blocks=True,
                   lstrip_blocks=True)
WEEKDAYS = {Language.DE: ["Mo", "Di", "Mi", "Do", "Fr", "Sa", "So"],
            Language.EN: ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]}


def local_deadline(moment: datetime, zone: ZoneInfo, language: Language) -> str:
    """A deadline as the customer reads it: 'Mo 23.11.2026 15:00 Uhr (MEZ)'."""
    local = moment.astimezone(zone)
    day = WEEKDAYS[language][local.weekday()]
    if language is Language.DE:
        return f"{day} {local:%d.%m.%Y %H:%M} Uhr ({local.tzname()})"
    return f"{day} {local:%d %b %Y %H:%M} ({local.tzname()})"


def business_hours(rule: BusinessHoursRule, language: Language, at: datetime) -> str:
    """The policy's opening hours as customers read them, with the zone's name on that date:
    'Mo–Fr 8–18 Uhr (CET)', 'Mon–Fri 8:00–18:00 CEST'."""
    names = WEEKDAYS[language]
    days = sorted(rule.weekdays)
    if len(days) > 1 and days == list(range(days[0], days[-1] + 1)):
        span = f"{names[days[0] - 1]}–{names[days[-1] - 1]}"
    else:
        span = ", ".join(names[d - 1] for d in days)
    zone = at.astimezone(ZoneInfo(rule.timezone)).tzname()
    if language is Language.DE:
        def short(t: time) -> str:
            return f"{t.hour}" if t.minute == 0 else f"{t.hour}:{t.minute:02d}"
        return f"{span} {short(rule.open)}–{short(rule.close)} Uhr ({zone})"
    return f"{span} {rule.open.hour}:{rule.open.minute:02d}–{rule.close.hour}:" \
           f"{rule.close.minute:02d} {zone}"


def render(template: str, language: Language, **context: Any) -> str:
    """Render `template.<language>.j2` with the given context."""
    return _env.get_template(f"{template}.{language.value}.j2").render(**context)


def reply_subject(number: int, subject: str) -> str:
    """`[NT#n] Re: subject`, the tag first so that it survives long subjects."""
    return f"[NT#{number}] Re: {subject}" if subject else f"[NT#{number}]"


def new_message_id(domain: str, number: int) -> str:
    """A unique Message-ID on our own domain."""
    return f"<nt{number}.{uuid.uuid4().hex}@{domain}>"


def mail_bytes(
    *,
    sender: str,
    sender_name: str,
    to: str,
    subject: str,
    body: str,
    message_id: str,
    in_reply_to: str,
    references: tuple[str, ...],
    language: Language | None,
    ticket_number: int | None,
    now: datetime,
    auto_submitted: str | None = "auto-replied",
) -> bytes:
    """A plain-text mail as bytes, with the headers RFC 3834 asks of an automatic answer
    (`auto_submitted` None: a person's answer, which carries none of them and may be answered).

    Written out directly rather than through `EmailMessage`, whose header objects cost several
    times more per answer: the values are RFC 2047-encoded where they are not ASCII, folded,
    and refused when they hold a line break, as `EmailMessage` does.
    """
    headers = [
        ("From", formataddr((sender_name, sender), charset="utf-8")),
        ("To", to),
        ("Subject", subject),
        ("Date", format_datetime(now)),
        ("Message-ID", message_id),
    ]
    if in_reply_to:
        headers += [("In-Reply-To", in_reply_to),
                    ("References", " ".join([*references[-10:], in_reply_to]))]
    if auto_submitted:
        headers += [("Auto-Submitted", auto_submitted), ("X-Auto-Response-Suppress", "All")]
    encoding, content = _text_body(body)
    if ticket_number is not None:
        headers.append((OUR_HEADER, str(ticket_number)))
    headers += [("Content-Type", 'text/plain; charset="utf-8"'),
                ("Content-Transfer-Encoding", encoding),
                ("MIME-Version", "1.0")]
    if language is not None:
        headers.append(("Content-Language", language.value))
    head = "".join(_header(name, value) for name, value in headers)
    return f"{head}\n{content}".encode("ascii")


def _header(name: str, value: str) -> str:
    if "\r" in value or "\n" in value:
        raise ValueError(f"header {name} may not contain a line break: {value!r}")
    if value.isascii() and len(name) + 2 + len(value) <= MAX_LINE:
        return f"{name}: {value}\n"
    # the leading ASCII words stay readable (our [NT#n] tag), the rest is RFC 2047-encoded
    words = value.split(" ")
    plain = next((n for n, word in enumerate(words) if not word.isascii()), len(words))
    header = Header(maxlinelen=MAX_LINE, header_name=name)
    if plain:
        header.append(" ".join(words[:plain]), "us-ascii")
    if plain < len(words):
        header.append(" ".join(words[plain:]), "utf-8")
    folded = header.encode(linesep="\n")
    return f"{name}: {folded}\n"


def _text_body(text: str) -> tuple[str, str]:
    """The body's transfer encoding and its encoded lines: 7bit for short-lined ASCII, else
    quoted-printable of the UTF-8 bytes (7-bit clean: no relay needs 8BITMIME for it)."""
    lines = text.encode("utf-8").splitlines()
    normal = b"\n".join(lines) + b"\n"
    if normal.isascii() and all(len(line) <= MAX_LINE for line in lines):
        return "7bit", normal.decode("ascii")
    # quoprimime encodes each code point under 256 as one byte: hand it the bytes as latin-1
    return "quoted-printable", quoprimime.body_encode(normal.decode("latin-1"), MAX_LINE,
                                                      eol="\n")


def as_message(raw: bytes) -> EmailMessage:
    """A mail from `mail_bytes` as an `EmailMessage`, for a caller that adds a part to it."""
    return message_from_bytes(raw, policy=default)


def words(name: str, language: Language) -> Any:
    """A set of words from `words.<language>.j2`, e.g. the consent buttons' labels."""
    return getattr(_env.get_template(f"words.{language.value}.j2").module, name)
