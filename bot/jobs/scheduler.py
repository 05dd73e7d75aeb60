"""The reminder loop: the one module that knows APScheduler.

Reminders are rows; APScheduler (3.x, AsyncIOScheduler, in-memory job store: its store is never
shared between processes) only holds ONE wake-up job at the earliest pending due time. The job
is re-armed when rows change (a hook run after each commit), after each run, and every few
seconds from the rows (so rows written by another instance are seen). misfire_grace_time=None:
a wake-up that is late, after a pause of the loop or the machine, still runs (APScheduler's
default of one second would skip it silently).

Only the leader runs the loop (models/leader.py). On taking over it releases the claims a dead
leader left and arms at the earliest due row: whatever came due while no instance ran goes out
at once, marked late.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger

from bot.cases.deadlines import record_breach
from bot.domain import TicketStatus
from bot.jobs.notify import Notifier
from models import reminders as repo
from models.db import Database
from models.leader import Leadership
from models.tables import Reminder, Ticket

log = logging.getLogger(__name__)

STALE = "the ticket no longer waits for a first answer"
WAKE_UP = "reminders-wake-up"
DAILY = "daily-digest"
REFRESH = "reminders-refresh"
EVERY = "leader-every"


class DailyJob(Protocol):
    """A once-a-day job the leader runs (the managers' digest); `run` is idempotent per day."""

    def due(self, now: datetime) -> bool:
        """Whether today's run time has passed."""
        ...

    def next_time(self, now: datetime) -> datetime:
        """The next run time after `now` (UTC)."""
        ...

    async def run(self, now: datetime) -> bool:
        """Run for today unless done; True when this call did it."""
        ...


class PeriodicJob(Protocol):
    """A job the leader runs every `seconds` (the web chat's mail-when-away); `run` is safe to
    repeat and returns how much it queued."""

    seconds: float

    async def run(self, now: datetime) -> int:
        """Do what is due at `now`."""
        ...


def still_wanted(reminder: Reminder, ticket: Ticket) -> bool:
    """A deadline reminder whose ticket was answered, closed or paused by a path that did not
    cancel it (a status set directly) is dropped at send time rather than sent."""
    if reminder.booking_id is not None:
        return True  # a callback's reminder: cancelled with its booking, not by an answer
    return ticket.status == TicketStatus.OPEN and ticket.first_response_at is None


class ReminderLoop:
    """Sends due reminders exactly once, while this instance leads."""

    def __init__(self, *, db: Database, notifier: Notifier, leadership: Leadership,
                 clock: Callable[[], datetime], owner: str,
                 late_after: timedelta = timedelta(seconds=5), refresh_seconds: float = 5.0,
                 leader_retry_seconds: float = 3.0, max_attempts: int = 5,
                 retry_seconds: float = 30.0, batch: int = 200,
                 on_sent: Callable[[], None] = lambda: None,
                 daily: DailyJob | None = None, every: PeriodicJob | None = None) -> None:
        self.db = db
        self.notifier = notifier
        self.leadership = leadership
        self.clock = clock
        self.owner = owner
        self.late_after = late_after
        self.refresh_seconds = refresh_seconds
        self.leader_retry = leader_retry_seconds
        self.max_attempts = max_attempts
        self.retry_seconds = retry_seconds
        self.batch = batch
        self.on_sent = on_sent
        self.daily = daily
        self.every = every
        self.daily_checks = 0  # how often the daily job was checked (and run when due)
        self.leading = False
        self.sent = 0
        self._scheduler: AsyncIOScheduler | None = None
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._unhook: Callable[[], None] | None = None
        self._running: set[asyncio.Task[object]] = set()
        self._one_run = asyncio.Lock()

    async def start(self) -> None:
        """Start competing for leadership; returns at once."""
        # APScheduler logs every run at INFO (one line per wake-up, every refresh); keep its
        # warnings (a missed run) and our own event=reminder_* lines.
        logging.getLogger("apscheduler").setLevel(logging.WARNING)
        self._scheduler = AsyncIOScheduler(timezone=UTC, job_defaults={
            "misfire_grace_time": None, "coalesce": True, "max_instances": 1})
        self._scheduler.start()
        self._task = asyncio.create_task(self._lead(), name="reminder-leader")

    async def stop(self) -> None:
        """Stop the loop, let a delivery in progress finish, give up the lock."""
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._step_down()
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
        await self.leadership.release()

    async def _lead(self) -> None:
        while not self._stop.is_set():
            try:
                if await self.leadership.acquire():
                    await self._take_over()
                    while not self._stop.is_set() and await self.leadership.held():
                        await self._pause(self.leader_retry)
                    if not self._stop.is_set():
                        log.warning("event=reminder_leader_lost owner=%s", self.owner)
                    await self._step_down()
                    continue
            except Exception as exc:  # the database is away: try again, never give up
                log.warning("event=reminder_leader_error owner=%s error=%s", self.owner,
                            f"{type(exc).__name__}: {exc}"[:200])
                await self._step_down()
                await self.leadership.release()
            await self._pause(self.leader_retry)

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._stop.wait()

    async def _take_over(self) -> None:
        async with self.db.session() as session:
            released = await repo.release_claims(session)
        self.leading = True
        log.info("event=reminder_leader owner=%s released_claims=%s", self.owner, released)
        loop = asyncio.get_running_loop()

        def hook() -> None:
            loop.call_soon_threadsafe(self.poke)

        self._unhook = repo.on_change(hook)
        assert self._scheduler is not None
        self._scheduler.add_job(self._arm, "interval", seconds=self.refresh_seconds, id=REFRESH,
                                replace_existing=True)
        await self._arm()
        if self.every is not None:
            self._scheduler.add_job(self._run_every, "interval", seconds=self.every.seconds,
                                    id=EVERY, replace_existing=True)
        if self.daily is not None:
            await self._run_daily()  # a digest missed while no instance ran goes out now

    async def _run_daily(self) -> None:
        if self.daily is None or not self.leading or self._scheduler is None:
            return
        now = self.clock()
        try:
            if self.daily.due(now):
                await self.daily.run(now)
                self.on_sent()
        except Exception as exc:  # logged; the next leader or the next day retries
            log.error("event=daily_job_failed error=%s", f"{type(exc).__name__}: {exc}"[:200])
        self.daily_checks += 1
        delay = max(self.daily.next_time(now) - now, timedelta(0))
        self._scheduler.add_job(self._run_daily, DateTrigger(
            run_date=datetime.now(UTC) + delay, timezone=UTC), id=DAILY, replace_existing=True)

    async def _run_every(self) -> None:
        if self.every is None or not self.leading:
            return
        # stepping down waits for a run in progress, as for reminders: the store it writes to
        # is closed after the loop stops
        task = asyncio.current_task()
        if task is not None:
            self._running.add(task)
        try:
            if await self.every.run(self.clock()):
                self.on_sent()
        except Exception as exc:  # logged; the next run retries
            log.error("event=periodic_job_failed job=%s error=%s", type(self.every).__name__,
                      f"{type(exc).__name__}: {exc}"[:200])
        finally:
            if task is not None:
                self._running.discard(task)

    async def _step_down(self) -> None:
        self.leading = False
        if self._unhook is not None:
            self._unhook()
            self._unhook = None
        if self._scheduler is not None:
            for job in (WAKE_UP, REFRESH, DAILY, EVERY):
                if self._scheduler.get_job(job) is not None:
                    self._scheduler.remove_job(job)
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)

    def poke(self) -> None:
        """Rows changed: re-arm the wake-up (called after a commit)."""
        if not self.leading:
            return
        task: asyncio.Task[object] = asyncio.create_task(self._arm())
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _arm(self) -> None:
        """Point the one wake-up job at the earliest pending due time."""
        if not self.leading or self._scheduler is None:
            return
        async with self.db.reader() as session:
            earliest = await repo.next_due(session)
        if earliest is None:
            if self._scheduler.get_job(WAKE_UP) is not None:
                self._scheduler.remove_job(WAKE_UP)
            return
        # due times are on the service clock; the timer runs on the real one
        delay = max(earliest - self.clock(), timedelta(0))
        job = self._scheduler.get_job(WAKE_UP)
        run_at = datetime.now(UTC) + delay
        if job is not None and job.next_run_time is not None and \
                abs(job.next_run_time - run_at) < timedelta(milliseconds=5):
            return
        self._scheduler.add_job(self._wake, DateTrigger(run_date=run_at, timezone=UTC),
                                id=WAKE_UP, replace_existing=True)

    async def _wake(self) -> None:
        # Return at once: while a job instance runs, APScheduler skips that job's next run
        # (max_instances), and run_due re-arms the very job it was started by.
        task: asyncio.Task[object] = asyncio.create_task(self.run_due())
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def run_due(self) -> int:
        """Claim and send every due reminder, batch by batch; then re-arm. How many were sent."""
        sent = 0
        async with self._one_run:
            sent = await self._run_due()
        return sent

    async def _run_due(self) -> int:
        sent = 0
        try:
            while self.leading:
                async with self.db.session() as session:
                    batch = await repo.claim_due(session, now=self.clock(), owner=self.owner,
                                                 limit=self.batch, late_after=self.late_after)
                if not batch:
                    break
                sent += await self._deliver_batch(batch)
        finally:
            if sent:
                self.on_sent()
            await self._arm()
        return sent

    async def _deliver_batch(self, batch: list[Reminder]) -> int:
        """Mark a claimed batch sent and send it in one transaction; if any send fails,
        nothing of it commits and each reminder is tried on its own."""
        try:
            async with self.db.session() as session:
                now = self.clock()
                tickets = await repo.tickets_by_number(session,
                                                       {r.ticket_number for r in batch})
                stale = [r for r in batch if not still_wanted(r, tickets[r.ticket_number])]
                await repo.cancel_claimed(session, [r.id for r in stale if r.id],
                                          owner=self.owner, now=now, reason=STALE)
                rows = await repo.mark_sent_many(
                    session, [r.id for r in batch if r.id and r not in stale],
                    owner=self.owner, now=now)
                for row in rows:
                    await self.notifier.send(session, row, tickets[row.ticket_number], now)
                    if row.booking_id is None:
                        await record_breach(session, tickets[row.ticket_number], now)
        except Exception:
            return sum([await self._deliver(reminder) for reminder in batch])
        for row in rows:
            self._log_sent(row, now)
        for reminder in stale:
            log.info("event=reminder_dropped reminder=%s ticket=%s reason=%r", reminder.id,
                     reminder.ticket_number, STALE)
        self.sent += len(rows)
        return len(rows)

    def _log_sent(self, reminder: Reminder, now: datetime) -> None:
        log.info("event=reminder_sent reminder=%s ticket=%s kind=%s audience=%s late=%s "
                 "delay_ms=%d", reminder.id, reminder.ticket_number, reminder.kind,
                 reminder.audience, str(reminder.late).lower(),
                 (now - reminder.due_at).total_seconds() * 1000)

    async def _deliver(self, reminder: Reminder) -> int:
        """Mark sent and send in one transaction; on failure give the reminder back."""
        assert reminder.id is not None
        try:
            async with self.db.session() as session:
                now = self.clock()
                row = await repo.mark_sent(session, reminder.id, owner=self.owner, now=now)
                if row is None:
                    return 0  # cancelled after the claim (an answer came in): send nothing
                ticket = await session.get(Ticket, row.ticket_number)
                assert ticket is not None
                if not still_wanted(row, ticket):
                    row.sent_at, row.cancelled_at, row.reason = None, now, STALE
                    session.add(row)
                    return 0
                await self.notifier.send(session, row, ticket, now)
                if row.booking_id is None:
                    await record_breach(session, ticket, now)
        except Exception as exc:
            await self._failed(reminder, f"{type(exc).__name__}: {exc}")
            return 0
        self.sent += 1
        self._log_sent(reminder, now)
        return 1

    async def _failed(self, reminder: Reminder, error: str) -> None:
        assert reminder.id is not None
        now = self.clock()
        give_up = reminder.attempts >= self.max_attempts
        retry = None if give_up else now + timedelta(
            seconds=min(self.retry_seconds * 2 ** (reminder.attempts - 1), 3600))
        log.error("event=reminder_failed reminder=%s ticket=%s attempts=%s retry_at=%s "
                  "error=%s", reminder.id, reminder.ticket_number, reminder.attempts,
                  retry.isoformat() if retry else "never", error[:200])
        with contextlib.suppress(Exception):  # if this fails too, the next leader retries
            async with self.db.session() as session:
                await repo.record_failure(session, reminder.id, owner=self.owner, now=now,
                                          error=error, retry_at=retry)
