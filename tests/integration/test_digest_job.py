"""The daily digest in a running service: a digest missed while no instance ran goes out on
start, once, to the managers' mail and the Slack side; a restart does not send it again."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlmodel import col, select

from models.db import Database
from models.tables import DigestSent, Message
from tests.integration.conftest import Clock, make_settings, start_service
from tests.integration.reminder_kit import poll, posted

BERLIN = ZoneInfo("Europe/Berlin")
TUESDAY_10 = datetime(2026, 11, 24, 10, tzinfo=BERLIN)


async def digest_mails(db: Database) -> list[Message]:
    async with db.reader() as session:
        return list((await session.exec(select(Message).where(
            col(Message.recipient) == "leitung@nettask.de"))).all())


async def test_a_missed_digest_goes_out_once_on_start(db: Database, database_url: str,
                                                      tmp_path: Path) -> None:
    await db.dispose()
    settings = make_settings(tmp_path, database_url, digest_time="07:30",
                             managers_email="leitung@nettask.de")
    first = await start_service(settings, Clock(TUESDAY_10))

    async def mailed() -> bool:
        return len(await digest_mails(first.db)) == 1

    try:
        await poll(mailed, 15, "the digest mail")
    finally:
        await first.service.stop()
    again = await start_service(settings, Clock(TUESDAY_10))
    loop = again.service.reminders
    assert loop is not None

    async def checked() -> bool:
        return loop.daily_checks >= 1

    try:
        await poll(checked, 15, "the restarted loop checked the digest")
        async with again.db.reader() as session:
            days = [d.day for d in (await session.exec(select(DigestSent))).all()]
        mails = await digest_mails(again.db)
    finally:
        await again.service.stop()
    assert days == ["2026-11-23"]
    assert [m.subject for m in mails] == ["Support digest 2026-11-23"]
    assert [line["digest"] for line in posted(tmp_path / "slack-outbox.jsonl")] == ["2026-11-23"]

