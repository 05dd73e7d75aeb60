"""Retention: raw mail and Slack payloads are removed RETENTION_RAW_DAYS after their ticket
closed (messages of no ticket: after they arrived); the ticket, the messages' text and the
audit trail stay.

The work is done in batches of `batch` messages, each its own short background transaction,
so intake (which writes first) never waits behind more than one batch. The leader runs it
once a day (the same leader rule as the reminders: bot/scheduler.py's daily job).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.jobs.scheduler import DailyJob
from bot.sla.digest import next_run
from models.db import Database
from models.retention import clear_raw_batch

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Removed:
    """What one retention run removed."""

    messages: int
    bytes: int
    tickets: int
    batches: int


async def remove_expired_raw(db: Database, *, now: datetime, days: int,
                             batch: int = 500) -> Removed:
    """Remove every raw payload past retention at `now`, batch by batch; logs each batch."""
    cutoff = now - timedelta(days=days)
    messages = size = batches = 0
    tickets: set[int] = set()
    while True:
        async with db.session(background=True) as session:
            cleared = await clear_raw_batch(session, cutoff=cutoff, limit=batch)
        if not cleared.messages:
            break
        batches += 1
        messages += cleared.messages
        size += cleared.bytes
        tickets.update(cleared.tickets)
        log.info("event=retention_removed messages=%s bytes=%s tickets=%s cutoff=%s",
                 cleared.messages, cleared.bytes,
                 ",".join(f"NT#{n}" for n in cleared.tickets) or "-", cutoff.isoformat())
        if cleared.messages < batch:
            break
    log.info("event=retention_done messages=%s bytes=%s tickets=%s batches=%s days=%s",
             messages, size, len(tickets), batches, days)
    return Removed(messages, size, len(tickets), batches)


@dataclass
class RetentionJob:
    """The daily retention run, after `at` local time; idempotent, so a second run (another
    day's, or a new leader's) only finds what expired since."""

    db: Database
    zone: ZoneInfo
    at: time
    days: int
    batch: int = 500

    def due(self, now: datetime) -> bool:
        """Whether today's run time has passed."""
        return now.astimezone(self.zone).time() >= self.at

    def next_time(self, now: datetime) -> datetime:
        """The next run time (UTC)."""
        return next_run(self.at, self.zone, now)

    async def run(self, now: datetime) -> bool:
        """Remove what has expired; True when anything was."""
        removed = await remove_expired_raw(self.db, now=now, days=self.days, batch=self.batch)
        return removed.messages > 0


@dataclass
class DailyJobs:
    """Several daily jobs as the one the leader runs: each runs when it is due; one failing
    does not keep the others from running."""

    jobs: Sequence[DailyJob]

    def due(self, now: datetime) -> bool:
        """Whether any job is due."""
        return any(job.due(now) for job in self.jobs)

    def next_time(self, now: datetime) -> datetime:
        """The earliest next run time of the jobs."""
        return min(job.next_time(now) for job in self.jobs)

    async def run(self, now: datetime) -> bool:
        """Run each due job; True when any did something."""
        did = False
        for job in self.jobs:
            if not job.due(now):
                continue
            try:
                did = await job.run(now) or did
            except Exception as exc:  # logged; the next day, or the next leader, retries
                log.error("event=daily_job_failed job=%s error=%s", type(job).__name__,
                          f"{type(exc).__name__}: {exc}"[:200])
        return did
