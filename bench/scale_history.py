"""The synthetic history bench/scale.py measures on: 1,000 customers and years of tickets.

A desk that takes 1,000,000 tickets in five years (one every ~158 s, 548 a day, day and
night alike): ticket n (1 the newest) was opened n intervals before NOW, so a bigger size is a
longer history at the same rate, and what happened in the last hour, day or 90 days is the
same at every size. Each ticket: the customer's mail (or a Slack message, one in six), our
answer, for three in ten a follow-up and a second answer; a reminder (sent), three audit rows;
one in fifty a booked callback. Raw bytes only where retention keeps them (closed less than
90 days ago): mail of 2-40 KB (median ~6 KB, headers and a quoted thread), one in a hundred
with an attachment of up to 1 MB; Slack payloads of ~1.5 KB; our answers ~3 KB.

Rows are written in bulk: COPY on PostgreSQL, executemany in one transaction on SQLite.
"""

from __future__ import annotations

import base64
import random
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url

from models.db import Database

NOW = datetime(2026, 11, 23, 9, tzinfo=UTC)  # a Monday, 10:00 in Berlin
INTERVAL = timedelta(days=5 * 365.25) / 1_000_000
TOP = 2_000_000  # ticket n is number TOP - n: newer tickets have higher numbers
CUSTOMERS = 1_000
PEOPLE = 12  # per customer
PLANS = ("basic", "basic-plus", "standard", "professional")
RAW_DAYS = 90
RUNNING = 40  # the newest tickets are still open
WORDS = ("Server Mailserver Postfach erreichbar Fehler seit heute Morgen Kunden Rechnung Lizenz "
         "Zugang Passwort Website Update Datenbank Backup Zertifikat DNS Weiterleitung bitte "
         "dringend Problem Anfrage Termin Vertrag Speicher Benutzer Drucker VPN Firewall "
         "the server is down since this morning please help invoice licence access").split()

COLUMNS: dict[str, tuple[str, ...]] = {
    "customer": ("id", "number", "name", "contact_24_7", "created_at"),
    "customer_email": ("customer_id", "kind", "value"),
    "customer_plan": ("customer_id", "product", "plan"),
    "customer_slack": ("customer_id", "team_id", "channel_id"),
    "ticket": ("number", "customer_id", "channel", "subject", "product", "plan", "plan_terms",
               "department",
               "severity", "language", "status", "entitled", "included", "usage_month",
               "billable", "price_cents", "created_at", "accepted_at", "target_hours", "due_at",
               "first_response_at", "paused_seconds", "closed_at", "requester", "flags",
               "model_version", "predicted_department", "predicted_severity",
               "predicted_confidence"),
    "message": ("ticket_number", "direction", "channel", "external_id", "digest", "flags",
                "thread_id", "sender", "text", "raw", "recipient", "subject", "disposition",
                "attempts", "done_at", "created_at"),
    "reminder": ("ticket_number", "kind", "audience", "due_at", "claimed_at", "claimed_by",
                 "sent_at", "attempts", "late"),
    "audit_event": ("ticket_number", "at", "actor", "action", "detail"),
    "callback_booking": ("ticket_number", "customer_id", "product", "usage_month",
                         "slot_start", "slot_end", "status", "phone", "created_at"),
    "callback_slot": ("slot_start", "booked"),
}
ORDER = tuple(COLUMNS)  # foreign keys: parents first


def domain(customer: int) -> str:
    """The mail domain of customer 1..CUSTOMERS."""
    return f"kunde{customer:04d}.example"


def person(customer: int, n: int) -> str:
    """One of a customer's people (n any number: taken modulo PEOPLE)."""
    return f"person{n % PEOPLE:02d}.nachname@{domain(customer)}"


def slack_of(customer: int) -> tuple[str, str] | None:
    """The Slack team and channel of every fifth customer."""
    return (f"T{customer:07d}", f"C{customer:07d}") if customer % 5 == 0 else None


def customers() -> dict[str, list[tuple[Any, ...]]]:
    """The 1,000 customers: a domain and two outside addresses each, a plan, some on Slack."""
    rows: dict[str, list[tuple[Any, ...]]] = {t: [] for t in ORDER[:4]}
    for c in range(1, CUSTOMERS + 1):
        rows["customer"].append((c, f"B-{c:05d}", f"Kunde {c} GmbH",
                                 "+49 30 555 0100" if c % 10 == 0 else None,
                                 NOW - timedelta(days=6 * 365)))
        rows["customer_email"].append((c, "domain", domain(c)))
        rows["customer_email"].append((c, "address", f"it{c}@extern{c:04d}.example"))
        rows["customer_plan"].append((c, "dehosted", PLANS[c % len(PLANS)]))
        if (channel := slack_of(c)) is not None:
            rows["customer_slack"].append((c, *channel))
    return rows


@dataclass
class Texts:
    """Random but fixed material to cut raw mails from (cheap: slices of one buffer)."""

    seed: int = 24
    prose: str = field(init=False)
    blob: str = field(init=False)

    def __post_init__(self) -> None:
        rng = random.Random(self.seed)
        words = [rng.choice(WORDS) for _ in range(120_000)]
        lines, line = [], []
        for word in words:
            line.append(word)
            if len(line) > 11:
                lines.append(" ".join(line))
                line = []
        self.prose = "\r\n".join(lines)
        data = base64.encodebytes(rng.randbytes(800_000)).decode("ascii")
        self.blob = data.replace("\n", "\r\n")

    def cut(self, rng: random.Random, size: int) -> str:
        """`size` characters of prose from a random place."""
        start = rng.randrange(0, len(self.prose) - size)
        return self.prose[start:start + size]


def mail_size(rng: random.Random) -> int:
    """A raw mail's size in bytes: lognormal around 6 KB, within 2-40 KB."""
    return int(min(40_000, max(2_000, rng.lognormvariate(8.7, 0.55))))


def raw_mail(rng: random.Random, texts: Texts, *, sender: str, subject: str, message_id: str,
             at: datetime) -> bytes:
    """A customer's mail as it arrives: trace headers, DKIM, a text part, maybe a file."""
    head = (f"Return-Path: <{sender}>\r\n"
            f"Received: from mx.{sender.split('@')[1]} (mx [192.0.2.{rng.randrange(255)}]) by "
            f"mx.nettask.de with ESMTPS id {rng.getrandbits(40):x}; {at:%a, %d %b %Y %H:%M:%S} "
            "+0000\r\n"
            f"DKIM-Signature: v=1; a=rsa-sha256; d={sender.split('@')[1]}; s=mail; "
            f"b={texts.blob[:340].replace(chr(13) + chr(10), '')}\r\n"
            f"From: {sender}\r\nTo: support@nettask.de\r\nSubject: {subject}\r\n"
            f"Message-ID: {message_id}\r\nDate: {at:%a, %d %b %Y %H:%M:%S} +0000\r\n"
            "MIME-Version: 1.0\r\n")
    body = texts.cut(rng, max(200, mail_size(rng) - len(head) - 200))
    if rng.random() >= 0.01:
        return (head + "Content-Type: text/plain; charset=utf-8\r\n\r\n" + body).encode()
    size = rng.randrange(50_000, len(texts.blob))
    return (head + 'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n--b1\r\n'
            "Content-Type: text/plain; charset=utf-8\r\n\r\n" + body + "\r\n--b1\r\n"
            'Content-Type: application/pdf; name="log.pdf"\r\n'
            "Content-Transfer-Encoding: base64\r\n\r\n" + texts.blob[:size]
            + "\r\n--b1--\r\n").encode()


def tickets(first: int, last: int, texts: Texts,
            terms: dict[str, str | None]) -> dict[str, list[tuple[Any, ...]]]:
    """The rows of tickets first..last (1 the newest), each table's in COLUMNS order; `terms`
    each plan's terms as tickets keep them."""
    rows: dict[str, list[tuple[Any, ...]]] = {t: [] for t in ORDER[4:]}
    for n in range(first, last + 1):
        rng = random.Random(n)
        number, at = TOP - n, NOW - n * INTERVAL
        customer = 1 + rng.randrange(CUSTOMERS)
        # a fifth of the customers are on Slack and write there 5 times in 6: 1 ticket in 6
        slack = slack_of(customer) if rng.random() < 5 / 6 else None
        who = person(customer, rng.randrange(PEOPLE))
        running = n <= RUNNING
        closed = None if running else at + timedelta(hours=rng.uniform(1, 30))
        keep = closed is None or closed > NOW - timedelta(days=RAW_DAYS)
        subject = texts.cut(rng, 40).replace("\r\n", " ").strip().capitalize()
        severity = rng.choice("ABCCCC")
        department = rng.choice(("trouble", "trouble", "developer", "accounting", "consulting"))
        answered = None if running else at + timedelta(minutes=rng.uniform(1, 240))
        month = f"{at:%Y-%m}"
        rows["ticket"].append((
            number, customer, "slack" if slack else "email", subject, "dehosted",
            PLANS[customer % len(PLANS)], terms[PLANS[customer % len(PLANS)]], department,
            severity, rng.choice(("de", "de", "en")),
            "open" if running else "closed", True, rng.random() < 0.5, month,
            rng.random() < 0.1, 9900 if rng.random() < 0.1 else 0, at, at,
            8.0, at + timedelta(hours=8), answered, 0.0, closed,
            slack[1] if slack else who, "", "e5-head-v3", department, severity,
            round(rng.uniform(0.5, 0.99), 3)))
        conversation = [(at, True)] + ([] if answered is None else [(answered, False)])
        if rng.random() < 0.3 and answered is not None:
            again = answered + timedelta(hours=rng.uniform(1, 20))
            conversation += [(again, True), (again + timedelta(minutes=30), False)]
        for k, (when, inbound) in enumerate(conversation):
            rows["message"].append(message(rng, texts, number, k, when, inbound, slack, who,
                                           subject, keep))
        rows["reminder"].append((number, "agents_75", "agents", at + timedelta(hours=6),
                                 None if running else at + timedelta(hours=6),
                                 None if running else "bench",
                                 None if running else at + timedelta(hours=6),
                                 0 if running else 1, False))
        rows["audit_event"].append((number, at, "intake", "created",
                                    f'{{"channel": "{"slack" if slack else "email"}"}}'))
        if answered is not None and closed is not None:
            rows["audit_event"].append((number, answered, "intake", "answered", "{}"))
            rows["audit_event"].append((number, closed, "U0AGENT", "closed", "{}"))
        if rng.random() < 0.02:
            slot = (at + timedelta(days=1)).replace(second=0, microsecond=0)
            rows["callback_booking"].append((number, customer, "dehosted", month, slot,
                                             slot + timedelta(minutes=30), "booked",
                                             "+49 30 555 0101", at))
            rows["callback_slot"].append((slot, 1))
    return rows


def message(rng: random.Random, texts: Texts, number: int, k: int, when: datetime,
            inbound: bool, slack: tuple[str, str] | None, who: str, subject: str,
            keep: bool) -> tuple[Any, ...]:
    """One message of a ticket's conversation (k its place in it), in COLUMNS order."""
    body = texts.cut(rng, rng.randrange(200, 1500))
    channel = "slack" if slack else "email"
    if not inbound:
        external = f"<nt{number}.{k}@nettask.de>"
        raw = (f"From: support@nettask.de\r\nTo: {who}\r\nSubject: Re: {subject}\r\n"
               f"Message-ID: {external}\r\n\r\n" + texts.cut(rng, 2800)).encode()
        return (number, "out", channel, external if not slack else f"{slack[1]}:out{number}.{k}",
                "", "", None, "support@nettask.de", body, raw if keep and not slack else None,
                slack[1] if slack else who, f"Re: {subject}", "sent", 1,
                when + timedelta(seconds=3), when)
    if slack:
        external = f"{slack[1]}:{when.timestamp():.6f}"
        raw = ('{"type": "event_callback", "event": {"type": "message", "text": "'
               + body.replace("\r\n", " ") + '"}}').encode()
        return (number, "in", channel, external, "", "", None, f"U{number:08d}", body,
                raw if keep else None, slack[1], "", "ticket" if k == 0 else "follow-up", 1,
                when, when)
    external = f"<{number}.{k}.{rng.getrandbits(32):x}@{who.split('@')[1]}>"
    raw = raw_mail(rng, texts, sender=who, subject=subject, message_id=external, at=when)
    return (number, "in", channel, external, f"{rng.getrandbits(256):064x}", "", None, who,
            body, raw if keep else None, "support@nettask.de", subject,
            "ticket" if k == 0 else "follow-up", 1, when, when)


def sqlite_value(value: Any) -> Any:
    """A value as SQLAlchemy stores it in SQLite: instants naive UTC text, booleans 0/1."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, bool):
        return int(value)
    return value


class Writer:
    """Bulk writes of COLUMNS-shaped rows into one database."""

    def __init__(self, db: Database, url: str) -> None:
        self.db = db
        self.path = make_url(url).database if db.backend == "sqlite" else None

    async def write(self, rows: dict[str, list[tuple[Any, ...]]]) -> int:
        """Write the rows, parents first; how many there were."""
        if self.path is not None:
            connection = sqlite3.connect(self.path)
            try:
                connection.execute("PRAGMA synchronous=OFF")
                with connection:
                    for table in (t for t in ORDER if rows.get(t)):
                        columns = COLUMNS[table]
                        connection.executemany(
                            f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
                            f"({', '.join('?' * len(columns))})",
                            ([sqlite_value(v) for v in row] for row in rows[table]))
            finally:
                connection.close()
        else:
            async with self.db.engine.begin() as pg:
                raw = (await pg.get_raw_connection()).driver_connection
                assert raw is not None
                for table in (t for t in ORDER if rows.get(t)):
                    await raw.copy_records_to_table(table, records=rows[table],
                                                    columns=list(COLUMNS[table]))
        return sum(len(r) for r in rows.values())

    async def after_fill(self, customers_written: bool) -> None:
        """Sequences past what was written (PostgreSQL), then fresh planner statistics."""
        async with self.db.engine.connect() as connection:
            auto = await connection.execution_options(isolation_level="AUTOCOMMIT")
            if self.db.backend == "postgresql":
                await auto.execute(text(  # past the history and what the bench opened
                    "SELECT setval(pg_get_serial_sequence('ticket', 'number'), "
                    "(SELECT max(number) FROM ticket))"))
                if customers_written:
                    await auto.execute(text(
                        "SELECT setval(pg_get_serial_sequence('customer', 'id'), :n)"),
                        {"n": CUSTOMERS})
            await auto.execute(text("ANALYZE"))


def chunks(have: int, want: int, size: int) -> Iterator[tuple[int, int]]:
    """(first, last) ticket ranges covering have+1..want."""
    for first in range(have + 1, want + 1, size):
        yield first, min(first + size - 1, want)
