"""Composition root: build the adapters from Settings, start and stop the service."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

from aiohttp import web

from bot import __version__
from bot.classify import Classifier
from bot.classify.keywords import KeywordClassifier
from bot.config import ConfigError, Settings, load_policy
from bot.digest_job import DailyDigest
from bot.domain import Language
from bot.floods import FloodLimits
from bot.http import make_http_app
from bot.inbound import MailConfig, MailIntake
from bot.intake.email import SupportHandler, start_smtp
from bot.intake.language import LanguageDetector
from bot.intake.outbound import Deliverer, MaildirOutbox, SmtpRelay, Transport
from bot.intake.trust import SenderVerifier, dns_lookup, load_key_table
from bot.notify import MailSide, Router, SlackFile
from bot.scheduler import ReminderLoop
from bot.sla.engine import Engine
from bot.workers import MailWorker
from models.db import Database
from models.leader import AdvisoryLock, Leadership, SoleInstance
from models.migrate import current_revision, head_revision

log = logging.getLogger(__name__)


class StartupError(RuntimeError):
    """The service cannot start; the message says why in one sentence."""


def utc_now() -> datetime:
    """The service's clock; tests and benchmarks pass their own."""
    return datetime.now(UTC)


@dataclass
class Service:
    """The running parts of the service."""

    settings: Settings
    engine: Engine
    db: Database
    intake: MailIntake
    clock: Callable[[], datetime] = utc_now
    runner: web.AppRunner | None = None
    smtp: asyncio.Server | None = None
    worker: MailWorker | None = None
    deliverer: Deliverer | None = None
    _delivery: asyncio.Task[None] | None = None
    reminders: ReminderLoop | None = None

    @property
    def smtp_port(self) -> int:
        """The port the SMTP server listens on (useful when configured as 0)."""
        assert self.smtp is not None
        return int(self.smtp.sockets[0].getsockname()[1])

    @property
    def http_port(self) -> int:
        """The port the HTTP server listens on (useful when configured as 0)."""
        assert self.runner is not None
        return int(self.runner.addresses[0][1])

    async def start(self) -> None:
        """Check the database schema, then open the HTTP endpoint."""
        revision = await current_revision(self.db)
        if revision != head_revision():
            raise StartupError(
                f"the database schema is at revision {revision or 'none'}, the code needs "
                f"{head_revision()}: run `intake-bot db upgrade` first"
            )
        settings = self.settings
        self.deliverer = Deliverer(
            db=self.db, transport=transport(settings), clock=self.clock,
            max_attempts=settings.relay_max_attempts,
            backoff_seconds=settings.relay_backoff_seconds,
        )
        self.worker = MailWorker(self.intake, clock=self.clock,
                                 on_processed=self.deliverer.wake.set)
        await self.worker.start()
        self._delivery = asyncio.create_task(self.deliverer.run())
        if settings.reminders_enabled:
            self.reminders = reminder_loop(settings, self.engine, self.db, self.clock,
                                           on_sent=self.deliverer.wake.set)
            await self.reminders.start()
        handler = SupportHandler(db=self.db, addresses=settings.support_mailboxes,
                                 on_stored=self.worker.submit, clock=self.clock)
        self.smtp = await start_smtp(settings, handler)
        self.runner = web.AppRunner(make_http_app(self.db), access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, settings.http_host, settings.http_port)
        await site.start()
        verification = describe_verification(settings)
        if settings.trust_all_senders:
            log.warning("event=insecure_sender_trust verification=%r", verification)
        else:
            log.info("event=sender_verification verification=%r", verification)
        log.info(
            "event=started version=%s http=%s:%s smtp=%s:%s database=%s outbound=%s",
            __version__, settings.http_host, self.http_port, settings.smtp_host,
            self.smtp_port, self.db.backend, type(self.deliverer.transport).__name__,
        )

    async def stop(self) -> None:
        """Stop taking mail, finish nothing half-way (pending mail resumes on start), close."""
        if self.smtp is not None:
            self.smtp.close()
            # Give open sessions a moment; a client cut off mid-DATA got no 250 and retries,
            # and whatever got 250 is already stored.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2):
                    await self.smtp.wait_closed()
        if self.runner is not None:
            await self.runner.cleanup()
        if self.reminders is not None:
            await self.reminders.stop()
        if self.worker is not None:
            await self.worker.stop()
        if self.deliverer is not None and self._delivery is not None:
            await self.deliverer.stop(self._delivery)
        await self.db.dispose()
        log.info("event=stopped")


def transport(settings: Settings) -> Transport:
    """The SMTP relay when MAIL_RELAY_URL is set, else the Maildir outbox."""
    url = settings.mail_relay_url.get_secret_value()
    if url:
        try:
            return SmtpRelay(url, sender=settings.support_mailboxes[0])
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
    return MaildirOutbox(settings.outbox_dir)


def reminder_loop(settings: Settings, engine: Engine, db: Database,
                  clock: Callable[[], datetime], on_sent: Callable[[], None]) -> ReminderLoop:
    """The reminder loop: mail and the Slack file as notifiers, the leader lock on PostgreSQL."""
    url = settings.database_url.get_secret_value()
    leadership: Leadership = AdvisoryLock(url) if db.backend == "postgresql" else SoleInstance()
    notifier = Router(
        mail=MailSide(engine=engine, from_address=settings.support_mailboxes[0],
                      from_name=settings.mail_from_name, managers_email=settings.managers_email,
                      managers_language=Language(settings.managers_language)),
        slack=SlackFile(settings.slack_outbox_file, engine),
    )
    owner = settings.instance_name or f"{socket.gethostname()}:{os.getpid()}"
    daily = DailyDigest(
        db=db, engine=engine, at=time.fromisoformat(settings.digest_time), owner=owner,
        slack_file=settings.slack_outbox_file, managers_email=settings.managers_email,
        from_address=settings.support_mailboxes[0], from_name=settings.mail_from_name,
    ) if settings.digest_time else None
    return ReminderLoop(
        db=db, notifier=notifier, leadership=leadership, clock=clock, owner=owner, daily=daily,
        late_after=timedelta(seconds=settings.reminder_late_seconds),
        refresh_seconds=settings.reminder_refresh_seconds,
        leader_retry_seconds=settings.reminder_leader_retry_seconds,
        max_attempts=settings.reminder_max_attempts,
        retry_seconds=settings.reminder_retry_seconds, on_sent=on_sent,
    )


DEMO_DKIM_KEYS = Path(__file__).with_name("demo") / "dkim-keys.txt"


def sender_verifier(settings: Settings) -> SenderVerifier:
    """How senders are verified: DKIM (local keys, then DNS), our upstream's results, or not."""
    keys = {}
    if settings.dkim_keys_file is not None:
        try:
            keys = load_key_table(settings.dkim_keys_file)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"DKIM_KEYS_FILE: {exc}") from exc
    return SenderVerifier(
        authserv_id=settings.trusted_authserv_id, keys=keys,
        dns=dns_lookup(settings.dkim_dns_server) if settings.dkim_dns else None,
        dns_timeout=settings.dkim_dns_timeout, trust_all=settings.trust_all_senders,
    )


def describe_verification(settings: Settings) -> str:
    """One line for the log and /health: what proves a sender here."""
    if settings.trust_all_senders:
        return "NONE: TRUST_ALL_SENDERS=true, anyone can spend a customer's money by forging From"
    ways = ["dkim" + ("" if settings.dkim_dns else " (local keys only)")]
    if settings.trusted_authserv_id:
        ways.append(f"authentication-results from {settings.trusted_authserv_id}")
    if settings.dkim_keys_file is not None:
        ways.append(f"local keys {settings.dkim_keys_file}")
    return ", ".join(ways)


def mail_config(settings: Settings) -> MailConfig:
    """The mail settings the intake use case needs."""
    return MailConfig(
        support_addresses=settings.support_mailboxes, from_name=settings.mail_from_name,
        verifier=sender_verifier(settings),
        floods=FloodLimits(
            window=timedelta(minutes=settings.flood_window_minutes),
            max_per_sender=settings.flood_max_per_sender,
            max_per_customer=settings.flood_max_per_customer,
            duplicate_window=timedelta(minutes=settings.duplicate_window_minutes),
        ),
        auto_reply_limit_per_day=settings.auto_reply_limit_per_day,
        followup_reopen_days=settings.followup_reopen_days,
        max_attempts=settings.processing_max_attempts,
    )


def make_classifier(settings: Settings) -> Classifier:
    """The trained model (default), or the keyword rules when CLASSIFIER=keywords."""
    if settings.classifier == "keywords":
        return KeywordClassifier(threshold=settings.classifier_threshold)
    from bot.classify.commands import load_classifier

    classifier = load_classifier(settings)
    log.info("event=classifier_loaded model=%s encoder=%s", classifier.model, settings.encoder)
    return classifier


def build(settings: Settings, *, classifier: Classifier | None = None,
          clock: Callable[[], datetime] = utc_now) -> Service:
    """Load the policy, connect the store, build the intake; ConfigError on bad settings."""
    engine = Engine(load_policy(settings.policy_file))
    db = Database(settings.database_url.get_secret_value())
    intake = MailIntake(db=db, engine=engine, config=mail_config(settings),
                        classifier=classifier or make_classifier(settings),
                        detector=LanguageDetector())
    return Service(settings=settings, engine=engine, db=db, intake=intake, clock=clock)


async def serve(settings: Settings) -> None:
    """Run until SIGINT or SIGTERM."""
    service = build(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await service.start()
        await stop.wait()
    finally:
        await service.stop()
