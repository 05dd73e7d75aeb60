"""Composition root: build the adapters from Settings, start and stop the service."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

from aiohttp import web
from slack_sdk.web.async_client import AsyncWebClient
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import __version__
from bot.cases.customer_reply import CustomerReplies
from bot.cases.customers_csv import plans_not_in_policy
from bot.cases.floods import FloodLimits
from bot.cases.service import keep_plan_terms
from bot.classify import Classifier
from bot.classify.keywords import KeywordClassifier
from bot.classify.lazy import BackgroundLanguageDetector, LazyClassifier
from bot.config import ConfigError, Settings, load_policy
from bot.domain import Channel, Language
from bot.http import http_runner
from bot.intake.mail.email import SupportHandler, start_smtp
from bot.intake.mail.inbound import MailConfig, MailIntake
from bot.intake.mail.outbound import Deliverer, MaildirOutbox, SmtpRelay, Transport
from bot.intake.mail.route import MailRoute
from bot.intake.mail.trust import SenderVerifier, dns_lookup, load_key_table
from bot.intake.slack.app import SlackEndpoint, not_configured
from bot.intake.slack.callback_actions import CallbackActions
from bot.intake.slack.clicks import CLICKS, ClickIntake
from bot.intake.slack.customer_actions import CustomerActions
from bot.intake.slack.directory import SlackDirectory
from bot.intake.slack.fate import NoticeConfig, on_call_failed, tell_managers_token
from bot.intake.slack.inbox import BotIdentity, SlackIntake
from bot.intake.slack.outbox import (
    JsonLinesTransport,
    SlackDeliverer,
    SlackTransport,
    WebApiTransport,
)
from bot.intake.slack.reminders import SlackReminders
from bot.intake.slack.route import SlackRoute
from bot.intake.slack.socket_mode import SocketMode
from bot.intake.slack.triage import TriagePoster
from bot.intake.slack.triage_actions import TriageActions
from bot.intake.slack.triage_thread import TriageThread
from bot.intake.web.actions import WebActions
from bot.intake.web.hub import Hub
from bot.intake.web.inbox import WebIntake
from bot.intake.web.pages import demo_identity
from bot.intake.web.reminders import WebReminders
from bot.intake.web.reply import WebAnswerRoute
from bot.intake.web.socket import ChatConfig, ChatSocket
from bot.jobs.alerts import AlertConfig
from bot.jobs.digest import DailyDigest
from bot.jobs.notify import MailSide, Notifier, Router, SlackFile
from bot.jobs.retention import DailyJobs, RetentionJob
from bot.jobs.scheduler import ReminderLoop
from bot.jobs.webchat_mail import WebchatMail
from bot.jobs.workers import MailWorker
from bot.sla.engine import Engine
from models import slack as slack_calls
from models.customers import held_plans
from models.db import Database
from models.leader import AdvisoryLock, Leadership, SoleInstance
from models.migrate import current_revision, head_revision
from models.outboxes import Backlog, mail_backlog, slack_backlog
from models.tables import SlackCall
from models.webchat_out import on_out_item

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
    slack: SlackEndpoint | None = None
    slack_worker: MailWorker | None = None
    click_worker: MailWorker | None = None
    slack_deliverer: SlackDeliverer | None = None
    _slack_delivery: asyncio.Task[None] | None = None
    _unhook_calls: Callable[[], None] | None = None
    socket: SocketMode | None = None
    reminders: ReminderLoop | None = None
    web_worker: MailWorker | None = None  # its `submit` is the web chat socket's `on_stored`
    chat_hub: Hub | None = None
    _unhook_out: Callable[[], None] | None = None

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
        """Check the schema and the customers' plans, then accept mail and open HTTP."""
        revision = await current_revision(self.db)
        if revision != head_revision():
            raise StartupError(
                f"the database schema is at revision {revision or 'none'}, the code needs "
                f"{head_revision()}: run `intake-bot db upgrade` first"
            )
        async with self.db.reader() as session:
            problem = plans_not_in_policy(await held_plans(session), self.engine.policy)
        if problem:  # else every mail of those customers would fail, and /health say 200
            raise StartupError(problem)
        async with self.db.session() as session:  # tickets from before terms were kept
            problem = await keep_plan_terms(session, self.engine)
        if problem:
            raise StartupError(problem)
        settings = self.settings
        self.deliverer = Deliverer(
            db=self.db, transport=transport(settings), clock=self.clock,
            backoff_seconds=settings.relay_backoff_seconds,
            backoff_max_seconds=settings.relay_backoff_max_seconds,
        )
        self.worker = MailWorker(self.intake, clock=self.clock,
                                 on_processed=self.deliverer.wake.set,
                                 concurrency=settings.worker_concurrency)
        await self.worker.start()  # stored mail waits in the worker for the model, not the sender
        self._delivery = asyncio.create_task(self.deliverer.run())
        if settings.reminders_enabled:
            self.reminders = reminder_loop(settings, self.engine, self.db, self.clock,
                                           on_sent=self.deliverer.wake.set)
            await self.reminders.start()
        handler = SupportHandler(db=self.db, addresses=settings.support_mailboxes,
                                 on_stored=self.worker.submit, clock=self.clock,
                                 max_recipients=settings.smtp_max_recipients)
        self.smtp = await start_smtp(settings, handler)
        await self._start_slack()
        await self._start_web()
        events = self.slack.handle if self.slack and http_events(settings) else not_configured
        assert self.web_worker is not None
        self.chat_hub = Hub(self.db, poll_seconds=settings.webchat_push_seconds)
        await self.chat_hub.start()
        hub, loop = self.chat_hub, asyncio.get_running_loop()

        def added() -> None:  # an out item committed in this process: push it now, not at a poll
            loop.call_soon_threadsafe(hub.wake)

        self._unhook_out = on_out_item(added)
        chat = ChatSocket(db=self.db, config=ChatConfig.from_settings(settings), clock=self.clock,
                          on_stored=self.web_worker.submit, hub=self.chat_hub,
                          on_mail_queued=self.deliverer.wake.set)
        self.runner = http_runner(
            settings, self.db, model_state=lambda: model_state(self.intake.classifier),
            slack_events=events,
            slack_state=lambda: slack_state(settings, self.socket),
            outbox_state=self.outbox_health, chat_socket=chat.handle,
            chat_identity=demo_identity(
                secret=settings.webchat_identity_secret.get_secret_value(), db=self.db,
                clock=self.clock))
        await self.runner.setup()
        site = web.TCPSite(self.runner, settings.http_host, settings.http_port)
        await site.start()
        if isinstance(self.intake.classifier, LazyClassifier):
            self.intake.classifier.start()  # accepting already; the model loads meanwhile
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

    def notices(self) -> NoticeConfig:
        """Who is told by mail when Slack cannot be reached for good."""
        settings = self.settings
        return NoticeConfig(managers_email=settings.managers_email,
                            from_address=settings.support_mailboxes[0],
                            from_name=settings.mail_from_name,
                            triage_channel=settings.slack_triage_channel)

    async def _slack_call_failed(self, session: AsyncSession, call: SlackCall,
                                 now: datetime) -> None:
        await on_call_failed(session, self.notices(), call, now)
        if self.deliverer is not None:
            self.deliverer.wake.set()

    async def _slack_token_refused(self, reason: str, now: datetime) -> None:
        async with self.db.session() as session:
            mailed = await tell_managers_token(session, self.notices(), reason=reason, now=now)
        log.error("event=slack_token_refused reason=%s managers_mailed=%s: the Slack outbox is "
                  "paused, every call stays queued; restart with a working SLACK_BOT_TOKEN",
                  reason, mailed)
        if self.deliverer is not None:
            self.deliverer.wake.set()

    async def outbox_health(self) -> tuple[dict[str, object], bool]:
        """Per outbox: how many wait, the oldest's age, failures, a pause; healthy unless the
        oldest is older than OUTBOX_MAX_AGE_SECONDS or the Slack token is refused."""
        async with self.db.reader() as session:
            backlogs = {"mail": await mail_backlog(session),
                        "slack": await slack_backlog(session)}
        loops = {"mail": self.deliverer, "slack": self.slack_deliverer}
        return outbox_report(backlogs, {k: v.state() if v else {} for k, v in loops.items()},
                             now=self.clock(), max_age=self.settings.outbox_max_age_seconds)

    async def _start_slack(self) -> None:
        """The Slack worker, outbox, the events endpoint (with a signing secret) and Socket Mode
        (with an app token and a bot token)."""
        settings = self.settings
        self.slack_deliverer = SlackDeliverer(
            db=self.db, transport=slack_transport(settings), clock=self.clock,
            backoff_seconds=settings.slack_backoff_seconds,
            backoff_max_seconds=settings.slack_backoff_max_seconds,
            token_retry_seconds=settings.slack_token_retry_seconds,
            post_interval=settings.slack_post_interval_seconds,
            on_failed=self._slack_call_failed, on_token_error=self._slack_token_refused,
        )
        identity = BotIdentity()
        intake = SlackIntake(db=self.db, identity=identity, directory=slack_directory(settings),
                             conversation=self.intake.conversation,
                             classifier=self.intake.classifier, detector=self.intake.detector,
                             agents=settings.slack_agent_ids,
                             max_attempts=settings.processing_max_attempts,
                             thread=TriageThread(channel=settings.slack_triage_channel,
                                                 agents=settings.slack_agent_ids,
                                                 note_prefix=settings.slack_note_prefix,
                                                 replies=self.intake.replies))
        self.slack_worker = MailWorker(intake, clock=self.clock, channel="slack", concurrency=16,
                                       on_processed=self.slack_deliverer.wake.set)
        loop, wake = asyncio.get_running_loop(), self.slack_deliverer.wake

        def queued() -> None:  # a call queued by an event, a click, a reminder: deliver now
            loop.call_soon_threadsafe(wake.set)

        self._unhook_calls = slack_calls.on_queued(queued)
        await self.slack_worker.start()
        self._slack_delivery = asyncio.create_task(self.slack_deliverer.run())
        if http_events(settings) or socket_mode(settings):
            self.slack = SlackEndpoint(settings=settings, db=self.db, clock=self.clock,
                                       on_stored=self.slack_worker.submit, identity=identity,
                                       triage=TriageActions(engine=self.engine,
                                                            replies=self.intake.replies,
                                                            zone=self.engine.calendar.zone),
                                       customers=CustomerActions(
                                           conversation=self.intake.conversation,
                                           zone=self.engine.calendar.zone,
                                           triage_channel=settings.slack_triage_channel),
                                       callbacks=CallbackActions(
                                           engine=self.engine,
                                           sender=(self.intake.config.from_address,
                                                   self.intake.config.from_name)))
            self.click_worker = MailWorker(
                ClickIntake(db=self.db, apply=self.slack.apply_click,
                            max_attempts=settings.processing_max_attempts),
                clock=self.clock, channel=CLICKS, concurrency=1,  # clicks in their order
                on_processed=self.slack_deliverer.wake.set)
            self.slack.on_click_stored = self.click_worker.submit
            await self.click_worker.start()  # resumes clicks stored before a crash
            await self.slack.identify()
        if self.slack is not None and socket_mode(settings):
            self.socket = SocketMode(app=self.slack.app,
                                     app_token=settings.slack_app_token.get_secret_value())
            await self.socket.start()
        state = slack_state(settings, self.socket)
        socket = describe_socket(settings, self.socket)
        if settings.slack_mode == "outbox-file":
            log.warning("event=slack_mode mode=outbox-file file=%s events=%s socket_mode=%s: no "
                        "SLACK_BOT_TOKEN, so Slack calls are written to the file instead of Slack",
                        settings.slack_outbox_file, state["events"], socket)
        else:
            log.info("event=slack_mode mode=web-api api=%s events=%s socket_mode=%s",
                     settings.slack_api_url, state["events"], socket)

    async def _start_web(self) -> None:
        """The web chat's worker: resumes what was stored before a crash, then takes what the
        socket stores (its `submit`)."""
        intake = self.web_intake()

        def processed() -> None:  # a triage post, a quote's mail, a callback's invitation
            for outbox in (self.deliverer, self.slack_deliverer):
                if outbox is not None:
                    outbox.wake.set()

        self.web_worker = MailWorker(intake, clock=self.clock, channel="web", concurrency=8,
                                     on_processed=processed)
        await self.web_worker.start()

    def web_intake(self) -> WebIntake:
        """The web chat's messages through the same conversation as mail (serve and work)."""
        conversation = self.intake.conversation
        return WebIntake(db=self.db, conversation=conversation,
                         classifier=self.intake.classifier, detector=self.intake.detector,
                         choices=WebActions(conversation=conversation, engine=self.engine),
                         max_attempts=self.settings.processing_max_attempts)

    async def stop(self) -> None:
        """Stop taking mail, finish nothing half-way (pending mail resumes on start), close."""
        if self.smtp is not None:
            self.smtp.close()
            # Give open sessions a moment; a client cut off mid-DATA got no 250 and retries,
            # and whatever got 250 is already stored.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2):
                    await self.smtp.wait_closed()
        if self.socket is not None:
            await self.socket.stop()
        if self._unhook_out is not None:
            self._unhook_out()
        if self.chat_hub is not None:
            await self.chat_hub.stop()
        if self.runner is not None:
            await self.runner.cleanup()
        if self.reminders is not None:
            await self.reminders.stop()
        if self.worker is not None:
            await self.worker.stop()
        if self.deliverer is not None and self._delivery is not None:
            await self.deliverer.stop(self._delivery)
        if self.web_worker is not None:
            await self.web_worker.stop()
        if self.click_worker is not None:
            await self.click_worker.stop()
        if self.slack_worker is not None:
            await self.slack_worker.stop()
        if self.slack_deliverer is not None and self._slack_delivery is not None:
            await self.slack_deliverer.stop(self._slack_delivery)
        if self._unhook_calls is not None:
            self._unhook_calls()
        if isinstance(self.intake.classifier, LazyClassifier):
            self.intake.classifier.close()
        await self.db.dispose()
        log.info("event=stopped")


def outbox_report(backlogs: dict[str, Backlog], states: dict[str, dict[str, object]], *,
                  now: datetime, max_age: float) -> tuple[dict[str, object], bool]:
    """/health's outboxes: each one's figures and pause, and whether all are healthy."""
    report: dict[str, object] = {}
    healthy = True
    for name, backlog in backlogs.items():
        age = (now - backlog.oldest).total_seconds() if backlog.oldest else 0.0
        entry: dict[str, object] = {"waiting": backlog.waiting,
                                    "oldest_age_seconds": round(max(age, 0.0), 1),
                                    "failed": backlog.failed, **states.get(name, {})}
        problems = []
        if age > max_age:
            problems.append(f"oldest undelivered is {age:.0f} s old (limit {max_age:.0f} s)")
        if entry.get("token_error"):
            problems.append(f"Slack refuses the token: {entry['token_error']}")
        if problems:
            entry["problem"] = "; ".join(problems)
            healthy = False
        report[name] = entry
    return report, healthy


def model_state(classifier: Classifier) -> dict[str, object]:
    """For /health: whether the classifier is loaded (or why it could not be)."""
    if not isinstance(classifier, LazyClassifier):
        return {"loaded": True}
    state: dict[str, object] = {"loaded": classifier.loaded}
    if classifier.error is not None:
        state["error"] = classifier.error
    return state


def transport(settings: Settings) -> Transport:
    """The SMTP relay when MAIL_RELAY_URL is set, else the Maildir outbox."""
    url = settings.mail_relay_url.get_secret_value()
    if url:
        try:
            return SmtpRelay(url, sender=settings.support_mailboxes[0])
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
    return MaildirOutbox(settings.outbox_dir)


def slack_transport(settings: Settings) -> SlackTransport:
    """The Slack Web API with SLACK_BOT_TOKEN, else the JSON-lines file SLACK_OUTBOX_FILE."""
    token = settings.slack_bot_token.get_secret_value()
    if token:
        return WebApiTransport(token, settings.slack_api_url)
    return JsonLinesTransport(settings.slack_outbox_file)


def slack_directory(settings: Settings) -> SlackDirectory | None:
    """Who wrote a direct message (users.info); None without a bot token: no one is known."""
    token = settings.slack_bot_token.get_secret_value()
    if not token:
        return None
    # no client-side retries: a failed lookup leaves the message pending for the worker's retry
    client = AsyncWebClient(token=token, base_url=settings.slack_api_url, retry_handlers=[])
    return SlackDirectory(client, timedelta(seconds=settings.slack_user_cache_seconds))


def http_events(settings: Settings) -> bool:
    """Whether POST /slack/events can check signatures (SLACK_SIGNING_SECRET is set)."""
    return bool(settings.slack_signing_secret.get_secret_value())


def socket_mode(settings: Settings) -> bool:
    """Whether Socket Mode is used: an app token, and a bot token to answer with."""
    return bool(settings.slack_app_token.get_secret_value() and
                settings.slack_bot_token.get_secret_value())


def slack_state(settings: Settings, socket: SocketMode | None = None) -> dict[str, object]:
    """What /health says about Slack: where calls go, whether events are taken over HTTP, and
    (with SLACK_APP_TOKEN) whether the Socket Mode connection is up."""
    state: dict[str, object] = {
        "mode": settings.slack_mode,
        "events": "on" if http_events(settings) else "off (no SLACK_SIGNING_SECRET)",
    }
    if settings.slack_app_token.get_secret_value():
        state["socket_mode"] = socket.state() if socket is not None else {
            "connected": False, "error": "SLACK_APP_TOKEN without SLACK_BOT_TOKEN"}
    if settings.slack_mode == "outbox-file":
        state["outbox_file"] = str(settings.slack_outbox_file)
        state["note"] = "no SLACK_BOT_TOKEN: mail-only; Slack calls are written to the file"
    return state


def describe_socket(settings: Settings, socket: SocketMode | None) -> str:
    """The start log's word for Socket Mode: off, connected, or not-connected:<why>."""
    if not settings.slack_app_token.get_secret_value():
        return "off"
    if socket is None:
        return "off:no-SLACK_BOT_TOKEN"
    if socket.connected:
        return "connected"
    return f"not-connected:{socket.error or 'still-connecting'}"


def alert_config(settings: Settings, engine: Engine) -> AlertConfig:
    """Where manager alerts go (SLACK_MANAGERS_CHANNEL, MANAGERS_EMAIL)."""
    return AlertConfig(slack_channel=settings.slack_managers_channel,
                       email=settings.managers_email, from_address=settings.support_mailboxes[0],
                       from_name=settings.mail_from_name, zone=engine.calendar.zone)
def slack_reminders(settings: Settings, engine: Engine) -> Notifier:
    """Reminders into Slack through the Slack outbox with a bot token; without one, the
    reminders' own JSON-lines file (SLACK_OUTBOX_FILE) as before, readable in the demo."""
    if settings.slack_mode == "web-api":
        return SlackReminders(engine=engine, triage_channel=settings.slack_triage_channel,
                              alerts=alert_config(settings, engine))
    return SlackFile(settings.slack_outbox_file, engine)


def reminder_loop(settings: Settings, engine: Engine, db: Database,
                  clock: Callable[[], datetime], on_sent: Callable[[], None]) -> ReminderLoop:
    """The reminder loop: mail and the Slack file as notifiers, the leader lock on PostgreSQL."""
    url = settings.database_url.get_secret_value()
    leadership: Leadership = AdvisoryLock(url) if db.backend == "postgresql" else SoleInstance()
    notifier = Router(
        mail=MailSide(engine=engine, from_address=settings.support_mailboxes[0],
                      from_name=settings.mail_from_name, managers_email=settings.managers_email,
                      managers_language=Language(settings.managers_language)),
        slack=slack_reminders(settings, engine), web=WebReminders(engine=engine),
    )
    owner = settings.instance_name or f"{socket.gethostname()}:{os.getpid()}"
    daily = DailyDigest(
        db=db, engine=engine, at=time.fromisoformat(settings.digest_time), owner=owner,
        slack_file=settings.slack_outbox_file, managers_email=settings.managers_email,
        from_address=settings.support_mailboxes[0], from_name=settings.mail_from_name,
        slack_channel=settings.slack_managers_channel if settings.slack_mode == "web-api" else "",
    ) if settings.digest_time else None
    retention = RetentionJob(db=db, zone=engine.calendar.zone,
                             at=time.fromisoformat(settings.retention_time),
                             days=settings.retention_raw_days, batch=settings.retention_batch)
    return ReminderLoop(
        db=db, notifier=notifier, leadership=leadership, clock=clock, owner=owner,
        daily=DailyJobs([retention] if daily is None else [daily, retention]),
        late_after=timedelta(seconds=settings.reminder_late_seconds),
        refresh_seconds=settings.reminder_refresh_seconds,
        leader_retry_seconds=settings.reminder_leader_retry_seconds,
        max_attempts=settings.reminder_max_attempts,
        retry_seconds=settings.reminder_retry_seconds, on_sent=on_sent,
        # the web chat's unseen answers are looked for as often as reminder rows are re-read
        every=WebchatMail(db=db, after=timedelta(minutes=settings.webchat_mail_after_minutes),
                          from_address=settings.support_mailboxes[0],
                          from_name=settings.mail_from_name,
                          seconds=settings.reminder_refresh_seconds),
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
        authserv_id=settings.trusted_authserv_id,
        authserv_fields=settings.trusted_authserv_fields, keys=keys,
        recipients=settings.support_mailboxes,
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


def customer_replies(config: MailConfig) -> CustomerReplies:
    """The way back to a ticket's customer on each channel; mail for any other channel."""
    mail = MailRoute(config)
    return CustomerReplies({Channel.EMAIL.value: mail, Channel.SLACK.value: SlackRoute(),
                            Channel.WEB.value: WebAnswerRoute()}, fallback=mail)


def mail_config(settings: Settings) -> MailConfig:
    """The mail settings the intake use case needs."""
    return MailConfig(
        support_addresses=settings.support_mailboxes, from_name=settings.mail_from_name,
        verifier=sender_verifier(settings),
        floods=FloodLimits(
            window=timedelta(minutes=settings.flood_window_minutes),
            max_per_sender=settings.flood_max_per_sender,
            max_per_customer=settings.flood_max_per_customer,
            mirror_joined=settings.flood_mirror_max,
            duplicate_window=timedelta(minutes=settings.duplicate_window_minutes),
        ),
        auto_reply_limit_per_day=settings.auto_reply_limit_per_day,
        followup_reopen_days=settings.followup_reopen_days,
        max_attempts=settings.processing_max_attempts,
    )


def load_configured_classifier(settings: Settings) -> Classifier:
    """Load the trained model (default), or the keyword rules when CLASSIFIER=keywords."""
    if settings.classifier == "keywords":
        return KeywordClassifier(threshold=settings.classifier_threshold)
    from bot.classify.commands import load_classifier

    classifier = load_classifier(settings)
    classifier.max_batch = settings.classifier_batch
    classifier.nice = settings.classifier_nice
    log.info("event=classifier_loaded model=%s encoder=%s", classifier.model, settings.encoder)
    return classifier


def make_classifier(settings: Settings, *,
                    detector: BackgroundLanguageDetector | None = None) -> LazyClassifier:
    """The configured classifier, loaded in the background once the service starts.

    What can be checked cheaply (the encoder directory exists) is checked now, so a missing
    model still stops the service at once with a sentence.
    """
    if settings.classifier == "model":
        from bot.classify.encoder import EncoderMissing, check_source

        try:
            check_source(settings.encoder)
        except EncoderMissing as exc:
            raise ConfigError(str(exc)) from exc

    def load() -> Classifier:
        if detector is not None:
            detector.load()  # its models too are built in the background
        classifier = load_configured_classifier(settings)
        # What start-up loaded (model, torch, transformers: ~470,000 objects) lives as long as
        # the process; a full collection scanned it for ~240 ms with no thread running, and those
        # pauses were most of the burst's long SMTP 250s. Freezing takes it out of every scan.
        gc.freeze()
        return classifier

    return LazyClassifier(load)


def build(settings: Settings, *, classifier: Classifier | None = None,
          clock: Callable[[], datetime] = utc_now) -> Service:
    """Load the policy, connect the store, build the intake; ConfigError on bad settings."""
    engine = Engine(load_policy(settings.policy_file))
    db = Database(settings.database_url.get_secret_value(),
                  background_pool=settings.worker_concurrency)
    detector = BackgroundLanguageDetector()
    announcer = (TriagePoster(channel=settings.slack_triage_channel, zone=engine.calendar.zone,
                              engine=engine)
                 if settings.slack_triage_channel else None)
    config = mail_config(settings)
    intake = MailIntake(db=db, engine=engine, config=config,
                        classifier=classifier or make_classifier(settings, detector=detector),
                        detector=detector, replies=customer_replies(config),
                        announcer=announcer)
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


async def run_worker(settings: Settings, *, on_ready: Callable[[], None] = lambda: None,
                     stop: asyncio.Event | None = None) -> None:
    """`intake-bot work`: classify and process stored mail and web chat messages, next to
    `serve`.

    Needs PostgreSQL: several processes claim pending mail with FOR UPDATE SKIP LOCKED (see
    MailIntake.process); a web message is locked while processed and done once (WebIntake).
    Replies are delivered by `serve`, which polls the queue every second; chat answers reach the
    visitor through serve's push loop, which reads what any process committed.
    """
    service = build(settings)
    if service.db.backend != "postgresql":
        await service.db.dispose()
        raise StartupError("`intake-bot work` needs PostgreSQL (DATABASE_URL=postgresql://...): "
                           "on SQLite `serve` alone processes the mail")
    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
    workers: list[MailWorker] = []
    try:
        revision = await current_revision(service.db)
        if revision != head_revision():
            raise StartupError(f"the database schema is at revision {revision or 'none'}, the "
                               f"code needs {head_revision()}: run `intake-bot db upgrade` first")
        # a web message a `serve` replica stored is processed by whichever process runs
        workers = [MailWorker(service.intake, clock=service.clock, on_processed=lambda: None,
                              concurrency=settings.worker_concurrency, scan_seconds=1.0),
                   MailWorker(service.web_intake(), clock=service.clock, channel="web",
                              on_processed=lambda: None, concurrency=8, scan_seconds=1.0)]
        for worker in workers:
            await worker.start()
        classifier = service.intake.classifier
        if isinstance(classifier, LazyClassifier):
            await asyncio.to_thread(classifier.wait)
        log.info("event=worker_started pid=%s", os.getpid())
        on_ready()
        await stop.wait()
    finally:
        for worker in workers:
            await worker.stop()
        if isinstance(service.intake.classifier, LazyClassifier):
            service.intake.classifier.close()
        await service.db.dispose()
        log.info("event=worker_stopped")
