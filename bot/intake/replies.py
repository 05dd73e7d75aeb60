"""Customer-facing replies: rendered from templates in the customer's language, as MIME."""

from __future__ import annotations

import uuid
from datetime import datetime, time
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from bot.domain import Language
from bot.intake.loops import OUR_HEADER
from bot.sla.rules import BusinessHoursRule

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


def build_mail(
    *,
    sender: str,
    sender_name: str,
    to: str,
    subject: str,
    body: str,
    message_id: str,
    in_reply_to: str,
    references: tuple[str, ...],
    language: Language,
    ticket_number: int,
    now: datetime,
    automatic: bool = True,
) -> EmailMessage:
    """The reply as a MIME message, with the headers RFC 3834 asks of an automatic answer
    (a person's answer, `automatic=False`, carries none of them: it may be answered)."""
    mail = EmailMessage()
    mail["From"] = formataddr((sender_name, sender))
    mail["To"] = to
    mail["Subject"] = subject
    mail["Date"] = format_datetime(now)
    mail["Message-ID"] = message_id
    if in_reply_to:
        mail["In-Reply-To"] = in_reply_to
        mail["References"] = " ".join([*references[-10:], in_reply_to])
    if automatic:
        mail["Auto-Submitted"] = "auto-replied"
        mail["X-Auto-Response-Suppress"] = "All"
    mail[OUR_HEADER] = str(ticket_number)
    mail.set_content(body)
    mail["Content-Language"] = language.value  # after set_content, which replaces the headers
    return mail


def words(name: str, language: Language) -> Any:
    """A set of words from `words.<language>.j2`, e.g. the consent buttons' labels."""
    return getattr(_env.get_template(f"words.{language.value}.j2").module, name)
