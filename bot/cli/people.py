"""The data-protection commands: retention run, people export/erase; each returns the text."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from datetime import datetime
from pathlib import Path

from sqlalchemy.engine import make_url

from bot.cases.people import erase, export
from bot.cli.db import CommandError, _require_schema
from bot.config import Settings
from bot.jobs.retention import remove_expired_raw
from models.db import Database


async def retention_run(db: Database, settings: Settings, now: datetime) -> str:
    """Remove the raw payloads past RETENTION_RAW_DAYS once, now."""
    await _require_schema(db)
    removed = await remove_expired_raw(db, now=now, days=settings.retention_raw_days,
                                       batch=settings.retention_batch)
    return (f"removed the raw bytes of {removed.messages} message(s) ({removed.bytes} bytes) "
            f"of {removed.tickets} ticket(s) closed more than {settings.retention_raw_days} "
            f"days ago, in {removed.batches} batch(es)")


async def people_export(db: Database, settings: Settings, address: str, now: datetime) -> str:
    """Everything stored about one person, as one JSON document."""
    await _require_schema(db)
    return json.dumps(await export(db, address, now=now), ensure_ascii=False, indent=2)


async def people_erase(db: Database, settings: Settings, address: str, agent: str,
                       close_open: bool, now: datetime) -> str:
    """Erase one person's personal data, then compact SQLite so the bytes leave the file."""
    await _require_schema(db)
    done = await erase(db, address, agent=agent, now=now, close_open=close_open)
    if db.backend == "sqlite":
        await db.dispose()  # VACUUM needs the file to itself
        try:
            compact_sqlite(Path(make_url(settings.database_url.get_secret_value()).database
                                or ""))
        except sqlite3.Error as exc:
            raise CommandError(
                f"erased as {done.tombstone}, but the database file could not be compacted "
                f"({exc}): the old bytes stay in its free pages until a VACUUM (sqlite3 FILE "
                "VACUUM) while the service is stopped") from exc
    tickets = ", ".join(f"NT#{n}" for n in done.tickets) or "none"
    closed = f"; closed first: {', '.join(f'NT#{n}' for n in done.closed)}" if done.closed else ""
    return (f"erased as {done.tombstone}: tickets {tickets}{closed}; {done.messages} message(s), "
            f"{done.audit} audit entries, {done.callbacks} callback(s), {done.slack_calls} Slack "
            f"call(s), {done.addresses} customer address(es)")


def compact_sqlite(path: Path) -> None:
    """Rewrite the SQLite file (VACUUM) and empty its WAL: freed pages keep old bytes."""
    with closing(sqlite3.connect(path, timeout=30, isolation_level=None)) as connection:
        connection.execute("VACUUM")
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
