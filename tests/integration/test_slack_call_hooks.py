"""A queued Slack Web API call wakes the outbox after its commit (not on the loop's timer)."""

from __future__ import annotations

from datetime import UTC, datetime

from models import slack
from models.db import Database

NOW = datetime(2026, 11, 23, 9, tzinfo=UTC)


async def queue(db: Database, key: str, fired: list[str]) -> bool:
    async with db.session() as session:
        queued = await slack.queue_call(session, key=key, method="chat.postMessage",
                                        args={"channel": "C0TRIAGE", "text": "hi"}, now=NOW)
        fired.append("committing")
    return queued


async def test_the_hooks_run_once_after_the_commit_that_queued_a_call(db: Database) -> None:
    fired: list[str] = []
    unhook = slack.on_queued(lambda: fired.append("hook"))
    try:
        first = await queue(db, "answer:1", fired)
        again = await queue(db, "answer:1", fired)  # the same key: nothing queued, no wake-up
    finally:
        unhook()
    after = await queue(db, "answer:2", fired)  # unsubscribed: not called any more
    assert (first, again, after) == (True, False, True)
    assert fired == ["committing", "hook", "committing", "committing"]
